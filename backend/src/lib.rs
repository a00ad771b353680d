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
//!   web app.
//! - [`api`]: the HTTP API under `/api/v1` (API key, OpenAPI document).
//! - [`auth`]: verifying and minting JWTs.
//! - [`metrics`]: the Prometheus exposition.
//! - [`notes`]: collaborative notes: Yjs documents in memory, stored and
//!   compacted.
//! - [`store`]: SQLite or Postgres storage for notes.
//! - [`telemetry`]: tracing setup.

pub mod api;
pub mod auth;
pub mod config;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod notes;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ws;

pub use config::{Config, ServeArgs};
pub use server::{AppState, app, run};
