//! The chat room's client state, kept apart from the views so it can be
//! tested natively.

pub mod log;
