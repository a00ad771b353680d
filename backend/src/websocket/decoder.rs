//! Client-to-server frames (RFC 6455 §5): bytes in, whole messages and
//! control frames out, and every protocol violation named with the close
//! code it earns.
//!
//! Plain code without I/O: the socket feeds it what it read, the tests feed
//! it bytes. Between messages it holds no allocation, so an idle connection
//! keeps no read buffer.

use rookery_common::CloseCode;

use super::deflate::{InflateError, Inflater};

const OPCODE_CONTINUATION: u8 = 0x0;
const OPCODE_TEXT: u8 = 0x1;
const OPCODE_BINARY: u8 = 0x2;
const OPCODE_CLOSE: u8 = 0x8;
const OPCODE_PING: u8 = 0x9;
const OPCODE_PONG: u8 = 0xA;

/// At most this many frames make up one message: tiny fragments are not a
/// way around the message size limit, or a way to keep the server busy.
pub const MAX_FRAGMENTS: usize = 1024;

/// What the client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client's close frame: its code, if it gave one.
    Close(Option<u16>),
}

/// A broken rule and the close code that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub code: CloseCode,
    pub reason: &'static str,
}

const fn protocol_error(reason: &'static str) -> Violation {
    Violation {
        code: CloseCode::ProtocolError,
        reason,
    }
}

const TOO_BIG: Violation = Violation {
    code: CloseCode::MessageTooBig,
    reason: "message too big",
};

/// A message arriving in fragments.
#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    payload: Vec<u8>,
    fragments: usize,
}

#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    /// Bytes read and not yet decoded. Let go when emptied.
    buffer: Vec<u8>,
    /// Boxed: most connections never see a fragmented message.
    partial: Option<Box<Partial>>,
    /// Present when permessage-deflate was agreed.
    inflater: Option<Inflater>,
}

struct Header {
    fin: bool,
    /// RSV1 on a message's first frame: the message is compressed.
    compressed: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            buffer: Vec::new(),
            partial: None,
            inflater: None,
        }
    }

    /// Accepts messages compressed with permessage-deflate, each on its
    /// own (the handshake asks for `client_no_context_takeover`).
    pub fn inflating(mut self) -> Decoder {
        self.inflater = Some(Inflater::new(false));
        self
    }

    pub fn extend(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next message or control frame, `None` until more bytes arrive.
    /// After an error the decoder must not be used again.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, Violation> {
        loop {
            let Some(header) = self.header()? else {
                return Ok(None);
            };
            let end = header.header_len + header.payload_len;
            if self.buffer.len() < end {
                return Ok(None);
            }
            let payload = &mut self.buffer[header.header_len..end];
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= header.mask[i % 4];
            }
            let incoming = self.frame(&header, end)?;
            if self.buffer.len() == end {
                // Every byte decoded: hold no buffer while idle.
                self.buffer = Vec::new();
            } else {
                self.buffer.drain(..end);
            }
            if let Some(incoming) = incoming {
                return Ok(Some(incoming));
            }
        }
    }

    /// The frame at the start of the buffer, checked as far as its header
    /// goes; `None` while the header is incomplete.
    fn header(&self) -> Result<Option<Header>, Violation> {
        let buffer = &self.buffer;
        if buffer.len() < 2 {
            return Ok(None);
        }
        let fin = buffer[0] & 0x80 != 0;
        let opcode = buffer[0] & 0x0f;
        let control = opcode >= 0x8;
        // RSV1 is permessage-deflate's, on the first frame of a message
        // (RFC 7692 §6.1); the other two bits have no extension here.
        let compressed = buffer[0] & 0x40 != 0;
        if buffer[0] & 0x30 != 0 || (compressed && self.inflater.is_none()) {
            return Err(protocol_error("reserved bits set without an extension"));
        }
        if compressed && !matches!(opcode, OPCODE_TEXT | OPCODE_BINARY) {
            return Err(protocol_error(
                "only a message's first frame may say it is compressed",
            ));
        }
        match opcode {
            OPCODE_CONTINUATION | OPCODE_TEXT | OPCODE_BINARY | OPCODE_CLOSE | OPCODE_PING
            | OPCODE_PONG => {}
            _ => return Err(protocol_error("reserved opcode")),
        }
        if buffer[1] & 0x80 == 0 {
            return Err(protocol_error("client frames must be masked"));
        }
        let (length_len, short) = match buffer[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(usize::from(n))),
        };
        let header_len = 2 + length_len + 4;
        if buffer.len() < header_len {
            return Ok(None);
        }
        let payload_len = match short {
            Some(n) => n,
            None if length_len == 2 => usize::from(u16::from_be_bytes([buffer[2], buffer[3]])),
            None => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&buffer[2..10]);
                let length = u64::from_be_bytes(bytes);
                if length >> 63 != 0 {
                    return Err(protocol_error("frame length with its top bit set"));
                }
                usize::try_from(length).map_err(|_| TOO_BIG)?
            }
        };
        if control && (!fin || payload_len > 125) {
            return Err(protocol_error("control frames must be whole and short"));
        }
        // Checked before the payload arrives: the limit bounds what is
        // buffered, not only what is delivered.
        let so_far = self
            .partial
            .as_ref()
            .map_or(0, |partial| partial.payload.len());
        if !control && so_far.saturating_add(payload_len) > self.max_message {
            return Err(TOO_BIG);
        }
        match (opcode, &self.partial) {
            (OPCODE_CONTINUATION, None) => {
                return Err(protocol_error("a continuation with no message begun"));
            }
            (OPCODE_TEXT | OPCODE_BINARY, Some(_)) => {
                return Err(protocol_error("a new message inside a fragmented one"));
            }
            _ => {}
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buffer[header_len - 4..header_len]);
        Ok(Some(Header {
            fin,
            compressed,
            opcode,
            mask,
            header_len,
            payload_len,
        }))
    }

    /// What a complete, unmasked frame means; `None` for a fragment that
    /// does not finish its message.
    fn frame(&mut self, header: &Header, end: usize) -> Result<Option<Incoming>, Violation> {
        let payload = &self.buffer[header.header_len..end];
        match header.opcode {
            OPCODE_PING => Ok(Some(Incoming::Ping(payload.to_vec()))),
            OPCODE_PONG => Ok(Some(Incoming::Pong)),
            OPCODE_CLOSE => close(payload).map(Some),
            OPCODE_TEXT | OPCODE_BINARY if header.fin => {
                let payload = payload.to_vec();
                self.message(header.opcode == OPCODE_TEXT, header.compressed, payload)
                    .map(Some)
            }
            OPCODE_TEXT | OPCODE_BINARY => {
                self.partial = Some(Box::new(Partial {
                    text: header.opcode == OPCODE_TEXT,
                    compressed: header.compressed,
                    payload: payload.to_vec(),
                    fragments: 1,
                }));
                Ok(None)
            }
            _ => {
                let partial = self
                    .partial
                    .as_mut()
                    .expect("checked with the header: a message is begun");
                partial.payload.extend_from_slice(payload);
                partial.fragments += 1;
                if partial.fragments > MAX_FRAGMENTS {
                    return Err(TOO_BIG);
                }
                if !header.fin {
                    return Ok(None);
                }
                let partial = self.partial.take().expect("present");
                self.message(partial.text, partial.compressed, partial.payload)
                    .map(Some)
            }
        }
    }

    /// A whole message's payload, inflated if it came compressed: within
    /// the same size limit, checked as it inflates (a small bomb never
    /// becomes a big allocation).
    fn message(
        &mut self,
        text: bool,
        compressed: bool,
        payload: Vec<u8>,
    ) -> Result<Incoming, Violation> {
        let payload = if compressed {
            let inflater = self
                .inflater
                .as_mut()
                .expect("checked with the header: deflate was agreed");
            let mut inflated = Vec::new();
            inflater
                .inflate(&payload, self.max_message, &mut inflated)
                .map_err(|error| match error {
                    InflateError::TooBig => TOO_BIG,
                    InflateError::Corrupt => Violation {
                        code: CloseCode::InvalidPayload,
                        reason: "invalid compressed data",
                    },
                })?;
            inflated
        } else {
            payload
        };
        message(text, payload)
    }
}

fn message(text: bool, payload: Vec<u8>) -> Result<Incoming, Violation> {
    if !text {
        return Ok(Incoming::Binary(payload));
    }
    String::from_utf8(payload)
        .map(Incoming::Text)
        .map_err(|_| Violation {
            code: CloseCode::InvalidPayload,
            reason: "invalid utf-8 in a text frame",
        })
}

/// A close frame's payload: empty, or a code a peer may send and a UTF-8
/// reason (RFC 6455 §5.5.1, §7.4).
fn close(payload: &[u8]) -> Result<Incoming, Violation> {
    match payload {
        [] => Ok(Incoming::Close(None)),
        [_] => Err(protocol_error("a close frame with a one-byte code")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err(protocol_error("a close code a peer may not send"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation {
                    code: CloseCode::InvalidPayload,
                    reason: "invalid utf-8 in a close reason",
                });
            }
            Ok(Incoming::Close(Some(code)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: masked, with the shortest length encoding.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&KEY);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
        frame
    }

    fn decode_all(max: usize, bytes: &[u8]) -> Result<Vec<Incoming>, Violation> {
        let mut decoder = Decoder::new(max);
        decoder.extend(bytes);
        let mut out = Vec::new();
        while let Some(incoming) = decoder.next_message()? {
            out.push(incoming);
        }
        Ok(out)
    }

    fn code(result: Result<Vec<Incoming>, Violation>) -> u16 {
        result.expect_err("a violation").code.number()
    }

    #[test]
    fn messages_come_out_whole_whatever_the_reads_cut() {
        let mut bytes = frame(true, OPCODE_TEXT, b"hello");
        bytes.extend(frame(false, OPCODE_TEXT, "h\u{e9}".as_bytes()));
        // A ping between fragments is allowed and answered at once.
        bytes.extend(frame(true, OPCODE_PING, b"p"));
        bytes.extend(frame(true, OPCODE_CONTINUATION, b"llo"));
        bytes.extend(frame(true, OPCODE_TEXT, &vec![b'a'; 300]));
        bytes.extend(frame(true, OPCODE_TEXT, &vec![b'b'; 70_000]));
        bytes.extend(frame(true, OPCODE_CLOSE, &[0x03, 0xe8, b'o', b'k']));
        let expected = vec![
            Incoming::Text("hello".into()),
            Incoming::Ping(b"p".to_vec()),
            Incoming::Text("h\u{e9}llo".into()),
            Incoming::Text("a".repeat(300)),
            Incoming::Text("b".repeat(70_000)),
            Incoming::Close(Some(1000)),
        ];
        assert_eq!(decode_all(100_000, &bytes).unwrap(), expected);
        for chunk in [1, 2, 3, 7, 1000] {
            let mut decoder = Decoder::new(100_000);
            let mut out = Vec::new();
            for piece in bytes.chunks(chunk) {
                decoder.extend(piece);
                while let Some(incoming) = decoder.next_message().unwrap() {
                    out.push(incoming);
                }
            }
            assert_eq!(out, expected, "read {chunk} bytes at a time");
            assert_eq!(decoder.buffer.capacity(), 0, "nothing held once decoded");
        }
    }

    #[test]
    fn framing_violations_get_1002() {
        let mut unmasked = frame(true, OPCODE_TEXT, b"x");
        unmasked[1] &= 0x7f;
        let mut reserved_bit = frame(true, OPCODE_TEXT, b"x");
        reserved_bit[0] |= 0x40;
        let mut top_bit_length = vec![0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        top_bit_length.extend_from_slice(&KEY);
        let mut new_message_inside = frame(false, OPCODE_TEXT, b"a");
        new_message_inside.extend(frame(true, OPCODE_TEXT, b"b"));
        for bytes in [
            unmasked,
            reserved_bit,
            top_bit_length,
            frame(true, 0x3, b""),
            frame(true, 0xB, b""),
            frame(true, OPCODE_CONTINUATION, b"orphan"),
            new_message_inside,
            frame(false, OPCODE_PING, b""),
            frame(true, OPCODE_PING, &[0; 126]),
            frame(true, OPCODE_CLOSE, &[3]),
            frame(true, OPCODE_CLOSE, &1005u16.to_be_bytes()),
            frame(true, OPCODE_CLOSE, &999u16.to_be_bytes()),
            frame(true, OPCODE_CLOSE, &5000u16.to_be_bytes()),
        ] {
            assert_eq!(code(decode_all(1024, &bytes)), 1002, "{bytes:?}");
        }
    }

    #[test]
    fn invalid_utf8_gets_1007_even_split_across_fragments() {
        assert_eq!(
            code(decode_all(1024, &frame(true, OPCODE_TEXT, b"\xff"))),
            1007
        );
        // A character split across fragments is fine; a broken one is not.
        let e_acute = "\u{e9}".as_bytes();
        let mut split = frame(false, OPCODE_TEXT, &e_acute[..1]);
        split.extend(frame(true, OPCODE_CONTINUATION, &e_acute[1..]));
        assert_eq!(
            decode_all(1024, &split).unwrap(),
            [Incoming::Text("\u{e9}".into())]
        );
        let mut broken = frame(false, OPCODE_TEXT, &e_acute[..1]);
        broken.extend(frame(true, OPCODE_CONTINUATION, b"x"));
        assert_eq!(code(decode_all(1024, &broken)), 1007);
        let mut reason = 1000u16.to_be_bytes().to_vec();
        reason.push(0xff);
        assert_eq!(
            code(decode_all(1024, &frame(true, OPCODE_CLOSE, &reason))),
            1007
        );
    }

    #[test]
    fn the_size_limit_is_checked_before_the_payload_arrives() {
        // Only the header of a 1 GiB frame: refused without waiting for it.
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 30).to_be_bytes());
        header.extend_from_slice(&KEY);
        assert_eq!(code(decode_all(1024, &header)), 1009);
        // Fragments adding up past the limit.
        let mut fragments = frame(false, OPCODE_TEXT, &[b'a'; 600]);
        fragments.extend(frame(false, OPCODE_CONTINUATION, &[b'a'; 600]));
        assert_eq!(code(decode_all(1024, &fragments)), 1009);
        // Empty fragments, endlessly.
        let mut flood = frame(false, OPCODE_TEXT, b"{");
        for _ in 0..MAX_FRAGMENTS {
            flood.extend(frame(false, OPCODE_CONTINUATION, b""));
        }
        assert_eq!(code(decode_all(1024, &flood)), 1009);
        // Exactly at the limit is fine.
        let whole = frame(true, OPCODE_TEXT, &[b'a'; 1024]);
        assert_eq!(
            decode_all(1024, &whole).unwrap(),
            [Incoming::Text("a".repeat(1024))]
        );
    }

    #[test]
    fn binary_messages_and_pongs_are_reported() {
        let mut bytes = frame(true, OPCODE_BINARY, &[0, 1, 2]);
        bytes.extend(frame(true, OPCODE_PONG, b""));
        bytes.extend(frame(true, OPCODE_CLOSE, b""));
        assert_eq!(
            decode_all(1024, &bytes).unwrap(),
            [
                Incoming::Binary(vec![0, 1, 2]),
                Incoming::Pong,
                Incoming::Close(None)
            ]
        );
    }

    fn inflating(max: usize, bytes: &[u8]) -> Result<Vec<Incoming>, Violation> {
        let mut decoder = Decoder::new(max).inflating();
        decoder.extend(bytes);
        let mut out = Vec::new();
        while let Some(incoming) = decoder.next_message()? {
            out.push(incoming);
        }
        Ok(out)
    }

    /// A frame with RSV1 set: its payload compressed.
    fn compressed(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = frame(fin, opcode, payload);
        frame[0] |= 0x40;
        frame
    }

    #[test]
    fn compressed_messages_are_inflated_whole_or_in_fragments() {
        let text = "so many words, so many words, so many words ".repeat(50);
        let deflated = crate::websocket::deflate::compress(text.as_bytes());
        assert!(deflated.len() < text.len() / 4);
        let mut bytes = compressed(true, OPCODE_TEXT, &deflated);
        // In two fragments: only the first says it is compressed.
        let (first, second) = deflated.split_at(deflated.len() / 2);
        bytes.extend(compressed(false, OPCODE_BINARY, first));
        bytes.extend(frame(true, OPCODE_CONTINUATION, second));
        // Uncompressed messages stay allowed.
        bytes.extend(frame(true, OPCODE_TEXT, b"plain"));
        assert_eq!(
            inflating(100_000, &bytes).unwrap(),
            [
                Incoming::Text(text.clone()),
                Incoming::Binary(text.into_bytes()),
                Incoming::Text("plain".into())
            ]
        );
    }

    #[test]
    fn compression_breaking_the_rules_gets_its_close_code() {
        let deflated = crate::websocket::deflate::compress(b"hello");
        // RSV1 on a continuation or a control frame.
        let mut on_continuation = frame(false, OPCODE_TEXT, b"a");
        on_continuation.extend(compressed(true, OPCODE_CONTINUATION, &deflated));
        assert_eq!(code(inflating(1024, &on_continuation)), 1002);
        assert_eq!(
            code(inflating(1024, &compressed(true, OPCODE_PING, b""))),
            1002
        );
        // Not deflate data.
        let garbage = compressed(true, OPCODE_TEXT, &[0xff; 40]);
        assert_eq!(code(inflating(1024, &garbage)), 1007);
        // A bomb: a few hundred bytes that inflate past the limit.
        let bomb = crate::websocket::deflate::compress(&vec![b'a'; 1 << 20]);
        assert!(bomb.len() < 8 * 1024);
        assert_eq!(
            code(inflating(64 * 1024, &compressed(true, OPCODE_TEXT, &bomb))),
            1009
        );
        // Inflating to exactly the limit is fine; invalid UTF-8 inside is not.
        let exact = crate::websocket::deflate::compress(&[b'a'; 1024]);
        assert_eq!(
            inflating(1024, &compressed(true, OPCODE_TEXT, &exact)).unwrap(),
            [Incoming::Text("a".repeat(1024))]
        );
        let broken = crate::websocket::deflate::compress(b"\xff\xfe");
        assert_eq!(
            code(inflating(1024, &compressed(true, OPCODE_TEXT, &broken))),
            1007
        );
    }
}
