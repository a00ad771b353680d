//! Cluster mode (`--redis-url`): several nodes behind any load balancer,
//! one Redis between them.
//!
//! - Publishing is one script call ([`scripts::PUBLISH`]): Redis stamps
//!   the offset, keeps the publication in the channel's stream (trimmed by
//!   size, expired by age), records the idempotency key and publishes it on
//!   the channel's pub/sub channel, all at once.
//! - Each node holds one pub/sub connection ([`follower`]) and subscribes
//!   it to the channels its own clients use (not once per client). It keeps
//!   a copy of each such channel in the hub (`hub::state::mirror`), so
//!   subscribe, recovery, history and presence are answered locally and in
//!   order with delivery, and a client that reconnects to any node recovers
//!   exactly what it missed.
//! - Presence is a lease per subscribed connection ([`leases`]), refreshed
//!   by its node; a dead node's leases expire and any live node announces
//!   them gone. A user with leases on two nodes is one member.
//! - When Redis cannot be reached, clients stay connected, `/readyz` says
//!   503, commands that need Redis get error 131 (`unavailable`), and the
//!   node reconnects with backoff, then carries every channel on from
//!   where it was or resets it (close 4202, so clients recover and learn
//!   `recovered: false` where history was lost).

mod follower;
mod leases;
pub mod notes;
mod publisher;
mod scripts;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rookery_common::{ChannelName, Publication, SharedLocation, StreamPosition, UserId, UserInfo};
use tokio::sync::{mpsc, oneshot};

use crate::hub::{ChannelKind, Hub, HubError, NamespaceConfig};
use crate::notes::Notes;

/// Settings of a cluster member.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub redis_url: String,
    /// How long a presence lease lives unless its node refreshes it (every
    /// third of this): how soon a dead node's members leave.
    pub lease_ttl: Duration,
}

/// How long a node keeps following a channel none of its clients uses.
const LINGER: Duration = Duration::from_secs(30);
/// How long a Redis command may take before the broker counts as gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// This node's handle on the cluster.
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<Shared>,
}

struct Shared {
    /// Random per process: lease ids never repeat across restarts.
    node: String,
    commands: ConnectionManager,
    follow: mpsc::UnboundedSender<follower::Request>,
    leases: mpsc::UnboundedSender<leases::Request>,
    /// The pub/sub connection is up and every followed channel synced.
    following: AtomicBool,
    /// The last command reached Redis.
    commands_ok: AtomicBool,
    next_lease: AtomicU64,
    lease_ttl: Duration,
    /// Messages to publish without waiting (notes' changes), in order.
    publish: mpsc::UnboundedSender<(String, Vec<u8>)>,
    /// Server publications made in the background, in order.
    announcements: mpsc::UnboundedSender<publisher::Announcement>,
    /// This node's notes, for other nodes' changes (set once built).
    notes: OnceLock<Arc<Notes>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.shared.node)
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Cluster {
    /// Connects lazily and starts the follower and lease tasks; must run in
    /// a tokio runtime. Only a malformed URL fails here: an unreachable
    /// Redis makes the node not ready until it comes.
    pub fn start(config: &ClusterConfig, hub: Hub) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(config.redis_url.as_str())?;
        let commands = ConnectionManager::new_lazy_with_config(
            client.clone(),
            ConnectionManagerConfig::new()
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1)),
        )?;
        let (follow, follow_requests) = mpsc::unbounded_channel();
        let (lease_sender, lease_requests) = mpsc::unbounded_channel();
        let (publish, to_publish) = mpsc::unbounded_channel();
        let (announcements, to_announce) = mpsc::unbounded_channel();
        let cluster = Self {
            shared: Arc::new(Shared {
                node: format!("{:012x}", rand::random::<u64>() >> 16),
                commands,
                follow,
                leases: lease_sender,
                following: AtomicBool::new(false),
                commands_ok: AtomicBool::new(true),
                next_lease: AtomicU64::new(1),
                lease_ttl: config.lease_ttl,
                publish,
                announcements,
                notes: OnceLock::new(),
            }),
        };
        tokio::spawn(publisher::run(cluster.clone(), to_publish));
        tokio::spawn(publisher::announce(cluster.clone(), to_announce));
        tokio::spawn(follower::run(
            client,
            cluster.clone(),
            hub.clone(),
            follow_requests,
        ));
        tokio::spawn(leases::run(cluster.clone(), hub, lease_requests));
        Ok(cluster)
    }

    /// Hands other nodes' note changes to `notes` from now on.
    pub fn attach_notes(&self, notes: Arc<Notes>) {
        let _ = self.shared.notes.set(notes);
    }

    /// Publishes `payload` on a pub/sub channel, in order with this node's
    /// other such messages, without waiting.
    fn publish_raw(&self, channel: String, payload: Vec<u8>) {
        let _ = self.shared.publish.send((channel, payload));
    }

    /// Ready for traffic: following Redis, and the last command got through.
    pub fn is_ready(&self) -> bool {
        self.shared.following.load(Ordering::SeqCst)
            && self.shared.commands_ok.load(Ordering::SeqCst)
    }

    /// Whether a command gets through now; recorded for `/readyz`. After
    /// Redis restarted, the commands connection still holds the old socket
    /// until a command fails on it: a node that had nothing to send during
    /// the outage would say it is ready and fail its first client's
    /// command. A few tries let the connection be replaced first.
    pub(crate) async fn commands_get_through(&self) -> bool {
        for _ in 0..3 {
            let mut commands = self.commands();
            let pong: redis::RedisResult<String> =
                redis::cmd("PING").query_async(&mut commands).await;
            if pong.is_ok() {
                self.shared.commands_ok.store(true, Ordering::SeqCst);
                return true;
            }
        }
        self.shared.commands_ok.store(false, Ordering::SeqCst);
        false
    }

    /// This node's id in lease names.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    fn commands(&self) -> ConnectionManager {
        self.shared.commands.clone()
    }

    /// Records whether a command reached Redis, for `/readyz`.
    fn outcome<T>(
        &self,
        result: redis::RedisResult<T>,
        channel: &ChannelName,
    ) -> Result<T, HubError> {
        match result {
            Ok(value) => {
                self.shared.commands_ok.store(true, Ordering::SeqCst);
                Ok(value)
            }
            Err(error) => {
                if error.is_io_error()
                    || error.is_timeout()
                    || error.is_connection_dropped()
                    || error.is_connection_refusal()
                {
                    self.shared.commands_ok.store(false, Ordering::SeqCst);
                }
                tracing::warn!(%channel, %error, "redis command failed");
                Err(HubError::unavailable(channel))
            }
        }
    }

    /// Makes sure this node follows `channel` (its copy is in the hub).
    pub async fn follow(&self, hub: &Hub, channel: &ChannelName) -> Result<(), HubError> {
        let (synced, namespace) = hub.with(|hub| {
            // In use from now: not let go while the caller goes on.
            hub.touch_synced(channel, tokio::time::Instant::now());
            (hub.is_synced(channel), hub.namespace_config(channel))
        });
        let namespace = namespace?;
        if synced || namespace.kind == ChannelKind::Document {
            // Documents are the notes' own (they do not go through the hub).
            return Ok(());
        }
        let (done, result) = oneshot::channel();
        self.shared
            .follow
            .send(follower::Request::Follow {
                channel: channel.clone(),
                done,
            })
            .map_err(|_| HubError::unavailable(channel))?;
        result
            .await
            .unwrap_or_else(|_| Err(HubError::unavailable(channel)))
    }

    /// Brings the followed copy of `channel` up to `offset` (a client
    /// recovering from a node that was ahead of this one).
    pub async fn catch_up(&self, channel: &ChannelName, offset: u64) {
        let (done, caught_up) = oneshot::channel();
        let request = follower::Request::CatchUp {
            channel: channel.clone(),
            offset,
            done,
        };
        if self.shared.follow.send(request).is_ok() {
            let _ = tokio::time::timeout(RESPONSE_TIMEOUT * 2, caught_up).await;
        }
    }

    /// Publishes through Redis: stamped, kept and fanned out to every node
    /// (this one included) in one round trip. Returns the position.
    pub async fn publish(
        &self,
        channel: &ChannelName,
        publication: &Publication,
        idempotency_key: Option<&str>,
        namespace: &NamespaceConfig,
        idempotency_window: Duration,
    ) -> Result<Option<StreamPosition>, HubError> {
        let window_ms = idempotency_key.map_or(0, |_| idempotency_window.as_millis().max(1));
        let result: redis::RedisResult<(i64, String)> = scripts::PUBLISH
            .key(wire::stream_key(channel))
            .key(wire::meta_key(channel))
            .key(wire::idempotency_key(
                channel,
                idempotency_key.unwrap_or(""),
            ))
            .arg(wire::publication_json(publication))
            .arg(namespace.history_size)
            .arg(namespace.history_ttl.as_millis().max(1) as u64)
            .arg(window_ms as u64)
            .arg(wire::pubsub_channel(channel))
            .arg(crate::hub::new_epoch())
            .arg(meta_ttl_ms(namespace))
            .invoke_async(&mut self.commands())
            .await;
        let (_, stamp) = self.outcome(result, channel)?;
        Ok(wire::parse_stamp(&stamp))
    }

    /// Shares a position: kept in Redis until the namespace's TTL and sent
    /// to every node following the channel.
    pub async fn locate(
        &self,
        channel: &ChannelName,
        shared: &SharedLocation,
        ttl: Duration,
    ) -> Result<(), HubError> {
        let result: redis::RedisResult<i64> = scripts::LOCATE
            .key(wire::positions_key(channel))
            .key(wire::position_expiries_key())
            .arg(&shared.member.user.0)
            .arg(serde_json::to_string(shared).expect("positions serialise"))
            .arg(ttl.as_millis().max(1) as u64)
            .arg(channel.as_str())
            .arg(wire::pubsub_channel(channel))
            .invoke_async(&mut self.commands())
            .await;
        self.outcome(result, channel).map(drop)
    }

    /// Ends a sharer's position everywhere.
    pub async fn stop_sharing(&self, channel: &ChannelName, user: &UserId) -> Result<(), HubError> {
        let result: redis::RedisResult<i64> = scripts::STOP_SHARING
            .key(wire::positions_key(channel))
            .key(wire::position_expiries_key())
            .arg(&user.0)
            .arg(channel.as_str())
            .arg(wire::pubsub_channel(channel))
            .invoke_async(&mut self.commands())
            .await;
        self.outcome(result, channel).map(drop)
    }

    /// A new presence lease id for one subscription.
    pub fn new_lease(&self) -> String {
        let n = self.shared.next_lease.fetch_add(1, Ordering::Relaxed);
        format!("{}.{n}", self.shared.node)
    }

    /// Puts a lease in Redis and announces it (when new) to every node.
    pub async fn add_lease(
        &self,
        channel: &ChannelName,
        lease: &str,
        member: &UserInfo,
    ) -> Result<(), HubError> {
        let result: redis::RedisResult<i64> = scripts::ADD_LEASE
            .key(wire::presence_key(channel))
            .key(wire::leases_key())
            .arg(lease)
            .arg(serde_json::to_string(member).expect("members serialise"))
            .arg(self.shared.lease_ttl.as_millis() as u64)
            .arg(channel.as_str())
            .arg(wire::pubsub_channel(channel))
            .invoke_async(&mut self.commands())
            .await;
        self.outcome(result, channel).map(drop)
    }

    /// Ends one lease in the background (one a subscription did not take).
    pub fn release_lease(&self, channel: ChannelName, lease: String) {
        let _ = self
            .shared
            .leases
            .send(leases::Request::Release(vec![(channel, lease)]));
    }

    /// Publishes a server publication (the notes list's events) in the
    /// background, in order with the others.
    pub fn announce(
        &self,
        channel: ChannelName,
        publication: Publication,
        namespace: NamespaceConfig,
        idempotency_window: Duration,
    ) {
        let _ = self.shared.announcements.send(publisher::Announcement {
            channel,
            publication,
            namespace,
            idempotency_window,
        });
    }

    /// Ends the leases the hub gave up (unsubscribes, disconnects), in the
    /// background and in order with the refreshes.
    pub fn release_leases(&self, hub: &Hub) {
        let released = hub.with(|hub| hub.take_released_leases());
        if !released.is_empty() {
            let _ = self.shared.leases.send(leases::Request::Release(released));
        }
    }

    /// Waits until every release asked for so far reached Redis (or
    /// failed): called at shutdown, so a stopping node leaves no ghosts.
    pub async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self
            .shared
            .leases
            .send(leases::Request::Flush(done))
            .is_ok()
        {
            let _ = tokio::time::timeout(RESPONSE_TIMEOUT * 2, flushed).await;
        }
    }
}

/// How long a channel's epoch outlives its last publication: far longer
/// than its history, so that a quiet channel keeps its epoch (and clients
/// their positions) as it would on one node.
fn meta_ttl_ms(namespace: &NamespaceConfig) -> u64 {
    const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;
    (namespace.history_ttl.as_millis() as u64).max(WEEK_MS)
}
