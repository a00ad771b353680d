//! The reading end of a subscribed socket, without a WebSocket library.
//!
//! The load generator has one core for all its subscribers. At 100,000
//! deliveries a second (10 publications/s to 10,000) tungstenite's work per
//! message (the lock between a split socket's halves, an allocation per
//! message, a second read to find the socket empty) kept it at 92-98 % of
//! that core, so the latencies it measured were partly its own. Here a
//! wake-up is one `recv` into a shared scratch buffer, the frames in it are
//! scanned in place, and a short read ends the turn: what arrives later
//! raises a new readiness event.

use std::cell::RefCell;
use std::io;

use rustix::net::{RecvFlags, SendFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// A data frame the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// How much one `recv` takes at most: shared by all sockets of a thread.
const SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

#[derive(Debug)]
pub struct RawReader {
    stream: TcpStream,
    /// The start of a frame that the last read cut off.
    partial: Vec<u8>,
}

/// Whether the connection is still open after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Yes,
    /// Closed by the server (a close frame, the stream's end or an error).
    No,
}

impl RawReader {
    /// Takes over `stream` after the handshake, with nothing of the
    /// server's left unread in a library's buffer.
    pub fn new(stream: TcpStream) -> Self {
        RawReader {
            stream,
            partial: Vec::new(),
        }
    }

    /// Waits until the socket has data, then hands each whole data frame
    /// it holds to `each` (pings are answered on the way).
    pub async fn read(&mut self, mut each: impl FnMut(Delivery<'_>)) -> Open {
        loop {
            if self.stream.readable().await.is_err() {
                return Open::No;
            }
            let mut got = 0;
            let read = SCRATCH_BUFFER.with_borrow_mut(|scratch| {
                let read = self.stream.try_io(Interest::READABLE, || {
                    let (n, _) =
                        rustix::net::recv(&self.stream, &mut scratch[..], RecvFlags::empty())?;
                    got = n;
                    if n > 0 && n < scratch.len() {
                        // A short read emptied the socket: tokio forgets
                        // the readiness now instead of after one more
                        // `recv` that finds nothing.
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    Ok(n)
                });
                if got > 0 {
                    let ended = self.take_frames(&scratch[..got], &mut each);
                    if ended {
                        return Err(io::ErrorKind::ConnectionAborted.into());
                    }
                }
                read
            });
            match read {
                Ok(0) => return Open::No,
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if got > 0 {
                        return Open::Yes;
                    }
                }
                Err(_) => return Open::No,
            }
        }
    }

    /// Scans `bytes` (after any carried-over start) for whole frames;
    /// whether a close frame came.
    fn take_frames(&mut self, bytes: &[u8], each: &mut impl FnMut(Delivery<'_>)) -> bool {
        if self.partial.is_empty() {
            let (used, ended) = scan(bytes, each, &self.stream);
            self.partial.extend_from_slice(&bytes[used..]);
            return ended;
        }
        let mut joined = std::mem::take(&mut self.partial);
        joined.extend_from_slice(bytes);
        let (used, ended) = scan(&joined, each, &self.stream);
        joined.drain(..used);
        self.partial = joined;
        if self.partial.is_empty() {
            // A large frame's buffer is not kept.
            self.partial = Vec::new();
        }
        ended
    }
}

/// Hands each whole frame at the start of `bytes` to `each`, answering
/// pings on `stream`; how many bytes the whole frames took, and whether a
/// close frame came.
fn scan(bytes: &[u8], each: &mut impl FnMut(Delivery<'_>), stream: &TcpStream) -> (usize, bool) {
    let mut at = 0;
    while let Some((opcode, payload, next)) = frame_at(&bytes[at..]) {
        match opcode {
            0x1 => each(Delivery::Text(payload)),
            0x2 => each(Delivery::Binary(payload)),
            0x8 => return (at + next, true),
            0x9 => {
                // Best effort: a pong is tiny, and a server that drops a
                // client for a missed pong shows up in the counts.
                let _ = rustix::net::send(stream, &pong(payload), SendFlags::NOSIGNAL);
            }
            _ => {}
        }
        at += next;
    }
    (at, false)
}

/// The opcode and payload of the whole (unmasked, server-sent) frame at
/// the start of `bytes`, and where the next begins; `None` if it is cut off.
pub fn frame_at(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let opcode = bytes.first()? & 0x0f;
    let short = bytes.get(1)? & 0x7f;
    let (length, header) = match short {
        126 => (
            u64::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let end = header + usize::try_from(length).ok()?;
    Some((opcode, bytes.get(header..end)?, end))
}

/// A client's pong for `payload` (masked, as a client's frames must be,
/// with a zero key).
fn pong(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x8a, 0x80 | payload.len().min(125) as u8, 0, 0, 0, 0];
    frame.extend_from_slice(&payload[..payload.len().min(125)]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 0xffff => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    #[tokio::test]
    async fn frames_cut_anywhere_arrive_whole_and_in_order() {
        let big = "b".repeat(70_000);
        let texts = ["one", "two", &"m".repeat(300), &big, "last"];
        let mut wire = Vec::new();
        for text in texts {
            wire.extend(server_frame(0x1, text.as_bytes()));
        }
        wire.extend(server_frame(0x2, b"\x01\x02"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let _server = listener.accept().await.unwrap();
        let mut reader = RawReader::new(client);
        let mut expected: Vec<(bool, Vec<u8>)> = texts
            .iter()
            .map(|text| (true, text.as_bytes().to_vec()))
            .collect();
        expected.push((false, vec![1, 2]));
        for cut in [1, 2, 3, 7, 200, 40_000, wire.len() - 1] {
            let mut seen: Vec<(bool, Vec<u8>)> = Vec::new();
            let mut record = |delivery: Delivery<'_>| match delivery {
                Delivery::Text(text) => seen.push((true, text.to_vec())),
                Delivery::Binary(bytes) => seen.push((false, bytes.to_vec())),
            };
            assert!(!reader.take_frames(&wire[..cut], &mut record));
            assert!(!reader.take_frames(&wire[cut..], &mut record));
            assert!(reader.partial.is_empty());
            assert_eq!(seen, expected, "cut at {cut}");
        }
    }

    #[test]
    fn a_cut_header_waits_for_the_rest() {
        let frame = server_frame(0x1, &[b'x'; 200]);
        for cut in 0..frame.len() {
            assert_eq!(frame_at(&frame[..cut]), None, "cut at {cut}");
        }
        let (opcode, payload, next) = frame_at(&frame).unwrap();
        assert_eq!((opcode, payload.len(), next), (1, 200, frame.len()));
    }

    #[test]
    fn a_pong_is_masked_and_echoes_the_ping() {
        assert_eq!(pong(b"hi"), [0x8a, 0x82, 0, 0, 0, 0, b'h', b'i']);
    }
}
