//! One socket's task: it writes what the connection's outbox holds, reads
//! and handles the client's commands, keeps the heartbeat, and closes.
//!
//! One task for both directions, woken by a delivery or by the client: the
//! socket (crate::websocket) writes before it reads, and a command being
//! handled does not hold up the connection's deliveries.
//!
//! Protocol violations are answered with a close frame carrying their
//! RFC 6455 code before the socket ends; it is never just dropped.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use rookery_common::{CloseCode, Encoding, ServerMessage, decode_client, decode_client_bin};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::heartbeat::{Beat, Heartbeat};
use super::session::Session;
use crate::hub::{Closing, Frame, Outbox, OutboxReceiver};
use crate::metrics::Metrics;
use crate::net::proxy::Client;
use crate::server::AppState;
use crate::websocket::frame::Wire;
use crate::websocket::{End, Event, Socket};

/// What a connection's socket is: plain TCP or TLS (or any stream).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// How long sending the final close frame may take, to a client that may
/// not be reading at all.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// After sending a close frame, how long to keep the socket open for the
/// client to read it. Closing a TCP socket with unread input makes the kernel
/// send a reset, which can destroy the close frame before the client sees it.
const LINGER: Duration = Duration::from_secs(2);

/// `queue`: the connection's outbox. `client`: who is on the other end,
/// through trusted proxies; its address is what the per-address limit
/// counts. `direct`: `socket` is the plain TCP socket kept in the queue,
/// which the server's flusher may then write to.
///
/// A plain fn returning the task's future, not an async fn: an async fn
/// keeps its arguments in its future for its whole life, and a copy of
/// them besides.
#[expect(
    clippy::needless_pass_by_value,
    reason = "`client` is moved into the returned future"
)]
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would hold its arguments twice"
)]
pub fn serve<Io: Stream>(
    mut socket: Socket<Io>,
    queue: (Outbox, OutboxReceiver),
    direct: bool,
    state: AppState,
    client: Client,
) -> impl Future<Output = ()> + Send {
    async move {
        let (outbox, mut receiver) = queue;
        let _guard = state.track_connection();
        let Some(_per_ip) = state.admit_ip(client.ip) else {
            // Over the per-address limit: say so with a close code the client
            // can act on, and hold nothing else.
            Metrics::bump(&state.metrics.n_connections_refused_per_ip);
            let closing = Closing {
                code: CloseCode::TooManyConnections,
                reason: "too many connections from this address".into(),
                drain: false,
            };
            // Boxed, as everything after the loop: what only runs once a
            // connection ends should not size every connection's task.
            Box::pin(close(&mut socket, End::Close(closing))).await;
            return;
        };
        if direct {
            receiver.attach(state.flusher.clone());
        }
        let mut session = Session::new(state.clone(), outbox.clone());
        tracing::debug!(peer = %client.peer, client = %client.ip, "websocket opened");
        let end = run(&mut socket, &mut receiver, &mut session, &outbox, &state).await;
        // From here the task alone writes: its close frame must not have a
        // delivery cut into it, nor cut into one the flusher began.
        if let Some((frame, written)) = receiver.detach() {
            socket.resume(frame, written);
        }
        drop(outbox);
        Box::pin(finish(end, socket, receiver, session)).await;
        tracing::debug!(peer = %client.peer, client = %client.ip, "websocket closed");
    }
}

/// After the loop: the close frame the end calls for, the session ended,
/// then the linger for the client to read the close.
async fn finish<Io: Stream>(
    end: Option<End>,
    mut socket: Socket<Io>,
    mut receiver: OutboxReceiver,
    mut session: Session,
) {
    let end = match end {
        Some(end) => end,
        // A close was requested: what it waits behind goes out first.
        None => {
            let drained = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, socket.drain(&mut receiver));
            match drained.await {
                Ok(Some(closing)) => End::Close(closing),
                _ => End::Gone,
            }
        }
    };
    session.end();
    close(&mut socket, end).await;
    // The receiver goes last: when nothing else holds the queue by then,
    // its end closes the socket without a separate shutdown.
    drop(session);
    drop(socket);
    drop(receiver);
}

/// Sends the close frame `end` calls for, then lingers for the client to
/// read it.
async fn close<Io: Stream>(socket: &mut Socket<Io>, end: End) {
    match end {
        End::Gone => {}
        End::ClientClosed(code) => {
            // The closing handshake: the client's code back (RFC 6455 §5.5.1).
            let reply = Frame::close(code.unwrap_or(1000), "");
            socket.send_last(true, &[reply], CLOSE_WRITE_TIMEOUT).await;
        }
        End::Violation(violation) => {
            let frame = Frame::close(violation.code.number(), violation.reason);
            if socket.send_last(true, &[frame], CLOSE_WRITE_TIMEOUT).await {
                socket.linger(false, LINGER).await;
            }
        }
        End::Close(closing) => {
            let frames = closing_frames(&closing, socket.wire());
            if socket
                .send_last(!closing.drain, &frames, CLOSE_WRITE_TIMEOUT)
                .await
            {
                socket.linger(true, LINGER).await;
            }
        }
    }
}

/// A server-side close: application codes get a `disconnect` push first,
/// which clients that cannot see close codes (some proxies rewrite them)
/// can still act on.
fn closing_frames(closing: &Closing, wire: Wire) -> Vec<Frame> {
    let code = closing.code.number();
    let mut frames = Vec::with_capacity(2);
    if code >= 4000
        || matches!(
            closing.code,
            CloseCode::GoingAway | CloseCode::ServiceRestart
        )
    {
        let disconnect = ServerMessage::Disconnect {
            code: closing.code,
            reason: closing.reason.clone(),
            reconnect: closing.code.reconnect() != rookery_common::Reconnect::Never,
        };
        frames.push(Frame::encode(&disconnect, wire));
    }
    frames.push(Frame::close(code, &closing.reason));
    frames
}

/// Serves the connection until it ends: `None` when a close was requested
/// on the outbox (it may wait behind queued frames), else why it ended.
async fn run<Io: Stream>(
    socket: &mut Socket<Io>,
    receiver: &mut OutboxReceiver,
    session: &mut Session,
    outbox: &Outbox,
    state: &AppState,
) -> Option<End> {
    let limits = &state.config.limits;
    let started = Instant::now();
    let mut heartbeat = Heartbeat::new(limits.ping_interval, started);
    let mut next_tick = started + limits.ping_interval;
    let connect_by = started + limits.connect_timeout;
    // One timer for the heartbeat, the connect deadline and the token's
    // expiry, set to whichever comes first: every idle connection holds
    // it for its whole life (three timers took 3 × 112 bytes, and the
    // interval's another allocation).
    let timer = tokio::time::sleep_until(next_tick);
    tokio::pin!(timer);

    loop {
        if outbox.is_closing() {
            return None;
        }
        let mut deadline = next_tick;
        if !session.is_connected() {
            deadline = deadline.min(connect_by);
        }
        if let Some(expiry) = session.expiry_deadline() {
            deadline = deadline.min(expiry);
        }
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        let event = poll_fn(|cx| {
            if let Poll::Ready(event) = socket.poll_event(cx, receiver) {
                return Poll::Ready(Some(event));
            }
            timer.as_mut().poll(cx).map(|()| None)
        })
        .await;
        let Some(event) = event else {
            let now = Instant::now();
            if now >= next_tick {
                // A late tick delays the next rather than bunching up.
                next_tick = now + limits.ping_interval;
                match heartbeat.tick(now) {
                    Beat::Ping => session.reply(&ServerMessage::Ping {}),
                    Beat::TimedOut => {
                        outbox.close(
                            CloseCode::HeartbeatTimeout,
                            "no message or pong in two ping intervals",
                            false,
                        );
                    }
                }
            }
            if !session.is_connected() && now >= connect_by {
                outbox.close(
                    CloseCode::ConnectTimeout,
                    "no connect command in time",
                    false,
                );
            }
            // Closes only if the token has expired (a refresh may have
            // moved the deadline).
            session.check_expiry();
            continue;
        };
        match event {
            Event::End(end) => return Some(end),
            message @ (Event::Text(_) | Event::Binary(_)) => {
                heartbeat.heard(Instant::now());
                match Command::of(&message, socket.wire().encoding) {
                    Ok(command) => handle_command(socket, receiver, session, command).await,
                    Err(reason) => {
                        outbox.close(CloseCode::UnsupportedData, reason, false);
                    }
                }
            }
            Event::Alive => heartbeat.heard(Instant::now()),
        }
    }
}

/// A command as it arrived, decoded only inside [`handle_command`]'s box
/// (a decoded command is large; the loop's future should not be).
#[derive(Clone, Copy)]
enum Command<'a> {
    Text(&'a str),
    Bin(&'a [u8]),
}

impl<'a> Command<'a> {
    /// The command a message carries when it is of the kind the
    /// connection's encoding uses (text for JSON, binary for MessagePack);
    /// else why it is refused.
    fn of(message: &'a Event, encoding: Encoding) -> Result<Command<'a>, &'static str> {
        match (message, encoding) {
            (Event::Text(text), Encoding::Json) => Ok(Command::Text(text)),
            (Event::Binary(bytes), Encoding::MessagePack) => Ok(Command::Bin(bytes)),
            (_, Encoding::Json) => Err("binary frames are not part of rookery.v1.json"),
            (_, Encoding::MessagePack) => Err("text frames are not part of rookery.v1.bin"),
        }
    }
}

/// Handles one command while the socket goes on writing: a command that
/// waits (on the store, say) does not hold up the connection's deliveries.
/// The command's future is boxed: it is large (the store's, for notes) and
/// lives only while it runs; inline, it would size every idle connection's
/// task.
async fn handle_command<Io: Stream>(
    socket: &mut Socket<Io>,
    receiver: &mut OutboxReceiver,
    session: &mut Session,
    command: Command<'_>,
) {
    let mut handling: Pin<Box<dyn Future<Output = ()> + Send + '_>> = Box::pin(async move {
        let decoded = match command {
            Command::Text(text) => decode_client(text),
            Command::Bin(bytes) => decode_client_bin(bytes),
        };
        match decoded {
            Ok(command) => session.handle(command).await,
            Err(error) => session.bad_frame(error.id, error.code, error.message),
        }
    });
    poll_fn(|cx| {
        // A close or a failed stream ends the command (as it did when the
        // writer was a task of its own): the loop's next poll finds the
        // end again (a close stays requested; a failed stream stays
        // failed) and the close goes out now, not after a slow command.
        if socket.poll_send(cx, receiver).is_ready() {
            return Poll::Ready(());
        }
        handling.as_mut().poll(cx)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use hyper::upgrade::Upgraded;
    use hyper_util::rt::TokioIo;

    use crate::hub::outbox::OutboxSocket;
    use crate::websocket::tcp::SharedTcp;

    /// The size of the future a fn returns, without calling it.
    fn future_size<A, B, C, D, E, F: Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What every connection holds for its whole life is its task's
    /// future, the socket included (1,120 bytes when written): bounded here
    /// so that a large future sneaking into the loop (an inline `.await` on
    /// the store, a timer, the closing steps) is caught by a test, not by a
    /// benchmark.
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(super::serve::<SharedTcp<OutboxSocket>>);
        assert!(size <= 1280, "a connection's task future is {size} bytes");
        let size = future_size(super::serve::<TokioIo<Upgraded>>);
        assert!(
            size <= 1280,
            "a TLS connection's task future is {size} bytes"
        );
    }
}
