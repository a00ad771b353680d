//! Protocol v1: the commands a client sends and everything a server sends.
//!
//! JSON text frames, each an object with a `type`. A command that carries an
//! `id` gets exactly one reply with that `id` (a result or an `error`);
//! pushes carry no `id`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bytes::Bytes;
use crate::channel::ChannelName;
use crate::codes::{CloseCode, ErrorCode};
use crate::location::{GoneReason, Location, SharedLocation};
use crate::notes::NoteSummary;
use crate::user::{UserId, UserInfo};

/// Chosen by the client to match a reply to its command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub u64);

/// The server's id for one socket, unique within a node's lifetime.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(pub u64);

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// A JWT as sent by a client. Its `Debug` never shows the token, so it cannot
/// leak into logs through a `{:?}` of a command.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Where a publication sits in its channel's stream.
///
/// `offset` counts publications from 1 within one `epoch`; the epoch changes
/// whenever the stream's history is lost (a restart of a single node, say),
/// so a position from an older epoch can never be mistaken for a current one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamPosition {
    pub epoch: String,
    pub offset: u64,
}

/// One message published in a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    /// Present when the channel keeps history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<StreamPosition>,
    pub data: Value,
    /// Who published; absent for publications made through the HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<UserInfo>,
    /// Milliseconds since the Unix epoch, by the server's clock.
    pub time: u64,
}

/// A command from a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Must come first. Without a token the user is anonymous and picks a
    /// display name; `anonymous_id` (random, kept by the browser) makes the
    /// tabs of one browser one presence member.
    Connect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        anonymous_id: Option<String>,
    },
    /// Subscribe. With `since`, the reply also holds every publication after
    /// that position and `recovered: true` (recovery); when history no longer
    /// covers the gap it says `recovered: false` and holds the newest
    /// `rewind` publications instead, as fresh state. Without `since`,
    /// `rewind` asks for the newest publications (history on join).
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rewind: Option<u32>,
        /// A subscription token for a private channel the connection token
        /// does not grant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Token>,
    },
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Publish `data` (any JSON value). A repeated `idempotency_key` within
    /// the server's window is answered without publishing again.
    Publish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        data: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency_key: Option<String>,
    },
    /// Ask who is in a channel.
    Presence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Ask for a channel's history, optionally only after `since`.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<StreamPosition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Shares (or updates) this user's position in a latest-value channel
    /// (`map:`). With `approximate`, others only ever get it rounded to
    /// about a kilometre.
    Locate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        location: Location,
        #[serde(default)]
        approximate: bool,
    },
    /// Stops sharing: the marker goes for everyone at once.
    StopSharing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Joins a document channel (`notes:`) and runs the Yjs sync step 1:
    /// the reply holds what the client lacks and the server's state vector,
    /// so the client can send what the server lacks as a `doc_update`.
    DocSync {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        state_vector: Bytes,
    },
    /// A Yjs update (v1 encoding). Answered with `doc_saved` once it is
    /// stored.
    DocUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        update: Bytes,
    },
    /// A Yjs awareness update (names, colours, cursors); relayed, never
    /// stored.
    DocAwareness { channel: ChannelName, update: Bytes },
    /// Lists the notes, most recently edited first; answered with `notes`.
    NoteList {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
    },
    /// Creates a note with a fresh id; answered with `note_created`.
    NoteCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        #[serde(default)]
        title: String,
    },
    /// Replaces a note's title (an edit of its `title` text, seen by every
    /// editor); answered with `note_renamed`.
    NoteRename {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        note: String,
        title: String,
    },
    /// Deletes a note for good: its editors are told, its id is never used
    /// again; answered with `note_deleted`.
    NoteDelete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        note: String,
    },
    /// Replaces the connection token before it expires.
    Refresh {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        token: Token,
    },
    /// Round trip check; answered with `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
    },
    /// The answer to the server's heartbeat `ping` push.
    Pong {},
}

impl ClientMessage {
    pub fn id(&self) -> Option<CommandId> {
        match self {
            ClientMessage::Connect { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Publish { id, .. }
            | ClientMessage::Presence { id, .. }
            | ClientMessage::History { id, .. }
            | ClientMessage::Refresh { id, .. }
            | ClientMessage::Locate { id, .. }
            | ClientMessage::DocSync { id, .. }
            | ClientMessage::DocUpdate { id, .. }
            | ClientMessage::StopSharing { id, .. }
            | ClientMessage::NoteCreate { id, .. }
            | ClientMessage::NoteRename { id, .. }
            | ClientMessage::NoteDelete { id, .. }
            | ClientMessage::NoteList { id }
            | ClientMessage::Ping { id } => *id,
            ClientMessage::Pong {} | ClientMessage::DocAwareness { .. } => None,
        }
    }

    /// The `type` tag, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Connect { .. } => "connect",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Presence { .. } => "presence",
            ClientMessage::History { .. } => "history",
            ClientMessage::Refresh { .. } => "refresh",
            ClientMessage::Locate { .. } => "locate",
            ClientMessage::DocSync { .. } => "doc_sync",
            ClientMessage::DocUpdate { .. } => "doc_update",
            ClientMessage::DocAwareness { .. } => "doc_awareness",
            ClientMessage::StopSharing { .. } => "stop_sharing",
            ClientMessage::NoteList { .. } => "note_list",
            ClientMessage::NoteCreate { .. } => "note_create",
            ClientMessage::NoteRename { .. } => "note_rename",
            ClientMessage::NoteDelete { .. } => "note_delete",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Pong {} => "pong",
        }
    }

    /// Every command type this protocol version knows.
    pub const KINDS: &'static [&'static str] = &[
        "connect",
        "subscribe",
        "unsubscribe",
        "publish",
        "presence",
        "history",
        "refresh",
        "locate",
        "stop_sharing",
        "doc_sync",
        "doc_update",
        "doc_awareness",
        "note_list",
        "note_create",
        "note_rename",
        "note_delete",
        "ping",
        "pong",
    ];
}

/// A reply or a push from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Reply to `connect`.
    Connected {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        connection: ConnectionId,
        user: UserInfo,
        /// The server sends a `ping` push this often and closes connections
        /// that send nothing for longer than twice this.
        ping_interval_ms: u64,
        /// The largest text frame the server accepts, in bytes.
        max_message_size: usize,
        /// When the connection token expires (Unix seconds): `refresh`
        /// before then or be disconnected with 4002.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// Reply to `subscribe`. With `since`, `recovered` says whether
    /// `publications` holds exactly everything after it.
    Subscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        /// The newest position, when the channel keeps history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<StreamPosition>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publications: Vec<Publication>,
        /// Who is here, when the namespace has presence.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<Vec<UserInfo>>,
        /// Every current value, in a latest-value channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locations: Option<Vec<SharedLocation>>,
    },
    /// Reply to `unsubscribe`.
    Unsubscribed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Reply to `publish`.
    Published {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<StreamPosition>,
    },
    /// Reply to `presence`.
    Presence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        members: Vec<UserInfo>,
    },
    /// Reply to `history`.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<StreamPosition>,
        publications: Vec<Publication>,
    },
    /// Reply to `locate`: the position was accepted.
    Located {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Reply to `stop_sharing`.
    Stopped {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Reply to `doc_sync`: the updates the client lacks, and the server's
    /// state vector.
    DocSynced {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
        update: Bytes,
        state_vector: Bytes,
    },
    /// Reply to `doc_update`: the update is stored (the editor's "saved").
    DocSaved {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        channel: ChannelName,
    },
    /// Reply to `note_list`.
    Notes {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        notes: Vec<NoteSummary>,
    },
    /// Reply to `note_create`.
    NoteCreated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        note: NoteSummary,
    },
    /// Reply to `note_rename`.
    NoteRenamed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        note: NoteSummary,
    },
    /// Reply to `note_delete`.
    NoteDeleted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        note: String,
    },
    /// Reply to `refresh`.
    Refreshed {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<u64>,
    },
    /// Reply to the client's `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
    },
    /// A command failed; `id` is the command's when it had one.
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
        code: ErrorCode,
        message: String,
    },
    /// Push: a publication in a subscribed channel.
    Publication {
        channel: ChannelName,
        #[serde(flatten)]
        publication: Publication,
    },
    /// Push: a member arrived (their first connection to the channel).
    Join {
        channel: ChannelName,
        member: UserInfo,
    },
    /// Push: a member left (their last connection to the channel).
    Leave {
        channel: ChannelName,
        member: UserInfo,
    },
    /// Push: a sharer's newest position. A slow subscriber gets only the
    /// newest per sharer, never a backlog.
    Location {
        channel: ChannelName,
        #[serde(flatten)]
        shared: SharedLocation,
    },
    /// Push: a sharer's marker is gone.
    LocationGone {
        channel: ChannelName,
        user: UserId,
        reason: GoneReason,
    },
    /// Push: someone else's Yjs update to a joined document.
    DocUpdated { channel: ChannelName, update: Bytes },
    /// Push: someone else's awareness update (or the removal of a peer who
    /// left).
    DocAwareness { channel: ChannelName, update: Bytes },
    /// Push: a joined document was deleted; the server has dropped the
    /// connection from it.
    DocDeleted { channel: ChannelName },
    /// Push: heartbeat; answer with `pong`.
    Ping {},
    /// Push: the server is about to close the socket with `code`.
    Disconnect {
        code: CloseCode,
        reason: String,
        reconnect: bool,
    },
}

impl ServerMessage {
    pub fn error(id: Option<CommandId>, code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            id,
            code,
            message: message.into(),
        }
    }

    /// The id of the command this replies to; `None` for pushes.
    pub fn reply_to(&self) -> Option<CommandId> {
        match self {
            ServerMessage::Connected { id, .. }
            | ServerMessage::Subscribed { id, .. }
            | ServerMessage::Unsubscribed { id, .. }
            | ServerMessage::Published { id, .. }
            | ServerMessage::Presence { id, .. }
            | ServerMessage::History { id, .. }
            | ServerMessage::Refreshed { id, .. }
            | ServerMessage::Located { id, .. }
            | ServerMessage::DocSynced { id, .. }
            | ServerMessage::DocSaved { id, .. }
            | ServerMessage::Stopped { id, .. }
            | ServerMessage::Notes { id, .. }
            | ServerMessage::NoteCreated { id, .. }
            | ServerMessage::NoteRenamed { id, .. }
            | ServerMessage::NoteDeleted { id, .. }
            | ServerMessage::Pong { id }
            | ServerMessage::Error { id, .. } => *id,
            ServerMessage::Publication { .. }
            | ServerMessage::Join { .. }
            | ServerMessage::Leave { .. }
            | ServerMessage::Location { .. }
            | ServerMessage::LocationGone { .. }
            | ServerMessage::DocUpdated { .. }
            | ServerMessage::DocAwareness { .. }
            | ServerMessage::DocDeleted { .. }
            | ServerMessage::Ping {}
            | ServerMessage::Disconnect { .. } => None,
        }
    }
}
