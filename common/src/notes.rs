//! The notes app's shared vocabulary: the names of a note's Yjs shared
//! types, the notes list and its live events, and the awareness state the
//! editor announces (names, colours, cursors).

use serde::{Deserialize, Serialize};

/// The `Y.Text` holding a note's title. Other Yjs clients edit the same
/// fields under these names (`doc.getText("title")`).
pub const TITLE: &str = "title";
/// The `Y.Text` holding a note's body (plain text or Markdown).
pub const BODY: &str = "body";

/// The channel whose publications tell the notes list what changed. Only
/// the server publishes in it.
pub const NOTES_LIST_CHANNEL: &str = "notes_list:all";

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// One note in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteSummary {
    pub id: String,
    pub title: String,
    /// Milliseconds since the Unix epoch of the last edit.
    pub updated_at: u64,
}

/// A publication in [`NOTES_LIST_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum NoteListEvent {
    /// A note was created, renamed or edited (edits are announced at most
    /// every few seconds per note).
    Changed { note: NoteSummary },
    /// A note was deleted; its id is never used again.
    Deleted { id: String },
}

/// What an editor announces in its Yjs awareness state. Fields other
/// clients add are ignored; a state without `user` is shown as "Anonymous".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeerState {
    #[serde(default)]
    pub user: PeerUser,
    /// Where the editor's selection is, as Yjs relative positions in the
    /// body (so they stay put while others type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<PeerCursor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PeerUser {
    #[serde(default)]
    pub name: String,
    /// A CSS colour (`#rrggbb`).
    #[serde(default)]
    pub color: String,
}

/// A selection: `anchor` where it started, `head` where the caret is. Each
/// is a Yjs relative position in the `body` text (v1 encoding, as
/// `Y.encodeRelativePosition` makes), base64-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCursor {
    pub anchor: crate::Bytes,
    pub head: crate::Bytes,
}

/// Whether `id` may be a note's id: 1 to 64 of `A-Za-z0-9-_` (so it is a
/// valid channel name and URL segment as it is).
pub fn is_valid_note_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Whether `title` may be a note's title.
pub fn is_valid_title(title: &str) -> bool {
    title.chars().count() <= MAX_TITLE_CHARS && !title.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_events_are_tagged() {
        let event = NoteListEvent::Deleted { id: "a1".into() };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json, serde_json::json!({"event": "deleted", "id": "a1"}));
        let back: NoteListEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn foreign_awareness_states_still_decode() {
        let state: PeerState =
            serde_json::from_str(r#"{"user":{"name":"Ann"},"extra":1}"#).unwrap();
        assert_eq!(state.user.name, "Ann");
        assert_eq!(state.cursor, None);
        let empty: PeerState = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.user.name, "");
    }

    #[test]
    fn note_ids_are_url_and_channel_safe() {
        assert!(is_valid_note_id("a"));
        assert!(is_valid_note_id("Ab-_9"));
        assert!(is_valid_note_id(&"x".repeat(64)));
        assert!(!is_valid_note_id(""));
        assert!(!is_valid_note_id(&"x".repeat(65)));
        assert!(!is_valid_note_id("a/b"));
        assert!(!is_valid_note_id("a:b"));
        assert!(!is_valid_note_id("é"));
    }

    #[test]
    fn titles_are_bounded_and_printable() {
        assert!(is_valid_title(""));
        assert!(is_valid_title("Shopping — week 3"));
        assert!(!is_valid_title(&"x".repeat(MAX_TITLE_CHARS + 1)));
        assert!(!is_valid_title("two\nlines"));
    }
}
