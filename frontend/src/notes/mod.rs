//! The notes app's client side, in plain code the views drive:
//!
//! - [`text`]: turning a text field's new value into one splice, and
//!   UTF-16 offsets (what browsers and Yjs count) into Rust string indices.
//! - [`copies`]: this tab's copies of the notes it opened, kept across
//!   pages.
//! - [`document`]: this browser's copy of a note (yrs): local edits become
//!   updates to send, remote updates apply, selections survive both.
//! - [`peers`]: who else is in the note, from Yjs awareness updates, and
//!   this editor's own awareness state.
//! - [`markdown`]: the preview, rendered without raw HTML or script links.
//! - [`list`]: the notes list, kept sorted by last edit as events arrive.
//! - [`save`]: the saved / saving / offline indicator's state.
//!
//! Views are in `pages/notes_list.rs` and `pages/note_editor.rs`.

pub mod copies;
pub mod document;
pub mod list;
pub mod markdown;
pub mod peers;
pub mod save;
pub mod text;
