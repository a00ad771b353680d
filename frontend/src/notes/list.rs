//! The notes list: the server's answer to `note_list`, kept current by
//! `notes_list:all` events, most recently edited first.

use rookery_common::{NoteListEvent, NoteSummary};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteList {
    pub notes: Vec<NoteSummary>,
    /// The first answer arrived.
    pub loaded: bool,
    /// Events heard while a listing was on its way: the listing may have
    /// been read before them, so they are applied again over it.
    since_request: Option<Vec<NoteListEvent>>,
}

impl NoteList {
    /// A listing was asked for.
    pub fn requested(&mut self) {
        self.since_request = Some(Vec::new());
    }

    /// Replaces everything with a fresh listing, then replays the events
    /// heard since it was asked for (a rename's edit time keeps a stale
    /// listing from undoing it; a deletion is final).
    pub fn replace(&mut self, notes: Vec<NoteSummary>) {
        self.notes = notes;
        self.loaded = true;
        self.sort();
        for event in self.since_request.take().unwrap_or_default() {
            self.apply_one(event);
        }
    }

    pub fn apply(&mut self, event: NoteListEvent) {
        if let Some(heard) = &mut self.since_request {
            heard.push(event.clone());
        }
        self.apply_one(event);
    }

    fn apply_one(&mut self, event: NoteListEvent) {
        match event {
            NoteListEvent::Changed { note } => {
                match self.notes.iter_mut().find(|n| n.id == note.id) {
                    Some(existing) if existing.updated_at <= note.updated_at => *existing = note,
                    Some(_) => {}
                    None => self.notes.push(note),
                }
                self.sort();
            }
            NoteListEvent::Deleted { id } => self.notes.retain(|n| n.id != id),
        }
    }

    fn sort(&mut self) {
        self.notes.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.id.cmp(&b.id))
        });
    }
}

/// "Untitled" for an empty title, as the list and the page title show it.
pub fn display_title(title: &str) -> &str {
    if title.trim().is_empty() {
        "Untitled"
    } else {
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: &str, title: &str, updated_at: u64) -> NoteSummary {
        NoteSummary {
            id: id.into(),
            title: title.into(),
            updated_at,
        }
    }

    #[test]
    fn newest_edit_first_and_events_keep_it_so() {
        let mut list = NoteList::default();
        list.replace(vec![note("a", "A", 1), note("b", "B", 3)]);
        assert_eq!(list.notes[0].id, "b");
        list.apply(NoteListEvent::Changed {
            note: note("a", "A2", 5),
        });
        assert_eq!(list.notes[0], note("a", "A2", 5));
        list.apply(NoteListEvent::Changed {
            note: note("c", "", 4),
        });
        let ids: Vec<&str> = list.notes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "b"]);
        list.apply(NoteListEvent::Deleted { id: "c".into() });
        assert_eq!(list.notes.len(), 2);
    }

    #[test]
    fn a_late_event_does_not_undo_a_newer_state() {
        let mut list = NoteList::default();
        list.replace(vec![note("a", "New", 9)]);
        list.apply(NoteListEvent::Changed {
            note: note("a", "Old", 2),
        });
        assert_eq!(list.notes[0].title, "New");
    }

    #[test]
    fn events_during_a_listing_survive_it() {
        let mut list = NoteList::default();
        list.requested();
        list.apply(NoteListEvent::Deleted { id: "a".into() });
        list.apply(NoteListEvent::Changed {
            note: note("b", "Renamed", 7),
        });
        // The listing was read before both.
        list.replace(vec![note("a", "A", 1), note("b", "B", 2)]);
        assert_eq!(list.notes, vec![note("b", "Renamed", 7)]);
        // Later events apply once.
        list.apply(NoteListEvent::Changed {
            note: note("c", "C", 9),
        });
        assert_eq!(list.notes.len(), 2);
    }

    #[test]
    fn empty_titles_read_untitled() {
        assert_eq!(display_title("  "), "Untitled");
        assert_eq!(display_title("Plan"), "Plan");
    }
}
