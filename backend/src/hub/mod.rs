//! The hub: channels, subscriptions, presence, history and fan-out.
//!
//! [`Hub`] is the shared handle the connection tasks and the HTTP API use; it
//! wraps [`HubState`], where every change happens in plain synchronous code.
//!
//! - [`state`]: the state and its operations.
//! - [`namespace`]: per-namespace behaviour.
//! - [`history`]: one channel's bounded, expiring stream with positions.
//! - [`presence`]: one channel's members.
//! - [`latest`]: one latest-value channel's positions, filters and expiry.
//! - [`idempotency`]: recently seen publish keys.
//! - [`outbox`]: the bounded queue to one connection's writer.

pub mod history;
pub mod idempotency;
pub mod latest;
pub mod namespace;
pub mod outbox;
pub mod presence;
pub mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rookery_common::ErrorCode;

pub use namespace::{ChannelKind, NamespaceConfig, Namespaces, Publishers};
pub use outbox::{Closing, Frame, Next, Outbox, OutboxReceiver};
pub use state::mirror::{ChannelSnapshot, ClusterEvent, Gap, Resync};
pub use state::{HubState, Publisher, new_epoch};

/// A command refused by the hub, with the code the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HubError {
    pub code: ErrorCode,
    pub message: String,
}

impl HubError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Cluster mode: Redis could not be reached, so nothing was done.
    pub fn unavailable(channel: &rookery_common::ChannelName) -> Self {
        Self::new(
            ErrorCode::Unavailable,
            format!("{channel}: the cluster's broker cannot be reached; try again"),
        )
    }
}

/// Limits the hub enforces.
#[derive(Debug, Clone)]
pub struct HubLimits {
    pub max_subscriptions_per_connection: usize,
    /// Members one channel's presence may hold.
    pub max_presence_members: usize,
    /// How long an idempotency key is remembered.
    pub idempotency_window: Duration,
}

impl Default for HubLimits {
    fn default() -> Self {
        Self {
            max_subscriptions_per_connection: 128,
            max_presence_members: 1000,
            idempotency_window: Duration::from_secs(300),
        }
    }
}

/// Counters and gauges for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct HubStats {
    pub n_connections: usize,
    pub n_channels: usize,
    pub n_subscriptions: usize,
    pub n_duplicate_publications: u64,
    pub n_slow_consumers: u64,
    pub namespaces: BTreeMap<String, NamespaceStats>,
}

/// Per-namespace counters (subscriptions is a gauge, filled in by `stats`).
#[derive(Debug, Clone, Default)]
pub struct NamespaceStats {
    pub n_subscriptions: usize,
    pub n_publications: u64,
    pub n_deliveries: u64,
    /// Deliveries not queued: the subscriber's queue was full or closing.
    pub n_drops: u64,
}

/// One channel as the HTTP API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelSummary {
    pub channel: rookery_common::ChannelName,
    #[serde(rename = "subscribers")]
    pub n_subscribers: usize,
    /// Present when the namespace has presence.
    #[serde(rename = "members", skip_serializing_if = "Option::is_none")]
    pub n_members: Option<usize>,
}

/// Shared handle to the hub.
#[derive(Debug, Clone)]
pub struct Hub {
    // A std mutex, not tokio's: every critical section is short, synchronous
    // and never awaits, so there is nothing to yield to while holding it.
    state: Arc<Mutex<HubState>>,
}

impl Hub {
    pub fn new(namespaces: Namespaces, limits: HubLimits) -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState::new(namespaces, limits))),
        }
    }

    /// The hub of a cluster member (see `state::mirror`).
    pub fn new_clustered(namespaces: Namespaces, limits: HubLimits) -> Self {
        Self {
            state: Arc::new(Mutex::new(HubState::clustered(namespaces, limits))),
        }
    }

    /// Runs `change` on the state under the lock.
    pub fn with<T>(&self, change: impl FnOnce(&mut HubState) -> T) -> T {
        change(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding the lock would be a bug in HubState; the
        // state itself stays structurally valid, so keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Expires history and idempotency keys every `period` until the hub
    /// is dropped by everyone else.
    pub fn spawn_sweeper(&self, period: Duration) {
        let state = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(state) = state.upgrade() else { break };
                let now = tokio::time::Instant::now();
                state
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .sweep(now);
            }
        });
    }
}

/// Milliseconds since the Unix epoch, for publication timestamps.
pub fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests;
