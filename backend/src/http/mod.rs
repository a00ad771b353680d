//! Plain HTTP routes.
//!
//! - [`assets`]: the web app in memory, with precompressed variants.
//! - [`caching`]: how long browsers keep each of the app's files.
//! - [`error`]: the JSON error every route returns.
//! - [`health`]: `/healthz`, `/readyz`, `/config.json`.
//! - [`static_files`]: the built web app with its SPA fallback.

pub mod assets;
pub mod caching;
pub mod error;
pub mod health;
pub mod static_files;
