//! One component per route.

pub mod chat_room;
pub mod home;
pub mod not_found;
