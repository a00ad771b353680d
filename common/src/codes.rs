//! The one table of codes Rookery puts on the wire.
//!
//! *Error codes* answer a single command; the connection stays open.
//! *Close codes* end a connection; each says whether and how a client should
//! reconnect, and the rule can be read from the number alone:
//! 4000–4099 do not reconnect unchanged, 4100–4199 reconnect with backoff,
//! 4200–4299 reconnect at once (with jitter). RFC 6455 codes keep their
//! standard meaning. The README's tables are checked against these lists by a
//! test, so the documentation cannot drift.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! code_table {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $( $variant:ident = $value:literal, $slug:literal, $doc:literal $(, $extra:expr)? ; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( #[doc = $doc] $variant, )*
        }

        impl $name {
            /// Every code, in table order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub const fn number(self) -> $repr {
                match self { $($name::$variant => $value,)* }
            }

            /// Stable snake_case name, used in logs, metrics and HTTP errors.
            pub const fn slug(self) -> &'static str {
                match self { $($name::$variant => $slug,)* }
            }

            /// What the code means, for people.
            pub const fn description(self) -> &'static str {
                match self { $($name::$variant => $doc,)* }
            }

            pub fn from_number(number: $repr) -> Option<Self> {
                match number { $($value => Some($name::$variant),)* _ => None }
            }
        }

        impl From<$name> for $repr {
            fn from(code: $name) -> $repr { code.number() }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.number(), self.slug())
            }
        }
    };
}

code_table! {
    /// Why a single command failed. Sent in `error` replies.
    pub enum ErrorCode: u16 {
        Internal = 100, "internal", "the server failed; the command may be retried";
        BadRequest = 101, "bad_request", "the frame is not valid JSON (or MessagePack, nested at most 128 deep, one value per frame), or a field is missing, unknown or of the wrong type";
        UnknownCommand = 102, "unknown_command", "the `type` is not a command of this protocol";
        InvalidChannel = 103, "invalid_channel", "the channel name breaks the naming rules (namespace:name)";
        UnknownNamespace = 104, "unknown_namespace", "no namespace of that name is configured";
        PermissionDenied = 105, "permission_denied", "the connection may not do this on this channel";
        NotConnected = 106, "not_connected", "the command needs a `connect` first";
        AlreadyConnected = 107, "already_connected", "`connect` was already accepted on this socket";
        AlreadySubscribed = 108, "already_subscribed", "the connection is already subscribed to the channel";
        NotSubscribed = 109, "not_subscribed", "the connection is not subscribed to the channel";
        TooManySubscriptions = 110, "too_many_subscriptions", "the connection reached its subscription limit";
        RateLimited = 111, "rate_limited", "too many publishes per second; slow down";
        InvalidPosition = 112, "invalid_position", "the stream position is malformed";
        HistoryUnavailable = 113, "history_unavailable", "the channel's namespace keeps no history";
        PayloadTooLarge = 114, "payload_too_large", "the publication data is over the namespace's limit";
        InvalidName = 115, "invalid_name", "the display name is empty or too long";
        ChannelFull = 116, "channel_full", "the channel's presence reached its member limit";
        InvalidToken = 117, "invalid_token", "the token is malformed, forged, expired or for another user or channel";
        WrongKind = 118, "wrong_kind", "the command does not apply to this channel's kind";
        InvalidLocation = 119, "invalid_location", "coordinates out of range or not finite, or the (0, 0) point";
        TooFrequent = 120, "too_frequent", "a position came sooner than the namespace's minimum interval";
        TooClose = 121, "too_close", "the position moved less than the namespace's minimum distance";
        TooInaccurate = 122, "too_inaccurate", "the accuracy radius is over the namespace's maximum";
        FutureTimestamp = 123, "future_timestamp", "the position's time is ahead of the server's clock";
        InvalidUpdate = 124, "invalid_update", "the Yjs update or state vector cannot be decoded or applied (malformed, clocks past 2^31, or depending on edits the note lacks: sync first); the document is unchanged";
        DocumentTooLarge = 125, "document_too_large", "the update, or the document it would make, is over the size limit";
        NotSaved = 126, "not_saved", "the update could not be stored; it is not acknowledged (send it again)";
        NotJoined = 127, "not_joined", "send doc_sync for this document first";
        NoteDeleted = 128, "note_deleted", "the note was deleted; its id is not used again";
        UnknownNote = 129, "unknown_note", "no note has that id";
        InvalidTitle = 130, "invalid_title", "the title is over 200 characters or holds control characters";
        Unavailable = 131, "unavailable", "the cluster's broker (Redis) cannot be reached; nothing was done, try again";
    }
}

code_table! {
    /// Why the server ended a connection. Sent in the `disconnect` push and as
    /// the WebSocket close code.
    pub enum CloseCode: u16 {
        Normal = 1000, "normal", "the connection was closed on purpose";
        GoingAway = 1001, "going_away", "the server is going away";
        ProtocolError = 1002, "protocol_error", "the WebSocket protocol was violated";
        UnsupportedData = 1003, "unsupported_data", "a binary frame on the JSON subprotocol, or a text frame on the MessagePack one";
        InvalidPayload = 1007, "invalid_payload", "a text frame that is not valid UTF-8, or a compressed message that does not inflate";
        MessageTooBig = 1009, "message_too_big", "a frame or message over the size limit (compressed messages: also once inflated)";
        InternalError = 1011, "internal_error", "the server failed";
        ServiceRestart = 1012, "service_restart", "the server is restarting";
        Unauthorized = 4001, "unauthorized", "the token is invalid or missing";
        TokenExpired = 4002, "token_expired", "the connection token expired and was not refreshed";
        SlowConsumer = 4100, "slow_consumer", "the client read too slowly and its outbound queue filled";
        TooManyConnections = 4101, "too_many_connections", "too many connections from one address";
        Flood = 4102, "flood", "far too many commands; the client is misbehaving";
        ConnectTimeout = 4103, "connect_timeout", "no `connect` command arrived in time";
        Shutdown = 4200, "shutdown", "the server is shutting down; reconnect (to another node)";
        HeartbeatTimeout = 4201, "heartbeat_timeout", "the client stopped answering pings";
        StreamReset = 4202, "stream_reset", "the node lost its place in a channel's stream (a broker outage); reconnect and recover";
        DocumentReset = 4203, "document_reset", "a note broke integrating an update and was reloaded; reconnect and sync again";
    }
}

/// What a client should do after a close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Do not reconnect with the same credentials.
    Never,
    /// Reconnect with exponential backoff and jitter.
    Backoff,
    /// Reconnect at once, with a little jitter so a whole fleet does not
    /// arrive in the same millisecond.
    Immediately,
}

impl CloseCode {
    pub fn reconnect(self) -> Reconnect {
        Reconnect::for_number(self.number())
    }
}

impl Reconnect {
    /// The rule for any close number, including ones this build does not
    /// know (a newer server may send them).
    pub fn for_number(number: u16) -> Self {
        match number {
            1000 | 4000..=4099 => Reconnect::Never,
            4200..=4299 | 1001 | 1012 => Reconnect::Immediately,
            _ => Reconnect::Backoff,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Reconnect::Never => "no",
            Reconnect::Backoff => "with backoff",
            Reconnect::Immediately => "at once",
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.number())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = u16::deserialize(deserializer)?;
        Self::from_number(number)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {number}")))
    }
}

/// Close codes cross the wire as plain numbers so a client can act on codes a
/// newer server invents ([`Reconnect::for_number`]).
impl Serialize for CloseCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.number())
    }
}

impl<'de> Deserialize<'de> for CloseCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = u16::deserialize(deserializer)?;
        Self::from_number(number)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown close code {number}")))
    }
}

/// The Markdown tables of every code, as the README shows them.
pub fn markdown_tables() -> String {
    let mut out = String::from("| error code | name | meaning |\n| --- | --- | --- |\n");
    for code in ErrorCode::ALL {
        out += &format!(
            "| {} | `{}` | {} |\n",
            code.number(),
            code.slug(),
            code.description()
        );
    }
    out += "\n| close code | name | reconnect | meaning |\n| --- | --- | --- | --- |\n";
    for code in CloseCode::ALL {
        out += &format!(
            "| {} | `{}` | {} | {} |\n",
            code.number(),
            code.slug(),
            code.reconnect().slug(),
            code.description()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_number(code.number()), Some(*code));
        }
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_number(code.number()), Some(*code));
        }
        let mut numbers: Vec<u16> = ErrorCode::ALL.iter().map(|c| c.number()).collect();
        numbers.dedup();
        assert_eq!(numbers.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn reconnect_rule_reads_from_the_number() {
        assert_eq!(CloseCode::Unauthorized.reconnect(), Reconnect::Never);
        assert_eq!(CloseCode::TokenExpired.reconnect(), Reconnect::Never);
        assert_eq!(CloseCode::SlowConsumer.reconnect(), Reconnect::Backoff);
        assert_eq!(CloseCode::MessageTooBig.reconnect(), Reconnect::Backoff);
        assert_eq!(CloseCode::Shutdown.reconnect(), Reconnect::Immediately);
        assert_eq!(
            CloseCode::ServiceRestart.reconnect(),
            Reconnect::Immediately
        );
        assert_eq!(CloseCode::Normal.reconnect(), Reconnect::Never);
        // Codes this build does not know still get a rule.
        assert_eq!(Reconnect::for_number(4050), Reconnect::Never);
        assert_eq!(Reconnect::for_number(4150), Reconnect::Backoff);
        assert_eq!(Reconnect::for_number(4250), Reconnect::Immediately);
        assert_eq!(Reconnect::for_number(1006), Reconnect::Backoff);
    }

    #[test]
    fn readme_documents_every_code() {
        let readme = include_str!("../../README.md");
        let tables = markdown_tables();
        assert!(
            readme.contains(&tables),
            "README.md's code tables are out of date; paste this in:\n{tables}"
        );
    }
}
