//! Pieces several pages use.

pub mod connection_status;
pub mod name_form;
pub mod toasts;
