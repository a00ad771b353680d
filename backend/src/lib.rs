//! Rookery's server: an axum node with the real-time hub.
//!
//! Layout:
//! - [`config`]: `rookery serve`'s settings (flags, env, TOML file).
//! - [`server`]: shared state, the router ([`server::app`]) and the serve loop
//!   ([`server::run`]) with graceful shutdown.
//! - [`hub`]: channels, subscriptions, presence, history and fan-out, in plain
//!   synchronous code.
//! - [`ws`]: the `/ws` endpoint: origin check, the per-socket task, and the
//!   session that maps commands to hub calls.
//! - [`http`]: health, readiness, metrics, runtime settings and the built
//!   web app (from disk, or in memory with precompressed variants).
//! - [`net`]: TLS with certificate reloads, the HTTP-to-HTTPS redirect, and
//!   the client behind trusted reverse proxies.
//! - [`api`]: the HTTP API under `/api/v1` (API key, OpenAPI document).
//! - [`auth`]: verifying and minting JWTs.
//! - [`metrics`]: the Prometheus exposition.
//! - [`notes`]: collaborative notes: Yjs documents in memory, stored and
//!   compacted.
//! - [`store`]: SQLite or Postgres storage for notes.
//! - [`telemetry`]: tracing setup.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod net;
pub mod notes;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod websocket;
pub mod ws;

pub use config::{Config, ServeArgs};
pub use server::{AppState, app, run};

/// What `rookery --version` says after the name: the version, the git
/// revision it was built from ("unknown" outside a checkout) and the cargo
/// features it was built with (`embed`: the web app is inside).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("ROOKERY_GIT_REVISION"),
    ", features: ",
    env!("ROOKERY_FEATURES"),
    ")"
);
