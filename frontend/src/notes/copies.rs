//! This tab's copies of the notes it opened, kept for as long as the tab
//! lives: leaving a note's page (say, while offline with unsent edits) and
//! coming back must not lose the edits, nor restart the awareness clock
//! that peers have already seen go past.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::notes::document::NoteDoc;
use crate::notes::peers::OwnAwareness;

#[derive(Debug)]
pub struct NoteCopy {
    pub doc: NoteDoc,
    pub awareness: RefCell<OwnAwareness>,
}

impl std::ops::Deref for NoteCopy {
    type Target = NoteDoc;

    fn deref(&self) -> &NoteDoc {
        &self.doc
    }
}

thread_local! {
    static COPIES: RefCell<HashMap<String, Rc<NoteCopy>>> = RefCell::new(HashMap::new());
}

/// The copy of note `id`, made (with client id `new_client()`) on first use.
pub fn copy_of(id: &str, new_client: impl FnOnce() -> u64) -> Rc<NoteCopy> {
    COPIES.with(|copies| {
        copies
            .borrow_mut()
            .entry(id.to_owned())
            .or_insert_with(|| {
                let client = new_client();
                Rc::new(NoteCopy {
                    doc: NoteDoc::new(client),
                    awareness: RefCell::new(OwnAwareness::new(client)),
                })
            })
            .clone()
    })
}

/// Forgets a deleted note's copy.
pub fn forget(id: &str) {
    COPIES.with(|copies| copies.borrow_mut().remove(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::document::Field;

    #[test]
    fn a_note_keeps_its_copy_until_forgotten() {
        let first = copy_of("n1", || 7);
        first.doc.edit(Field::Body, "kept");
        let again = copy_of("n1", || unreachable!("reused"));
        assert_eq!(again.doc.get(Field::Body), "kept");
        assert_eq!(again.doc.client_id(), 7);
        forget("n1");
        assert_eq!(copy_of("n1", || 8).doc.client_id(), 8);
    }
}
