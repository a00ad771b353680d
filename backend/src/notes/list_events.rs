//! Telling the notes list what changed: creations, renames, title edits and
//! deletions at once; other edits at most once per interval (5 s by
//! default) per note, so that typing does not flood everyone watching the
//! list.
//!
//! The registry calls [`Announcer`] with no note locked; where the events
//! go (the hub's `notes_list:all`) is the listener's business. Events leave
//! under one lock, and whether the note still exists is asked under it, so
//! a note's `deleted` is never followed by a `changed` of it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rookery_common::{NoteListEvent, NoteSummary};
use tokio::time::Instant;

/// Where list events go.
pub type Listener = Box<dyn Fn(NoteListEvent) + Send + Sync>;

/// Announces list events to a listener, throttling plain edits.
pub struct Announcer {
    listener: Listener,
    throttle: Mutex<EditThrottle>,
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
            listener,
            throttle: Mutex::new(EditThrottle::new(edit_interval)),
        }
    }

    /// A note was created, renamed or its title edited: announced at once.
    /// `note` gives the note as it is now, or `None` once it is deleted.
    pub fn changed(&self, id: &str, now: Instant, note: impl FnOnce() -> Option<NoteSummary>) {
        let mut throttle = self.throttle();
        if let Some(note) = note() {
            throttle.announced(id, now);
            (self.listener)(NoteListEvent::Changed { note });
        }
    }

    /// A note's content was edited: announced unless its last announcement
    /// is recent.
    pub fn edited(&self, id: &str, now: Instant, note: impl FnOnce() -> Option<NoteSummary>) {
        let mut throttle = self.throttle();
        if throttle.is_due(id, now)
            && let Some(note) = note()
        {
            (self.listener)(NoteListEvent::Changed { note });
        }
    }

    /// A note was deleted (and is marked so, which `note` of
    /// [`Self::changed`] sees from now on).
    pub fn deleted(&self, id: &str) {
        let mut throttle = self.throttle();
        throttle.forget(id);
        (self.listener)(NoteListEvent::Deleted { id: id.to_owned() });
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, EditThrottle> {
        self.throttle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// When each note was last announced; plain code over given instants.
#[derive(Debug)]
pub struct EditThrottle {
    interval: Duration,
    last: HashMap<String, Instant>,
    /// Entries older than the interval are dropped when the map reaches
    /// this size (then it is set to twice what remains): the map holds
    /// about the notes edited recently, at amortised constant cost.
    prune_at: usize,
}

impl EditThrottle {
    const MIN_PRUNE_AT: usize = 64;

    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: HashMap::new(),
            prune_at: Self::MIN_PRUNE_AT,
        }
    }

    /// Whether an edit of `id` at `now` is announced; if so, it counts as
    /// the note's last announcement.
    pub fn is_due(&mut self, id: &str, now: Instant) -> bool {
        let due = self
            .last
            .get(id)
            .is_none_or(|last| now.saturating_duration_since(*last) >= self.interval);
        if due {
            self.announced(id, now);
        }
        due
    }

    /// Records an announcement made regardless of the throttle.
    pub fn announced(&mut self, id: &str, now: Instant) {
        match self.last.get_mut(id) {
            Some(last) => *last = now,
            None => {
                self.last.insert(id.to_owned(), now);
                if self.last.len() >= self.prune_at {
                    let interval = self.interval;
                    self.last
                        .retain(|_, last| now.saturating_duration_since(*last) < interval);
                    self.prune_at = (2 * self.last.len()).max(Self::MIN_PRUNE_AT);
                }
            }
        }
    }

    pub fn forget(&mut self, id: &str) {
        self.last.remove(id);
    }

    /// How many notes it remembers.
    pub fn n_remembered(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn an_edit_is_announced_once_per_interval_per_note() {
        let start = Instant::now();
        let mut throttle = EditThrottle::new(5 * SECOND);
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
        let mut throttle = EditThrottle::new(5 * SECOND);
        assert!(throttle.is_due("a", start));
        throttle.announced("a", start + 4 * SECOND);
        assert!(!throttle.is_due("a", start + 6 * SECOND));
        assert!(throttle.is_due("a", start + 9 * SECOND));
        throttle.forget("a");
        assert!(throttle.is_due("a", start + 9 * SECOND), "forgotten: due");
    }

    #[test]
    fn notes_not_edited_lately_are_forgotten() {
        let start = Instant::now();
        let mut throttle = EditThrottle::new(5 * SECOND);
        for n in 0..1000 {
            assert!(throttle.is_due(&format!("old-{n}"), start));
        }
        let later = start + 6 * SECOND;
        for n in 0..1000 {
            assert!(throttle.is_due(&format!("new-{n}"), later + n * Duration::from_millis(1)));
            assert!(throttle.n_remembered() <= 2 * 1000 + EditThrottle::MIN_PRUNE_AT);
        }
        assert!(
            throttle.n_remembered() < 1100,
            "{} remembered",
            throttle.n_remembered()
        );
        assert!(!throttle.is_due("new-999", later + SECOND));
    }

    #[test]
    fn the_announcer_throttles_edits_but_not_changes_or_deletions() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let announcer = Announcer::new(
            {
                let heard = heard.clone();
                Box::new(move |event| heard.lock().unwrap().push(event))
            },
            5 * SECOND,
        );
        let note = |title: &'static str| {
            move || {
                Some(NoteSummary {
                    id: "a".into(),
                    title: title.into(),
                    updated_at: 1,
                })
            }
        };
        let start = Instant::now();
        announcer.changed("a", start, note("created"));
        announcer.edited("a", start + SECOND, note("created"));
        announcer.changed("a", start + 2 * SECOND, note("renamed"));
        announcer.edited("a", start + 6 * SECOND, note("renamed"));
        announcer.edited("a", start + 7 * SECOND, note("renamed"));
        announcer.deleted("a");
        announcer.changed("a", start + 20 * SECOND, || None);
        announcer.edited("a", start + 30 * SECOND, || None);
        let titles: Vec<String> = heard
            .lock()
            .unwrap()
            .iter()
            .map(|event| match event {
                NoteListEvent::Changed { note } => note.title.clone(),
                NoteListEvent::Deleted { id } => format!("deleted {id}"),
            })
            .collect();
        assert_eq!(titles, ["created", "renamed", "renamed", "deleted a"]);
    }
}
