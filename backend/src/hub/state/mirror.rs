//! Cluster mode: a node's channels are copies of the cluster's.
//!
//! Redis holds each channel's stream (epoch, offsets, recent publications)
//! and its presence leases; every node that has subscribers on a channel
//! follows it through one Redis pub/sub subscription and keeps a copy here.
//! Subscribing, recovery, history and presence queries are then answered
//! from the copy, under the same lock as delivery, exactly as on a single
//! node: nothing can fall between a subscriber's recovered publications and
//! its first live one.
//!
//! The copy changes only through the events the cluster hands in, in the
//! order Redis published them: [`HubState::sync_channel`] (a snapshot when
//! the node starts following a channel, or again after a broker outage),
//! [`HubState::apply_event`] (one publication or lease change), and
//! [`HubState::fill_gap`] (publications a lost pub/sub message left out).
//! What cannot be made continuous is reset: the channel's local
//! subscribers are closed with [`CloseCode::StreamReset`] and recover from
//! their last position on reconnect, getting `recovered: false` where the
//! cluster lost history.

use std::collections::HashSet;
use std::time::Duration;

use rookery_common::{
    ChannelName, CloseCode, GoneReason, Publication, ServerMessage, SharedLocation, StreamPosition,
    UserId, UserInfo,
};
use tokio::time::Instant;

use super::super::HubError;
use super::super::history::{Applied, History};
use super::super::latest::LatestValues;
use super::super::namespace::ChannelKind;
use super::super::presence::Presence;
use super::HubState;

/// A channel the cluster follows.
#[derive(Debug)]
pub struct Synced {
    /// Since when no local connection has been subscribed.
    pub(super) idle_since: Option<Instant>,
}

/// One change to a channel, as every node receives it from Redis.
#[derive(Debug, Clone, PartialEq)]
pub enum ClusterEvent {
    /// A publication, stamped by Redis when the channel keeps history.
    Publication(Publication),
    /// A connection somewhere in the cluster holds a presence lease.
    LeaseJoined { lease: String, member: UserInfo },
    /// A lease ended: released by its node, or expired with it.
    LeaseLeft { lease: String },
    /// A sharer's new position in a latest-value channel.
    Located(SharedLocation),
    /// A sharer stopped, or their position expired in Redis.
    Gone { user: UserId, reason: GoneReason },
}

/// A channel's state in Redis when a node starts following it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelSnapshot {
    /// Empty when the channel has no stream yet.
    pub epoch: String,
    pub top: u64,
    /// The newest kept publications, oldest first, with positions.
    pub publications: Vec<Publication>,
    /// Live presence leases: (lease id, member).
    pub leases: Vec<(String, UserInfo)>,
    /// Latest-value channels: the current positions.
    pub locations: Vec<SharedLocation>,
}

/// Publications missing from a channel's copy: offsets `from..=to` of the
/// epoch `epoch` must be fetched and handed to [`HubState::fill_gap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub epoch: String,
    pub from: u64,
    pub to: u64,
}

/// How a resync went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// The node was not following the channel: the copy is new.
    Started,
    /// The copy carried on: missing publications were delivered in order.
    Continued,
    /// The stream could not be continued (the broker lost it): local
    /// subscribers were closed with [`CloseCode::StreamReset`].
    Reset,
}

impl HubState {
    pub fn is_synced(&self, channel: &ChannelName) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|entry| entry.synced.is_some())
    }

    /// Marks a followed channel as in use right now, so that it is not
    /// let go while a subscribe is on its way (see `unpin_idle`).
    pub fn touch_synced(&mut self, channel: &ChannelName, now: Instant) {
        if let Some(entry) = self.channels.get_mut(channel)
            && let Some(synced) = &mut entry.synced
            && entry.subscribers.is_empty()
        {
            synced.idle_since = Some(now);
        }
    }

    /// The publications the copy lacks up to `offset`, when a client's
    /// position (from a node that was ahead) is past the copy's newest.
    pub fn gap_to(&self, channel: &ChannelName, offset: u64) -> Option<Gap> {
        let history = self.channels.get(channel)?.history.as_ref()?;
        let position = history.position();
        (offset > position.offset).then(|| Gap {
            epoch: position.epoch,
            from: position.offset + 1,
            to: offset,
        })
    }

    /// Whether `since` is in the copy's epoch but past its newest offset.
    pub fn is_behind(&self, channel: &ChannelName, since: &StreamPosition) -> bool {
        self.channels
            .get(channel)
            .and_then(|entry| entry.history.as_ref())
            .is_some_and(|history| {
                let position = history.position();
                position.epoch == since.epoch && since.offset > position.offset
            })
    }

    /// The channels this node follows.
    pub fn synced_channels(&self) -> Vec<ChannelName> {
        self.channels
            .iter()
            .filter(|(_, entry)| entry.synced.is_some())
            .map(|(channel, _)| channel.clone())
            .collect()
    }

    /// Takes the cluster's state of `channel`: starts following it, or,
    /// when already following (after a broker outage), carries the copy on
    /// from where it was or resets it.
    pub fn sync_channel(
        &mut self,
        channel: &ChannelName,
        snapshot: ChannelSnapshot,
        now: Instant,
        now_ms: u64,
    ) -> Result<Resync, HubError> {
        self.resync(channel, snapshot, false, now, now_ms)
    }

    /// Replaces a copy that cannot be continued (a gap Redis no longer
    /// holds); its local subscribers are closed so that they recover.
    pub fn reset_channel(
        &mut self,
        channel: &ChannelName,
        snapshot: ChannelSnapshot,
        now: Instant,
        now_ms: u64,
    ) -> Result<Resync, HubError> {
        self.resync(channel, snapshot, true, now, now_ms)
    }

    fn resync(
        &mut self,
        channel: &ChannelName,
        snapshot: ChannelSnapshot,
        force_reset: bool,
        now: Instant,
        now_ms: u64,
    ) -> Result<Resync, HubError> {
        let namespace = self.namespace(channel)?.clone();
        let restored = |snapshot: &ChannelSnapshot| {
            (namespace.history_size > 0).then(|| {
                History::restore(
                    snapshot.epoch.clone(),
                    snapshot.top,
                    snapshot.publications.clone(),
                    namespace.history_size,
                    namespace.history_ttl,
                    now,
                    now_ms,
                )
            })
        };
        let entry = self.channel_entry(channel)?;
        if entry.synced.is_none() {
            // Not followed until now, so no local subscriber depends on
            // what was here.
            entry.history = restored(&snapshot);
            entry.presence = namespace.presence.then(|| {
                let mut presence = Presence::default();
                for (lease, member) in &snapshot.leases {
                    presence.join_lease(lease, member);
                }
                presence
            });
            entry.values = entry.values.is_some().then(|| {
                let mut values = LatestValues::default();
                for shared in &snapshot.locations {
                    values.put(shared.clone(), now);
                }
                values
            });
            entry.synced = Some(Synced {
                idle_since: entry.subscribers.is_empty().then_some(now),
            });
            return Ok(Resync::Started);
        }

        let continued = !force_reset
            && match &entry.history {
                // Without history nothing can show what was missed while
                // the node was away: its subscribers must be told.
                None => namespace.kind != ChannelKind::Stream,
                Some(history) => {
                    let position = history.position();
                    position.epoch == snapshot.epoch
                        && snapshot.top >= position.offset
                        && (snapshot.top == position.offset
                            || snapshot.publications.first().is_some_and(|first| {
                                first
                                    .position
                                    .as_ref()
                                    .is_some_and(|p| p.offset <= position.offset + 1)
                            }))
                }
            };
        self.sync_presence(channel, &snapshot.leases);
        self.sync_locations(channel, &snapshot.locations, now);
        if continued {
            for publication in snapshot.publications {
                // Only the ones after the copy's top are appended.
                let _ = self.apply_publication(channel, publication, now, now_ms);
            }
            Ok(Resync::Continued)
        } else {
            let history = restored(&snapshot);
            if let Some(entry) = self.channels.get_mut(channel) {
                entry.history = history;
            }
            self.close_subscribers(channel);
            Ok(Resync::Reset)
        }
    }

    /// Applies one event from Redis. A publication that does not follow on
    /// from the copy's newest is not delivered; the gap to fetch is
    /// returned instead.
    pub fn apply_event(
        &mut self,
        channel: &ChannelName,
        event: ClusterEvent,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), Gap> {
        if !self.is_synced(channel) {
            // A message still in flight after the node stopped following.
            return Ok(());
        }
        match event {
            ClusterEvent::Publication(publication) => {
                self.apply_publication(channel, publication, now, now_ms)
            }
            ClusterEvent::LeaseJoined { lease, member } => {
                let joined = self
                    .channels
                    .get_mut(channel)
                    .and_then(|entry| entry.presence.as_mut())
                    .is_some_and(|presence| presence.join_lease(&lease, &member));
                if joined {
                    self.announce_member(channel, Some(member), None);
                }
                Ok(())
            }
            ClusterEvent::Located(shared) => {
                let user = shared.member.user.clone();
                let Some(values) = self
                    .channels
                    .get_mut(channel)
                    .and_then(|entry| entry.values.as_mut())
                else {
                    return Ok(());
                };
                values.put(shared.clone(), now);
                self.namespace_stats(channel).n_publications += 1;
                let push = ServerMessage::Location {
                    channel: channel.clone(),
                    shared,
                };
                self.broadcast_latest(channel, user, &push);
                Ok(())
            }
            ClusterEvent::Gone { user, reason } => {
                let was_sharing = self
                    .channels
                    .get_mut(channel)
                    .and_then(|entry| entry.values.as_mut())
                    .is_some_and(|values| values.stop(&user));
                if was_sharing {
                    self.push_gone(channel, user, reason);
                }
                Ok(())
            }
            ClusterEvent::LeaseLeft { lease } => {
                let left = self
                    .channels
                    .get_mut(channel)
                    .and_then(|entry| entry.presence.as_mut())
                    .and_then(|presence| presence.leave_lease(&lease));
                if left.is_some() {
                    self.announce_member(channel, None, left);
                }
                Ok(())
            }
        }
    }

    /// Applies publications fetched for a [`Gap`], in order.
    pub fn fill_gap(
        &mut self,
        channel: &ChannelName,
        publications: Vec<Publication>,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), Gap> {
        for publication in publications {
            self.apply_publication(channel, publication, now, now_ms)?;
        }
        Ok(())
    }

    /// Stops following channels no local connection has subscribed to for
    /// `linger`; returns them, for the cluster to unsubscribe.
    pub fn unpin_idle(&mut self, now: Instant, linger: Duration) -> Vec<ChannelName> {
        let mut unpinned = Vec::new();
        for (channel, entry) in &mut self.channels {
            let idle = entry.subscribers.is_empty()
                && entry
                    .synced
                    .as_ref()
                    .and_then(|synced| synced.idle_since)
                    .is_some_and(|since| now.duration_since(since) >= linger);
            if idle {
                entry.synced = None;
                // What is kept belongs to the cluster; a later follower
                // reloads it.
                entry.history = None;
                entry.presence = None;
                unpinned.push(channel.clone());
            }
        }
        self.channels.retain(|_, entry| !entry.is_idle());
        unpinned
    }

    /// Every presence lease this node's connections hold: (channel, lease,
    /// member), for the cluster to keep alive in Redis.
    pub fn local_leases(&self) -> Vec<(ChannelName, String, UserInfo)> {
        self.connections
            .values()
            .flat_map(|connection| {
                connection.leases.iter().map(|(channel, lease)| {
                    (channel.clone(), lease.clone(), connection.user.clone())
                })
            })
            .collect()
    }

    /// Leases given up since the last call, for the cluster to remove.
    pub fn take_released_leases(&mut self) -> Vec<(ChannelName, String)> {
        std::mem::take(&mut self.released)
    }

    fn apply_publication(
        &mut self,
        channel: &ChannelName,
        publication: Publication,
        now: Instant,
        now_ms: u64,
    ) -> Result<(), Gap> {
        let Some(entry) = self.channels.get_mut(channel) else {
            return Ok(());
        };
        if let Some(history) = &mut entry.history {
            let to = publication.position.as_ref().map_or(0, |p| p.offset);
            let epoch = publication
                .position
                .as_ref()
                .map_or_else(String::new, |p| p.epoch.clone());
            match history.apply(publication.clone(), now, now_ms) {
                Applied::Appended => {}
                Applied::Duplicate => return Ok(()),
                Applied::Gap { from } => return Err(Gap { epoch, from, to }),
            }
        }
        self.namespace_stats(channel).n_publications += 1;
        let push = ServerMessage::Publication {
            channel: channel.clone(),
            publication,
        };
        self.broadcast(channel, &push, None);
        Ok(())
    }

    /// Makes the copy's leases the cluster's plus this node's own (which a
    /// restarted Redis may not have again yet), announcing who came and
    /// went.
    fn sync_presence(&mut self, channel: &ChannelName, leases: &[(String, UserInfo)]) {
        let own: Vec<(String, UserInfo)> = self
            .local_leases()
            .into_iter()
            .filter(|(leased, _, _)| leased == channel)
            .map(|(_, lease, member)| (lease, member))
            .collect();
        let Some(presence) = self
            .channels
            .get_mut(channel)
            .and_then(|entry| entry.presence.as_mut())
        else {
            return;
        };
        let wanted: HashSet<&str> = leases
            .iter()
            .chain(&own)
            .map(|(lease, _)| lease.as_str())
            .collect();
        let gone: Vec<String> = presence
            .leases()
            .filter(|lease| !wanted.contains(lease))
            .map(str::to_owned)
            .collect();
        let mut left = Vec::new();
        for lease in gone {
            left.extend(presence.leave_lease(&lease));
        }
        let mut joined = Vec::new();
        for (lease, member) in leases.iter().chain(&own) {
            if presence.join_lease(lease, member) {
                joined.push(member.clone());
            }
        }
        for member in left {
            self.announce_member(channel, None, Some(member));
        }
        for member in joined {
            self.announce_member(channel, Some(member), None);
        }
    }

    /// Makes the copy's positions the cluster's, telling subscribers what
    /// moved, came or went.
    fn sync_locations(
        &mut self,
        channel: &ChannelName,
        locations: &[SharedLocation],
        now: Instant,
    ) {
        let Some(values) = self
            .channels
            .get_mut(channel)
            .and_then(|entry| entry.values.as_mut())
        else {
            return;
        };
        let current: HashSet<&UserId> = locations.iter().map(|s| &s.member.user).collect();
        let gone: Vec<UserId> = values
            .users()
            .filter(|user| !current.contains(user))
            .cloned()
            .collect();
        for user in &gone {
            values.stop(user);
        }
        for shared in locations {
            values.put(shared.clone(), now);
        }
        for user in gone {
            self.push_gone(channel, user, GoneReason::Expired);
        }
        for shared in locations {
            let push = ServerMessage::Location {
                channel: channel.clone(),
                shared: shared.clone(),
            };
            self.broadcast_latest(channel, shared.member.user.clone(), &push);
        }
    }

    fn announce_member(
        &mut self,
        channel: &ChannelName,
        joined: Option<UserInfo>,
        left: Option<UserInfo>,
    ) {
        if !self.namespace(channel).is_ok_and(|ns| ns.join_leave) {
            return;
        }
        let push = match (joined, left) {
            (Some(member), _) => ServerMessage::Join {
                channel: channel.clone(),
                member,
            },
            (None, Some(member)) => ServerMessage::Leave {
                channel: channel.clone(),
                member,
            },
            (None, None) => return,
        };
        self.broadcast(channel, &push, None);
    }

    fn close_subscribers(&mut self, channel: &ChannelName) {
        let Some(entry) = self.channels.get(channel) else {
            return;
        };
        for outbox in entry.subscribers.values() {
            outbox.close(
                CloseCode::StreamReset,
                "the cluster lost its place in this channel's stream; reconnect and recover",
                true,
            );
        }
    }
}
