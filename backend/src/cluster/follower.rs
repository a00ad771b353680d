//! The node's one pub/sub connection: it follows the channels this node's
//! clients use, applies every event to the hub's copies in Redis's order,
//! fills gaps from the stream, and after a lost connection reconnects with
//! backoff and resyncs every copy.
//!
//! Everything that changes which channels are followed runs in this one
//! task, in order with the messages: a channel is never unsubscribed
//! behind a newer subscribe, and stale messages from an earlier period of
//! following are drained before the channel is followed again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use rookery_common::backoff::Backoff;
use rookery_common::{ChannelName, Publication};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{CONNECT_TIMEOUT, Cluster, LINGER, RESPONSE_TIMEOUT, scripts, wire};
use crate::hub::{ChannelSnapshot, Gap, Hub, HubError, unix_time_ms};

/// Counts one load fewer following `note`.
fn unfollow_note(notes: &mut HashMap<String, usize>, note: &str) {
    if let Some(count) = notes.get_mut(note) {
        *count -= 1;
        if *count == 0 {
            notes.remove(note);
        }
    }
}

pub enum Request {
    Follow {
        channel: ChannelName,
        done: oneshot::Sender<Result<(), HubError>>,
    },
    /// A note loaded here (see `cluster::notes`).
    FollowNote {
        note: String,
        done: oneshot::Sender<bool>,
    },
    UnfollowNote {
        note: String,
    },
    /// A client recovers from a position this node's copy has not reached
    /// yet (it came from a node that was ahead): bring the copy up to it.
    CatchUp {
        channel: ChannelName,
        offset: u64,
        done: oneshot::Sender<()>,
    },
}

/// Why the connection is given up and made again.
struct Lost;

/// How often idle channels are let go and the connection is pinged.
const TICK: Duration = Duration::from_secs(1);
/// Channels per SUBSCRIBE when resubscribing after a reconnect.
const SUBSCRIBE_BATCH: usize = 500;
/// After a reconnect, notes are reloaded from the store once at once and
/// once more after this: an edit another node published while this one was
/// away may still have been on its way into the store at the first reload.
const SECOND_RELOAD: Duration = Duration::from_secs(2);

pub async fn run(
    client: redis::Client,
    cluster: Cluster,
    hub: Hub,
    mut requests: mpsc::UnboundedReceiver<Request>,
) {
    let backoff = Backoff {
        initial_ms: 100,
        max_ms: 5_000,
    };
    let mut attempt = 0;
    // Notes followed: kept across reconnects (the hub keeps the channels).
    // Notes followed, with how many loads follow each: kept across
    // reconnects (the hub keeps the channels).
    let mut notes = HashMap::new();
    loop {
        cluster.shared.following.store(false, Ordering::SeqCst);
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub()).await;
        let pubsub = match connected {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                if attempt == 0 {
                    match failed {
                        Ok(Err(error)) => tracing::warn!(%error, "redis: cannot connect; retrying"),
                        _ => tracing::warn!("redis: connect timed out; retrying"),
                    }
                }
                // Nobody waits for a broker that is not there.
                if refuse_waiting(&mut requests, &mut notes) {
                    return;
                }
                let delay = backoff.delay_ms(attempt, rand::random::<f64>());
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut follower = Follower {
            cluster: &cluster,
            hub: &hub,
            notes: &mut notes,
        };
        if follower.resync_all(&mut sink).await.is_err()
            || follower.resync_notes(&mut sink).await.is_err()
            || !cluster.commands_get_through().await
        {
            // Connected, but Redis does not answer as it should (still
            // loading its data, say): wait before trying again.
            let delay = backoff.delay_ms(attempt, rand::random::<f64>());
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            continue;
        }
        if attempt > 0 {
            tracing::info!("redis: connected again; every followed channel resynced");
        }
        attempt = 0;
        cluster.shared.following.store(true, Ordering::SeqCst);
        match follower.serve(&mut sink, &mut stream, &mut requests).await {
            Ok(()) => return,
            Err(Lost) => tracing::warn!("redis: pub/sub connection lost; reconnecting"),
        }
    }
}

/// Answers every waiting request with `unavailable`; true when the node is
/// gone (nobody can send requests any more).
fn refuse_waiting(
    requests: &mut mpsc::UnboundedReceiver<Request>,
    notes: &mut HashMap<String, usize>,
) -> bool {
    loop {
        match requests.try_recv() {
            Ok(Request::Follow { channel, done }) => {
                let _ = done.send(Err(HubError::unavailable(&channel)));
            }
            Ok(Request::FollowNote { done, .. }) => {
                let _ = done.send(false);
            }
            // Counted now: not resubscribed when the connection is back.
            Ok(Request::UnfollowNote { note }) => unfollow_note(notes, &note),
            Ok(Request::CatchUp { done, .. }) => {
                let _ = done.send(());
            }
            Err(mpsc::error::TryRecvError::Empty) => return false,
            Err(mpsc::error::TryRecvError::Disconnected) => return true,
        }
    }
}

struct Follower<'a> {
    cluster: &'a Cluster,
    hub: &'a Hub,
    notes: &'a mut HashMap<String, usize>,
}

impl Follower<'_> {
    async fn serve(
        &mut self,
        sink: &mut PubSubSink,
        stream: &mut PubSubStream,
        requests: &mut mpsc::UnboundedReceiver<Request>,
    ) -> Result<(), Lost> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Err(Lost) };
                    self.handle(&message).await?;
                }
                request = requests.recv() => {
                    let Some(request) = request else { return Ok(()) };
                    // Messages already received belong to before this
                    // request (perhaps to an earlier period of following
                    // this channel): apply them first.
                    while let Some(Some(message)) = stream.next().now_or_never() {
                        self.handle(&message).await?;
                    }
                    match request {
                        Request::Follow { channel, done } => {
                            let followed = self.follow(sink, &channel).await;
                            let lost = followed.is_err();
                            let _ = done.send(followed.map_err(|Lost| HubError::unavailable(&channel)));
                            if lost {
                                return Err(Lost);
                            }
                        }
                        Request::FollowNote { note, done } => {
                            if !self.notes.contains_key(&note) {
                                let subscribed = timed(sink.subscribe(wire::note_channel(&note))).await;
                                if subscribed.is_err() {
                                    let _ = done.send(false);
                                    return Err(Lost);
                                }
                            }
                            *self.notes.entry(note).or_insert(0) += 1;
                            let _ = done.send(true);
                        }
                        Request::UnfollowNote { note } => {
                            unfollow_note(self.notes, &note);
                            if !self.notes.contains_key(&note) {
                                timed(sink.unsubscribe(wire::note_channel(&note))).await?;
                            }
                        }
                        Request::CatchUp { channel, offset, done } => {
                            // What was queued is applied (above); if the copy
                            // is still behind, fetch the rest.
                            let gap = self.hub.with(|hub| hub.gap_to(&channel, offset));
                            if let Some(gap) = gap {
                                self.fill(&channel, gap).await?;
                            }
                            let _ = done.send(());
                        }
                    }
                }
                _ = tick.tick() => {
                    let idle = self.hub.with(|hub| hub.unpin_idle(Instant::now(), LINGER));
                    if !idle.is_empty() {
                        let names: Vec<String> = idle.iter().map(wire::pubsub_channel).collect();
                        timed(sink.unsubscribe(names)).await?;
                    }
                    // A half-open connection would otherwise look healthy.
                    timed(sink.ping::<redis::Value>()).await?;
                }
            }
        }
    }

    /// Subscribes to `channel`, then loads its state: whatever is published
    /// after the subscription took effect arrives as messages, which the
    /// copy takes after the snapshot (older ones are duplicates).
    async fn follow(&mut self, sink: &mut PubSubSink, channel: &ChannelName) -> Result<(), Lost> {
        if self.hub.with(|hub| hub.is_synced(channel)) {
            return Ok(());
        }
        timed(sink.subscribe(wire::pubsub_channel(channel))).await?;
        let snapshot = self.load(channel).await?;
        let synced = self
            .hub
            .with(|hub| hub.sync_channel(channel, snapshot, Instant::now(), unix_time_ms()));
        if let Err(error) = synced {
            tracing::warn!(%channel, %error, "cannot follow");
        }
        Ok(())
    }

    /// After (re)connecting: subscribes to every followed channel again
    /// and resyncs each copy.
    async fn resync_all(&mut self, sink: &mut PubSubSink) -> Result<(), Lost> {
        let followed = self.hub.with(|hub| hub.synced_channels());
        for batch in followed.chunks(SUBSCRIBE_BATCH) {
            let names: Vec<String> = batch.iter().map(wire::pubsub_channel).collect();
            timed(sink.subscribe(names)).await?;
        }
        for channel in &followed {
            let snapshot = self.load(channel).await?;
            let resync = self
                .hub
                .with(|hub| hub.sync_channel(channel, snapshot, Instant::now(), unix_time_ms()));
            if let Ok(resync) = resync {
                tracing::debug!(%channel, ?resync, "resynced");
            }
        }
        Ok(())
    }

    /// After (re)connecting: follows every loaded note again and merges
    /// in what the store holds (twice: see [`SECOND_RELOAD`]).
    async fn resync_notes(&mut self, sink: &mut PubSubSink) -> Result<(), Lost> {
        let Some(notes) = self.cluster.shared.notes.get().cloned() else {
            return Ok(());
        };
        let followed: Vec<String> = self.notes.keys().cloned().collect();
        for batch in followed.chunks(SUBSCRIBE_BATCH) {
            let names: Vec<String> = batch.iter().map(|note| wire::note_channel(note)).collect();
            timed(sink.subscribe(names)).await?;
        }
        if followed.is_empty() {
            return Ok(());
        }
        tokio::spawn(async move {
            for pass in 0..2 {
                if pass == 1 {
                    tokio::time::sleep(SECOND_RELOAD).await;
                }
                for note in &followed {
                    notes.resync_from_store(note).await;
                }
            }
        });
        Ok(())
    }

    async fn handle(&mut self, message: &redis::Msg) -> Result<(), Lost> {
        if let Some(note) = wire::note_of(message.get_channel_name()) {
            if let Some((node, change)) = super::notes::decode(message.get_payload_bytes())
                && node != self.cluster.node()
                && let Some(notes) = self.cluster.shared.notes.get()
            {
                notes.remote_change(note, change);
            }
            return Ok(());
        }
        let Some(channel) = wire::channel_of(message.get_channel_name()) else {
            return Ok(());
        };
        let Some(event) = wire::decode_event(message.get_payload_bytes()) else {
            tracing::warn!(%channel, "redis: a message this node cannot read; ignored");
            return Ok(());
        };
        let applied = self
            .hub
            .with(|hub| hub.apply_event(&channel, event, Instant::now(), unix_time_ms()));
        match applied {
            Ok(()) => Ok(()),
            Err(gap) => self.fill(&channel, gap).await,
        }
    }

    /// Fetches what a gap left out; resets the copy when Redis no longer
    /// has it either.
    async fn fill(&mut self, channel: &ChannelName, gap: Gap) -> Result<(), Lost> {
        let fetched = self.range(channel, gap.from, gap.to).await?;
        let filled = match fetched {
            Some((epoch, publications))
                if epoch == gap.epoch
                    && publications
                        .first()
                        .and_then(|p| p.position.as_ref())
                        .map(|p| p.offset)
                        == Some(gap.from) =>
            {
                self.hub
                    .with(|hub| hub.fill_gap(channel, publications, Instant::now(), unix_time_ms()))
                    .is_ok()
            }
            _ => false,
        };
        if !filled {
            tracing::warn!(%channel, from = gap.from, to = gap.to, "stream gap Redis no longer holds; resetting the channel");
            let snapshot = self.load(channel).await?;
            let _ = self
                .hub
                .with(|hub| hub.reset_channel(channel, snapshot, Instant::now(), unix_time_ms()));
        }
        Ok(())
    }

    async fn load(&mut self, channel: &ChannelName) -> Result<ChannelSnapshot, Lost> {
        let Ok(namespace) = self.hub.with(|hub| hub.namespace_config(channel)) else {
            return Ok(ChannelSnapshot::default());
        };
        type Loaded = (
            String,
            String,
            Vec<wire::StreamEntry>,
            Vec<String>,
            Vec<String>,
        );
        let loaded: redis::RedisResult<Loaded> = scripts::LOAD
            .key(wire::stream_key(channel))
            .key(wire::meta_key(channel))
            .key(wire::presence_key(channel))
            .key(wire::leases_key())
            .key(wire::positions_key(channel))
            .key(wire::position_expiries_key())
            .arg(namespace.history_size)
            .arg(channel.as_str())
            .arg(crate::hub::new_epoch())
            .arg(super::meta_ttl_ms(&namespace))
            .invoke_async(&mut self.cluster.commands())
            .await;
        let (epoch, top, mut entries, leases, locations) =
            self.cluster.outcome(loaded, channel).map_err(|_| Lost)?;
        entries.reverse();
        Ok(ChannelSnapshot {
            publications: wire::publications(&epoch, &entries),
            top: top.parse().unwrap_or(0),
            epoch,
            leases: wire::leases(&leases),
            locations: wire::locations(&locations),
        })
    }

    async fn range(
        &mut self,
        channel: &ChannelName,
        from: u64,
        to: u64,
    ) -> Result<Option<(String, Vec<Publication>)>, Lost> {
        let fetched: redis::RedisResult<(String, Vec<wire::StreamEntry>)> = scripts::RANGE
            .key(wire::stream_key(channel))
            .key(wire::meta_key(channel))
            .arg(from)
            .arg(to)
            .invoke_async(&mut self.cluster.commands())
            .await;
        let (epoch, entries) = self.cluster.outcome(fetched, channel).map_err(|_| Lost)?;
        if epoch.is_empty() {
            return Ok(None);
        }
        let publications = wire::publications(&epoch, &entries);
        Ok(Some((epoch, publications)))
    }
}

async fn timed<T>(
    request: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Lost> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => {
            tracing::warn!(%error, "redis pub/sub request failed");
            Err(Lost)
        }
        Err(_) => {
            tracing::warn!("redis pub/sub request timed out");
            Err(Lost)
        }
    }
}
