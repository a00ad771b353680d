//! The bounded queue between the hub and one connection's socket.
//!
//! The hub never waits on a socket: it `push`es encoded frames and, when a
//! connection's queue is full, closes that connection as a slow consumer
//! instead of slowing everyone else down.
//!
//! A plain TCP socket's frames are written by the server's [`Flusher`]
//! rather than the connection's task when the task has nothing under way:
//! a publication to 10,000 quiet subscribers then wakes one task, not
//! 10,000, and each socket gets one `send` for what queued meanwhile (the
//! way uWebSockets drains its sockets at the end of a loop iteration).
//! Under load the flusher runs behind and more frames go out per `send`.
//! Whatever the kernel does not take at once stays queued (with how much
//! of its first frame went out) and the connection's task finishes it.
//!
//! Latest-value updates take a second, conflating lane: one slot per key,
//! where a newer value replaces an unsent older one. A slow reader of a
//! live map gets the newest position of each sharer, never a backlog, and
//! is never disconnected for it.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use rookery_common::{ChannelName, CloseCode, UserId};
use smallvec::SmallVec;
use tokio::net::TcpStream;

/// One encoded WebSocket frame. Cloning is a reference-count increment, so
/// a publication is encoded once and shared by every subscriber's queue.
pub use crate::websocket::Frame;
use crate::websocket::frame::{MAX_SLICES, Wire, advance, gather};

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
/// connection keeps only this (the lane allocates when used and is let go
/// once drained; a queue that outgrew its inline room keeps a buffer of
/// at most 16 frames, 256 bytes). A channel per queue held over a
/// kilobyte each.
///
/// In the order written (`repr(C)`), what a delivery touches first: a
/// fan-out to 10,000 subscribers meets 10,000 cold queues, and each cache
/// line a push or a flush touches is a miss. The socket, the close flag,
/// the lock and the hot half of the state sit together behind the
/// reference counts; the cold half (pong, closing) and the waker come
/// after.
#[derive(Debug)]
#[repr(C)]
struct Shared {
    /// A plain TCP connection's socket, which the flusher writes to and
    /// the task reads from (see [`OutboxSocket`]). Here rather than in an
    /// `Arc` of its own: the flusher reads its descriptor for every
    /// delivery, and a separate allocation was one more cold line each
    /// time (a third of the flusher's time at 10,000 subscribers).
    socket: Option<TcpStream>,
    /// A close was requested (also in `state`; read without the lock on
    /// every push).
    closing: AtomicBool,
    state: Mutex<State>,
    /// Wakes the connection's task to write.
    waker: AtomicWaker,
    /// Live `Outbox` handles: when the last goes, the hub has forgotten the
    /// connection.
    senders: AtomicUsize,
}

/// Frames in the order they were queued. The first few are held inline: a
/// delivery to an idle connection then touches no allocation but the
/// outbox's own (fan-out to 10,000 connections pushes to 10,000 cold
/// outboxes).
pub type Frames = SmallVec<[Frame; 2]>;

/// Hot fields first (see [`Shared`]): what a push and the flusher read,
/// then the queue itself (its first frame inline), then what only closing
/// and pings use.
#[derive(Debug, Default)]
#[repr(C)]
struct State {
    /// Frames of the batch the task took last, counted against the
    /// capacity until it takes the next: the queue bounds what is not yet
    /// written, as a channel would. (A `u32`, as the capacity: the two
    /// flags share its word.)
    taken: u32,
    receiver_gone: bool,
    /// The task holds frames it has not finished writing: the flusher may
    /// not write in between.
    busy: bool,
    /// The flusher that may write to the socket (plain TCP, while the
    /// connection is open): taken back before the task writes its close.
    flusher: Option<Arc<Flusher>>,
    /// Allocated for connections that receive latest-value updates only.
    lane: Option<Box<LaneSlots>>,
    /// How much of the first queued frame the flusher sent already.
    head_written: usize,
    frames: Frames,
    /// The answer to the client's last ping, not yet written.
    pong: Option<Frame>,
    closing: Option<Closing>,
}

/// The hub's end of a connection's queue.
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    /// Kept small (with `wire`, in the pointer's shadow): a channel's
    /// subscribers are a map of these, walked for every publication.
    capacity: u32,
    /// How frames for this connection are encoded.
    wire: Wire,
}

/// The connection task's end.
#[derive(Debug)]
pub struct OutboxReceiver {
    shared: Arc<Shared>,
}

/// What [`OutboxReceiver::poll_take`] found.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Frames were moved into the batch (one lock per batch, not per
    /// frame), of whose first this many bytes are written already.
    Frames {
        written: usize,
    },
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
        Outbox::for_wire(capacity, Wire::default())
    }

    /// A queue for a connection that speaks `wire`: whoever pushes encodes
    /// for it.
    pub fn for_wire(capacity: usize, wire: Wire) -> (Outbox, OutboxReceiver) {
        Outbox::build(capacity, wire, None)
    }

    /// A queue for a plain TCP connection, which keeps its `socket`: the
    /// task reads and writes it through [`OutboxReceiver::socket`], and
    /// once [attached](OutboxReceiver::attach) the flusher writes
    /// deliveries into it. The descriptor is closed when the last handle
    /// goes; the task's end shuts the connection down before that.
    pub fn with_socket(capacity: usize, wire: Wire, socket: TcpStream) -> (Outbox, OutboxReceiver) {
        Outbox::build(capacity, wire, Some(socket))
    }

    fn build(capacity: usize, wire: Wire, socket: Option<TcpStream>) -> (Outbox, OutboxReceiver) {
        let shared = Arc::new(Shared {
            socket,
            closing: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            senders: AtomicUsize::new(1),
        });
        (
            Outbox {
                shared: shared.clone(),
                capacity: u32::try_from(capacity.max(1)).unwrap_or(u32::MAX),
                wire,
            },
            OutboxReceiver { shared },
        )
    }

    pub fn wire(&self) -> Wire {
        self.wire
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
        self.shared.waker.wake();
    }

    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        self.push_inner(frame, None)
    }

    /// As [`push`](Self::push), for a fan-out: the queues for the flusher
    /// are collected in `handover`, which hands them over in one go.
    pub fn push_to(&self, frame: Frame, handover: &mut Handover) -> Result<(), PushError> {
        self.push_inner(frame, Some(handover))
    }

    fn push_inner(&self, frame: Frame, handover: Option<&mut Handover>) -> Result<(), PushError> {
        if self.is_closing() {
            return Err(PushError::Closed);
        }
        let mut state = self.shared.state();
        if state.receiver_gone {
            return Err(PushError::Closed);
        }
        if state.frames.len() + state.taken as usize >= self.capacity as usize {
            return Err(PushError::Full);
        }
        let was_empty = state.frames.is_empty();
        state.frames.push(frame);
        // A queue that was not empty has been handed on already (to the
        // flusher or the task), which has not taken it yet: one hand-over
        // per batch, not per frame.
        if !was_empty {
            return Ok(());
        }
        if !state.busy
            && state.lane.is_none()
            && let Some(flusher) = &state.flusher
        {
            match handover {
                Some(handover) => {
                    handover.add(flusher, self.shared.clone());
                    drop(state);
                }
                None => {
                    let flusher = flusher.clone();
                    drop(state);
                    flusher.add(vec![self.shared.clone()]);
                }
            }
            return Ok(());
        }
        drop(state);
        self.shared.waker.wake();
        Ok(())
    }

    /// Asks the connection's task to close the connection. Returns false
    /// if a close was already requested.
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
        self.shared.waker.wake();
        true
    }

    pub fn is_closing(&self) -> bool {
        self.shared.closing.load(Ordering::Acquire)
    }

    /// Whether both handles are to one connection's queue.
    pub fn same_queue(&self, other: &Outbox) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// How many frames wait to be written (tests).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shared.state().frames.len()
    }

    /// How much of the first queued frame is written (tests).
    #[cfg(test)]
    pub fn head_written(&self) -> usize {
        self.shared.state().head_written
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self {
            shared: self.shared.clone(),
            capacity: self.capacity,
            wire: self.wire,
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.waker.wake();
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
        state.flusher = None;
        drop(state);
        // The task is done with the connection: it ends now, however long
        // the hub or the flusher still holds the queue (and so the
        // descriptor). Held by nobody else, the queue goes with this
        // handle, and the socket is closed without a shutdown first.
        if let Some(socket) = &self.shared.socket
            && Arc::strong_count(&self.shared) > 1
        {
            crate::websocket::tcp::shut_down(socket);
        }
    }
}

/// At most this many latest-value frames are taken at once: the rest stay
/// in the lane, where newer values can still replace them.
const LANE_BATCH: usize = 16;

impl OutboxReceiver {
    /// Moves everything queued into `batch`, which the task has written,
    /// or returns the request to close. Pending (with the task's waker kept)
    /// while there is neither. A close without `drain` overtakes queued
    /// frames; with `drain` it waits behind them. Ordered frames come before
    /// latest-value ones: a subscription's snapshot must reach the client
    /// before the updates that follow it.
    pub fn poll_take(&mut self, cx: &mut Context<'_>, batch: &mut Frames) -> Poll<Next> {
        debug_assert!(batch.is_empty(), "the last batch is written");
        // Registered before looking: a push after the look wakes this task.
        self.shared.waker.register(cx.waker());
        let mut state = self.shared.state();
        if let Some(closing) = &state.closing
            && !closing.drain
        {
            return Poll::Ready(Next::Close(closing.clone()));
        }
        // The batch just written no longer counts against the capacity; the
        // one taken now does until the next call.
        state.taken = u32::try_from(state.frames.len()).unwrap_or(u32::MAX);
        if !state.frames.is_empty() {
            // The queue starts again inline; a burst's spilled buffer goes
            // with the batch once written.
            *batch = std::mem::take(&mut state.frames);
            batch.extend(state.pong.take());
            state.busy = true;
            let written = std::mem::take(&mut state.head_written);
            return Poll::Ready(Next::Frames { written });
        }
        if let Some(pong) = state.pong.take() {
            batch.push(pong);
            state.busy = true;
            return Poll::Ready(Next::Frames { written: 0 });
        }
        if take_latest(&mut state.lane, batch) {
            state.busy = true;
            return Poll::Ready(Next::Frames { written: 0 });
        }
        if let Some(closing) = &state.closing {
            return Poll::Ready(Next::Close(closing.clone()));
        }
        // Everything taken is written: the flusher may write again.
        state.busy = false;
        drop(state);
        if self.shared.senders.load(Ordering::Acquire) == 0 {
            // Every sender is gone: the hub forgot this connection.
            return Poll::Ready(Next::Close(Closing {
                code: CloseCode::InternalError,
                reason: "connection dropped by the hub".into(),
                drain: false,
            }));
        }
        Poll::Pending
    }

    /// A close that overtakes queued frames, if one was requested: checked
    /// while the socket is still busy writing the last batch.
    pub fn urgent_close(&self) -> Option<Closing> {
        if !self.shared.closing.load(Ordering::Acquire) {
            return None;
        }
        let state = self.shared.state();
        state.closing.clone().filter(|closing| !closing.drain)
    }

    /// Keeps the task's waker, for a caller that is not taking frames now
    /// (its socket is busy) but must still hear of a close.
    pub fn register(&self, cx: &Context<'_>) {
        self.shared.waker.register(cx.waker());
    }

    /// Queues the answer to a client's ping behind what is queued, outside
    /// the capacity (it is not a delivery). One at most: an unsent pong is
    /// replaced by the newer, so a client pinging without reading cannot
    /// grow the queue.
    pub fn push_pong(&self, frame: Frame) {
        let mut state = self.shared.state();
        if state.closing.is_some() {
            return;
        }
        state.pong = Some(frame);
        drop(state);
        self.shared.waker.wake();
    }

    /// The queue's socket (one made [`with_socket`](Outbox::with_socket)),
    /// for the task to read and write.
    pub fn socket(&self) -> Option<OutboxSocket> {
        self.shared
            .socket
            .is_some()
            .then(|| OutboxSocket(self.shared.clone()))
    }

    /// Lets `flusher` write to the queue's socket while the task has
    /// nothing under way.
    pub fn attach(&self, flusher: Arc<Flusher>) {
        debug_assert!(self.shared.socket.is_some(), "a queue with a socket");
        self.shared.state().flusher = Some(flusher);
    }

    /// Takes the socket back: the flusher starts no write after this
    /// returns (one under way holds the lock), so the task may write its
    /// close.
    /// Returns the frame the flusher had started writing, if any, and how
    /// much of it went out: it must be finished before anything else
    /// (a close frame) is written.
    pub fn detach(&self) -> Option<(Frame, usize)> {
        let mut state = self.shared.state();
        state.flusher = None;
        state.busy = true;
        let written = std::mem::take(&mut state.head_written);
        if written == 0 || state.frames.is_empty() {
            return None;
        }
        Some((state.frames.remove(0), written))
    }
}

/// The socket kept in a queue, as the connection's task uses it.
#[derive(Debug, Clone)]
pub struct OutboxSocket(Arc<Shared>);

impl AsRef<TcpStream> for OutboxSocket {
    fn as_ref(&self) -> &TcpStream {
        self.0
            .socket
            .as_ref()
            .expect("made only for a queue with a socket")
    }
}

/// Moves up to [`LANE_BATCH`] latest-value frames into `batch`; whether
/// there were any.
fn take_latest(lane: &mut Option<Box<LaneSlots>>, batch: &mut Frames) -> bool {
    let Some(slots) = lane.as_mut() else {
        return false;
    };
    while batch.len() < LANE_BATCH {
        let Some(key) = slots.order.pop_front() else {
            break;
        };
        if let Some(frame) = slots.frames.remove(&key) {
            batch.push(frame);
        }
    }
    if slots.order.is_empty() {
        // Drained: an idle viewer holds no lane.
        *lane = None;
    }
    !batch.is_empty()
}

/// Writes the frames of queues handed to it, one `send` per socket per
/// round, from one task for the whole server.
#[derive(Debug, Default)]
pub struct Flusher {
    queues: Mutex<Vec<Arc<Shared>>>,
    waker: AtomicWaker,
}

/// Queues a fan-out hands to the flusher, given to it in one go when
/// dropped: one lock of the flusher's list per publication, not per
/// subscriber.
#[derive(Debug, Default)]
pub struct Handover {
    flusher: Option<Arc<Flusher>>,
    queues: Vec<Arc<Shared>>,
}

impl Handover {
    fn add(&mut self, flusher: &Arc<Flusher>, queue: Arc<Shared>) {
        if let Some(current) = &self.flusher
            && !Arc::ptr_eq(current, flusher)
        {
            // Another server's (tests run several in one process).
            self.submit();
        }
        if self.flusher.is_none() {
            self.flusher = Some(flusher.clone());
        }
        self.queues.push(queue);
    }

    fn submit(&mut self) {
        if let Some(flusher) = self.flusher.take() {
            flusher.add(std::mem::take(&mut self.queues));
        }
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        self.submit();
    }
}

impl Flusher {
    /// A flusher and its task (which ends with the runtime).
    pub fn start() -> Arc<Flusher> {
        let flusher = Arc::new(Flusher::default());
        tokio::spawn(flusher.clone().run());
        flusher
    }

    fn add(&self, mut added: Vec<Arc<Shared>>) {
        let mut queues = self.queues.lock().expect("flusher lock");
        let was_empty = queues.is_empty();
        if was_empty {
            std::mem::swap(&mut *queues, &mut added);
        } else {
            queues.append(&mut added);
        }
        drop(queues);
        if was_empty {
            self.waker.wake();
        }
    }

    async fn run(self: Arc<Self>) {
        let mut round = Vec::new();
        loop {
            poll_fn(|cx| {
                self.waker.register(cx.waker());
                let mut queues = self.queues.lock().expect("flusher lock");
                if queues.is_empty() {
                    return Poll::Pending;
                }
                std::mem::swap(&mut *queues, &mut round);
                Poll::Ready(())
            })
            .await;
            // A round over thousands of sockets takes a while: other tasks
            // (new connections' handshakes and commands, the I/O driver)
            // get their turn every slice of it, not only between rounds.
            // On one core a round of a reconnect storm's pushes would
            // otherwise hold the thread for hundreds of milliseconds.
            for (n, queue) in round.drain(..).enumerate() {
                flush(&queue);
                if n % ROUND_SLICE == ROUND_SLICE - 1 {
                    tokio::task::yield_now().await;
                }
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The largest spilled queue buffer (in frames) the flusher keeps once it
/// has written everything: 256 bytes.
const KEPT_FRAMES: usize = 16;

/// Queues the flusher writes to before letting other tasks run.
const ROUND_SLICE: usize = 512;

/// Writes what `queue` holds to its socket, unless its task has taken over;
/// what the kernel does not take is left to the task.
fn flush(queue: &Shared) {
    let mut state = queue.state();
    let State {
        frames,
        flusher,
        busy,
        head_written,
        ..
    } = &mut *state;
    // Attached, so the queue has a socket.
    let (Some(_), Some(socket)) = (flusher, &queue.socket) else {
        return;
    };
    // The flag rather than `state.closing` (set together, under the lock):
    // it shares a cache line with the lock, the closing does not.
    if *busy || queue.closing.load(Ordering::Relaxed) || frames.is_empty() {
        return;
    }
    while !frames.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = gather(frames, *head_written, &mut slices);
        let written = crate::websocket::tcp::send_unpolled(socket, &slices[..n]);
        // Full or failed: the task waits for room, or finds out why.
        let Ok(written) = written else {
            break;
        };
        let (done, offset) = advance(frames, *head_written, written);
        *head_written = offset;
        frames.drain(..done);
        if done < n {
            break;
        }
    }
    if frames.is_empty() {
        // A queue that outgrew its inline room is a connection the flusher
        // runs behind on: its buffer is kept for the next round, or every
        // batch of a busy channel would allocate and free one (a tenth of
        // the server's own CPU at 10,000 subscribers). Only a burst's large
        // buffer is let go.
        if frames.capacity() > KEPT_FRAMES {
            *frames = Frames::new();
        }
        return;
    }
    drop(state);
    queue.waker.wake();
}

/// What tests read from a receiver, without a socket.
#[cfg(test)]
impl OutboxReceiver {
    /// Everything queued now, in the order the task would write it, and
    /// the close if one is due after it.
    pub fn drain_now(&mut self) -> (Vec<Frame>, Option<Closing>) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut frames = Vec::new();
        loop {
            let mut batch = Frames::new();
            match self.poll_take(&mut cx, &mut batch) {
                Poll::Ready(Next::Frames { .. }) => frames.extend(batch),
                Poll::Ready(Next::Close(closing)) => return (frames, Some(closing)),
                Poll::Pending => return (frames, None),
            }
        }
    }

    pub fn frames_now(&mut self) -> Vec<Frame> {
        self.drain_now().0
    }

    pub fn closing_now(&mut self) -> Option<Closing> {
        self.drain_now().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(Frame::as_str).collect()
    }

    /// One `poll_take`, as the socket makes it.
    fn take(receiver: &mut OutboxReceiver) -> Poll<(Frames, Next)> {
        let waker = futures_util::task::noop_waker();
        let mut batch = Frames::new();
        receiver
            .poll_take(&mut Context::from_waker(&waker), &mut batch)
            .map(|next| (batch, next))
    }

    #[test]
    fn full_queue_reports_full_and_close_overtakes() {
        let (outbox, mut receiver) = Outbox::new(2);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.push(Frame::from_static("b")).unwrap();
        assert_eq!(outbox.push(Frame::from_static("c")), Err(PushError::Full));
        assert!(outbox.close(CloseCode::SlowConsumer, "slow", false));
        assert!(!outbox.close(CloseCode::Shutdown, "later", true));
        assert_eq!(outbox.push(Frame::from_static("d")), Err(PushError::Closed));
        assert_eq!(
            receiver.urgent_close().map(|closing| closing.code),
            Some(CloseCode::SlowConsumer)
        );
        let (frames, closing) = receiver.drain_now();
        assert!(frames.is_empty());
        assert_eq!(closing.unwrap().code, CloseCode::SlowConsumer);
    }

    #[test]
    fn frames_taken_but_not_yet_written_count_against_the_capacity() {
        // A socket stuck sending a batch to a slow client: the hub may not
        // queue another capacity's worth behind it.
        let (outbox, mut receiver) = Outbox::new(2);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.push(Frame::from_static("b")).unwrap();
        let Poll::Ready((batch, Next::Frames { .. })) = take(&mut receiver) else {
            panic!("a batch");
        };
        assert_eq!(texts(&batch), ["a", "b"]);
        assert_eq!(outbox.push(Frame::from_static("c")), Err(PushError::Full));
        // Written: the socket asks again and the room comes back.
        assert!(take(&mut receiver).is_pending());
        outbox.push(Frame::from_static("c")).unwrap();
        outbox.push(Frame::from_static("d")).unwrap();
        assert_eq!(outbox.push(Frame::from_static("e")), Err(PushError::Full));
    }

    #[test]
    fn the_latest_lane_keeps_only_the_newest_per_key_behind_ordered_frames() {
        let (outbox, mut receiver) = Outbox::new(4);
        let channel = ChannelName::parse("map:x").unwrap();
        let key = |user: &str| (channel.clone(), UserId(user.into()));
        outbox.push(Frame::from_static("snapshot")).unwrap();
        for n in 0..100 {
            outbox.push_latest(key("ada"), Frame::from(format!("ada {n}")));
        }
        outbox.push_latest(key("bob"), Frame::from_static("bob 0"));
        let received = receiver.frames_now();
        assert_eq!(texts(&received), ["snapshot", "ada 99", "bob 0"]);
    }

    #[test]
    fn a_long_lane_is_taken_a_slice_at_a_time() {
        let (outbox, mut receiver) = Outbox::new(4);
        let channel = ChannelName::parse("map:x").unwrap();
        for n in 0..LANE_BATCH + 1 {
            let user = UserId(format!("user{n}"));
            outbox.push_latest((channel.clone(), user), Frame::from(format!("{n} at 0")));
        }
        let Poll::Ready((batch, Next::Frames { .. })) = take(&mut receiver) else {
            panic!("a batch");
        };
        assert_eq!(batch.len(), LANE_BATCH);
        // The one left behind can still be replaced by a newer value.
        let last = UserId(format!("user{LANE_BATCH}"));
        outbox.push_latest((channel.clone(), last), Frame::from_static("newer"));
        assert_eq!(texts(&receiver.frames_now()), ["newer"]);
    }

    #[test]
    fn draining_close_waits_behind_queued_frames() {
        let (outbox, mut receiver) = Outbox::new(4);
        outbox.push(Frame::from_static("a")).unwrap();
        outbox.close(CloseCode::Shutdown, "bye", true);
        assert_eq!(receiver.urgent_close(), None);
        let (frames, closing) = receiver.drain_now();
        assert_eq!(texts(&frames), ["a"]);
        assert_eq!(closing.unwrap().code, CloseCode::Shutdown);
    }

    #[test]
    fn the_hub_letting_go_closes_the_connection() {
        let (outbox, mut receiver) = Outbox::new(4);
        outbox.push(Frame::from_static("a")).unwrap();
        drop(outbox);
        let (frames, closing) = receiver.drain_now();
        assert_eq!(texts(&frames), ["a"]);
        assert_eq!(closing.unwrap().code, CloseCode::InternalError);
    }

    #[test]
    fn a_client_pinging_without_reading_keeps_one_pong_queued() {
        let (outbox, mut receiver) = Outbox::new(4);
        outbox.push(Frame::from_static("a")).unwrap();
        for n in 0..1000 {
            receiver.push_pong(Frame::pong(format!("{n}").as_bytes()));
        }
        let frames = receiver.frames_now();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].as_str(), "a");
        assert_eq!(frames[1].payload(), b"999");
    }
}
