//! A plain TCP stream shared by a connection's task and its outbox, so
//! that the server's flusher can write deliveries into an idle socket (see
//! `hub/outbox.rs`) instead of waking the task to do it.
//!
//! Reading stays the task's alone; writes are ordered by the outbox's lock
//! (whoever writes holds it or has marked the socket busy under it).

use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// No SIGPIPE from a write to a socket the peer closed: an error instead.
#[cfg(target_os = "linux")]
const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const NO_SIGNAL: libc::c_int = 0;

/// Writes `bufs` with one `sendmsg`, `WouldBlock` while the socket is full.
/// Not `writev` (what tokio's `try_write_vectored` calls): that goes
/// through the kernel's file layer first, a tenth of the server's CPU at
/// 500,000 deliveries a second.
pub fn try_send_vectored(socket: &TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    socket.try_io(Interest::WRITABLE, || {
        socket2::SockRef::from(socket).send_vectored_with_flags(bufs, NO_SIGNAL)
    })
}

/// Writes `bufs` now (one `send`, or one `sendmsg` for several), without
/// asking tokio whether the socket is writable: for the flusher, which
/// writes into sockets no task is polling. Reading tokio's readiness would
/// be one more cache miss per delivery on a cold socket, and the answer is
/// nearly always yes. When it is no, the `WouldBlock` leaves tokio's
/// readiness stale, which is harmless: the connection's task takes over,
/// and its own write fails the same way, clears the readiness and waits
/// for room.
pub fn send_unpolled(socket: &TcpStream, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let socket = socket2::SockRef::from(socket);
    match bufs {
        // One frame (the usual delivery) by `send`: `sendmsg` costs the
        // kernel a little more for a single buffer.
        [one] => socket.send_with_flags(one, NO_SIGNAL),
        _ => socket.send_vectored_with_flags(bufs, NO_SIGNAL),
    }
}

#[derive(Debug, Clone)]
pub struct SharedTcp(pub Arc<TcpStream>);

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
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

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
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
            ready!(self.0.poll_write_ready(cx))?;
            match try_send_vectored(&self.0, bufs) {
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
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(Shutdown::Write))
    }
}
