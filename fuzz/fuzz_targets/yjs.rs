//! y-websocket frames and Yjs messages from untrusted peers, up to the
//! point of integration: frames, updates (`check_update`: what `apply`
//! accepts for integrating), awareness updates and state vectors are
//! decoded or refused, never a panic that escapes. (Integration itself:
//! `yjs_integrate`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::notes::NoteDocument;
use rookery::notes::document::check_update;
use rookery::ws::yjs::decode_messages;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;

fuzz_target!(
    init: {
        // Panics inside yrs while decoding are contained by `NoteDocument`
        // (caught, the input refused); libFuzzer's hook would abort on them
        // anyway, so only panics anywhere else count as crashes here.
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
        let _ = check_update(data);
        if let Ok(messages) = decode_messages(data) {
            for message in messages {
                match message {
                    Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                        let _ = check_update(&update);
                    }
                    Message::Sync(SyncMessage::SyncStep1(state_vector)) => {
                        let _ = note.sync_step1(&state_vector.encode_v1());
                    }
                    Message::Awareness(update) => {
                        let _ = note.apply_awareness(1, &update.encode_v1());
                    }
                    _ => {}
                }
            }
        }
        let _ = note.apply_awareness(2, data);
        let _ = note.sync_step1(data);
    }
);
