//! Remembers recent idempotency keys so a retried publish is applied once.

use std::collections::{HashMap, VecDeque};

use rookery_common::{ChannelName, StreamPosition};
use tokio::time::Instant;

/// Keys per channel with the position their publication got, until they
/// expire. Keys are scoped to the channel: two channels may reuse one key.
#[derive(Debug, Default)]
pub struct IdempotencyCache {
    positions: HashMap<(ChannelName, String), Option<StreamPosition>>,
    /// Insertion order with expiry times; the window is the same for every
    /// key, so this is also expiry order.
    expiries: VecDeque<(Instant, ChannelName, String)>,
}

impl IdempotencyCache {
    /// The outcome of the first publish with this key, if it is still
    /// remembered (`Some(None)`: published, without a position).
    pub fn get(
        &mut self,
        channel: &ChannelName,
        key: &str,
        now: Instant,
    ) -> Option<Option<StreamPosition>> {
        self.expire(now);
        self.positions
            .get(&(channel.clone(), key.to_owned()))
            .cloned()
    }

    pub fn insert(
        &mut self,
        channel: &ChannelName,
        key: &str,
        position: Option<StreamPosition>,
        expires: Instant,
    ) {
        self.positions
            .insert((channel.clone(), key.to_owned()), position);
        self.expiries
            .push_back((expires, channel.clone(), key.to_owned()));
    }

    pub fn expire(&mut self, now: Instant) {
        while let Some((expires, _, _)) = self.expiries.front() {
            if *expires > now {
                break;
            }
            let (_, channel, key) = self.expiries.pop_front().expect("front exists");
            self.positions.remove(&(channel, key));
        }
    }
}
