//! This browser's copy of a note: a yrs document with the shared texts
//! `title` and `body` (names from `rookery_common::notes`), counting offsets
//! in UTF-16 like the browser and JavaScript's Yjs.
//!
//! Local edits apply at once and come back as the update to send; remote
//! updates apply whenever they arrive. Selections are carried across remote
//! edits as Yjs relative positions ("sticky indices"), the same encoding
//! other editors' cursors arrive in.

use rookery_common::notes::{BODY, TITLE};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Assoc, ClientID, Doc, GetString, IndexedSequence, OffsetKind, Options, ReadTxn, StateVector,
    StickyIndex, Text, TextRef, Transact, Update,
};

use crate::notes::text::splice;

/// Which of a note's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Body,
}

pub struct NoteDoc {
    doc: Doc,
    title: TextRef,
    body: TextRef,
    /// Edited here since the server last confirmed everything: the next
    /// sync must send our deletions too (a state vector does not show them).
    dirty: std::cell::Cell<bool>,
}

impl std::fmt::Debug for NoteDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteDoc")
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl NoteDoc {
    /// A new, empty copy. `client_id` must be unique among the note's
    /// editors (53 random bits, as Yjs picks); yrs' own pick is not random
    /// in a browser without a seed, so the caller supplies it.
    pub fn new(client_id: u64) -> Self {
        let doc = Doc::with_options(Options {
            client_id: ClientID::new(client_id & ((1 << 53) - 1)),
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        });
        let title = doc.get_or_insert_text(TITLE);
        let body = doc.get_or_insert_text(BODY);
        Self {
            doc,
            title,
            body,
            dirty: std::cell::Cell::new(false),
        }
    }

    pub fn client_id(&self) -> u64 {
        self.doc.client_id().get()
    }

    fn text(&self, field: Field) -> &TextRef {
        match field {
            Field::Title => &self.title,
            Field::Body => &self.body,
        }
    }

    pub fn get(&self, field: Field) -> String {
        self.text(field).get_string(&self.doc.transact())
    }

    pub fn state_vector(&self) -> Vec<u8> {
        self.doc.transact().state_vector().encode_v1()
    }

    /// Applies someone else's update (v1). A malformed one changes nothing.
    pub fn apply_update(&self, update: &[u8]) -> Result<(), String> {
        let update = Update::decode_v1(update).map_err(|e| e.to_string())?;
        self.doc
            .transact_mut()
            .apply_update(update)
            .map_err(|e| e.to_string())
    }

    /// What a peer with `state_vector` lacks, or `None` when it lacks
    /// nothing. Deletions do not move a state vector, so they are sent
    /// whenever this copy was edited since the server last confirmed it
    /// (an offline edit that only deleted text still needs sending), and
    /// never otherwise (every reconnect would store them again). With
    /// `force`, an update is returned even when empty.
    pub fn missing_for(&self, state_vector: &[u8], force: bool) -> Result<Option<Vec<u8>>, String> {
        let remote = StateVector::decode_v1(state_vector).map_err(|e| e.to_string())?;
        let txn = self.doc.transact();
        let local = txn.state_vector();
        let lacks_items = local
            .iter()
            .any(|(client, clock)| remote.get(client) < *clock);
        if lacks_items || self.dirty.get() || force {
            Ok(Some(txn.encode_state_as_update_v1(&remote)))
        } else {
            Ok(None)
        }
    }

    /// The server confirmed it holds everything edited here.
    pub fn confirmed(&self) {
        self.dirty.set(false);
    }

    /// Makes `field` read `new_value` with the smallest splice; returns the
    /// update to send, or `None` when nothing changed.
    pub fn edit(&self, field: Field, new_value: &str) -> Option<Vec<u8>> {
        let old = self.get(field);
        let edit = splice(&old, new_value)?;
        let text = self.text(field);
        let mut txn = self.doc.transact_mut();
        if edit.delete > 0 {
            text.remove_range(&mut txn, edit.start, edit.delete);
        }
        if !edit.insert.is_empty() {
            text.insert(&mut txn, edit.start, &edit.insert);
        }
        self.dirty.set(true);
        Some(txn.encode_update_v1())
    }

    /// A position in `field` that stays put while others edit, encoded as
    /// Yjs encodes relative positions. It sticks to the character after it;
    /// at the very end, to the one before (text others append goes after
    /// the caret rather than pushing it along).
    pub fn sticky(&self, field: Field, offset: u32) -> Option<Vec<u8>> {
        let text = self.text(field);
        let txn = self.doc.transact();
        let len = text.len(&txn);
        let (offset, assoc) = if offset >= len {
            (len, Assoc::Before)
        } else {
            (offset, Assoc::After)
        };
        text.sticky_index(&txn, offset, assoc)
            .map(|sticky| sticky.encode_v1())
    }

    /// Where an encoded relative position is now (UTF-16 offset in its text).
    pub fn resolve(&self, sticky: &[u8]) -> Option<u32> {
        let sticky = StickyIndex::decode_v1(sticky).ok()?;
        sticky.get_offset(&self.doc.transact()).map(|at| at.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(from: &NoteDoc, to: &NoteDoc) {
        if let Some(update) = from.missing_for(&to.state_vector(), false).unwrap() {
            to.apply_update(&update).unwrap();
        }
    }

    #[test]
    fn local_edits_become_updates_that_others_apply() {
        let ann = NoteDoc::new(1);
        let bob = NoteDoc::new(2);
        let update = ann.edit(Field::Body, "hello").unwrap();
        bob.apply_update(&update).unwrap();
        assert_eq!(bob.get(Field::Body), "hello");
        assert_eq!(ann.edit(Field::Body, "hello"), None);
        let update = ann.edit(Field::Title, "Groceries").unwrap();
        bob.apply_update(&update).unwrap();
        assert_eq!(bob.get(Field::Title), "Groceries");
    }

    #[test]
    fn garbage_changes_nothing() {
        let doc = NoteDoc::new(1);
        doc.edit(Field::Body, "kept");
        assert!(doc.apply_update(&[0xff, 0x01, 0x02]).is_err());
        assert_eq!(doc.get(Field::Body), "kept");
    }

    #[test]
    fn offline_edits_on_both_sides_merge() {
        let ann = NoteDoc::new(1);
        let bob = NoteDoc::new(2);
        ann.edit(Field::Body, "one two three");
        sync(&ann, &bob);
        // Apart: Ann inserts at the start, Bob deletes at the end.
        ann.edit(Field::Body, "zero one two three");
        bob.edit(Field::Body, "one two");
        sync(&ann, &bob);
        sync(&bob, &ann);
        assert_eq!(ann.get(Field::Body), "zero one two");
        assert_eq!(bob.get(Field::Body), "zero one two");
    }

    #[test]
    fn a_deletion_alone_is_still_sent() {
        let ann = NoteDoc::new(1);
        let server = NoteDoc::new(3);
        ann.edit(Field::Body, "abc");
        sync(&ann, &server);
        ann.confirmed();
        assert_eq!(
            ann.missing_for(&server.state_vector(), false).unwrap(),
            None
        );
        ann.edit(Field::Body, "ab");
        let update = ann
            .missing_for(&server.state_vector(), false)
            .unwrap()
            .unwrap();
        server.apply_update(&update).unwrap();
        assert_eq!(server.get(Field::Body), "ab");
        // Once confirmed, a reconnect sends nothing again...
        ann.confirmed();
        assert_eq!(
            ann.missing_for(&server.state_vector(), false).unwrap(),
            None
        );
        // ...unless asked to, for a confirmation.
        let empty = ann
            .missing_for(&server.state_vector(), true)
            .unwrap()
            .unwrap();
        server.apply_update(&empty).unwrap();
        assert_eq!(server.get(Field::Body), "ab");
    }

    #[test]
    fn a_caret_stays_with_its_text_while_others_type_before_it() {
        let ann = NoteDoc::new(1);
        let bob = NoteDoc::new(2);
        ann.edit(Field::Body, "hello world");
        sync(&ann, &bob);
        // Bob's caret is before "world" (offset 6).
        let caret = bob.sticky(Field::Body, 6).unwrap();
        bob.apply_update(&ann.edit(Field::Body, "oh, hello world").unwrap())
            .unwrap();
        assert_eq!(bob.resolve(&caret), Some(10));
        // At the very end, text appended by others goes after the caret.
        let end = bob.sticky(Field::Body, 15).unwrap();
        bob.apply_update(&ann.edit(Field::Body, "oh, hello world!").unwrap())
            .unwrap();
        assert_eq!(bob.resolve(&end), Some(15));
        // In an empty text too.
        let empty = NoteDoc::new(5);
        let start = empty.sticky(Field::Body, 0).unwrap();
        empty.edit(Field::Body, "abc");
        assert!(empty.resolve(&start).is_some());
        // Emoji count two, as in the browser.
        let doc = NoteDoc::new(4);
        doc.edit(Field::Body, "😀x");
        let caret = doc.sticky(Field::Body, 2).unwrap();
        assert_eq!(doc.resolve(&caret), Some(2));
        // Titles keep their carets the same way.
        bob.apply_update(&ann.edit(Field::Title, "Plan").unwrap())
            .unwrap();
        let title_caret = bob.sticky(Field::Title, 4).unwrap();
        bob.apply_update(&ann.edit(Field::Title, "My Plan").unwrap())
            .unwrap();
        assert_eq!(bob.resolve(&title_caret), Some(7));
    }
}
