//! The bounded queue between the hub and one connection's writer task.
//!
//! The hub never waits on a socket: it `push`es encoded frames and, when a
//! connection's queue is full, closes that connection as a slow consumer
//! instead of slowing everyone else down.

use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use rookery_common::CloseCode;
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

/// The hub's end of a connection's queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    frames: mpsc::Sender<Frame>,
    close: Arc<CloseSignal>,
}

/// The writer task's end.
#[derive(Debug)]
pub struct OutboxReceiver {
    frames: mpsc::Receiver<Frame>,
    close: Arc<CloseSignal>,
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
        (
            Outbox {
                frames: frames_tx,
                close: close.clone(),
            },
            OutboxReceiver {
                frames: frames_rx,
                close,
            },
        )
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
            tokio::select! {
                biased;
                () = self.close.notify.notified() => {}
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
        self.frames.try_recv().ok()
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
    async fn draining_close_waits_behind_queued_frames() {
        let (outbox, mut receiver) = Outbox::new(4);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.close(CloseCode::Shutdown, "bye", true);
        assert_eq!(receiver.next().await, Next::Frame(Frame::from_static("a")));
        assert!(matches!(receiver.next().await, Next::Close(c) if c.code == CloseCode::Shutdown));
    }
}
