//! Rookery's protocol, shared by the server and the browser app.
//!
//! Nothing here does I/O or depends on an async runtime, so the crate builds
//! for `wasm32-unknown-unknown` as well as natively. Every type that crosses
//! the socket is defined here and nowhere else.
//!
//! Layout:
//! - [`channel`]: channel names (`namespace:name`) and their rules.
//! - [`codes`]: the one table of error codes (command replies) and close codes
//!   (connection ends), each saying whether a client should reconnect.
//! - [`protocol`]: the commands a client sends and the messages a server sends.
//! - [`codec`]: the JSON and MessagePack encodings and the decoder that
//!   classifies bad input.
//! - [`user`]: user identity and the colour every side derives from it.
//! - [`location`]: positions on the live map, and their geometry.
//! - [`backoff`]: the reconnect delay policy clients follow.
//! - [`bytes`]: binary payloads (Yjs updates): base64 in JSON, raw in
//!   MessagePack.
//! - [`notes`]: the notes app's shared type names, list events and
//!   awareness state.

pub mod backoff;
pub mod bytes;
pub mod channel;
pub mod codec;
pub mod codes;
pub mod location;
pub mod notes;
pub mod protocol;
pub mod user;

pub use bytes::Bytes;
pub use channel::{ChannelName, ChannelNameError};
pub use codec::{
    DecodeError, Encoding, decode_client, decode_client_bin, decode_server, decode_server_bin,
    encode, encode_bin,
};
pub use codes::{CloseCode, ErrorCode, Reconnect};
pub use location::{GoneReason, Location, SharedLocation};
pub use notes::{NoteListEvent, NoteSummary};
pub use protocol::{
    ClientMessage, CommandId, ConnectionId, Publication, ServerMessage, StreamPosition, Token,
};
pub use user::{UserId, UserInfo};

/// The WebSocket subprotocol of protocol v1 with JSON text frames.
pub const SUBPROTOCOL_JSON: &str = "rookery.v1.json";

/// The WebSocket subprotocol of protocol v1 with MessagePack binary frames.
pub const SUBPROTOCOL_BIN: &str = "rookery.v1.bin";
