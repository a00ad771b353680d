//! One component per route.

pub mod chat_room;
pub mod home;
pub mod map_room;
pub mod not_found;
pub mod note_editor;
pub mod notes_list;
