//! One socket's task: a reader that decodes commands and a writer that drains
//! the connection's outbox, ended together.
//!
//! Protocol violations are answered with a close frame carrying their
//! RFC 6455 code before the socket ends; it is never just dropped.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rookery_common::{CloseCode, ServerMessage, decode_client, encode};
use tokio::time::Instant;

use super::heartbeat::{Beat, Heartbeat};
use super::session::Session;
use crate::hub::{Closing, Next, Outbox, OutboxReceiver};
use crate::metrics::Metrics;
use crate::net::proxy::Client;
use crate::server::AppState;

/// How long the writer may take to send a final close frame to a client that
/// may not be reading at all.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// After sending a close frame, how long to keep the socket open for the
/// client to read it. Closing a TCP socket with unread input makes the kernel
/// send a reset, which can destroy the close frame before the client sees it.
const LINGER: Duration = Duration::from_secs(2);

/// `client`: who is on the other end, through trusted proxies; its address
/// is what the per-address limit counts.
///
/// A plain fn returning the task's future, not an async fn: an async fn
/// keeps its arguments in its future for its whole life, and a copy of
/// them besides (the socket alone is 368 bytes, split at once).
#[expect(
    clippy::needless_pass_by_value,
    reason = "`client` is moved into the returned future"
)]
pub fn serve(
    socket: WebSocket,
    state: AppState,
    client: Client,
) -> impl Future<Output = ()> + Send {
    let (sink, mut stream) = socket.split();
    async move {
        let (outbox, receiver) = Outbox::new(state.config.limits.outbound_queue);
        let _guard = state.track_connection();
        let Some(_per_ip) = state.admit_ip(client.ip) else {
            // Over the per-address limit: say so with a close code the client
            // can act on, and hold nothing else.
            Metrics::bump(&state.metrics.n_connections_refused_per_ip);
            outbox.close(
                CloseCode::TooManyConnections,
                "too many connections from this address",
                false,
            );
            // Boxed, as everything after the read loop: what only runs once a
            // connection ends should not size every connection's task.
            Box::pin(async move {
                if write(sink, receiver).await {
                    linger(&mut stream).await;
                }
            })
            .await;
            return;
        };
        let mut session = Session::new(state.clone(), outbox.clone());
        tracing::debug!(peer = %client.peer, client = %client.ip, "websocket opened");

        // The writer is a task of its own: a delivery then wakes and polls only
        // the writer. In one task with the reader, every delivery also polled
        // the reader's socket, timers and heartbeat (a third of the server's
        // CPU at 10k subscribers).
        let mut writer = WriterTask(tokio::spawn(write(sink, receiver)));
        let ended = tokio::select! {
            sent_close = &mut writer.0 => Ok(sent_close.unwrap_or(false)),
            end = read(&mut stream, &mut session, &outbox, &state) => Err(end),
        };
        Box::pin(finish(ended, writer, stream, session)).await;
        tracing::debug!(peer = %client.peer, client = %client.ip, "websocket closed");
    }
}

/// The writer's task, stopped when the connection's task ends (however it
/// ends: a client gone, a close sent, or the server dropping it).
struct WriterTask(tokio::task::JoinHandle<bool>);

impl Drop for WriterTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// After the read loop: `ended` is whether the writer sent a close frame
/// (it ended first) or why reading ended. Lets the writer deliver a close
/// frame (bounded: it may be stuck on a client that does not read), ends
/// the session, then keeps the socket open for the client to read the
/// close frame.
async fn finish(
    ended: Result<bool, ReadEnd>,
    mut writer: WriterTask,
    mut stream: SplitStream<WebSocket>,
    mut session: Session,
) {
    let (sent_close, end) = match ended {
        Ok(sent_close) => (sent_close, ReadEnd::Closing),
        Err(ReadEnd::ClientGone) => (false, ReadEnd::ClientGone),
        Err(end) => {
            let sent = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, &mut writer.0)
                .await
                .is_ok_and(|sent| sent.unwrap_or(false));
            (sent, end)
        }
    };
    session.end();
    if sent_close {
        match end {
            // After a framing error the stream reports its end at once
            // without reading further: just hold the socket open.
            ReadEnd::Violation => tokio::time::sleep(LINGER).await,
            _ => linger(&mut stream).await,
        }
    }
}

/// Waits for the client's answering close (or the end of the stream), at
/// most [`LINGER`].
async fn linger(stream: &mut SplitStream<WebSocket>) {
    let deadline = Instant::now() + LINGER;
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, stream.next()).await {}
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    /// The size of the future an async fn returns, without calling it.
    fn future_size<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    fn writer_size<A, B, F: Future>(_: fn(A, B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What every connection holds for its whole life is its two tasks'
    /// futures: bounded here so that a large future sneaking into the read
    /// loop or the writer (an inline `.await` on the store, a timer, the
    /// closing steps) is caught by a test, not by a benchmark.
    #[test]
    fn a_connection_task_stays_small() {
        let size = future_size(super::serve);
        assert!(size <= 1024, "a connection's task future is {size} bytes");
        let size = writer_size(super::write);
        assert!(size <= 512, "a connection's writer future is {size} bytes");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// The client went away; nothing more to send.
    ClientGone,
    /// A close was requested on the outbox; the writer sends it.
    Closing,
    /// The client broke the WebSocket protocol; the writer sends the close.
    Violation,
}

async fn read(
    stream: &mut SplitStream<WebSocket>,
    session: &mut Session,
    outbox: &Outbox,
    state: &AppState,
) -> ReadEnd {
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
            return ReadEnd::Closing;
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
        // A text frame is all that leaves the select: decoded and handled
        // in a box, since a command's future (the store's, for notes) is
        // large and lives only while it runs; inline, with the decoded
        // command, it would size every idle connection's task.
        let text = tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return ReadEnd::ClientGone };
                heartbeat.heard(Instant::now());
                match message {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Binary(_)) => {
                        outbox.close(
                            CloseCode::UnsupportedData,
                            "binary frames are not part of rookery.v1.json",
                            false,
                        );
                        continue;
                    }
                    // tungstenite answers pings itself; a pong is just a sign of life.
                    Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                    Ok(Message::Close(_)) => return ReadEnd::ClientGone,
                    Err(error) => match violation(error) {
                        Some((code, reason)) => {
                            outbox.close(code, reason, false);
                            return ReadEnd::Violation;
                        }
                        None => return ReadEnd::ClientGone,
                    },
                }
            }
            () = &mut timer => {
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
                    outbox.close(CloseCode::ConnectTimeout, "no connect command in time", false);
                }
                // Closes only if the token has expired (a refresh may have
                // moved the deadline).
                session.check_expiry();
                continue;
            }
        };
        Box::pin(handle_text(session, text)).await;
    }
}

async fn handle_text(session: &mut Session, text: Utf8Bytes) {
    match decode_client(text.as_str()) {
        Ok(command) => session.handle(command).await,
        Err(error) => session.bad_frame(error.id, error.code, error.message),
    }
}

/// The close code for a read error that is the client's fault, or `None`
/// when the connection simply ended.
fn violation(error: axum::Error) -> Option<(CloseCode, &'static str)> {
    let error = error.into_inner();
    let error = error.downcast_ref::<tungstenite::Error>()?;
    match error {
        tungstenite::Error::Capacity(_) => Some((CloseCode::MessageTooBig, "message too big")),
        tungstenite::Error::Utf8(_) => {
            Some((CloseCode::InvalidPayload, "invalid utf-8 in a text frame"))
        }
        tungstenite::Error::Protocol(_) => {
            Some((CloseCode::ProtocolError, "websocket protocol error"))
        }
        _ => None,
    }
}

/// Writes queued frames until a close is requested; returns whether a close
/// frame was sent.
async fn write(mut sink: SplitSink<WebSocket, Message>, mut receiver: OutboxReceiver) -> bool {
    loop {
        match receiver.next().await {
            Next::Frame(frame) => {
                // Batch what is already queued into one flush: one syscall for
                // many frames under load.
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return false;
                }
                while let Some(frame) = receiver.try_next_frame() {
                    if sink.feed(Message::Text(frame)).await.is_err() {
                        return false;
                    }
                }
                if sink.flush().await.is_err() {
                    return false;
                }
            }
            // Boxed: runs once, and inline it would size every writer.
            Next::Close(closing) => {
                return Box::pin(tokio::time::timeout(
                    CLOSE_WRITE_TIMEOUT,
                    close(&mut sink, closing),
                ))
                .await
                .is_ok();
            }
        }
    }
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, closing: Closing) {
    // Application codes get a `disconnect` push first, which clients that
    // cannot see close codes (some proxies rewrite them) can still act on.
    let code = closing.code.number();
    if code >= 4000
        || matches!(
            closing.code,
            CloseCode::GoingAway | CloseCode::ServiceRestart
        )
    {
        let push = ServerMessage::Disconnect {
            code: closing.code,
            reason: closing.reason.clone(),
            reconnect: closing.code.reconnect() != rookery_common::Reconnect::Never,
        };
        let _ = sink.feed(Message::Text(encode(&push).into())).await;
    }
    let mut reason = closing.reason;
    // A close frame's reason must fit in 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}
