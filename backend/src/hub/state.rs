//! The hub's state and every change to it, in plain synchronous code.
//!
//! Sockets and `.await` live around this, not inside it: each method runs
//! under one lock, takes the time as an argument, and talks to connections
//! only through their [`Outbox`]es. That makes it testable without sockets
//! and keeps orderings simple — a subscriber is registered and its reply
//! queued in the same critical section as publications, so nothing can fall
//! between a subscription's history and its first live message.

pub mod mirror;

use std::collections::{BTreeMap, HashMap, HashSet};

use std::time::Duration;

use rookery_common::{
    ChannelName, CloseCode, CommandId, ConnectionId, ErrorCode, GoneReason, Location, Publication,
    ServerMessage, StreamPosition, UserId, UserInfo,
};
use serde_json::Value;
use tokio::time::Instant;

use super::history::History;
use super::idempotency::IdempotencyCache;
use super::latest::LatestValues;
use super::namespace::{ChannelKind, NamespaceConfig, Namespaces, Publishers};
use super::outbox::{Frame, Handover, Outbox, PushError};
use super::presence::Presence;
use super::{ChannelSummary, HubError, HubLimits, HubStats, NamespaceStats};
use crate::websocket::frame::Encoded;

#[derive(Debug)]
pub struct HubState {
    namespaces: Namespaces,
    limits: HubLimits,
    connections: HashMap<ConnectionId, Connection>,
    channels: HashMap<ChannelName, Channel>,
    idempotency: IdempotencyCache,
    next_connection_id: u64,
    stats: HubStats,
    /// A cluster member: channels are copies of the cluster's (see
    /// [`mirror`]), presence counts leases, and publishing is the
    /// cluster's job ([`HubState::prepare_publication`]).
    clustered: bool,
    /// Leases this node gave up (unsubscribes, disconnects) that the
    /// cluster has yet to remove from Redis.
    released: Vec<(ChannelName, String)>,
}

#[derive(Debug)]
struct Connection {
    user: UserInfo,
    outbox: Outbox,
    channels: HashSet<ChannelName>,
    /// Cluster mode: this connection's presence lease per channel.
    leases: HashMap<ChannelName, String>,
}

#[derive(Debug)]
struct Channel {
    /// Each subscriber's outbox beside its id: a fan-out pushes without
    /// looking the connection up (a cache miss per subscriber). Ordered by
    /// id, which is the order connections were accepted in, and so the
    /// order their queues and the kernel's sockets were allocated in: a
    /// fan-out walks memory forwards rather than at random (in hash order
    /// a delivery to 10,000 subscribers cost about 4 % more CPU).
    subscribers: BTreeMap<ConnectionId, Outbox>,
    history: Option<History>,
    presence: Option<Presence>,
    /// Latest-value channels: each sharer's current position.
    values: Option<LatestValues>,
    /// Cluster mode: the channel is a synced copy of the cluster's, kept
    /// (even empty) until the cluster stops following it.
    synced: Option<mirror::Synced>,
}

impl Channel {
    /// Nothing left to keep the channel for.
    fn is_idle(&self) -> bool {
        self.synced.is_none()
            && self.subscribers.is_empty()
            && self.history.as_ref().is_none_or(History::is_empty)
            && self.values.as_ref().is_none_or(LatestValues::is_empty)
    }
}

/// Who is publishing.
#[derive(Debug, Clone, Copy)]
pub enum Publisher {
    /// A client; `granted` says whether its token grants the channel.
    Connection { id: ConnectionId, granted: bool },
    /// The HTTP API: may publish in server-only namespaces, has no sender.
    Server,
}

impl HubState {
    pub fn new(namespaces: Namespaces, limits: HubLimits) -> Self {
        Self {
            namespaces,
            limits,
            connections: HashMap::new(),
            channels: HashMap::new(),
            idempotency: IdempotencyCache::default(),
            next_connection_id: 1,
            stats: HubStats::default(),
            clustered: false,
            released: Vec::new(),
        }
    }

    /// The state of a cluster member (see [`mirror`]).
    pub fn clustered(namespaces: Namespaces, limits: HubLimits) -> Self {
        Self {
            clustered: true,
            ..Self::new(namespaces, limits)
        }
    }

    pub fn stats(&self) -> HubStats {
        let mut stats = self.stats.clone();
        stats.n_connections = self.connections.len();
        stats.n_channels = self.channels.len();
        stats.n_subscriptions = self.connections.values().map(|c| c.channels.len()).sum();
        for (channel, entry) in &self.channels {
            stats
                .namespaces
                .entry(channel.namespace().to_owned())
                .or_default()
                .n_subscriptions += entry.subscribers.len();
        }
        stats
    }

    fn namespace_stats(&mut self, channel: &ChannelName) -> &mut NamespaceStats {
        self.stats
            .namespaces
            .entry(channel.namespace().to_owned())
            .or_default()
    }

    /// Channels with subscribers or history, optionally of one namespace,
    /// sorted by name.
    pub fn channels(&self, namespace: Option<&str>) -> Vec<ChannelSummary> {
        let mut channels: Vec<ChannelSummary> = self
            .channels
            .iter()
            .filter(|(channel, _)| namespace.is_none_or(|ns| channel.namespace() == ns))
            .map(|(channel, entry)| ChannelSummary {
                channel: channel.clone(),
                n_subscribers: entry.subscribers.len(),
                n_members: entry.presence.as_ref().map(Presence::n_members),
            })
            .collect();
        channels.sort_by(|a, b| a.channel.cmp(&b.channel));
        channels
    }

    pub fn connect(&mut self, user: UserInfo, outbox: Outbox) -> ConnectionId {
        let connection_id = ConnectionId(self.next_connection_id);
        self.next_connection_id += 1;
        self.connections.insert(
            connection_id,
            Connection {
                user,
                outbox,
                channels: HashSet::new(),
                leases: HashMap::new(),
            },
        );
        connection_id
    }

    /// Forgets a connection: leaves every channel it was in.
    pub fn disconnect(&mut self, connection_id: ConnectionId) {
        let Some(mut connection) = self.connections.remove(&connection_id) else {
            return;
        };
        for channel in &connection.channels {
            let lease = connection.leases.remove(channel);
            self.leave_channel(connection_id, &connection.user, channel, lease);
        }
    }

    fn namespace(&self, channel: &ChannelName) -> Result<&NamespaceConfig, HubError> {
        self.namespaces.get(channel.namespace()).ok_or_else(|| {
            HubError::new(
                ErrorCode::UnknownNamespace,
                format!("no namespace {:?}", channel.namespace()),
            )
        })
    }

    /// What a connection may do on `channel`: its namespace must exist, a
    /// private namespace needs `granted` (a token's grant), and a personal
    /// namespace's channel belongs to the user it is named after.
    fn check_access(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
        granted: bool,
    ) -> Result<NamespaceConfig, HubError> {
        let namespace = self.namespace(channel)?.clone();
        let connection = self.connection(connection_id)?;
        if namespace.private && !granted {
            return Err(HubError::new(
                ErrorCode::PermissionDenied,
                format!("{channel} is private: the token does not grant it"),
            ));
        }
        if namespace.personal && channel.name() != connection.user.user.0 {
            return Err(HubError::new(
                ErrorCode::PermissionDenied,
                format!("{channel} belongs to another user"),
            ));
        }
        Ok(namespace)
    }

    fn connection(&self, connection_id: ConnectionId) -> Result<&Connection, HubError> {
        self.connections
            .get(&connection_id)
            .ok_or_else(|| HubError::new(ErrorCode::NotConnected, "connection is gone"))
    }

    fn channel_entry(&mut self, channel: &ChannelName) -> Result<&mut Channel, HubError> {
        let namespace = self.namespace(channel)?.clone();
        Ok(self
            .channels
            .entry(channel.clone())
            .or_insert_with(|| Channel {
                subscribers: BTreeMap::new(),
                synced: None,
                history: (namespace.history_size > 0).then(|| {
                    History::new(new_epoch(), namespace.history_size, namespace.history_ttl)
                }),
                presence: namespace.presence.then(Presence::default),
                values: (namespace.kind == ChannelKind::LatestValue).then(LatestValues::default),
            }))
    }

    /// Subscribes and queues the `subscribed` reply (with recovered or
    /// rewound publications) before any later publication can be queued.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        connection_id: ConnectionId,
        id: Option<CommandId>,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        rewind: Option<u32>,
        granted: bool,
        now: Instant,
    ) -> Result<(), HubError> {
        self.subscribe_with_lease(
            connection_id,
            id,
            channel,
            since,
            rewind,
            granted,
            None,
            now,
        )
    }

    /// What `subscribe` checks before changing anything: access, kind,
    /// limits, a full channel. Returns the namespace.
    pub fn check_subscribe(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
        granted: bool,
    ) -> Result<NamespaceConfig, HubError> {
        let namespace = self.check_access(connection_id, channel, granted)?;
        if namespace.kind == ChannelKind::Document {
            return Err(wrong_kind(channel, "documents are joined with doc_sync"));
        }
        let connection = self.connection(connection_id)?;
        if connection.channels.contains(channel) {
            return Err(HubError::new(
                ErrorCode::AlreadySubscribed,
                format!("already subscribed to {channel}"),
            ));
        }
        if connection.channels.len() >= self.limits.max_subscriptions_per_connection {
            return Err(HubError::new(
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    self.limits.max_subscriptions_per_connection
                ),
            ));
        }
        let max_members = self.limits.max_presence_members;
        if let Some(presence) = self.channels.get(channel).and_then(|c| c.presence.as_ref())
            && !presence.contains(&connection.user.user)
            && presence.n_members() >= max_members
        {
            return Err(HubError::new(
                ErrorCode::ChannelFull,
                format!("{channel} has its maximum of {max_members} members"),
            ));
        }
        Ok(namespace)
    }

    /// `subscribe`; in a cluster, with the connection's presence `lease`
    /// (already in Redis) when the namespace has presence.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe_with_lease(
        &mut self,
        connection_id: ConnectionId,
        id: Option<CommandId>,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        rewind: Option<u32>,
        granted: bool,
        lease: Option<String>,
        now: Instant,
    ) -> Result<(), HubError> {
        let namespace = self.check_subscribe(connection_id, channel, granted)?;
        if self.clustered
            && self
                .channels
                .get(channel)
                .is_none_or(|c| c.synced.is_none())
        {
            // The cluster syncs a channel before subscribing to it; only a
            // broker outage in between gets here.
            return Err(HubError::unavailable(channel));
        }
        let connection = self.connection(connection_id)?;
        let user = connection.user.clone();
        let outbox = connection.outbox.clone();

        let entry = self.channel_entry(channel)?;
        entry.subscribers.insert(connection_id, outbox.clone());
        if let Some(synced) = &mut entry.synced {
            synced.idle_since = None;
        }
        let joined = match (entry.presence.as_mut(), &lease) {
            (Some(presence), Some(lease)) => presence.join_lease(lease, &user),
            (Some(presence), None) => presence.join(&user),
            (None, _) => false,
        };
        let (position, recovered, publications) = match &mut entry.history {
            Some(history) => {
                let (recovered, publications) = match (since, rewind) {
                    (Some(since), rewind) => {
                        let recovery = history.since(since, now);
                        if recovery.recovered {
                            (Some(true), recovery.publications)
                        } else {
                            // The gap is lost: hand over fresh state instead
                            // (when asked for), flagged so the client
                            // replaces rather than appends.
                            let fresh = rewind.map_or_else(Vec::new, |rewind| {
                                history.latest(rewind as usize, now)
                            });
                            (Some(false), fresh)
                        }
                    }
                    (None, Some(rewind)) => (None, history.latest(rewind as usize, now)),
                    (None, None) => (None, Vec::new()),
                };
                (Some(history.position()), recovered, publications)
            }
            // Without history nothing can be recovered: say so rather than
            // pretend the gap was empty.
            None => (None, since.map(|_| false), Vec::new()),
        };
        let members = entry.presence.as_ref().map(Presence::members);
        let locations = entry.values.as_ref().map(LatestValues::snapshot);
        let connection = self
            .connections
            .get_mut(&connection_id)
            .expect("checked above");
        connection.channels.insert(channel.clone());
        if let Some(lease) = lease {
            connection.leases.insert(channel.clone(), lease);
        }

        let reply = ServerMessage::Subscribed {
            id,
            channel: channel.clone(),
            position,
            recovered,
            publications,
            members,
            locations,
        };
        self.push(&outbox, Frame::encode(&reply, outbox.wire()));
        if joined && namespace.join_leave {
            let push = ServerMessage::Join {
                channel: channel.clone(),
                member: user,
            };
            self.broadcast(channel, &push, Some(connection_id));
        }
        Ok(())
    }

    pub fn unsubscribe(
        &mut self,
        connection_id: ConnectionId,
        channel: &ChannelName,
    ) -> Result<(), HubError> {
        let connection = self
            .connections
            .get_mut(&connection_id)
            .ok_or_else(|| HubError::new(ErrorCode::NotConnected, "connection is gone"))?;
        if !connection.channels.remove(channel) {
            return Err(HubError::new(
                ErrorCode::NotSubscribed,
                format!("not subscribed to {channel}"),
            ));
        }
        let lease = connection.leases.remove(channel);
        let user = connection.user.clone();
        self.leave_channel(connection_id, &user, channel, lease);
        Ok(())
    }

    fn leave_channel(
        &mut self,
        connection_id: ConnectionId,
        user: &UserInfo,
        channel: &ChannelName,
        lease: Option<String>,
    ) {
        let join_leave = self.namespace(channel).is_ok_and(|ns| ns.join_leave);
        let Some(entry) = self.channels.get_mut(channel) else {
            if let Some(lease) = lease {
                self.released.push((channel.clone(), lease));
            }
            return;
        };
        entry.subscribers.remove(&connection_id);
        if entry.subscribers.is_empty()
            && let Some(synced) = &mut entry.synced
        {
            synced.idle_since = Some(Instant::now());
        }
        let left = match (entry.presence.as_mut(), &lease) {
            (Some(presence), Some(lease)) => presence.leave_lease(lease),
            (Some(presence), None) => presence.leave(&user.user),
            (None, _) => None,
        };
        if let Some(lease) = lease {
            self.released.push((channel.clone(), lease));
        }

        if entry.is_idle() {
            self.channels.remove(channel);
        } else if let Some(member) = left
            && join_leave
        {
            let push = ServerMessage::Leave {
                channel: channel.clone(),
                member,
            };
            self.broadcast(channel, &push, None);
        }
    }

    /// Publishes `data` and delivers it to every subscriber. Returns the
    /// publication's position when the channel keeps history.
    pub fn publish(
        &mut self,
        publisher: Publisher,
        channel: &ChannelName,
        data: Value,
        idempotency_key: Option<&str>,
        now: Instant,
        time_ms: u64,
    ) -> Result<Option<StreamPosition>, HubError> {
        let (mut publication, namespace) =
            self.prepare_publication(publisher, channel, data, time_ms)?;
        if let Some(key) = idempotency_key
            && let Some(position) = self.idempotency.get(channel, key, now)
        {
            self.stats.n_duplicate_publications += 1;
            return Ok(position);
        }
        let position = match self.channels.get_mut(channel) {
            Some(entry) => entry
                .history
                .as_mut()
                .map(|h| h.append(publication.clone(), now)),
            None if namespace.history_size > 0 => {
                let entry = self.channel_entry(channel)?;
                entry
                    .history
                    .as_mut()
                    .map(|h| h.append(publication.clone(), now))
            }
            // Nobody listens and nothing is kept: the publication reaches no one.
            None => None,
        };
        publication.position.clone_from(&position);
        if let Some(key) = idempotency_key {
            self.idempotency.insert(
                channel,
                key,
                position.clone(),
                now + self.limits.idempotency_window,
            );
        }
        self.namespace_stats(channel).n_publications += 1;
        let push = ServerMessage::Publication {
            channel: channel.clone(),
            publication,
        };
        self.broadcast(channel, &push, None);
        Ok(position)
    }

    /// Everything `publish` checks (access, kind, who may publish), and the
    /// publication it would make, without a position and without sending
    /// it: in a cluster, Redis stamps and fans it out.
    pub fn prepare_publication(
        &self,
        publisher: Publisher,
        channel: &ChannelName,
        data: Value,
        time_ms: u64,
    ) -> Result<(Publication, NamespaceConfig), HubError> {
        let namespace = match publisher {
            Publisher::Connection { id, granted } => self.check_access(id, channel, granted)?,
            Publisher::Server => self.namespace(channel)?.clone(),
        };
        if namespace.kind != ChannelKind::Stream {
            return Err(wrong_kind(
                channel,
                "publish needs a stream channel; use locate",
            ));
        }
        let sender = match publisher {
            Publisher::Connection {
                id: connection_id, ..
            } => {
                if namespace.publishers == Publishers::Server {
                    return Err(HubError::new(
                        ErrorCode::PermissionDenied,
                        format!("only the server publishes in {}:", channel.namespace()),
                    ));
                }
                Some(self.connection(connection_id)?.user.clone())
            }
            Publisher::Server => None,
        };
        let publication = Publication {
            position: None,
            data,
            sender,
            time: time_ms,
        };
        Ok((publication, namespace))
    }

    /// `channel`'s namespace settings, if it is configured.
    pub fn namespace_config(&self, channel: &ChannelName) -> Result<NamespaceConfig, HubError> {
        self.namespace(channel).cloned()
    }

    /// Who a connection is.
    pub fn user(&self, connection_id: ConnectionId) -> Result<UserInfo, HubError> {
        self.connection(connection_id).map(|c| c.user.clone())
    }

    /// The kind of `channel`'s namespace, if it is configured.
    pub fn kind(&self, channel: &ChannelName) -> Result<ChannelKind, HubError> {
        self.namespace(channel).map(|namespace| namespace.kind)
    }

    /// Checks that a connection may read `channel`'s presence or history.
    pub fn check_read(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
        granted: bool,
    ) -> Result<(), HubError> {
        self.check_access(connection_id, channel, granted).map(drop)
    }

    pub fn presence(&self, channel: &ChannelName) -> Result<Vec<UserInfo>, HubError> {
        let namespace = self.namespace(channel)?;
        if !namespace.presence {
            return Err(HubError::new(
                ErrorCode::PermissionDenied,
                format!("namespace {}: has no presence", channel.namespace()),
            ));
        }
        Ok(self
            .channels
            .get(channel)
            .and_then(|entry| entry.presence.as_ref())
            .map(Presence::members)
            .unwrap_or_default())
    }

    pub fn history(
        &mut self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
        limit: Option<u32>,
        now: Instant,
    ) -> Result<(Option<StreamPosition>, Vec<Publication>), HubError> {
        let namespace = self.namespace(channel)?;
        if namespace.history_size == 0 {
            return Err(HubError::new(
                ErrorCode::HistoryUnavailable,
                format!("namespace {}: keeps no history", channel.namespace()),
            ));
        }
        let limit = limit.map_or(namespace.history_size, |limit| limit as usize);
        let Some(history) = self
            .channels
            .get_mut(channel)
            .and_then(|e| e.history.as_mut())
        else {
            return Ok((None, Vec::new()));
        };
        let publications = match since {
            Some(since) => {
                let recovery = history.since(since, now);
                if !recovery.recovered {
                    return Err(HubError::new(
                        ErrorCode::InvalidPosition,
                        "history no longer covers that position",
                    ));
                }
                recovery.publications.into_iter().take(limit).collect()
            }
            None => history.latest(limit, now),
        };
        Ok((Some(history.position()), publications))
    }

    /// Drops expired history and idempotency keys, and channels left with
    /// nothing. Run periodically.
    pub fn sweep(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (channel, entry) in &mut self.channels {
            if let Some(history) = &mut entry.history {
                history.expire(now);
            }
            // In a cluster, Redis expires positions (and says so to every
            // node at once).
            if let Some(values) = &mut entry.values
                && !self.clustered
            {
                let ttl = self
                    .namespaces
                    .get(channel.namespace())
                    .map_or(Duration::ZERO, |namespace| namespace.value_ttl);
                for user in values.expire(ttl, now) {
                    expired.push((channel.clone(), user));
                }
            }
        }
        for (channel, user) in expired {
            self.push_gone(&channel, user, GoneReason::Expired);
        }
        self.channels.retain(|_, entry| !entry.is_idle());
        self.idempotency.expire(now);
    }

    /// Shares (or moves) a member's position in a latest-value channel.
    #[allow(clippy::too_many_arguments)]
    pub fn locate(
        &mut self,
        connection_id: ConnectionId,
        channel: &ChannelName,
        location: &Location,
        approximate: bool,
        granted: bool,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), HubError> {
        let namespace = self.check_access(connection_id, channel, granted)?;
        if namespace.kind != ChannelKind::LatestValue {
            return Err(wrong_kind(channel, "locate needs a latest-value channel"));
        }
        let member = self.connection(connection_id)?.user.clone();
        if self.clustered {
            return Err(HubError::unavailable(channel));
        }
        let entry = self.channel_entry(channel)?;
        let values = entry
            .values
            .as_mut()
            .expect("latest-value channels have values");
        let shared = values.accept(&member, location, approximate, &namespace, now, now_ms)?;
        self.namespace_stats(channel).n_publications += 1;
        let push = ServerMessage::Location {
            channel: channel.clone(),
            shared,
        };
        self.broadcast_latest(channel, member.user, &push);
        Ok(())
    }

    /// Cluster mode: what `locate` checks (access, kind, the namespace's
    /// filters against the followed copy), without keeping or sending the
    /// position: Redis does both.
    #[allow(clippy::too_many_arguments)]
    pub fn check_locate(
        &self,
        connection_id: ConnectionId,
        channel: &ChannelName,
        location: &Location,
        approximate: bool,
        granted: bool,
        now: Instant,
        now_ms: u64,
    ) -> Result<(rookery_common::SharedLocation, NamespaceConfig), HubError> {
        let namespace = self.check_access(connection_id, channel, granted)?;
        if namespace.kind != ChannelKind::LatestValue {
            return Err(wrong_kind(channel, "locate needs a latest-value channel"));
        }
        let member = self.connection(connection_id)?.user.clone();
        let empty = LatestValues::default();
        let values = self
            .channels
            .get(channel)
            .and_then(|entry| entry.values.as_ref())
            .unwrap_or(&empty);
        let shared = values.check(&member, location, approximate, &namespace, now, now_ms)?;
        Ok((shared, namespace))
    }

    /// Stops a member's sharing: their marker goes for everyone at once.
    pub fn stop_sharing(
        &mut self,
        connection_id: ConnectionId,
        channel: &ChannelName,
    ) -> Result<(), HubError> {
        let namespace = self.namespace(channel)?;
        if namespace.kind != ChannelKind::LatestValue {
            return Err(wrong_kind(
                channel,
                "stop_sharing needs a latest-value channel",
            ));
        }
        let user = self.connection(connection_id)?.user.user.clone();
        let was_sharing = self
            .channels
            .get_mut(channel)
            .and_then(|entry| entry.values.as_mut())
            .is_some_and(|values| values.stop(&user));
        if was_sharing {
            self.push_gone(channel, user, GoneReason::Stopped);
        }
        if self.channels.get(channel).is_some_and(Channel::is_idle) {
            self.channels.remove(channel);
        }
        Ok(())
    }

    fn push_gone(&mut self, channel: &ChannelName, user: UserId, reason: GoneReason) {
        let push = ServerMessage::LocationGone {
            channel: channel.clone(),
            user: user.clone(),
            reason,
        };
        self.broadcast_latest(channel, user, &push);
    }

    /// Fans a latest-value update out through each subscriber's conflating
    /// lane: never a backlog, never a slow-consumer disconnect.
    fn broadcast_latest(&mut self, channel: &ChannelName, user: UserId, message: &ServerMessage) {
        let Some(entry) = self.channels.get(channel) else {
            return;
        };
        let mut encoded = Encoded::new(message);
        let key = (channel.clone(), user);
        let mut n_deliveries = 0;
        for outbox in entry.subscribers.values() {
            outbox.push_latest(key.clone(), encoded.frame(outbox.wire()));
            n_deliveries += 1;
        }
        self.namespace_stats(channel).n_deliveries += n_deliveries;
    }

    /// Closes every connection (graceful shutdown), sending what is queued
    /// first.
    pub fn close_all(&mut self, code: CloseCode, reason: &str) {
        for connection in self.connections.values() {
            connection.outbox.close(code, reason, true);
        }
    }

    fn broadcast(
        &mut self,
        channel: &ChannelName,
        message: &ServerMessage,
        except: Option<ConnectionId>,
    ) {
        let Some(entry) = self.channels.get(channel) else {
            return;
        };
        let mut encoded = Encoded::new(message);
        let mut n_deliveries = 0;
        let mut n_drops = 0;
        let mut slow = Vec::new();
        let mut handover = Handover::default();
        for (connection_id, outbox) in &entry.subscribers {
            if Some(*connection_id) == except {
                continue;
            }
            match outbox.push_to(encoded.frame(outbox.wire()), &mut handover) {
                Ok(()) => n_deliveries += 1,
                Err(PushError::Full) => {
                    n_drops += 1;
                    slow.push(outbox.clone());
                }
                Err(PushError::Closed) => n_drops += 1,
            }
        }
        // The flusher starts on them now.
        drop(handover);
        let stats = self.namespace_stats(channel);
        stats.n_deliveries += n_deliveries;
        stats.n_drops += n_drops;
        for outbox in slow {
            self.close_slow_consumer(&outbox);
        }
    }

    fn push(&mut self, outbox: &Outbox, frame: Frame) {
        if outbox.push(frame) == Err(PushError::Full) {
            self.close_slow_consumer(outbox);
        }
    }

    fn close_slow_consumer(&mut self, outbox: &Outbox) {
        if outbox.close(
            CloseCode::SlowConsumer,
            "outbound queue full: the client reads too slowly",
            false,
        ) {
            self.stats.n_slow_consumers += 1;
        }
    }

    /// Cross-checks the indexes: every subscription is recorded on both the
    /// connection and the channel, and presence counts match.
    #[cfg(test)]
    pub fn check_invariants(&self) {
        for (connection_id, connection) in &self.connections {
            for channel in &connection.channels {
                let entry = self
                    .channels
                    .get(channel)
                    .expect("subscribed channel exists");
                assert!(entry.subscribers.contains_key(connection_id));
            }
        }
        for (channel, entry) in &self.channels {
            for (connection_id, outbox) in &entry.subscribers {
                let connection = self
                    .connections
                    .get(connection_id)
                    .expect("subscriber exists");
                assert!(connection.channels.contains(channel));
                assert!(outbox.same_queue(&connection.outbox));
            }
            match &entry.presence {
                // Other nodes' leases count too: each local subscriber's
                // own lease must be among them.
                Some(presence) if self.clustered => {
                    for connection_id in entry.subscribers.keys() {
                        let connection = &self.connections[connection_id];
                        if let Some(lease) = connection.leases.get(channel) {
                            assert!(presence.leases().any(|counted| counted == lease));
                            assert!(presence.contains(&connection.user.user));
                        }
                    }
                }
                Some(presence) => {
                    assert_eq!(
                        presence.n_connections(),
                        entry.subscribers.len(),
                        "{channel}"
                    );
                    for connection_id in entry.subscribers.keys() {
                        assert!(presence.contains(&self.connections[connection_id].user.user));
                    }
                }
                None => {}
            }
            assert!(
                !entry.subscribers.is_empty()
                    || entry.history.is_some()
                    || entry.values.is_some()
                    || entry.synced.is_some(),
                "{channel} kept with nothing in it"
            );
        }
    }
}

fn wrong_kind(channel: &ChannelName, message: &str) -> HubError {
    HubError::new(ErrorCode::WrongKind, format!("{channel}: {message}"))
}

/// A fresh, unguessable stream epoch. It changes whenever a channel's history
/// starts over, so old positions are never mistaken for current ones.
pub fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
