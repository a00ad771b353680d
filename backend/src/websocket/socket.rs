//! One WebSocket connection's socket, driven from one task: it writes what
//! the connection's outbox holds and reads the client's messages.
//!
//! Nothing here is kept per connection while it is idle but the stream
//! itself: reads go through a buffer on the stack (the decoder keeps only an
//! unfinished frame), and a batch of frames is written straight from the
//! shared bytes every subscriber's queue holds, many frames to one
//! vectored write.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::decoder::{Decoder, Incoming, Violation};
use super::frame::{Frame, MAX_SLICES, Wire, advance, gather};
use crate::hub::outbox::{Closing, Frames, Next, OutboxReceiver};

/// How much one read takes from the kernel.
const READ_CHUNK: usize = 4096;

/// What the client did, or why the connection ends.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Text(String),
    Binary(Vec<u8>),
    /// A ping (answered already) or a pong: a sign of life.
    Alive,
    End(End),
}

#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The stream ended or failed: nothing more can be sent.
    Gone,
    /// The client sent a close frame, with this code if any.
    ClientClosed(Option<u16>),
    /// The client broke the protocol.
    Violation(Violation),
    /// The server asked to close, on the outbox.
    Close(Closing),
}

pub struct Socket<Io> {
    io: Io,
    decoder: Decoder,
    /// What the handshake agreed on for messages.
    wire: Wire,
    /// The frames being written: `batch[written..]`, of which the first has
    /// `offset` bytes out already.
    batch: Frames,
    written: usize,
    offset: usize,
    /// Written since the last flush (TLS holds bytes until flushed).
    unflushed: bool,
    /// A write failed: the stream is of no more use.
    broken: bool,
}

impl<Io: AsyncRead + AsyncWrite + Unpin> Socket<Io> {
    pub fn new(io: Io, max_message: usize) -> Socket<Io> {
        Socket {
            io,
            decoder: Decoder::new(max_message),
            wire: Wire::default(),
            batch: Frames::new(),
            written: 0,
            offset: 0,
            unflushed: false,
            broken: false,
        }
    }

    /// A socket whose messages are in `wire`'s encoding, compressed when
    /// deflate was agreed.
    pub fn speaking(mut self, wire: Wire) -> Socket<Io> {
        self.wire = wire;
        if wire.deflate {
            self.decoder = self.decoder.inflating();
        }
        self
    }

    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// Puts back a frame another writer (the flusher) left half written:
    /// it goes first, from `written` on. Nothing of the socket's own can
    /// be under way then (the flusher writes only while the task holds no
    /// batch).
    pub fn resume(&mut self, frame: Frame, written: usize) {
        debug_assert!(self.offset == 0, "two frames half written");
        self.batch.insert(self.written, frame);
        self.offset = written;
    }

    /// Bytes the client sent before this socket existed (read with the
    /// handshake).
    pub fn preload(&mut self, bytes: &[u8]) {
        self.decoder.extend(bytes);
    }

    /// Writes what the outbox holds, then reads: the next thing the client
    /// did, or the end of the connection.
    pub fn poll_event(&mut self, cx: &mut Context<'_>, outbox: &mut OutboxReceiver) -> Poll<Event> {
        // Writing first: a delivery is what wakes most connections.
        if let Poll::Ready(end) = self.poll_send(cx, outbox) {
            return Poll::Ready(Event::End(end));
        }
        self.poll_read(cx, outbox)
    }

    /// Writes what the outbox holds until it is empty or the stream is full;
    /// ready with a close the outbox asks for, or when the stream fails.
    pub fn poll_send(&mut self, cx: &mut Context<'_>, outbox: &mut OutboxReceiver) -> Poll<End> {
        loop {
            if let Some(closing) = outbox.urgent_close() {
                return Poll::Ready(End::Close(closing));
            }
            match self.poll_write_batch(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(End::Gone),
                Poll::Pending => {
                    // Busy writing, but a close must still wake the task.
                    outbox.register(cx);
                    return Poll::Pending;
                }
            }
            match outbox.poll_take(cx, &mut self.batch) {
                Poll::Ready(Next::Frames { written }) => self.offset = written,
                Poll::Ready(Next::Close(closing)) => return Poll::Ready(End::Close(closing)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes the batch out and flushes; ready once all of it is written.
    fn poll_write_batch(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        while self.written < self.batch.len() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = gather(&self.batch[self.written..], self.offset, &mut slices);
            let io = Pin::new(&mut self.io);
            // One frame (the usual delivery) by `send`; `writev` costs the
            // kernel more for a single buffer.
            let wrote = if n == 1 {
                io.poll_write(cx, &slices[0])
            } else {
                io.poll_write_vectored(cx, &slices[..n])
            };
            let wrote = match ready!(wrote) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                other => other,
            };
            match wrote {
                Ok(wrote) => {
                    let (done, offset) = advance(&self.batch[self.written..], self.offset, wrote);
                    self.written += done;
                    self.offset = offset;
                }
                Err(error) => {
                    self.broken = true;
                    return Poll::Ready(Err(error));
                }
            }
            self.unflushed = true;
        }
        if self.batch.spilled() {
            // A burst's buffer is let go with it.
            self.batch = Frames::new();
        } else {
            self.batch.clear();
        }
        self.written = 0;
        self.offset = 0;
        if self.unflushed {
            if let Err(error) = ready!(Pin::new(&mut self.io).poll_flush(cx)) {
                self.broken = true;
                return Poll::Ready(Err(error));
            }
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, outbox: &OutboxReceiver) -> Poll<Event> {
        loop {
            match self.decoder.next_message() {
                Err(violation) => return Poll::Ready(Event::End(End::Violation(violation))),
                Ok(Some(Incoming::Text(text))) => return Poll::Ready(Event::Text(text)),
                Ok(Some(Incoming::Binary(bytes))) => return Poll::Ready(Event::Binary(bytes)),
                Ok(Some(Incoming::Ping(payload))) => {
                    // In order with the deliveries (a frame may be half
                    // written); it wakes this task to write it.
                    outbox.push_pong(Frame::pong(&payload));
                    return Poll::Ready(Event::Alive);
                }
                Ok(Some(Incoming::Pong)) => return Poll::Ready(Event::Alive),
                Ok(Some(Incoming::Close(code))) => {
                    return Poll::Ready(Event::End(End::ClientClosed(code)));
                }
                Ok(None) => {}
            }
            match ready!(self.poll_read_chunk(cx)) {
                Some(()) => {}
                None => return Poll::Ready(Event::End(End::Gone)),
            }
        }
    }

    /// Reads what the kernel has into the decoder; `None` at the end of the
    /// stream or on an error.
    fn poll_read_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
            Ok(()) if !buf.filled().is_empty() => {
                self.decoder.extend(buf.filled());
                Poll::Ready(Some(()))
            }
            _ => Poll::Ready(None),
        }
    }

    /// Sends `last` after the frame being written (the rest of the batch is
    /// dropped if `overtake`, else sent first), then ends the stream's
    /// sending side. At most `within`: the client may not be reading.
    pub async fn send_last(&mut self, overtake: bool, last: &[Frame], within: Duration) -> bool {
        if overtake {
            let keep = self.written + usize::from(self.offset > 0);
            self.batch.truncate(keep);
        }
        self.batch.extend(last.iter().cloned());
        let sent = async {
            poll_fn(|cx| self.poll_write_batch(cx)).await?;
            poll_fn(|cx| Pin::new(&mut self.io).poll_shutdown(cx)).await
        };
        matches!(tokio::time::timeout(within, sent).await, Ok(Ok(())))
    }

    /// Writes everything the outbox holds until it asks to close (a close
    /// that waits for queued frames); `None` if the stream failed first.
    pub async fn drain(&mut self, outbox: &mut OutboxReceiver) -> Option<Closing> {
        match poll_fn(|cx| self.poll_send(cx, outbox)).await {
            End::Close(closing) => Some(closing),
            _ => None,
        }
    }

    /// Reads until the client's close frame, the end of the stream or
    /// `within`: the client reads our close frame meanwhile, and closing
    /// with its input unread would make the kernel reset the connection.
    /// After a violation the bytes are only discarded.
    pub async fn linger(&mut self, decode: bool, within: Duration) {
        let wait = poll_fn(|cx| {
            loop {
                if decode {
                    match self.decoder.next_message() {
                        Ok(Some(Incoming::Close(_))) | Err(_) => return Poll::Ready(()),
                        Ok(_) => {}
                    }
                }
                let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
                let mut buf = ReadBuf::uninit(&mut chunk);
                match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                    Ok(()) if !buf.filled().is_empty() => {
                        if decode {
                            self.decoder.extend(buf.filled());
                        }
                    }
                    _ => return Poll::Ready(()),
                }
            }
        });
        let _ = tokio::time::timeout(within, wait).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    use super::*;
    use crate::hub::outbox::{Flusher, Outbox, OutboxSocket, PushError};
    use crate::websocket::frame::Wire;
    use crate::websocket::tcp::SharedTcp;

    const KEY: [u8; 4] = [1, 2, 3, 4];

    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&KEY);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        frame
    }

    async fn next_event(socket: &mut Socket<DuplexStream>, receiver: &mut OutboxReceiver) -> Event {
        tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| socket.poll_event(cx, receiver)),
        )
        .await
        .expect("an event")
    }

    /// Reads one unmasked, final server frame: its opcode and payload.
    async fn server_frame<R: AsyncRead + Unpin>(client: &mut R) -> (u8, Vec<u8>) {
        let mut header = [0u8; 2];
        client.read_exact(&mut header).await.unwrap();
        assert_eq!(header[0] & 0x80, 0x80, "a final frame");
        let mut len = usize::from(header[1] & 0x7f);
        if len == 126 {
            let mut extended = [0u8; 2];
            client.read_exact(&mut extended).await.unwrap();
            len = usize::from(u16::from_be_bytes(extended));
        }
        let mut payload = vec![0; len];
        client.read_exact(&mut payload).await.unwrap();
        (header[0] & 0x0f, payload)
    }

    #[tokio::test]
    async fn queued_frames_go_out_in_order_through_a_small_pipe() {
        // A pipe smaller than one frame: every write is partial.
        let (server, mut client) = duplex(7);
        let mut socket = Socket::new(server, 1024);
        let (outbox, mut receiver) = Outbox::new(64);
        let texts: Vec<String> = (0..20)
            .map(|n| format!("frame {n} {}", "x".repeat(n * 10)))
            .collect();
        for text in &texts {
            outbox.push(Frame::text(text)).unwrap();
        }
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            for _ in 0..20 {
                let (opcode, payload) = server_frame(&mut client).await;
                assert_eq!(opcode, 0x1);
                got.push(String::from_utf8(payload).unwrap());
            }
            got
        });
        let writing = tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| match socket.poll_event(cx, &mut receiver) {
                Poll::Pending if socket.batch.is_empty() => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
                Poll::Ready(event) => panic!("{event:?}"),
            }),
        );
        writing.await.expect("all written");
        assert_eq!(reader.await.unwrap(), texts);
    }

    #[tokio::test]
    async fn pings_are_answered_and_messages_read() {
        let (server, mut client) = duplex(1024);
        let mut socket = Socket::new(server, 1024);
        let (_outbox, mut receiver) = Outbox::new(4);
        let mut bytes = client_frame(0x9, b"are you there");
        bytes.extend(client_frame(0x1, b"{\"type\":\"ping\"}"));
        client.write_all(&bytes).await.unwrap();
        assert_eq!(next_event(&mut socket, &mut receiver).await, Event::Alive);
        assert_eq!(
            next_event(&mut socket, &mut receiver).await,
            Event::Text("{\"type\":\"ping\"}".into())
        );
        assert_eq!(
            server_frame(&mut client).await,
            (0xA, b"are you there".to_vec())
        );
        client
            .write_all(&client_frame(0x8, &[0x03, 0xe8]))
            .await
            .unwrap();
        assert_eq!(
            next_event(&mut socket, &mut receiver).await,
            Event::End(End::ClientClosed(Some(1000)))
        );
    }

    #[tokio::test]
    async fn a_close_overtakes_a_stuck_batch_but_finishes_its_frame() {
        let (server, mut client) = duplex(16);
        let mut socket = Socket::new(server, 1024);
        let (outbox, mut receiver) = Outbox::new(64);
        outbox.push(Frame::text(&"a".repeat(40))).unwrap();
        outbox.push(Frame::text(&"b".repeat(40))).unwrap();
        // The client reads nothing: the first frame is written in part.
        let pending = poll_fn(|cx| Poll::Ready(socket.poll_event(cx, &mut receiver))).await;
        assert!(pending.is_pending());
        outbox.close(rookery_common::CloseCode::SlowConsumer, "slow", false);
        let Event::End(End::Close(closing)) = next_event(&mut socket, &mut receiver).await else {
            panic!("the close");
        };
        let reader = tokio::spawn(async move {
            let first = server_frame(&mut client).await;
            let close = server_frame(&mut client).await;
            (first, close)
        });
        let close = Frame::close(closing.code.number(), &closing.reason);
        assert!(
            socket
                .send_last(true, &[close], Duration::from_secs(5))
                .await
        );
        let (first, close) = reader.await.unwrap();
        assert_eq!(first, (0x1, "a".repeat(40).into_bytes()));
        assert_eq!(close.0, 0x8);
        assert_eq!(&close.1[..2], &4100u16.to_be_bytes());
    }

    #[tokio::test]
    async fn a_violation_and_the_end_of_the_stream_are_reported() {
        let (server, mut client) = duplex(1024);
        let mut socket = Socket::new(server, 1024);
        let (_outbox, mut receiver) = Outbox::new(4);
        let mut unmasked = client_frame(0x1, b"x");
        unmasked[1] &= 0x7f;
        client.write_all(&unmasked).await.unwrap();
        let Event::End(End::Violation(violation)) = next_event(&mut socket, &mut receiver).await
        else {
            panic!("a violation");
        };
        assert_eq!(violation.code.number(), 1002);

        let (server, client) = duplex(1024);
        let mut socket = Socket::new(server, 1024);
        drop(client);
        assert_eq!(
            next_event(&mut socket, &mut receiver).await,
            Event::End(End::Gone)
        );
    }

    /// A connected pair over loopback: the server's end shared as the
    /// outbox and the socket share it.
    async fn tcp_pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    async fn read_text_frame(client: &mut tokio::net::TcpStream) -> String {
        let (opcode, payload) = server_frame(client).await;
        assert_eq!(opcode, 0x1, "a text frame");
        String::from_utf8(payload).unwrap()
    }

    /// A waker that counts its wake-ups.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl futures_util::task::ArcWake for Counting {
        fn wake_by_ref(counting: &std::sync::Arc<Self>) {
            counting.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_delivery_to_an_idle_socket_wakes_no_connection_task() {
        let (server, mut client) = tcp_pair().await;
        let (outbox, mut receiver) = Outbox::with_socket(8, Wire::default(), server);
        receiver.attach(Flusher::start());
        // The task, idle: its waker registered with the outbox.
        let counting = std::sync::Arc::new(Counting::default());
        let waker = futures_util::task::waker(counting.clone());
        let mut batch = crate::hub::outbox::Frames::new();
        let taken = receiver.poll_take(&mut Context::from_waker(&waker), &mut batch);
        assert!(taken.is_pending());
        outbox.push(Frame::text("one")).unwrap();
        outbox.push(Frame::text("two")).unwrap();
        // The flusher wrote them; the task was never woken.
        assert_eq!(read_text_frame(&mut client).await, "one");
        assert_eq!(read_text_frame(&mut client).await, "two");
        assert_eq!(counting.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(receiver.frames_now().is_empty());
        // Once the task takes the socket back, deliveries queue for it.
        receiver.detach();
        outbox.push(Frame::text("queued")).unwrap();
        assert_eq!(texts(&receiver.frames_now()), ["queued"]);
    }

    #[tokio::test]
    async fn the_task_ending_ends_the_connection_while_the_hub_still_holds_its_queue() {
        let (server, mut client) = tcp_pair().await;
        let (outbox, receiver) = Outbox::with_socket(8, Wire::default(), server);
        receiver.attach(Flusher::start());
        let socket = Socket::new(SharedTcp(receiver.socket().unwrap()), 1024);
        drop(socket);
        drop(receiver);
        // The hub's handle keeps the descriptor open; the client sees the
        // end all the same.
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte))
            .await
            .expect("the connection ends");
        assert_eq!(read.unwrap(), 0);
        assert_eq!(outbox.push(Frame::text("late")), Err(PushError::Closed));
    }

    /// A socket over loopback whose outbox the flusher writes, with the
    /// client's end.
    async fn flushed_socket() -> (
        Socket<SharedTcp<OutboxSocket>>,
        Outbox,
        OutboxReceiver,
        tokio::net::TcpStream,
    ) {
        let (server, client) = tcp_pair().await;
        let (outbox, receiver) = Outbox::with_socket(100, Wire::default(), server);
        receiver.attach(Flusher::start());
        let socket = Socket::new(SharedTcp(receiver.socket().unwrap()), 1024);
        (socket, outbox, receiver, client)
    }

    /// Waits until the flusher has written part of the first queued frame.
    async fn half_flushed(outbox: &Outbox) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while outbox.head_written() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the flusher writes part of the big frame");
    }

    /// Reads a 32 MiB text frame of `h`s, whole.
    async fn read_huge_frame(client: &mut tokio::net::TcpStream) {
        let mut header = [0u8; 10];
        client.read_exact(&mut header).await.unwrap();
        assert_eq!(&header[..2], &[0x81, 127]);
        let mut payload = vec![0; 32 << 20];
        client.read_exact(&mut payload).await.unwrap();
        assert!(
            payload.iter().all(|&b| b == b'h'),
            "the big frame arrives whole"
        );
    }

    fn texts(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(Frame::as_str).collect()
    }

    #[tokio::test]
    async fn what_the_kernel_does_not_take_the_task_finishes_in_order() {
        let (mut socket, outbox, mut receiver, mut client) = flushed_socket().await;
        // A frame larger than the kernel's buffers: the flusher sends
        // part of it, and the rest is queued with what went out.
        let huge = "h".repeat(32 << 20);
        outbox.push(Frame::text(&huge)).unwrap();
        for n in 0..10 {
            outbox.push(Frame::text(&format!("after {n}"))).unwrap();
        }
        // The flusher's write stops inside the big frame.
        half_flushed(&outbox).await;
        assert_eq!(outbox.queued(), 11);
        let reader = tokio::spawn(async move {
            read_huge_frame(&mut client).await;
            for n in 0..10 {
                assert_eq!(read_text_frame(&mut client).await, format!("after {n}"));
            }
            // Kept open: its end would be news to the socket.
            client
        });
        let writing = poll_fn(|cx| match socket.poll_event(cx, &mut receiver) {
            Poll::Ready(event) => panic!("{event:?}"),
            Poll::Pending => Poll::<()>::Pending,
        });
        tokio::select! {
            read = reader => drop(read.unwrap()),
            () = writing => unreachable!(),
            () = tokio::time::sleep(Duration::from_secs(10)) => panic!("not all frames arrived"),
        }
    }

    #[tokio::test]
    async fn a_close_after_a_half_flushed_frame_finishes_that_frame_first() {
        let (mut socket, outbox, mut receiver, mut client) = flushed_socket().await;
        let huge = "h".repeat(32 << 20);
        outbox.push(Frame::text(&huge)).unwrap();
        half_flushed(&outbox).await;
        // A slow consumer's close, before the task has taken the rest.
        outbox.close(rookery_common::CloseCode::SlowConsumer, "slow", false);
        let Event::End(End::Close(closing)) = next_event_tcp(&mut socket, &mut receiver).await
        else {
            panic!("the close");
        };
        let (frame, written) = receiver.detach().expect("the half-written frame");
        socket.resume(frame, written);
        let reader = tokio::spawn(async move {
            read_huge_frame(&mut client).await;
            let mut close = [0u8; 4];
            client.read_exact(&mut close).await.unwrap();
            close
        });
        let frame = Frame::close(closing.code.number(), "");
        assert!(
            socket
                .send_last(true, &[frame], Duration::from_secs(10))
                .await
        );
        let close = reader.await.unwrap();
        assert_eq!(close[0], 0x88);
        assert_eq!(&close[2..], &4100u16.to_be_bytes());
    }

    async fn next_event_tcp(
        socket: &mut Socket<SharedTcp<OutboxSocket>>,
        receiver: &mut OutboxReceiver,
    ) -> Event {
        tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| socket.poll_event(cx, receiver)),
        )
        .await
        .expect("an event")
    }
}
