//! What one connection's commands do: the protocol state of a socket
//! (connected or not, who it is, what its token grants, its rate limits) and
//! the mapping from commands to hub calls and replies. No socket code:
//! [`super::connection`] feeds it decoded commands and writes what it queues.
//!
//! - [`note_commands`]: the notes list's commands (list, create, rename,
//!   delete).

mod cluster_commands;
mod note_commands;

use std::time::Duration;

use rookery_common::user::normalize_display_name;
use rookery_common::{
    ChannelName, ClientMessage, CloseCode, CommandId, ConnectionId, ErrorCode, ServerMessage,
    Token, UserId, UserInfo,
};
use tokio::time::Instant;

use std::collections::HashMap;
use std::sync::Arc;

use rookery_common::Bytes;

use super::rate::TokenBucket;
use crate::auth::{AuthError, Capabilities, unix_now};
use crate::hub::ChannelKind;
use crate::hub::outbox::PushError;
use crate::hub::{Hub, HubError, Outbox, Publisher, unix_time_ms};
use crate::metrics::Metrics;
use crate::notes::{
    DocumentError, NoteHandle, NotesError, PeerId, PeerSink, is_valid_id as is_valid_note_id,
};
use crate::server::AppState;

pub struct Session {
    state: AppState,
    outbox: Outbox,
    /// Documents this connection joined with `doc_sync`.
    documents: HashMap<ChannelName, (Arc<NoteHandle>, PeerId)>,
    connection_id: Option<ConnectionId>,
    user: Option<UserId>,
    capabilities: Capabilities,
    /// When the connection token expires (Unix seconds).
    expires_at: Option<u64>,
    publishes: TokenBucket,
    commands: TokenBucket,
}

impl Session {
    pub fn new(state: AppState, outbox: Outbox) -> Self {
        let now = Instant::now();
        let limits = &state.config.limits;
        let publishes = TokenBucket::new(limits.max_publish_rate, now);
        let commands = TokenBucket::new(limits.max_command_rate, now);
        Self {
            state,
            outbox,
            documents: HashMap::new(),
            connection_id: None,
            user: None,
            capabilities: Capabilities::default(),
            expires_at: None,
            publishes,
            commands,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connection_id.is_some()
    }

    /// When the connection must be closed for an expired token, unless it
    /// is refreshed first.
    pub fn expiry_deadline(&self) -> Option<Instant> {
        let expires_at = self.expires_at?;
        let left = expires_at.saturating_sub(unix_now());
        Some(Instant::now() + Duration::from_secs(left))
    }

    /// Called at the deadline: closes the connection if the token is still
    /// expired (a refresh may have moved it).
    pub fn check_expiry(&self) {
        if self
            .expires_at
            .is_some_and(|expires_at| expires_at <= unix_now())
        {
            Metrics::bump(&self.state.metrics.n_expired_tokens);
            self.outbox.close(
                CloseCode::TokenExpired,
                "the connection token expired",
                false,
            );
        }
    }

    fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// Queues a reply. A full queue means the client is not reading: close
    /// it as a slow consumer rather than wait.
    pub fn reply(&self, message: &ServerMessage) {
        let frame = crate::hub::Frame::encode(message, self.outbox.wire());
        if self.outbox.push(frame) == Err(PushError::Full) {
            self.outbox.close(
                CloseCode::SlowConsumer,
                "outbound queue full: the client reads too slowly",
                false,
            );
        }
    }

    /// Queues an acknowledgement, which only a command with an `id` gets:
    /// without one, a command is fire-and-forget (errors are still sent).
    fn acknowledge(&self, message: &ServerMessage) {
        if message.reply_to().is_some() {
            self.reply(message);
        }
    }

    pub fn error(&self, id: Option<CommandId>, code: ErrorCode, message: impl Into<String>) {
        self.reply(&ServerMessage::error(id, code, message));
    }

    /// A frame that could not be decoded.
    pub fn bad_frame(&mut self, id: Option<CommandId>, code: ErrorCode, message: String) {
        Metrics::bump(&self.state.metrics.n_bad_frames);
        if self.admit() {
            self.error(id, code, message);
        }
    }

    /// Counts a command against the flood limit; closes the connection when
    /// it is exceeded.
    fn admit(&mut self) -> bool {
        if self.commands.try_take(Instant::now()) {
            return true;
        }
        Metrics::bump(&self.state.metrics.n_floods);
        self.outbox.close(
            CloseCode::Flood,
            "far more commands per second than allowed",
            false,
        );
        false
    }

    pub async fn handle(&mut self, command: ClientMessage) {
        if !self.admit() {
            return;
        }
        let started = std::time::Instant::now();
        let kind = command.kind();
        match command {
            ClientMessage::DocSync { .. }
            | ClientMessage::DocUpdate { .. }
            | ClientMessage::DocAwareness { .. } => {
                let id = command.id();
                if let Err(error) = self.document(command).await {
                    self.error(id, error.code, error.message);
                }
            }
            ClientMessage::NoteList { .. }
            | ClientMessage::NoteCreate { .. }
            | ClientMessage::NoteRename { .. }
            | ClientMessage::NoteDelete { .. } => {
                let id = command.id();
                if let Err(error) = self.note_command(command).await {
                    self.error(id, error.code, error.message);
                }
            }
            command => match self.cluster_for(&command) {
                Some(cluster) => {
                    let id = command.id();
                    if let Err(error) = self.cluster_command(&cluster, command).await {
                        self.error(id, error.code, error.message);
                    }
                }
                None => self.dispatch(command),
            },
        }
        self.state.metrics.observe_command(kind, started.elapsed());
    }

    /// The document commands: they may wait on the store (loading a note,
    /// storing an update before acknowledging it).
    async fn document(&mut self, command: ClientMessage) -> Result<(), HubError> {
        let connection_id = self
            .connection_id
            .ok_or_else(|| HubError::new(ErrorCode::NotConnected, "send connect first"))?;
        match command {
            ClientMessage::DocSync {
                id,
                channel,
                state_vector,
            } => {
                let (mut handle, peer) = match self.joined_document(&channel)? {
                    Some(joined) => joined,
                    None => {
                        let handle = self.open_document(connection_id, &channel).await?;
                        (handle, 0)
                    }
                };
                let notes = self.state.notes.clone();
                if peer != 0 {
                    // Already joined: a resync (after the client reconnected
                    // its view, say) is just the step.
                    let joined = notes
                        .join_ws_resync(&handle, &state_vector.0)
                        .map_err(|error| note_error(&error))?;
                    self.reply(&ServerMessage::DocSynced {
                        id,
                        channel,
                        update: Bytes(joined.0),
                        state_vector: Bytes(joined.1),
                    });
                    return Ok(());
                }
                let sink = PeerSink::Ws {
                    outbox: self.outbox.clone(),
                    channel: channel.clone(),
                };
                // Replaces the handle if the note was unloaded meanwhile.
                let joined = notes
                    .join_ws(&mut handle, sink, &state_vector.0)
                    .await
                    .map_err(|error| note_error(&error))?;
                self.documents
                    .insert(channel.clone(), (handle, joined.peer));
                self.reply(&ServerMessage::DocSynced {
                    id,
                    channel: channel.clone(),
                    update: Bytes(joined.update),
                    state_vector: Bytes(joined.state_vector),
                });
                if let Some(awareness) = joined.awareness {
                    self.reply(&ServerMessage::DocAwareness {
                        channel,
                        update: Bytes(awareness),
                    });
                }
                Ok(())
            }
            ClientMessage::DocUpdate {
                id,
                channel,
                update,
            } => {
                let (handle, peer) = self.joined(&channel)?;
                self.state
                    .notes
                    .update(&handle, peer, &update.0)
                    .await
                    .map_err(|error| note_error(&error))?;
                self.acknowledge(&ServerMessage::DocSaved { id, channel });
                Ok(())
            }
            ClientMessage::DocAwareness { channel, update } => {
                let (handle, peer) = self.joined(&channel)?;
                self.state
                    .notes
                    .awareness(&handle, peer, &update.0)
                    .map_err(|error| note_error(&error))
            }
            _ => Ok(()),
        }
    }

    async fn open_document(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
    ) -> Result<Arc<NoteHandle>, HubError> {
        self.check_document_access(connection_id, channel)?;
        if !is_valid_note_id(channel.name()) {
            return Err(HubError::new(
                ErrorCode::InvalidChannel,
                "note ids are 1 to 64 of A-Z, a-z, 0-9, - and _",
            ));
        }
        self.state
            .notes
            .open(channel.name())
            .await
            .map_err(|error| note_error(&error))
    }

    /// Whether the connection may read `channel`, a document channel.
    fn check_document_access(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
    ) -> Result<(), HubError> {
        let granted = self.capabilities.allows(channel);
        self.hub().with(|hub| {
            hub.check_read(connection_id, channel, granted)?;
            match hub.kind(channel)? {
                ChannelKind::Document => Ok(()),
                _ => Err(HubError::new(
                    ErrorCode::WrongKind,
                    format!("{channel} is not a document channel"),
                )),
            }
        })
    }

    fn joined(&mut self, channel: &ChannelName) -> Result<(Arc<NoteHandle>, PeerId), HubError> {
        self.joined_document(channel)?.ok_or_else(|| {
            HubError::new(
                ErrorCode::NotJoined,
                format!("send doc_sync for {channel} first"),
            )
        })
    }

    /// The joined document of `channel`, if any. One deleted since is
    /// forgotten here (the server already let go of this peer and told it
    /// with `doc_deleted`; the handle holds no document any more) and
    /// answered with its code.
    fn joined_document(
        &mut self,
        channel: &ChannelName,
    ) -> Result<Option<(Arc<NoteHandle>, PeerId)>, HubError> {
        match self.documents.get(channel) {
            Some((handle, _)) if handle.is_deleted() => {
                self.documents.remove(channel);
                Err(note_error(&NotesError::Deleted))
            }
            joined => Ok(joined.cloned()),
        }
    }

    /// Leaves a joined document; false if it was not joined.
    fn leave_document(&mut self, channel: &ChannelName) -> bool {
        match self.documents.remove(channel) {
            Some((handle, peer)) => {
                self.state.notes.leave(&handle, peer);
                true
            }
            None => false,
        }
    }

    fn dispatch(&mut self, command: ClientMessage) {
        let id = command.id();
        let Some(connection_id) = self.connection_id else {
            match command {
                ClientMessage::Connect {
                    id,
                    token,
                    name,
                    anonymous_id,
                } => self.connect(id, token.as_ref(), name.as_deref(), anonymous_id),
                ClientMessage::Ping { id } => self.acknowledge(&ServerMessage::Pong { id }),
                ClientMessage::Pong {} => {}
                _ => self.error(id, ErrorCode::NotConnected, "send connect first"),
            }
            return;
        };
        let now = Instant::now();
        let result = match command {
            ClientMessage::Connect { .. } => Err(HubError::new(
                ErrorCode::AlreadyConnected,
                "this socket is already connected",
            )),
            ClientMessage::Subscribe {
                id,
                channel,
                since,
                rewind,
                token,
            } => self.grant(&channel, token.as_ref()).and_then(|granted| {
                // The hub queues the reply itself, in order with publications.
                self.hub().with(|hub| {
                    hub.subscribe(
                        connection_id,
                        id,
                        &channel,
                        since.as_ref(),
                        rewind,
                        granted,
                        now,
                    )
                })
            }),
            ClientMessage::Unsubscribe { id, channel } if self.leave_document(&channel) => {
                self.acknowledge(&ServerMessage::Unsubscribed { id, channel });
                Ok(())
            }
            ClientMessage::Unsubscribe { id, channel } => {
                let unsubscribed = self
                    .hub()
                    .with(|hub| hub.unsubscribe(connection_id, &channel));
                if let Some(cluster) = &self.state.cluster {
                    cluster.release_leases(self.hub());
                }
                unsubscribed
                    .map(|()| self.acknowledge(&ServerMessage::Unsubscribed { id, channel }))
            }
            ClientMessage::Publish {
                id,
                channel,
                data,
                idempotency_key,
            } => self.publish(
                connection_id,
                id,
                channel,
                data,
                idempotency_key.as_deref(),
                now,
            ),
            ClientMessage::Presence { id, channel } => {
                self.answer_presence(connection_id, id, channel)
            }
            ClientMessage::History {
                id,
                channel,
                since,
                limit,
            } => self.answer_history(connection_id, id, channel, since.as_ref(), limit),
            ClientMessage::Locate {
                id,
                channel,
                location,
                approximate,
            } => {
                let granted = self.capabilities.allows(&channel);
                self.hub()
                    .with(|hub| {
                        hub.locate(
                            connection_id,
                            &channel,
                            &location,
                            approximate,
                            granted,
                            now,
                            unix_time_ms(),
                        )
                    })
                    .map(|()| self.acknowledge(&ServerMessage::Located { id, channel }))
            }
            ClientMessage::StopSharing { id, channel } => self
                .hub()
                .with(|hub| hub.stop_sharing(connection_id, &channel))
                .map(|()| self.acknowledge(&ServerMessage::Stopped { id, channel })),
            ClientMessage::Refresh { id, token } => self.refresh(id, &token),
            ClientMessage::Ping { id } => {
                self.acknowledge(&ServerMessage::Pong { id });
                Ok(())
            }
            ClientMessage::Pong {} => Ok(()),
            // Handled in `document` and `note_command`.
            ClientMessage::DocSync { .. }
            | ClientMessage::DocUpdate { .. }
            | ClientMessage::DocAwareness { .. }
            | ClientMessage::NoteList { .. }
            | ClientMessage::NoteCreate { .. }
            | ClientMessage::NoteRename { .. }
            | ClientMessage::NoteDelete { .. } => Ok(()),
        };
        if let Err(error) = result {
            self.error(id, error.code, error.message);
        }
    }

    fn publish(
        &mut self,
        connection_id: ConnectionId,
        id: Option<CommandId>,
        channel: ChannelName,
        data: serde_json::Value,
        idempotency_key: Option<&str>,
        now: Instant,
    ) -> Result<(), HubError> {
        self.check_publish(idempotency_key, now)?;
        let granted = self.capabilities.allows(&channel);
        let position = self.hub().with(|hub| {
            hub.publish(
                Publisher::Connection {
                    id: connection_id,
                    granted,
                },
                &channel,
                data,
                idempotency_key,
                now,
                unix_time_ms(),
            )
        })?;
        self.acknowledge(&ServerMessage::Published {
            id,
            channel,
            position,
        });
        Ok(())
    }

    /// The publish rate limit and the idempotency key's length.
    fn check_publish(
        &mut self,
        idempotency_key: Option<&str>,
        now: Instant,
    ) -> Result<(), HubError> {
        if !self.publishes.try_take(now) {
            Metrics::bump(&self.state.metrics.n_rate_limited);
            return Err(HubError::new(
                ErrorCode::RateLimited,
                format!(
                    "at most {} publishes per second",
                    self.state.config.limits.max_publish_rate
                ),
            ));
        }
        if idempotency_key.is_some_and(|key| key.is_empty() || key.len() > 128) {
            return Err(HubError::new(
                ErrorCode::BadRequest,
                "idempotency_key must be 1 to 128 bytes",
            ));
        }
        Ok(())
    }

    /// Answers `presence` from the hub (in a cluster, from the followed copy).
    fn answer_presence(
        &self,
        connection_id: ConnectionId,
        id: Option<CommandId>,
        channel: ChannelName,
    ) -> Result<(), HubError> {
        let granted = self.capabilities.allows(&channel);
        let members = self.hub().with(|hub| {
            hub.check_read(connection_id, &channel, granted)?;
            hub.presence(&channel)
        })?;
        self.reply(&ServerMessage::Presence {
            id,
            channel,
            members,
        });
        Ok(())
    }

    /// Answers `history` from the hub (in a cluster, from the followed copy).
    fn answer_history(
        &self,
        connection_id: ConnectionId,
        id: Option<CommandId>,
        channel: ChannelName,
        since: Option<&rookery_common::StreamPosition>,
        limit: Option<u32>,
    ) -> Result<(), HubError> {
        let granted = self.capabilities.allows(&channel);
        let (position, publications) = self.hub().with(|hub| {
            hub.check_read(connection_id, &channel, granted)?;
            hub.history(&channel, since, limit, Instant::now())
        })?;
        self.reply(&ServerMessage::History {
            id,
            channel,
            position,
            publications,
        });
        Ok(())
    }

    /// Whether the connection's tokens grant `channel`: by the connection
    /// token's capabilities, or by a subscription token.
    fn grant(&self, channel: &ChannelName, token: Option<&Token>) -> Result<bool, HubError> {
        if self.capabilities.allows(channel) {
            return Ok(true);
        }
        let Some(token) = token else {
            return Ok(false);
        };
        let (Some(verifier), Some(user)) = (&self.state.config.verifier, &self.user) else {
            return Err(HubError::new(
                ErrorCode::InvalidToken,
                AuthError::NotConfigured.to_string(),
            ));
        };
        verifier
            .verify_subscription(&token.0, user, channel)
            .map(|()| true)
            .map_err(|error| HubError::new(ErrorCode::InvalidToken, error.to_string()))
    }

    fn connect(
        &mut self,
        id: Option<CommandId>,
        token: Option<&Token>,
        name: Option<&str>,
        anonymous_id: Option<String>,
    ) {
        let (user, name) = match token {
            Some(token) => {
                let Some(verifier) = &self.state.config.verifier else {
                    self.refuse(
                        CloseCode::Unauthorized,
                        &AuthError::NotConfigured.to_string(),
                    );
                    return;
                };
                match verifier.verify_connection(&token.0) {
                    Ok(claims) => {
                        self.capabilities = Capabilities::new(claims.channels);
                        self.expires_at = claims.exp;
                        let name = claims
                            .name
                            .as_deref()
                            .or(name)
                            .and_then(normalize_display_name)
                            .unwrap_or_else(|| claims.sub.chars().take(40).collect());
                        (UserId(claims.sub), name)
                    }
                    Err(AuthError::Expired) => {
                        Metrics::bump(&self.state.metrics.n_expired_tokens);
                        self.refuse(CloseCode::TokenExpired, "the connection token expired");
                        return;
                    }
                    Err(error) => {
                        self.refuse(CloseCode::Unauthorized, &error.to_string());
                        return;
                    }
                }
            }
            None => {
                if !self.state.config.allow_anonymous {
                    self.refuse(CloseCode::Unauthorized, "a token is required");
                    return;
                }
                let Some(name) = name.and_then(normalize_display_name) else {
                    self.error(
                        id,
                        ErrorCode::InvalidName,
                        "a display name of 1 to 40 characters is required",
                    );
                    return;
                };
                let user = match anonymous_id {
                    Some(anonymous_id) if is_valid_anonymous_id(&anonymous_id) => {
                        UserId(format!("anon-{anonymous_id}"))
                    }
                    Some(_) => {
                        self.error(
                            id,
                            ErrorCode::BadRequest,
                            "anonymous_id must be 8 to 64 of A-Z, a-z, 0-9, - and _",
                        );
                        return;
                    }
                    None => UserId(format!("anon-{:016x}", rand::random::<u64>())),
                };
                (user, name)
            }
        };
        let user = UserInfo::new(user, name);
        let connection_id = self
            .hub()
            .with(|hub| hub.connect(user.clone(), self.outbox.clone()));
        self.connection_id = Some(connection_id);
        self.user = Some(user.user.clone());
        let limits = &self.state.config.limits;
        self.reply(&ServerMessage::Connected {
            id,
            connection: connection_id,
            user,
            ping_interval_ms: limits.ping_interval.as_millis() as u64,
            max_message_size: limits.max_message_size,
            expires_at: self.expires_at,
        });
    }

    /// Refuses a connect by closing: a client must not retry a bad token.
    fn refuse(&self, code: CloseCode, reason: &str) {
        self.outbox.close(code, reason, false);
    }

    fn refresh(&mut self, id: Option<CommandId>, token: &Token) -> Result<(), HubError> {
        let verifier = self.state.config.verifier.as_ref().ok_or_else(|| {
            HubError::new(
                ErrorCode::InvalidToken,
                AuthError::NotConfigured.to_string(),
            )
        })?;
        let claims = verifier
            .verify_connection(&token.0)
            .map_err(|error| HubError::new(ErrorCode::InvalidToken, error.to_string()))?;
        if self.user.as_ref().is_none_or(|user| user.0 != claims.sub) {
            return Err(HubError::new(
                ErrorCode::InvalidToken,
                "a refresh token must be for the same user",
            ));
        }
        self.capabilities = Capabilities::new(claims.channels);
        self.expires_at = claims.exp;
        self.acknowledge(&ServerMessage::Refreshed {
            id,
            expires_at: claims.exp,
        });
        Ok(())
    }

    /// Leaves the hub and every document; called once when the socket ends.
    pub fn end(&mut self) {
        let channels: Vec<ChannelName> = self.documents.keys().cloned().collect();
        for channel in channels {
            self.leave_document(&channel);
        }
        if let Some(connection_id) = self.connection_id.take() {
            self.hub().with(|hub| hub.disconnect(connection_id));
            if let Some(cluster) = &self.state.cluster {
                cluster.release_leases(self.hub());
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

/// The error code a note failure gets on the wire.
fn note_error(error: &NotesError) -> HubError {
    let code = match error {
        NotesError::InvalidId => ErrorCode::InvalidChannel,
        NotesError::InvalidTitle => ErrorCode::InvalidTitle,
        NotesError::UnknownNote => ErrorCode::UnknownNote,
        NotesError::Deleted => ErrorCode::NoteDeleted,
        // A fresh random id taken: practically never; a retry gets another.
        NotesError::IdTaken => ErrorCode::Internal,
        NotesError::Document(DocumentError::InvalidUpdate(_) | DocumentError::Broken) => {
            ErrorCode::InvalidUpdate
        }
        NotesError::Document(
            DocumentError::UpdateTooLarge { .. } | DocumentError::DocumentTooLarge { .. },
        ) => ErrorCode::DocumentTooLarge,
        NotesError::Store(store) => {
            tracing::error!(error = %store, "note store failed");
            ErrorCode::NotSaved
        }
        NotesError::Unavailable => ErrorCode::Unavailable,
    };
    HubError::new(code, error.to_string())
}

fn is_valid_anonymous_id(anonymous_id: &str) -> bool {
    (8..=64).contains(&anonymous_id.len())
        && anonymous_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}
