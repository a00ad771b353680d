//! Per-namespace behaviour: presence, history, who may publish.
//!
//! A channel's namespace is the part of its name before the colon. Only
//! configured namespaces exist; a command on any other is refused, so a typo
//! in a channel name is an error instead of a silent, unshared channel.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

/// Who may publish in a namespace's channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Publishers {
    /// Any connection (chat).
    Clients,
    /// Only the HTTP API (notifications).
    Server,
}

/// How a namespace's channels behave. Only streams exist so far; the
/// location map and notes add their kinds on the same machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Ordered publications with history (chat, notifications, events).
    Stream,
    /// One current position per member (the live map): a new subscriber
    /// gets them all at once, keys expire, slow subscribers get only the
    /// newest.
    LatestValue,
    /// A Yjs document per channel (notes), synced with `doc_sync`,
    /// `doc_update` and `doc_awareness`, stored by the server.
    Document,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceConfig {
    pub kind: ChannelKind,
    /// Track who is subscribed and answer presence queries.
    pub presence: bool,
    /// Push `join` and `leave` to subscribers (needs `presence`).
    pub join_leave: bool,
    /// Publications kept for recovery and history; 0 keeps none.
    pub history_size: usize,
    /// How long a publication stays in history.
    #[serde(with = "seconds")]
    pub history_ttl: Duration,
    pub publishers: Publishers,
    /// Only connections whose token grants the channel (or that present a
    /// subscription token for it) may use it.
    pub private: bool,
    /// `ns:{user}` is usable only by that user (personal notifications).
    pub personal: bool,
    /// Latest-value channels: a position not updated for this long expires.
    #[serde(with = "seconds")]
    pub value_ttl: Duration,
    /// Latest-value channels: least time between accepted positions of one
    /// member.
    #[serde(rename = "min_interval_ms", with = "milliseconds")]
    pub min_interval: Duration,
    /// Latest-value channels: least movement, in metres, for a new position
    /// to be accepted (a member standing still still refreshes every third
    /// of the TTL).
    pub min_distance_m: f64,
    /// Latest-value channels: largest accuracy radius accepted, in metres.
    pub max_accuracy_m: f64,
    /// Latest-value channels: how far ahead of the server's clock a
    /// position's time may be (device clock skew).
    #[serde(rename = "max_future_ms", with = "milliseconds")]
    pub max_future: Duration,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            kind: ChannelKind::Stream,
            presence: false,
            join_leave: false,
            history_size: 0,
            history_ttl: Duration::from_secs(300),
            publishers: Publishers::Clients,
            private: false,
            personal: false,
            value_ttl: Duration::from_secs(120),
            min_interval: Duration::from_millis(750),
            min_distance_m: 2.0,
            max_accuracy_m: 10_000.0,
            max_future: Duration::from_secs(60),
        }
    }
}

mod milliseconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

/// The configured namespaces by name.
#[derive(Debug, Clone)]
pub struct Namespaces(HashMap<String, NamespaceConfig>);

impl Namespaces {
    pub fn new(namespaces: HashMap<String, NamespaceConfig>) -> Self {
        Self(namespaces)
    }

    pub fn get(&self, namespace: &str) -> Option<&NamespaceConfig> {
        self.0.get(namespace)
    }

    /// Adds or replaces namespaces (from the config file) over the defaults.
    pub fn extend(&mut self, namespaces: HashMap<String, NamespaceConfig>) {
        self.0.extend(namespaces);
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl Default for Namespaces {
    /// The namespaces the bundled apps use.
    fn default() -> Self {
        let chat = NamespaceConfig {
            presence: true,
            join_leave: true,
            history_size: 200,
            history_ttl: Duration::from_secs(24 * 3600),
            ..NamespaceConfig::default()
        };
        let notify = NamespaceConfig {
            history_size: 50,
            history_ttl: Duration::from_secs(3600),
            publishers: Publishers::Server,
            personal: true,
            ..NamespaceConfig::default()
        };
        let map = NamespaceConfig {
            kind: ChannelKind::LatestValue,
            presence: true,
            ..NamespaceConfig::default()
        };
        let notes = NamespaceConfig {
            kind: ChannelKind::Document,
            ..NamespaceConfig::default()
        };
        // `notes_list:all`: what changed in the notes list, published by
        // the server as it happens; a list is fetched whole with
        // `note_list`, so nothing is kept.
        let notes_list = NamespaceConfig {
            publishers: Publishers::Server,
            ..NamespaceConfig::default()
        };
        Self(HashMap::from([
            ("chat".to_owned(), chat),
            ("notify".to_owned(), notify),
            ("map".to_owned(), map),
            ("notes".to_owned(), notes),
            ("notes_list".to_owned(), notes_list),
        ]))
    }
}
