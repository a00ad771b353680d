//! Server-to-client frames, encoded whole once.
//!
//! A server never masks its frames (RFC 6455 §5.1), so a publication's frame
//! is byte for byte the same for every subscriber: it is encoded once, header
//! included, and every subscriber's queue holds the same bytes. Writing it is
//! a copy into the kernel, nothing more.

use std::fmt;
use std::io::IoSlice;

use std::sync::Arc;

use rookery_common::{Encoding, ServerMessage};

/// The longest header a server frame needs: two bytes and a 64-bit length.
const MAX_HEADER: usize = 10;

pub const OPCODE_TEXT: u8 = 0x1;
pub const OPCODE_BINARY: u8 = 0x2;
pub const OPCODE_CLOSE: u8 = 0x8;
pub const OPCODE_PONG: u8 = 0xA;

/// The first header bit of RFC 6455's reserved three: set on a message
/// compressed with permessage-deflate (RFC 7692 §6).
pub const RSV1: u8 = 0x40;

/// Messages shorter than this go out uncompressed even on a deflate
/// connection: a small message barely shrinks, and compressing it costs
/// more than the bytes it saves (Node's `ws` draws the line at 1 KiB).
pub const COMPRESS_FROM: usize = 256;

/// How one connection's messages are written: in the encoding of its
/// subprotocol, and compressed when permessage-deflate was agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Wire {
    pub encoding: Encoding,
    pub deflate: bool,
}

impl Wire {
    /// How many different wires there are.
    pub const COUNT: usize = 4;

    /// Where this wire's frame goes in a per-wire array.
    pub fn index(self) -> usize {
        usize::from(self.encoding.is_binary()) * 2 + usize::from(self.deflate)
    }
}

/// One complete, unfragmented server frame. Cloning is a reference-count
/// increment.
///
/// Two words: queues hold frames inline, and every byte of a queue is
/// memory an idle connection keeps and a fan-out's cold cache lines. Where
/// the payload starts is read from the header itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Arc<[u8]>,
}

/// The header of an unmasked, final frame: its bytes and how many are used.
fn header(opcode: u8, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = 0x80 | opcode;
    let used = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, used)
}

impl Frame {
    /// A frame around `payload`, written after room left for the header,
    /// then copied once into its shared allocation (sized exactly).
    /// `opcode` may carry [`RSV1`].
    fn finish(opcode: u8, mut buffer: Vec<u8>) -> Frame {
        let len = buffer.len() - MAX_HEADER;
        let (header, used) = header(opcode, len);
        let start = MAX_HEADER - used;
        buffer[start..MAX_HEADER].copy_from_slice(&header[..used]);
        Frame {
            bytes: Arc::from(&buffer[start..]),
        }
    }

    fn with_payload(opcode: u8, payload: &[u8]) -> Frame {
        let mut buffer = Vec::with_capacity(MAX_HEADER + payload.len());
        buffer.resize(MAX_HEADER, 0);
        buffer.extend_from_slice(payload);
        Frame::finish(opcode, buffer)
    }

    /// A server message as `wire` wants it: a text frame of JSON or a
    /// binary one of MessagePack, serialized straight into the frame's
    /// buffer, and compressed if the connection agreed to deflate and the
    /// message is worth it.
    pub fn encode(message: &ServerMessage, wire: Wire) -> Frame {
        let mut buffer = Vec::with_capacity(128);
        buffer.resize(MAX_HEADER, 0);
        let opcode = match wire.encoding {
            Encoding::Json => {
                // As `rookery_common::encode`: these types always serialize.
                serde_json::to_writer(&mut buffer, message).expect("server messages serialize");
                OPCODE_TEXT
            }
            Encoding::MessagePack => {
                rookery_common::codec::encode_bin_into(message, &mut buffer);
                OPCODE_BINARY
            }
        };
        if wire.deflate && buffer.len() - MAX_HEADER >= COMPRESS_FROM {
            let mut compressed = Vec::with_capacity(buffer.len() / 2);
            compressed.resize(MAX_HEADER, 0);
            super::deflate::compress_into(&buffer[MAX_HEADER..], &mut compressed);
            if compressed.len() < buffer.len() {
                return Frame::finish(opcode | RSV1, compressed);
            }
        }
        Frame::finish(opcode, buffer)
    }

    pub fn text(text: &str) -> Frame {
        Frame::with_payload(OPCODE_TEXT, text.as_bytes())
    }

    pub fn from_static(text: &'static str) -> Frame {
        Frame::text(text)
    }

    /// A close frame; `reason` is cut to the 123 bytes a control frame
    /// leaves for it, at a character boundary.
    pub fn close(code: u16, reason: &str) -> Frame {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        Frame::with_payload(OPCODE_CLOSE, &payload)
    }

    /// The answer to a ping: its payload back (at most 125 bytes, which the
    /// decoder has checked).
    pub fn pong(payload: &[u8]) -> Frame {
        Frame::with_payload(OPCODE_PONG, payload)
    }

    /// The frame as it goes on the wire.
    pub fn wire(&self) -> &[u8] {
        &self.bytes
    }

    pub fn opcode(&self) -> u8 {
        self.bytes[0] & 0x0f
    }

    /// Whether the payload is compressed (permessage-deflate).
    pub fn is_compressed(&self) -> bool {
        self.bytes[0] & RSV1 != 0
    }

    pub fn payload(&self) -> &[u8] {
        let header_len = match self.bytes[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        &self.bytes[header_len..]
    }

    /// A text frame's payload.
    ///
    /// # Panics
    /// On a close or pong frame whose payload is not text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.payload()).expect("a text frame")
    }
}

impl From<String> for Frame {
    fn from(text: String) -> Frame {
        Frame::text(&text)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("opcode", &self.opcode())
            .field("payload", &String::from_utf8_lossy(self.payload()))
            .finish()
    }
}

/// One message for many recipients, encoded once for each wire any of them
/// speaks, when the first of them needs it: a publication to JSON and
/// MessagePack subscribers is serialized twice, never once per subscriber.
pub struct Encoded<'a> {
    message: &'a ServerMessage,
    frames: [Option<Frame>; Wire::COUNT],
}

impl<'a> Encoded<'a> {
    pub fn new(message: &'a ServerMessage) -> Encoded<'a> {
        Encoded {
            message,
            frames: Default::default(),
        }
    }

    pub fn frame(&mut self, wire: Wire) -> Frame {
        self.frames[wire.index()]
            .get_or_insert_with(|| Frame::encode(self.message, wire))
            .clone()
    }
}

/// How many frames one vectored write carries at most.
pub const MAX_SLICES: usize = 64;

/// The bytes of `frames` still to write, the first from `offset` on, as
/// slices for one vectored write; how many slices it filled. Both writers
/// (the connection's task and the flusher) go through this and [`advance`].
pub fn gather<'a>(
    frames: &'a [Frame],
    offset: usize,
    slices: &mut [IoSlice<'a>; MAX_SLICES],
) -> usize {
    let n = frames.len().min(MAX_SLICES);
    for (slice, frame) in slices.iter_mut().zip(frames) {
        *slice = IoSlice::new(frame.wire());
    }
    if let Some(first) = frames.first() {
        slices[0] = IoSlice::new(&first.wire()[offset..]);
    }
    n
}

/// After `wrote` bytes of what [`gather`] offered went out: how many frames
/// are now written whole, and how much of the next one.
pub fn advance(frames: &[Frame], mut offset: usize, mut wrote: usize) -> (usize, usize) {
    let mut done = 0;
    for frame in frames {
        let left = frame.wire().len() - offset;
        if wrote < left {
            return (done, offset + wrote);
        }
        wrote -= left;
        offset = 0;
        done += 1;
    }
    (done, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_ends_anywhere_is_resumed_there() {
        let frames = [Frame::text("abc"), Frame::text("defgh"), Frame::text("i")];
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        // The first frame already 2 bytes out: 3 of its 5 remain.
        assert_eq!(gather(&frames, 2, &mut slices), 3);
        assert_eq!(slices[0].len(), 3);
        assert_eq!(slices[1].len(), 7);
        // Inside the first, exactly at its end, inside the second, all.
        assert_eq!(advance(&frames, 2, 1), (0, 3));
        assert_eq!(advance(&frames, 2, 3), (1, 0));
        assert_eq!(advance(&frames, 2, 5), (1, 2));
        assert_eq!(advance(&frames, 2, 3 + 7 + 3), (3, 0));
    }

    #[test]
    fn lengths_take_the_shortest_header() {
        for (len, header_len) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let text = "x".repeat(len);
            let frame = Frame::text(&text);
            assert_eq!(frame.wire().len(), header_len + len, "{len}");
            assert_eq!(frame.wire()[0], 0x81);
            assert_eq!(frame.as_str(), text);
            match header_len {
                2 => assert_eq!(usize::from(frame.wire()[1]), len),
                4 => {
                    assert_eq!(frame.wire()[1], 126);
                    assert_eq!(
                        usize::from(u16::from_be_bytes([frame.wire()[2], frame.wire()[3]])),
                        len
                    );
                }
                _ => {
                    assert_eq!(frame.wire()[1], 127);
                    let mut length = [0u8; 8];
                    length.copy_from_slice(&frame.wire()[2..10]);
                    assert_eq!(u64::from_be_bytes(length), len as u64);
                }
            }
        }
    }

    const JSON: Wire = Wire {
        encoding: Encoding::Json,
        deflate: false,
    };
    const BIN: Wire = Wire {
        encoding: Encoding::MessagePack,
        deflate: false,
    };

    #[test]
    fn an_encoded_message_is_its_json_in_a_text_frame() {
        let message = ServerMessage::Ping {};
        let frame = Frame::encode(&message, JSON);
        assert_eq!(frame.as_str(), rookery_common::encode(&message));
        assert_eq!(frame.opcode(), OPCODE_TEXT);
    }

    #[test]
    fn on_the_binary_wire_it_is_msgpack_in_a_binary_frame() {
        let message = ServerMessage::Ping {};
        let frame = Frame::encode(&message, BIN);
        assert_eq!(frame.opcode(), OPCODE_BINARY);
        assert_eq!(frame.payload(), rookery_common::encode_bin(&message));
    }

    fn big_message() -> ServerMessage {
        ServerMessage::Error {
            id: None,
            code: rookery_common::ErrorCode::BadRequest,
            message: "the same words again and again ".repeat(40),
        }
    }

    #[test]
    fn with_deflate_a_long_message_is_compressed_and_a_short_one_is_not() {
        for encoding in Encoding::ALL {
            let wire = Wire {
                encoding,
                deflate: true,
            };
            let short = Frame::encode(&ServerMessage::Ping {}, wire);
            assert!(!short.is_compressed());
            assert_eq!(
                short,
                Frame::encode(
                    &ServerMessage::Ping {},
                    Wire {
                        deflate: false,
                        ..wire
                    }
                )
            );

            let message = big_message();
            let plain = Frame::encode(
                &message,
                Wire {
                    deflate: false,
                    ..wire
                },
            );
            let frame = Frame::encode(&message, wire);
            assert!(frame.is_compressed());
            assert_eq!(frame.wire()[0], 0x80 | RSV1 | plain.opcode());
            assert!(frame.payload().len() * 4 < plain.payload().len());
            let mut inflated = Vec::new();
            super::super::deflate::Inflater::new(false)
                .inflate(frame.payload(), 1 << 20, &mut inflated)
                .unwrap();
            assert_eq!(inflated, plain.payload());
        }
    }

    #[test]
    fn a_message_is_encoded_once_per_wire() {
        let message = big_message();
        let mut encoded = Encoded::new(&message);
        let first = encoded.frame(JSON);
        let again = encoded.frame(JSON);
        // The same bytes, not an equal copy.
        assert_eq!(first.wire().as_ptr(), again.wire().as_ptr());
        let bin = encoded.frame(BIN);
        assert_ne!(first.wire().as_ptr(), bin.wire().as_ptr());
        assert_eq!(bin.opcode(), OPCODE_BINARY);
        let deflated = encoded.frame(Wire {
            deflate: true,
            ..BIN
        });
        assert!(deflated.is_compressed());
    }

    #[test]
    fn a_close_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(100);
        let frame = Frame::close(4100, &reason);
        assert_eq!(frame.opcode(), OPCODE_CLOSE);
        assert_eq!(&frame.payload()[..2], &4100u16.to_be_bytes());
        let text = std::str::from_utf8(&frame.payload()[2..]).unwrap();
        assert_eq!(text.len(), 122);
    }
}
