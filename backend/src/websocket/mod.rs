//! RFC 6455 for protocol v1's `/ws` (JSON or MessagePack, compressed or
//! not): the handshake, frames both ways and one task's socket driving
//! them.
//!
//! Rookery's own rather than tungstenite's: a subscriber's frame is encoded
//! once, header and all, and written from the shared bytes; an idle
//! connection holds no read or write buffer; and one task serves both
//! directions (see ARCHITECTURE.md). `/yjs` keeps tungstenite, through axum.
//!
//! - [`frame`]: server frames, encoded once per wire (encoding and
//!   compression) for every subscriber.
//! - [`decoder`]: client frames into messages, violations into close codes.
//! - [`deflate`]: permessage-deflate's offer, and payloads compressed and inflated.
//! - [`handshake`]: which requests are handshakes, and the 101 answer.
//! - [`socket`]: one connection's stream, written from its outbox and read.

pub mod decoder;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod socket;
pub mod tcp;

pub use frame::Frame;
pub use socket::{End, Event, Socket};
