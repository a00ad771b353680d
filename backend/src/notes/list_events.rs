//! Telling the notes list what changed: creations, renames, title edits and
//! deletions at once; other edits at most once per interval (5 s by
//! default) per note, so that typing does not flood everyone watching the
//! list. An edit the throttle holds back is not lost: one announcement is
//! made at the end of the interval (one timer per note at most), with the
//! note as it is then, so the list's times and order settle once typing
//! stops.
//!
//! The registry calls [`Announcer`] with no note locked; where the events
//! go (the hub's `notes_list:all`) is the listener's business. Events leave
//! under one lock, and whether the note still exists is asked under it, so
//! a note's `deleted` is never followed by a `changed` of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rookery_common::{NoteListEvent, NoteSummary};
use tokio::time::Instant;

/// Where list events go.
pub type Listener = Box<dyn Fn(NoteListEvent) + Send + Sync>;

/// The note as it is now, or `None` once it is deleted; asked when an
/// announcement leaves.
pub type Current = Arc<dyn Fn() -> Option<NoteSummary> + Send + Sync>;

/// Announces list events to a listener, throttling plain edits.
pub struct Announcer {
    shared: Arc<Shared>,
}

struct Shared {
    listener: Listener,
    throttle: Mutex<EditThrottle<Current>>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer").finish_non_exhaustive()
    }
}

impl Announcer {
    /// `edit_interval`: least time between two announcements of one note's
    /// edits.
    pub fn new(listener: Listener, edit_interval: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                listener,
                throttle: Mutex::new(EditThrottle::new(edit_interval)),
            }),
        }
    }

    /// A note was created, renamed or its title edited: announced at once.
    /// `note` gives the note as it is now, or `None` once it is deleted.
    pub fn changed(&self, id: &str, now: Instant, note: impl FnOnce() -> Option<NoteSummary>) {
        let mut throttle = self.shared.throttle();
        if let Some(note) = note() {
            throttle.announced(id, now);
            (self.shared.listener)(NoteListEvent::Changed { note });
        }
    }

    /// A note's content was edited: announced unless its last announcement
    /// is recent; then once at the end of the interval, with the note as
    /// `note` gives it then. Must run inside a tokio runtime (the timer).
    pub fn edited(&self, id: &str, now: Instant, note: Current) {
        let mut throttle = self.shared.throttle();
        match throttle.edited(id, now, note) {
            Edit::Announce(note) => {
                if let Some(note) = note() {
                    (self.shared.listener)(NoteListEvent::Changed { note });
                }
            }
            Edit::Held { schedule: Some(at) } => {
                spawn_trailing(Arc::downgrade(&self.shared), id.to_owned(), at);
            }
            Edit::Held { schedule: None } => {}
        }
    }

    /// A note was deleted (and is marked so, which `note` of
    /// [`Self::changed`] sees from now on).
    pub fn deleted(&self, id: &str) {
        let mut throttle = self.shared.throttle();
        throttle.forget(id);
        (self.shared.listener)(NoteListEvent::Deleted { id: id.to_owned() });
    }
}

impl Shared {
    fn throttle(&self) -> std::sync::MutexGuard<'_, EditThrottle<Current>> {
        self.throttle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The one timer of a note with an edit held back: announces it at the end
/// of the interval (later if an announcement at once moved the interval).
fn spawn_trailing(shared: Weak<Shared>, id: String, at: Instant) {
    tokio::spawn(async move {
        let mut at = at;
        loop {
            tokio::time::sleep_until(at).await;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut throttle = shared.throttle();
            match throttle.timer_fired(&id, Instant::now()) {
                Fired::Announce(note) => {
                    if let Some(note) = note() {
                        (shared.listener)(NoteListEvent::Changed { note });
                    }
                    return;
                }
                Fired::Wait(until) => at = until,
                Fired::Done => return,
            }
        }
    });
}

/// What to do with an edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Edit<P> {
    /// Announce it now (it counts as the note's last announcement).
    Announce(P),
    /// Held back until the end of the interval; `schedule`: start the
    /// note's timer for then (`None`: it runs already).
    Held { schedule: Option<Instant> },
}

/// What a note's timer does when it fires.
#[derive(Debug, PartialEq, Eq)]
pub enum Fired<P> {
    /// Announce the held edit (it counts as the note's last announcement);
    /// the timer ends.
    Announce(P),
    /// The interval moved (an announcement at once): fire again then.
    Wait(Instant),
    /// Nothing is held any more; the timer ends.
    Done,
}

/// When each note was last announced and what edit is held back; plain
/// code over given instants. `P` is what a held edit carries (how to get
/// the note as it is when it is announced).
#[derive(Debug)]
pub struct EditThrottle<P> {
    interval: Duration,
    notes: HashMap<String, Throttled<P>>,
    /// Entries older than the interval are dropped when the map reaches
    /// this size (then it is set to twice what remains): the map holds
    /// about the notes edited recently, at amortised constant cost.
    prune_at: usize,
}

#[derive(Debug)]
struct Throttled<P> {
    last: Instant,
    /// The newest edit held back since `last`.
    held: Option<P>,
    /// Whether the note's timer runs.
    timer: bool,
}

impl<P> EditThrottle<P> {
    const MIN_PRUNE_AT: usize = 64;

    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            notes: HashMap::new(),
            prune_at: Self::MIN_PRUNE_AT,
        }
    }

    /// Whether an edit of `id` at `now` is announced; if so, it counts as
    /// the note's last announcement. (Without holding anything back.)
    pub fn is_due(&mut self, id: &str, now: Instant) -> bool {
        let due = self.is_due_at(id, now);
        if due {
            self.announced(id, now);
        }
        due
    }

    fn is_due_at(&self, id: &str, now: Instant) -> bool {
        self.notes
            .get(id)
            .is_none_or(|note| now.saturating_duration_since(note.last) >= self.interval)
    }

    /// An edit of `id` at `now`, carrying `held`: announced now, or held
    /// back (replacing what was held) for the note's timer.
    pub fn edited(&mut self, id: &str, now: Instant, held: P) -> Edit<P> {
        if self.is_due_at(id, now) {
            self.announced(id, now);
            return Edit::Announce(held);
        }
        let interval = self.interval;
        let note = self.notes.get_mut(id).expect("not due: remembered");
        note.held = Some(held);
        if note.timer {
            Edit::Held { schedule: None }
        } else {
            note.timer = true;
            Edit::Held {
                schedule: Some(note.last + interval),
            }
        }
    }

    /// The timer of `id` fired at `now`.
    pub fn timer_fired(&mut self, id: &str, now: Instant) -> Fired<P> {
        let interval = self.interval;
        let Some(note) = self.notes.get_mut(id) else {
            return Fired::Done;
        };
        if note.held.is_none() {
            note.timer = false;
            return Fired::Done;
        }
        let due = note.last + interval;
        if now < due {
            return Fired::Wait(due);
        }
        note.last = now;
        note.timer = false;
        Fired::Announce(note.held.take().expect("checked"))
    }

    /// Records an announcement made regardless of the throttle (it shows
    /// the note as it is: nothing stays held).
    pub fn announced(&mut self, id: &str, now: Instant) {
        match self.notes.get_mut(id) {
            Some(note) => {
                note.last = now;
                note.held = None;
            }
            None => {
                self.notes.insert(
                    id.to_owned(),
                    Throttled {
                        last: now,
                        held: None,
                        timer: false,
                    },
                );
                if self.notes.len() >= self.prune_at {
                    let interval = self.interval;
                    self.notes.retain(|_, note| {
                        note.timer || now.saturating_duration_since(note.last) < interval
                    });
                    self.prune_at = (2 * self.notes.len()).max(Self::MIN_PRUNE_AT);
                }
            }
        }
    }

    pub fn forget(&mut self, id: &str) {
        self.notes.remove(id);
    }

    /// How many notes it remembers.
    pub fn n_remembered(&self) -> usize {
        self.notes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_edit_is_announced_once_per_interval_per_note() {
        let start = Instant::now();
        let mut throttle = EditThrottle::<()>::new(5 * SECOND);
        assert!(throttle.is_due("a", start), "the first edit is announced");
        assert!(!throttle.is_due("a", start + SECOND));
        assert!(!throttle.is_due("a", start + 4 * SECOND));
        assert!(throttle.is_due("b", start + 4 * SECOND), "notes are apart");
        assert!(throttle.is_due("a", start + 5 * SECOND));
        assert!(!throttle.is_due("a", start + 9 * SECOND));
        assert!(throttle.is_due("a", start + 10 * SECOND));
    }

    #[test]
    fn an_announcement_at_once_restarts_the_interval() {
        let start = Instant::now();
        let mut throttle = EditThrottle::<()>::new(5 * SECOND);
        assert!(throttle.is_due("a", start));
        throttle.announced("a", start + 4 * SECOND);
        assert!(!throttle.is_due("a", start + 6 * SECOND));
        assert!(throttle.is_due("a", start + 9 * SECOND));
        throttle.forget("a");
        assert!(throttle.is_due("a", start + 9 * SECOND), "forgotten: due");
    }

    #[test]
    fn a_held_edit_is_announced_once_at_the_end_of_the_interval() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let mut throttle = EditThrottle::new(5 * SECOND);
        assert_eq!(throttle.edited("a", at(0), 1), Edit::Announce(1));
        // A burst: one timer, for the end of the interval; the newest wins.
        assert_eq!(
            throttle.edited("a", at(1), 2),
            Edit::Held {
                schedule: Some(at(5))
            }
        );
        assert_eq!(
            throttle.edited("a", at(2), 3),
            Edit::Held { schedule: None }
        );
        assert_eq!(throttle.timer_fired("a", at(5)), Fired::Announce(3));
        // The trailing announcement starts the next interval.
        assert_eq!(
            throttle.edited("a", at(6), 4),
            Edit::Held {
                schedule: Some(at(10))
            }
        );
        // An announcement at once shows the note as it is: nothing held;
        // the timer then finds nothing and ends.
        throttle.announced("a", at(7));
        assert_eq!(throttle.timer_fired("a", at(10)), Fired::Done);
        assert_eq!(
            throttle.edited("a", at(11), 5),
            Edit::Held {
                schedule: Some(at(12))
            }
        );
        // Held again while the timer runs, after an announcement at once
        // moved the interval: the timer waits for its new end.
        throttle.announced("a", at(12));
        assert_eq!(
            throttle.edited("a", at(13), 6),
            Edit::Held { schedule: None }
        );
        assert_eq!(throttle.timer_fired("a", at(12)), Fired::Wait(at(17)));
        assert_eq!(throttle.timer_fired("a", at(17)), Fired::Announce(6));
        // Deleted: a timer still running finds nothing.
        assert_eq!(
            throttle.edited("a", at(18), 7),
            Edit::Held {
                schedule: Some(at(22))
            }
        );
        throttle.forget("a");
        assert_eq!(throttle.timer_fired("a", at(22)), Fired::Done);
    }

    #[test]
    fn notes_not_edited_lately_are_forgotten() {
        let start = Instant::now();
        let mut throttle = EditThrottle::<()>::new(5 * SECOND);
        for n in 0..1000 {
            assert!(throttle.is_due(&format!("old-{n}"), start));
        }
        let later = start + 6 * SECOND;
        for n in 0..1000 {
            assert!(throttle.is_due(&format!("new-{n}"), later + n * Duration::from_millis(1)));
            assert!(throttle.n_remembered() <= 2 * 1000 + EditThrottle::<()>::MIN_PRUNE_AT);
        }
        assert!(
            throttle.n_remembered() < 1100,
            "{} remembered",
            throttle.n_remembered()
        );
        assert!(!throttle.is_due("new-999", later + SECOND));
    }

    #[test]
    fn a_note_with_an_edit_held_is_not_forgotten() {
        let start = Instant::now();
        let mut throttle = EditThrottle::new(5 * SECOND);
        assert_eq!(throttle.edited("held", start, 0), Edit::Announce(0));
        assert!(matches!(
            throttle.edited("held", start + SECOND, 1),
            Edit::Held { schedule: Some(_) }
        ));
        let later = start + 60 * SECOND;
        for n in 0..1000 {
            assert_eq!(
                throttle.edited(&format!("other-{n}"), later, 0),
                Edit::Announce(0)
            );
        }
        assert_eq!(throttle.timer_fired("held", later), Fired::Announce(1));
    }

    fn announcer() -> (
        Announcer,
        tokio::sync::mpsc::UnboundedReceiver<NoteListEvent>,
    ) {
        let (events, heard) = tokio::sync::mpsc::unbounded_channel();
        let announcer = Announcer::new(
            Box::new(move |event| {
                let _ = events.send(event);
            }),
            5 * SECOND,
        );
        (announcer, heard)
    }

    fn title_of(event: NoteListEvent) -> String {
        match event {
            NoteListEvent::Changed { note } => note.title,
            NoteListEvent::Deleted { id } => format!("deleted {id}"),
        }
    }

    /// The note as the registry would give it: whatever it is now.
    fn live(title: &Arc<Mutex<String>>) -> Current {
        let title = title.clone();
        Arc::new(move || {
            Some(NoteSummary {
                id: "a".into(),
                title: title.lock().unwrap().clone(),
                updated_at: 1,
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn the_announcer_throttles_edits_but_not_changes_or_deletions() {
        let (announcer, mut heard) = announcer();
        let title = Arc::new(Mutex::new("created".to_owned()));
        let start = Instant::now();
        announcer.changed("a", start, || live(&title)());
        announcer.edited("a", start + SECOND, live(&title));
        *title.lock().unwrap() = "renamed".into();
        announcer.changed("a", start + 2 * SECOND, || live(&title)());
        announcer.edited("a", start + 7 * SECOND, live(&title));
        announcer.edited("a", start + 8 * SECOND, live(&title));
        announcer.deleted("a");
        announcer.changed("a", start + 20 * SECOND, || None);
        announcer.edited("a", start + 30 * SECOND, Arc::new(|| None));
        // Every timer has fired by then (the clock is paused and jumps).
        tokio::time::sleep(60 * SECOND).await;
        let mut titles = Vec::new();
        while let Ok(event) = heard.try_recv() {
            titles.push(title_of(event));
        }
        assert_eq!(titles, ["created", "renamed", "renamed", "deleted a"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_typing_ends_with_one_announcement_of_the_newest() {
        let (announcer, mut heard) = announcer();
        let title = Arc::new(Mutex::new("v0".to_owned()));
        let start = Instant::now();
        announcer.edited("a", start, live(&title));
        assert_eq!(title_of(heard.try_recv().unwrap()), "v0");
        for n in 1..=3 {
            tokio::time::advance(SECOND).await;
            *title.lock().unwrap() = format!("v{n}");
            announcer.edited("a", Instant::now(), live(&title));
        }
        assert!(heard.try_recv().is_err(), "held back");
        *title.lock().unwrap() = "as it is then".into();
        let trailing = tokio::time::timeout(60 * SECOND, heard.recv())
            .await
            .expect("announced at the end of the interval")
            .unwrap();
        let waited = Instant::now() - start;
        assert!(
            waited >= 5 * SECOND && waited < 5 * SECOND + SECOND / 10,
            "{waited:?}"
        );
        assert_eq!(title_of(trailing), "as it is then");
        // Once: the next edit is held for the next interval.
        announcer.edited("a", Instant::now(), live(&title));
        tokio::time::advance(4 * SECOND).await;
        assert!(heard.try_recv().is_err());
    }
}
