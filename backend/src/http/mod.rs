//! Plain HTTP routes.
//!
//! - [`error`]: the JSON error every route returns.
//! - [`health`]: `/healthz`, `/readyz`, `/config.json`.
//! - [`static_files`]: the built web app with its SPA fallback.

pub mod error;
pub mod health;
pub mod static_files;
