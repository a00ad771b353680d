//! Yjs updates from untrusted peers integrated into a note: an update the
//! document refuses leaves it as it was, and the note still syncs. An
//! update yrs panics on halfway gives the document up (`Broken`, for its
//! owner to reload) and never aborts the process: yrs 0.28.1 panicked again
//! in the unwinding's commit, which this target found within seconds.
//! Every run starts from the inputs that once broke it (`seeds/`; see
//! fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::notes::{DocumentError, NoteDocument};
use rookery::ws::yjs::decode_messages;
use yrs::sync::{Message, SyncMessage};

const MAX_UPDATE: usize = 64 * 1024;
const MAX_DOCUMENT: usize = 1024 * 1024;

fuzz_target!(
    init: {
        // Panics inside yrs are contained by `NoteDocument` (caught and the
        // update refused); libFuzzer's hook would abort on them anyway, so
        // only panics anywhere else count as crashes here.
        let crash = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_yrs = info.location().is_some_and(|at| at.file().contains("/yrs-"));
            if !in_yrs {
                crash(info);
            }
        }));
    },
    |data: &[u8]| {
    let mut note = NoteDocument::empty();
    apply(&mut note, data);
    if let Ok(messages) = decode_messages(data) {
        for message in messages {
            match message {
                Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                    apply(&mut note, &update);
                }
                Message::Sync(SyncMessage::SyncStep1(state_vector)) => {
                    use yrs::updates::encoder::Encode;
                    let _ = note.sync_step1(&state_vector.encode_v1());
                }
                Message::Awareness(update) => {
                    use yrs::updates::encoder::Encode;
                    let _ = note.apply_awareness(1, &update.encode_v1());
                }
                _ => {}
            }
        }
    }
    let _ = note.apply_awareness(2, data);
    let _ = note.sync_step1(data);
    // Whatever was refused, the note still syncs and snapshots, unless it
    // was given up (its owner reloads it; it refuses everything).
    if note.is_broken() {
        return;
    }
    use yrs::updates::encoder::Encode;
    note.sync_step1(&yrs::StateVector::default().encode_v1())
        .expect("the note still syncs");
    note.snapshot();
});

fn apply(note: &mut NoteDocument, update: &[u8]) {
    let before = (note.title(), note.body());
    match note.apply(update, MAX_UPDATE, MAX_DOCUMENT) {
        // Given up, to be reloaded: it refuses everything from now on.
        Err(DocumentError::Broken) => assert!(note.is_broken()),
        Err(_) => {
            assert_eq!((note.title(), note.body()), before, "a refused update changed the note");
        }
        Ok(_) => {}
    }
}
