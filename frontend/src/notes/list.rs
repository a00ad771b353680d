//! The notes list: the server's answer to `note_list`, kept current by
//! `notes_list:all` events, most recently edited first.

use rookery_common::{NoteListEvent, NoteSummary};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoteList {
    pub notes: Vec<NoteSummary>,
    /// The first answer arrived.
    pub loaded: bool,
}

impl NoteList {
    /// Replaces everything with a fresh listing. Events that arrived while
    /// it was on its way are newer than it only if their edit time says so.
    pub fn replace(&mut self, notes: Vec<NoteSummary>) {
        self.notes = notes;
        self.loaded = true;
        self.sort();
    }

    pub fn apply(&mut self, event: NoteListEvent) {
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
    fn empty_titles_read_untitled() {
        assert_eq!(display_title("  "), "Untitled");
        assert_eq!(display_title("Plan"), "Plan");
    }
}
