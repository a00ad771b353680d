//! A plain TCP stream shared by a connection's task and its outbox, so
//! that the server's flusher can write deliveries into an idle socket (see
//! `hub/outbox.rs`) instead of waking the task to do it.
//!
//! Reading stays the task's alone; writes are ordered by the outbox's lock
//! (whoever writes holds it or has marked the socket busy under it).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// No SIGPIPE from a write to a socket the peer closed: an error instead.
const NO_SIGNAL: SendFlags = SendFlags::NOSIGNAL;

/// Writes `bufs` with one `sendmsg`, `WouldBlock` while the socket is full.
/// Not `writev` (what tokio's `try_write_vectored` calls): that goes
/// through the kernel's file layer first, a tenth of the server's CPU at
/// 500,000 deliveries a second.
pub fn try_send_vectored(socket: &TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || send_unpolled(socket, bufs))
}

/// Writes `bufs` now, without asking tokio whether the socket is
/// writable: for the flusher, which writes into sockets no task is
/// polling. Reading tokio's readiness would be one more cache miss per
/// delivery on a cold socket, and the answer is nearly always yes. When it
/// is no, the `WouldBlock` leaves tokio's readiness stale, which is
/// harmless: the connection's task takes over, and its own write fails the
/// same way, clears the readiness and waits for room.
///
/// One `send` for one buffer (`sendmsg` costs the kernel a little more),
/// one `sendmsg` for several. By rustix's direct system calls, not libc's
/// wrappers: those mark every call a thread-cancellation point, which was
/// a twentieth of the server's own (user) CPU in a fan-out to 10,000.
pub fn send_unpolled(socket: &TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let sent = match bufs {
        [one] => rustix::net::send(socket, one, NO_SIGNAL),
        _ => rustix::net::sendmsg(socket, bufs, &mut SendAncillaryBuffer::default(), NO_SIGNAL),
    };
    Ok(sent?)
}

/// Ends the connection both ways now, whoever still holds the socket.
pub fn shut_down(socket: &TcpStream) {
    // Already reset or shut: nothing left to end.
    let _ = rustix::net::shutdown(socket, rustix::net::Shutdown::Both);
}

/// The connection task's side of a shared stream: `S` is whatever keeps
/// the stream alive (the outbox's handle on its socket; an `Arc` in tests).
#[derive(Debug, Clone)]
pub struct SharedTcp<S>(pub S);

impl<S: AsRef<TcpStream> + Unpin> AsyncRead for SharedTcp<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.as_ref().poll_read_ready(cx))?;
            match self.0.as_ref().try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The readiness was stale; `try_read` cleared it.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl<S: AsRef<TcpStream> + Unpin> AsyncWrite for SharedTcp<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().poll_write_ready(cx))?;
            match self.0.as_ref().try_write(buf) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.as_ref().poll_write_ready(cx))?;
            match try_send_vectored(self.0.as_ref(), bufs) {
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                done => return Poll::Ready(done),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ends the sending side (a FIN): nothing is buffered here to flush.
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(rustix::net::shutdown(
            self.0.as_ref(),
            rustix::net::Shutdown::Write,
        )?))
    }
}
