//! The bounded queue between the hub and one connection's writer task.
//!
//! The hub never waits on a socket: it `push`es encoded frames and, when a
//! connection's queue is full, closes that connection as a slow consumer
//! instead of slowing everyone else down.
//!
//! Latest-value updates take a second, conflating lane: one slot per key,
//! where a newer value replaces an unsent older one. A slow reader of a
//! live map gets the newest position of each sharer, never a backlog, and
//! is never disconnected for it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use rookery_common::{ChannelName, CloseCode, UserId};
use smallvec::SmallVec;
use tokio::sync::Notify;

/// One encoded text frame. Cloning is a reference-count increment, so a
/// publication is encoded once and shared by every subscriber's queue.
pub type Frame = Utf8Bytes;

/// How the connection should end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub code: CloseCode,
    pub reason: String,
    /// Send what is already queued before closing (graceful shutdown), or
    /// drop it (a slow consumer would never read it anyway).
    pub drain: bool,
}

/// A slot of the conflating lane: one sharer in one channel.
pub type LaneKey = (ChannelName, UserId);

#[derive(Debug, Default)]
struct LaneSlots {
    frames: HashMap<LaneKey, Frame>,
    /// Keys in the order they first became pending, so no sharer starves.
    order: VecDeque<LaneKey>,
}

/// Everything one connection's queue holds, in one allocation: an idle
/// connection keeps only this (the queues allocate when used and are let
/// go once drained). A channel per queue held over a kilobyte each.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the writer; keeps a permit when it is not waiting yet.
    wake: Notify,
    /// A close was requested (also in `state`; read without the lock on
    /// every push).
    closing: AtomicBool,
    /// Live `Outbox` handles: when the last goes, the hub has forgotten the
    /// connection.
    senders: AtomicUsize,
}

/// Frames in the order they were queued. The first few are held inline: a
/// delivery to an idle connection then touches no allocation but the
/// outbox's own (fan-out to 10,000 connections pushes to 10,000 cold
/// outboxes).
type Frames = SmallVec<[Frame; 2]>;

#[derive(Debug, Default)]
struct State {
    frames: Frames,
    /// Frames of the batch the writer took last, counted against the
    /// capacity until it takes the next: the queue bounds what is not yet
    /// written, as a channel would.
    taken: usize,
    /// Allocated for connections that receive latest-value updates only.
    lane: Option<Box<LaneSlots>>,
    closing: Option<Closing>,
    receiver_gone: bool,
}

/// The hub's end of a connection's queue.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    capacity: usize,
}

/// The writer task's end.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
    /// Frames taken from the queue in one go, written one by one: one lock
    /// per batch, not per frame.
    batch: smallvec::IntoIter<[Frame; 2]>,
}

#[derive(Debug, PartialEq)]
pub enum Next {
    Frame(Frame),
    Close(Closing),
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The queue is full: the client is not reading fast enough.
    Full,
    /// The connection is already gone or closing.
    Closed,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("outbox lock")
    }
}

impl Outbox {
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            senders: AtomicUsize::new(1),
        });
        (
            Outbox {
                shared: shared.clone(),
                capacity: capacity.max(1),
            },
            OutboxReceiver {
                shared,
                batch: Frames::new().into_iter(),
            },
        )
    }

    /// Queues the newest value for `key`, replacing an unsent older one.
    pub fn push_latest(&self, key: LaneKey, frame: Frame) {
        if self.is_closing() {
            return;
        }
        let mut state = self.shared.state();
        if state.receiver_gone {
            return;
        }
        let slots = state.lane.get_or_insert_with(Box::default);
        if slots.frames.insert(key.clone(), frame).is_none() {
            slots.order.push_back(key);
        }
        drop(state);
        self.shared.wake.notify_one();
    }

    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        if self.is_closing() {
            return Err(PushError::Closed);
        }
        let mut state = self.shared.state();
        if state.receiver_gone {
            return Err(PushError::Closed);
        }
        if state.frames.len() + state.taken >= self.capacity {
            return Err(PushError::Full);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push(frame);
        drop(state);
        // A queue that was not empty has woken the writer already, which
        // has not taken it yet: one wake-up per batch, not per frame.
        if was_empty {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Asks the writer to close the connection. Returns false if a close was
    /// already requested.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>, drain: bool) -> bool {
        let mut state = self.shared.state();
        if state.closing.is_some() {
            return false;
        }
        state.closing = Some(Closing {
            code,
            reason: reason.into(),
            drain,
        });
        self.shared.closing.store(true, Ordering::Release);
        drop(state);
        self.shared.wake.notify_one();
        true
    }

    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
            capacity: self.capacity,
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receiver_gone = true;
        // Nobody will write these; the hub may hold its handle a while.
        state.frames = Frames::new();
        state.lane = None;
    }
}

impl OutboxReceiver {
    /// The next frame to write, or the request to close. A close without
    /// `drain` overtakes queued frames; with `drain` it waits behind them.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(next) = self.take() {
                return next;
            }
            if self.shared.senders.load(Ordering::Acquire) == 0 {
                // Every sender is gone: the hub forgot this connection.
                return Next::Close(Closing {
                    code: CloseCode::InternalError,
                    reason: "connection dropped by the hub".into(),
                    drain: false,
                });
            }
            self.shared.wake.notified().await;
        }
    }

    /// A frame already queued, without waiting (for batching writes).
    pub fn try_next_frame(&mut self) -> Option<Frame> {
        match self.take()? {
            Next::Frame(frame) => Some(frame),
            // Stays requested: `next` returns it.
            Next::Close(_) => None,
        }
    }

    /// The next frame of the batch, taking a new batch when it is empty.
    /// Ordered frames come before latest-value ones: a subscription's
    /// snapshot must reach the client before the updates that follow it.
    fn take(&mut self) -> Option<Next> {
        if self.shared.closing.load(Ordering::Acquire) {
            let state = self.shared.state();
            if let Some(closing) = &state.closing
                && !closing.drain
            {
                return Some(Next::Close(closing.clone()));
            }
        }
        if let Some(frame) = self.batch.next() {
            return Some(Next::Frame(frame));
        }
        // Written: a burst's spilled buffer is let go.
        self.batch = Frames::new().into_iter();
        let mut state = self.shared.state();
        state.taken = state.frames.len();
        if !state.frames.is_empty() {
            // The queue starts again inline; a burst's spilled buffer goes
            // with the batch once written.
            self.batch = std::mem::take(&mut state.frames).into_iter();
            drop(state);
            return self.batch.next().map(Next::Frame);
        }
        if let Some(frame) = take_latest(&mut state.lane) {
            return Some(Next::Frame(frame));
        }
        state.closing.clone().map(Next::Close)
    }
}

fn take_latest(lane: &mut Option<Box<LaneSlots>>) -> Option<Frame> {
    let slots = lane.as_mut()?;
    while let Some(key) = slots.order.pop_front() {
        if let Some(frame) = slots.frames.remove(&key) {
            return Some(frame);
        }
    }
    // Drained: an idle viewer holds no lane.
    *lane = None;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_reports_full_and_close_overtakes() {
        let (outbox, mut receiver) = Outbox::new(2);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.push(Frame::from_static("b")).unwrap();
        assert_eq!(outbox.push(Frame::from_static("c")), Err(PushError::Full));
        assert!(outbox.close(CloseCode::SlowConsumer, "slow", false));
        assert!(!outbox.close(CloseCode::Shutdown, "later", true));
        assert_eq!(outbox.push(Frame::from_static("d")), Err(PushError::Closed));
        match receiver.next().await {
            Next::Close(closing) => assert_eq!(closing.code, CloseCode::SlowConsumer),
            other => panic!("expected close, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_taken_but_not_yet_written_count_against_the_capacity() {
        // A writer stuck sending a batch to a slow socket: the hub may not
        // queue another capacity's worth behind it.
        let (outbox, mut receiver) = Outbox::new(2);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.push(Frame::from_static("b")).unwrap();
        assert_eq!(receiver.next().await, Next::Frame(Frame::from_static("a")));
        assert_eq!(outbox.push(Frame::from_static("c")), Err(PushError::Full));
        assert_eq!(receiver.try_next_frame(), Some(Frame::from_static("b")));
        // Written: the writer asks again and the room comes back.
        assert_eq!(receiver.try_next_frame(), None);
        outbox.push(Frame::from_static("c")).unwrap();
        outbox.push(Frame::from_static("d")).unwrap();
        assert_eq!(outbox.push(Frame::from_static("e")), Err(PushError::Full));
    }

    #[tokio::test]
    async fn the_latest_lane_keeps_only_the_newest_per_key_behind_ordered_frames() {
        let (outbox, mut receiver) = Outbox::new(4);
        let channel = ChannelName::parse("map:x").unwrap();
        let key = |user: &str| (channel.clone(), UserId(user.into()));
        outbox.push(Frame::from_static("snapshot")).unwrap();
        for n in 0..100 {
            outbox.push_latest(key("ada"), Frame::from(format!("ada {n}")));
        }
        outbox.push_latest(key("bob"), Frame::from_static("bob 0"));
        let mut received = Vec::new();
        while let Some(frame) = receiver.try_next_frame() {
            received.push(frame.as_str().to_owned());
        }
        assert_eq!(received, ["snapshot", "ada 99", "bob 0"]);
    }

    #[tokio::test]
    async fn draining_close_waits_behind_queued_frames() {
        let (outbox, mut receiver) = Outbox::new(4);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.close(CloseCode::Shutdown, "bye", true);
        assert_eq!(receiver.next().await, Next::Frame(Frame::from_static("a")));
        assert!(matches!(receiver.next().await, Next::Close(c) if c.code == CloseCode::Shutdown));
    }
}
