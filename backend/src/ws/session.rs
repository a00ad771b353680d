//! What one connection's commands do: the protocol state of a socket
//! (connected or not, who it is) and the mapping from commands to hub calls
//! and replies. No socket code: [`super::connection`] feeds it decoded
//! commands and writes what it queues.

use rookery_common::user::normalize_display_name;
use rookery_common::{
    ClientMessage, CommandId, ConnectionId, ErrorCode, ServerMessage, UserId, UserInfo,
};
use tokio::time::Instant;

use crate::hub::{Hub, HubError, Outbox, Publisher, unix_time_ms};
use crate::server::AppState;

pub struct Session {
    state: AppState,
    outbox: Outbox,
    connection_id: Option<ConnectionId>,
}

impl Session {
    pub fn new(state: AppState, outbox: Outbox) -> Self {
        Self {
            state,
            outbox,
            connection_id: None,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connection_id.is_some()
    }

    fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// Queues a reply. A full queue means the client is not reading: close
    /// it as a slow consumer rather than wait.
    pub fn reply(&self, message: &ServerMessage) {
        let frame = rookery_common::encode(message).into();
        if self.outbox.push(frame) == Err(crate::hub::outbox::PushError::Full) {
            self.outbox.close(
                rookery_common::CloseCode::SlowConsumer,
                "outbound queue full: the client reads too slowly",
                false,
            );
        }
    }

    pub fn error(&self, id: Option<CommandId>, code: ErrorCode, message: impl Into<String>) {
        self.reply(&ServerMessage::error(id, code, message));
    }

    pub fn handle(&mut self, command: ClientMessage) {
        let id = command.id();
        let Some(connection_id) = self.connection_id else {
            match command {
                ClientMessage::Connect {
                    id,
                    token,
                    name,
                    anonymous_id,
                } => self.connect(id, token.as_deref(), name.as_deref(), anonymous_id),
                ClientMessage::Ping { id } => self.reply(&ServerMessage::Pong { id }),
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
            } => self.hub().with(|hub| {
                // The hub queues the reply itself, in order with publications.
                hub.subscribe(connection_id, id, &channel, since.as_ref(), rewind, now)
            }),
            ClientMessage::Unsubscribe { id, channel } => self
                .hub()
                .with(|hub| hub.unsubscribe(connection_id, &channel))
                .map(|()| self.reply(&ServerMessage::Unsubscribed { id, channel })),
            ClientMessage::Publish {
                id,
                channel,
                data,
                idempotency_key,
            } => self
                .hub()
                .with(|hub| {
                    hub.publish(
                        Publisher::Connection(connection_id),
                        &channel,
                        data,
                        idempotency_key.as_deref(),
                        now,
                        unix_time_ms(),
                    )
                })
                .map(|position| {
                    self.reply(&ServerMessage::Published {
                        id,
                        channel,
                        position,
                    });
                }),
            ClientMessage::Presence { id, channel } => self
                .hub()
                .with(|hub| hub.presence(&channel))
                .map(|members| {
                    self.reply(&ServerMessage::Presence {
                        id,
                        channel,
                        members,
                    });
                }),
            ClientMessage::History {
                id,
                channel,
                since,
                limit,
            } => self
                .hub()
                .with(|hub| hub.history(&channel, since.as_ref(), limit, now))
                .map(|(position, publications)| {
                    self.reply(&ServerMessage::History {
                        id,
                        channel,
                        position,
                        publications,
                    });
                }),
            ClientMessage::Ping { id } => {
                self.reply(&ServerMessage::Pong { id });
                Ok(())
            }
            ClientMessage::Pong {} => Ok(()),
        };
        if let Err(error) = result {
            self.error(id, error.code, error.message);
        }
    }

    fn connect(
        &mut self,
        id: Option<CommandId>,
        token: Option<&str>,
        name: Option<&str>,
        anonymous_id: Option<String>,
    ) {
        if token.is_some() {
            self.error(
                id,
                ErrorCode::PermissionDenied,
                "this server accepts anonymous connections only",
            );
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
        let user = UserInfo::new(user, name);
        let connection_id = self
            .hub()
            .with(|hub| hub.connect(user.clone(), self.outbox.clone()));
        self.connection_id = Some(connection_id);
        let limits = &self.state.config.limits;
        self.reply(&ServerMessage::Connected {
            id,
            connection: connection_id,
            user,
            ping_interval_ms: limits.ping_interval.as_millis() as u64,
            max_message_size: limits.max_message_size,
        });
    }

    /// Leaves the hub; called once when the socket ends.
    pub fn end(&mut self) {
        if let Some(connection_id) = self.connection_id.take() {
            self.hub().with(|hub| hub.disconnect(connection_id));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

fn is_valid_anonymous_id(anonymous_id: &str) -> bool {
    (8..=64).contains(&anonymous_id.len())
        && anonymous_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}
