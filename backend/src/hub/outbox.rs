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
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use rookery_common::{ChannelName, CloseCode, UserId};
use tokio::sync::{Notify, mpsc};

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

#[derive(Debug, Default)]
struct CloseSignal {
    /// The first close request wins; later ones are ignored.
    closing: Mutex<Option<Closing>>,
    notify: Notify,
}

/// A slot of the conflating lane: one sharer in one channel.
pub type LaneKey = (ChannelName, UserId);

#[derive(Debug, Default)]
struct Lane {
    pending: Mutex<LaneSlots>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct LaneSlots {
    frames: HashMap<LaneKey, Frame>,
    /// Keys in the order they first became pending, so no sharer starves.
    order: VecDeque<LaneKey>,
}

/// The hub's end of a connection's queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    frames: mpsc::Sender<Frame>,
    close: Arc<CloseSignal>,
    lane: Arc<Lane>,
}

/// The writer task's end.
#[derive(Debug)]
pub struct OutboxReceiver {
    frames: mpsc::Receiver<Frame>,
    close: Arc<CloseSignal>,
    lane: Arc<Lane>,
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

impl Outbox {
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let (frames_tx, frames_rx) = mpsc::channel(capacity.max(1));
        let close = Arc::new(CloseSignal::default());
        let lane = Arc::new(Lane::default());
        (
            Outbox {
                frames: frames_tx,
                close: close.clone(),
                lane: lane.clone(),
            },
            OutboxReceiver {
                frames: frames_rx,
                close,
                lane,
            },
        )
    }

    /// Queues the newest value for `key`, replacing an unsent older one.
    pub fn push_latest(&self, key: LaneKey, frame: Frame) {
        if self.is_closing() {
            return;
        }
        let mut slots = self.lane.pending.lock().expect("lane lock");
        if slots.frames.insert(key.clone(), frame).is_none() {
            slots.order.push_back(key);
        }
        drop(slots);
        self.lane.notify.notify_one();
    }

    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        if self.is_closing() {
            return Err(PushError::Closed);
        }
        self.frames.try_send(frame).map_err(|error| match error {
            mpsc::error::TrySendError::Full(_) => PushError::Full,
            mpsc::error::TrySendError::Closed(_) => PushError::Closed,
        })
    }

    /// Asks the writer to close the connection. Returns false if a close was
    /// already requested.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>, drain: bool) -> bool {
        let mut closing = self.close.closing.lock().expect("close signal lock");
        if closing.is_some() {
            return false;
        }
        *closing = Some(Closing {
            code,
            reason: reason.into(),
            drain,
        });
        drop(closing);
        // notify_one keeps a permit when the writer is not waiting yet.
        self.close.notify.notify_one();
        true
    }

    pub fn is_closing(&self) -> bool {
        self.close
            .closing
            .lock()
            .expect("close signal lock")
            .is_some()
    }
}

impl OutboxReceiver {
    /// The next frame to write, or the request to close. A close without
    /// `drain` overtakes queued frames; with `drain` it waits behind them.
    pub async fn next(&mut self) -> Next {
        loop {
            let closing = self
                .close
                .closing
                .lock()
                .expect("close signal lock")
                .clone();
            if let Some(closing) = closing {
                if closing.drain
                    && let Ok(frame) = self.frames.try_recv()
                {
                    return Next::Frame(frame);
                }
                return Next::Close(closing);
            }
            // Ordered messages first: a subscription's snapshot must reach
            // the client before the updates that follow it.
            if let Ok(frame) = self.frames.try_recv() {
                return Next::Frame(frame);
            }
            if let Some(frame) = self.take_latest() {
                return Next::Frame(frame);
            }
            tokio::select! {
                biased;
                () = self.close.notify.notified() => {}
                () = self.lane.notify.notified() => {}
                frame = self.frames.recv() => match frame {
                    Some(frame) => return Next::Frame(frame),
                    // Every sender is gone: the hub forgot this connection.
                    None => return Next::Close(Closing {
                        code: CloseCode::InternalError,
                        reason: "connection dropped by the hub".into(),
                        drain: false,
                    }),
                },
            }
        }
    }

    /// A frame already queued, without waiting (for batching writes).
    pub fn try_next_frame(&mut self) -> Option<Frame> {
        if self
            .close
            .closing
            .lock()
            .expect("close signal lock")
            .as_ref()
            .is_some_and(|closing| !closing.drain)
        {
            return None;
        }
        self.frames.try_recv().ok().or_else(|| self.take_latest())
    }

    fn take_latest(&self) -> Option<Frame> {
        let mut slots = self.lane.pending.lock().expect("lane lock");
        while let Some(key) = slots.order.pop_front() {
            if let Some(frame) = slots.frames.remove(&key) {
                return Some(frame);
            }
        }
        None
    }
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
