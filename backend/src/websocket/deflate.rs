//! permessage-deflate (RFC 7692): which offer the handshake accepts, and
//! message payloads compressed on the way out and inflated on the way in.
//!
//! Plain code without I/O, like the decoder. The server compresses every
//! message on its own (`server_no_context_takeover`): a publication is
//! compressed once and the same bytes go to every subscriber, which a
//! window shared with earlier messages of one connection would forbid. The
//! server asks the client to do the same, so a connection's [`Inflater`]
//! keeps nothing between messages. (It can keep a window, with
//! `Inflater::new(true)`, should the server ever let clients keep theirs;
//! the tests cover that path.)
//!
//! flate2 runs on miniz_oxide here, which shapes a few choices below: its
//! compressor is about 300 KiB, so one per thread is reused; its
//! decompressor always keeps a 32 KiB window, which decodes whatever
//! smaller window a client asks for; and it is never given
//! `FlushDecompress::Finish`, which on a stream's first call decodes
//! straight into the output and keeps no window.

use std::borrow::Cow;
use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

const EXTENSION: &str = "permessage-deflate";

/// What a sync flush ends with: an empty stored block's length and its
/// complement. The sender removes it from every message, the receiver puts
/// it back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The window we compress with, and the only one we agree to be held to.
const WINDOW_BITS: u8 = 15;

/// What was agreed in the handshake.
///
/// Both sides start every message afresh: the server so that a
/// publication is compressed once for all its subscribers, and the client
/// because the server asks it to (`client_no_context_takeover`, which a
/// server may add unasked, RFC 7692 §7.1.1.2). A connection then holds no
/// inflate state between messages: the 43 KiB window a client's context
/// would need, times every connection, is what uWebSockets and gorilla
/// avoid the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The client offered `server_max_window_bits=15`, the window we use
    /// anyway. Accepting that offer means saying it back (RFC 7692
    /// §7.1.2.1); some clients (Python's websockets) refuse an answer
    /// without it.
    pub server_max_window_bits: bool,
}

impl Agreed {
    /// The `Sec-WebSocket-Extensions` response value: never
    /// `client_max_window_bits`, since we inflate with the largest window,
    /// which decodes any smaller one.
    pub fn response(&self) -> &'static str {
        if self.server_max_window_bits {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=15"
        } else {
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        }
    }
}

/// The first permessage-deflate offer the server can accept among every
/// `Sec-WebSocket-Extensions` value the client sent, in order.
///
/// Each value lists offers separated by commas, each offer
/// `name; param; param=value`, values tokens or quoted strings (RFC 6455
/// §9.1). An offer with an unknown or repeated parameter, a bad value, or a
/// window smaller than ours for our side is declined and the next one
/// tried; other extensions are passed over.
pub fn negotiate<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Agreed> {
    values
        .into_iter()
        .flat_map(|value| split_unquoted(value, b','))
        .find_map(accept)
}

/// The terms of one offer, if it is permessage-deflate and acceptable.
fn accept(offer: &str) -> Option<Agreed> {
    let mut parts = split_unquoted(offer, b';');
    if !parts.next()?.trim().eq_ignore_ascii_case(EXTENSION) {
        return None;
    }
    let mut agreed = Agreed {
        server_max_window_bits: false,
    };
    // One bit per parameter already seen: each may appear once (RFC 7692 §7).
    let mut seen = 0u8;
    for part in parts {
        let (name, value) = param(part)?;
        let (bit, ok) = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => (1, value.is_none()),
            // Asked for anyway.
            "client_no_context_takeover" => (2, value.is_none()),
            "server_max_window_bits" => {
                agreed.server_max_window_bits = true;
                // A smaller window for our side is valid but not for us.
                (
                    4,
                    value.and_then(|value| window_bits(&value)) == Some(WINDOW_BITS),
                )
            }
            // Ignored, not echoed: our window decodes any smaller one.
            "client_max_window_bits" => {
                (8, value.is_none_or(|value| window_bits(&value).is_some()))
            }
            _ => return None,
        };
        if !ok || seen & bit != 0 {
            return None;
        }
        seen |= bit;
    }
    Some(agreed)
}

/// A parameter's name and its value, unquoted; `None` if it is malformed.
fn param(text: &str) -> Option<(&str, Option<Cow<'_, str>>)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(value.trim())),
        None => (text.trim(), None),
    };
    if !is_token(name) {
        return None;
    }
    let Some(value) = value else {
        return Some((name, None));
    };
    let value = match value.strip_prefix('"') {
        Some(quoted) => unquote(quoted.strip_suffix('"')?)?,
        None => Cow::Borrowed(value),
    };
    // A quoted value must still be a token once unquoted (RFC 6455 §9.1).
    is_token(&value).then_some((name, Some(value)))
}

/// The inside of a quoted string with its `\` escapes undone; `None` if a
/// quote or a lone backslash is left in it.
fn unquote(inner: &str) -> Option<Cow<'_, str>> {
    if !inner.contains(['\\', '"']) {
        return Some(Cow::Borrowed(inner));
    }
    let mut unquoted = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => unquoted.push(chars.next()?),
            '"' => return None,
            _ => unquoted.push(c),
        }
    }
    Some(Cow::Owned(unquoted))
}

/// An HTTP token (RFC 7230 §3.2.6).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// A window size: a decimal integer from 8 to 15, without leading zeros.
fn window_bits(value: &str) -> Option<u8> {
    let bits: u8 = value.parse().ok()?;
    let canonical = value.bytes().all(|byte| byte.is_ascii_digit()) && !value.starts_with('0');
    (canonical && (8..=15).contains(&bits)).then_some(bits)
}

/// The pieces of `list` between `separator`s outside quoted strings, so
/// that a quoted value cannot split an offer or a parameter.
fn split_unquoted(list: &str, separator: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        let text = rest?;
        match unquoted_position(text, separator) {
            Some(end) => {
                rest = Some(&text[end + 1..]);
                Some(&text[..end])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

fn unquoted_position(text: &str, separator: u8) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (position, &byte) in text.as_bytes().iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match byte {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if byte == b'"' {
            quoted = true;
        } else if byte == separator {
            return Some(position);
        }
    }
    None
}

/// This thread's compressor and the buffer it writes to.
struct Deflater {
    compress: Compress,
    /// Room for the worst case, so that one call compresses a whole
    /// message; the result is then copied out at its exact size, since a
    /// frame's bytes stay allocated while any subscriber's queue holds them.
    scratch: Vec<u8>,
}

/// Scratch kept between messages, at most: one large message does not
/// leave its buffer behind on the thread.
const SCRATCH_KEPT: usize = 64 * 1024;

thread_local! {
    /// Reset between messages rather than made anew: miniz_oxide's
    /// compressor holds about 300 KiB of tables and buffers, which take
    /// some 80 µs to allocate and 2 µs to reset.
    static DEFLATER: RefCell<Deflater> = RefCell::new(Deflater {
        compress: Compress::new(Compression::fast(), false),
        scratch: Vec::new(),
    });
}

/// What compressing `len` bytes can take at worst, empty block included:
/// a fixed-Huffman block spends 9 bits on a byte, and a block's header and
/// the sync flush's empty block a few bytes more.
fn compressed_bound(len: usize) -> usize {
    len + len / 8 + 64
}

impl Deflater {
    fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        self.compress.reset();
        self.scratch.clear();
        self.scratch.reserve(compressed_bound(payload.len()));
        let mut input = payload;
        loop {
            let read_before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut self.scratch, FlushCompress::Sync)
                .expect("deflating into memory does not fail");
            input = &input[(self.compress.total_in() - read_before) as usize..];
            // Done when the flush ended with room to spare. Should the bound
            // ever fall short, miniz_oxide may need more calls, and may add
            // a second empty block (harmless) when one ended exactly full.
            let full = self.scratch.len() == self.scratch.capacity();
            if input.is_empty() && !full && self.scratch.ends_with(&TAIL) {
                break;
            }
            self.scratch.reserve(self.scratch.len().max(64));
        }
        let compressed = &self.scratch[..self.scratch.len() - TAIL.len()];
        out.reserve_exact(compressed.len());
        out.extend_from_slice(compressed);
        if self.scratch.capacity() > SCRATCH_KEPT {
            self.scratch = Vec::new();
        }
    }
}

/// One message payload compressed on its own: a fresh raw DEFLATE stream,
/// sync-flushed, without the flush's final `00 00 ff ff` (RFC 7692 §7.2.1).
/// An empty payload gives the single byte `00` (§7.2.3.6).
pub fn compress(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress_into(payload, &mut out);
    out
}

/// As [`compress`], appended to `out`: a frame leaves room for its header
/// first and the payload is not copied again.
pub fn compress_into(payload: &[u8], out: &mut Vec<u8>) {
    DEFLATER.with_borrow_mut(|deflater| deflater.compress(payload, out));
}

/// Why a client's compressed message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates to more than the limit.
    TooBig,
    /// It is not valid DEFLATE data.
    Corrupt,
}

/// How much of an inflated message is decoded at a time, at most: the
/// limit is checked after each step.
const STEP: usize = 16 * 1024;

/// Inflates one connection's compressed messages.
#[derive(Debug)]
pub struct Inflater {
    /// Made on the first compressed message: miniz_oxide's state is about
    /// 43 KiB, which an idle connection should not hold. Dropped after every
    /// message when it holds no window worth keeping.
    stream: Option<Decompress>,
    context_takeover: bool,
}

impl Inflater {
    /// With `context_takeover` the client's messages may refer to earlier
    /// ones, and the window is kept between them; without, every message
    /// starts a fresh stream.
    pub fn new(context_takeover: bool) -> Inflater {
        Inflater {
            stream: None,
            context_takeover,
        }
    }

    /// Inflates one whole message's payload, putting back the tail its
    /// sender removed, and appends it to `out`.
    ///
    /// More than `limit` bytes is [`InflateError::TooBig`], found out as
    /// soon as one byte too many comes out: a small bomb makes no large
    /// allocation. Invalid DEFLATE data is [`InflateError::Corrupt`].
    ///
    /// On an error `out` is left as it was (if perhaps with more capacity)
    /// and the window is gone: the connection is to be closed.
    pub fn inflate(
        &mut self,
        compressed: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        let start = out.len();
        let stream = self.stream.get_or_insert_with(|| Decompress::new(false));
        let inflated = inflate_message(stream, compressed, limit, out, start);
        // Without context takeover there is nothing worth keeping: a fresh
        // stream costs about half a microsecond more than a reset, and the
        // connection holds nothing between messages.
        if inflated.is_err() || !self.context_takeover {
            self.stream = None;
        }
        if inflated.is_err() {
            out.truncate(start);
        }
        inflated
    }
}

/// The payload, then the tail. A final block (BFINAL) ends the stream:
/// anything after it in the payload starts a new one, as in RFC 7692
/// §7.2.3.4, where a lone `00` and the tail make an empty block; and the
/// next message starts afresh too.
fn inflate_message(
    stream: &mut Decompress,
    compressed: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<(), InflateError> {
    let mut step = [0u8; STEP];
    let mut input = compressed;
    while let Some(rest) = feed(stream, input, &mut step, limit, out, start)? {
        if rest.is_empty() {
            // Ended exactly with the payload: the tail belongs to nothing.
            return Ok(());
        }
        input = rest;
    }
    feed(stream, &TAIL, &mut step, limit, out, start)?;
    Ok(())
}

/// Inflates `input` into `out` until all of it is read and nothing more
/// comes out; what is left of it if the stream ended on the way, the
/// stream then reset for what follows.
fn feed<'a>(
    stream: &mut Decompress,
    mut input: &'a [u8],
    step: &mut [u8; STEP],
    limit: usize,
    out: &mut Vec<u8>,
    start: usize,
) -> Result<Option<&'a [u8]>, InflateError> {
    loop {
        // One byte more than the limit allows is how it is seen passed.
        let allowed = (limit - (out.len() - start)).saturating_add(1);
        let room = allowed.min(STEP);
        let (read_before, written_before) = (stream.total_in(), stream.total_out());
        // `None`, not `Sync` or `Finish`: the message's end is not the
        // stream's, and miniz_oxide only gives `Finish` a meaning.
        let status = stream
            .decompress(input, &mut step[..room], FlushDecompress::None)
            .map_err(|_| InflateError::Corrupt)?;
        let read = (stream.total_in() - read_before) as usize;
        let written = (stream.total_out() - written_before) as usize;
        input = &input[read..];
        if written == allowed {
            return Err(InflateError::TooBig);
        }
        append(out, &step[..written], allowed);
        match status {
            Status::StreamEnd => {
                stream.reset(false);
                return Ok(Some(input));
            }
            // miniz_oxide may return with all input read but some of it
            // still to decode: only an empty call shows there is no more.
            Status::Ok | Status::BufError if input.is_empty() && written == 0 => return Ok(None),
            // No progress with input left is a stream that cannot go on.
            Status::Ok | Status::BufError if read == 0 && written == 0 => {
                return Err(InflateError::Corrupt);
            }
            Status::Ok | Status::BufError => {}
        }
    }
}

/// Appends `bytes`, growing `out` by doubling but never past `allowed`
/// more bytes, so that a message near the limit does not allocate twice it.
fn append(out: &mut Vec<u8>, bytes: &[u8], allowed: usize) {
    if out.capacity() - out.len() < bytes.len() {
        out.reserve_exact(out.len().max(bytes.len()).min(allowed));
    }
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The response to these header values, or `None` for no agreement.
    fn check(values: &[&str], expect: Option<&str>) {
        let agreed = negotiate(values.iter().copied());
        assert_eq!(agreed.map(|agreed| agreed.response()), expect, "{values:?}");
    }

    const PLAIN: Option<&str> =
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover");

    #[test]
    fn browsers_and_node_offers_are_accepted() {
        // Chromium, Firefox, and Node's ws by default.
        check(&["permessage-deflate; client_max_window_bits"], PLAIN);
        // Safari.
        check(&["permessage-deflate"], PLAIN);
        check(&["x-webkit-deflate-frame"], None);
        check(&[], None);
    }

    #[test]
    fn no_context_takeover_offered_either_way_is_what_we_answer_anyway() {
        check(
            &["permessage-deflate; client_no_context_takeover; server_no_context_takeover"],
            PLAIN,
        );
        check(&["permessage-deflate;client_no_context_takeover"], PLAIN);
    }

    #[test]
    fn a_smaller_server_window_declines_that_offer_only() {
        check(
            &["permessage-deflate; server_max_window_bits=10, permessage-deflate"],
            PLAIN,
        );
        check(&["permessage-deflate; server_max_window_bits=10"], None);
        // Our own window is accepted, and said back.
        check(
            &["permessage-deflate; server_max_window_bits=15; client_no_context_takeover"],
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15",
            ),
        );
        check(
            &["permessage-deflate; server_max_window_bits=15"],
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15",
            ),
        );
    }

    #[test]
    fn bad_params_decline_the_offer() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; client_max_window_bits; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=+10",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
            "permessage-deflate; =10",
            "permessage-deflate; ",
        ] {
            check(&[offer], None);
            // The next offer is still considered.
            check(&[&format!("{offer}, permessage-deflate")], PLAIN);
        }
        // An unterminated quote runs to the end of its header value.
        check(
            &[
                "permessage-deflate; client_max_window_bits=\"10, permessage-deflate",
                "permessage-deflate",
            ],
            PLAIN,
        );
        check(
            &["permessage-deflate; client_max_window_bits=\"10, permessage-deflate"],
            None,
        );
    }

    #[test]
    fn quoted_values_are_unquoted() {
        check(
            &["permessage-deflate; client_max_window_bits=\"10\""],
            PLAIN,
        );
        check(
            &["permessage-deflate; client_max_window_bits=\"1\\0\""],
            PLAIN,
        );
        check(
            &["permessage-deflate; server_max_window_bits=\"15\""],
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=15",
            ),
        );
        // A comma or semicolon inside quotes splits nothing (and is no token).
        check(
            &["permessage-deflate; client_max_window_bits=\"10, permessage-deflate\""],
            None,
        );
        check(
            &["permessage-deflate; x=\"a;b\", permessage-deflate"],
            PLAIN,
        );
    }

    #[test]
    fn every_header_value_and_offer_is_read_in_order() {
        check(
            &[
                "foo, bar; baz=2",
                "permessage-deflate; server_max_window_bits=9",
                "PERMESSAGE-DEFLATE ;Client_No_Context_Takeover , permessage-deflate",
            ],
            PLAIN,
        );
        check(&["foo", "", " , ,permessage-deflate"], PLAIN);
    }

    /// A deterministic stream of bytes that does not compress.
    fn random(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    /// Text that compresses, as JSON messages do.
    fn text(len: usize) -> Vec<u8> {
        let line = br#"{"type":"publication","channel":"news","data":{"n":12345}}"#;
        line.iter().copied().cycle().take(len).collect()
    }

    fn inflate(inflater: &mut Inflater, compressed: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        inflater.inflate(compressed, usize::MAX, &mut out)?;
        Ok(out)
    }

    /// What a receiver that is not ours does: put the tail back, inflate
    /// with a fresh raw stream.
    fn inflate_as_others_do(compressed: &[u8]) -> Vec<u8> {
        let mut input = compressed.to_vec();
        input.extend_from_slice(&TAIL);
        let mut decompress = Decompress::new(false);
        let mut out = Vec::with_capacity(2 * 1024 * 1024);
        decompress
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(decompress.total_in(), input.len() as u64);
        out
    }

    #[test]
    fn messages_round_trip() {
        let mut inflater = Inflater::new(false);
        for payload in [
            Vec::new(),
            b"Hello".to_vec(),
            text(1000),
            text(1024 * 1024),
            random(100),
            random(100_000),
            random(1024 * 1024),
        ] {
            let compressed = compress(&payload);
            assert!(!compressed.ends_with(&TAIL), "{}", payload.len());
            assert_eq!(inflate(&mut inflater, &compressed).unwrap(), payload);
            assert_eq!(inflate_as_others_do(&compressed), payload);
        }
        assert!(compress(&text(1024 * 1024)).len() < 20_000);
        assert!(compress(&random(100_000)).len() < 101_000);
    }

    #[test]
    fn compression_matches_the_rfc_examples() {
        // RFC 7692 §7.2.3.1 and §7.2.3.6.
        assert_eq!(
            compress(b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
        assert_eq!(compress(b""), [0x00]);
    }

    #[test]
    fn compress_into_appends_after_the_room_left() {
        let mut out = vec![0; 10];
        compress_into(b"Hello", &mut out);
        assert_eq!(out, [&[0; 10][..], &compress(b"Hello")].concat());
    }

    #[test]
    fn the_rfc_examples_inflate() {
        // RFC 7692 §7.2.3.1 to §7.2.3.6, each as a connection's first message.
        for compressed in [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ] {
            for context_takeover in [false, true] {
                let mut inflater = Inflater::new(context_takeover);
                assert_eq!(inflate(&mut inflater, compressed).unwrap(), b"Hello");
            }
        }
        assert_eq!(inflate(&mut Inflater::new(true), &[0x00]).unwrap(), b"");
        // §7.2.3.2: the second "Hello" refers to the first.
        let mut inflater = Inflater::new(true);
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate(&mut inflater, &first).unwrap(), b"Hello");
        assert_eq!(
            inflate(&mut inflater, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            b"Hello"
        );
    }

    /// A client that keeps its window: each message sync-flushed from one
    /// stream, its tail removed.
    struct Client {
        compress: Compress,
    }

    impl Client {
        fn new() -> Client {
            Client {
                compress: Compress::new(Compression::default(), false),
            }
        }

        fn send(&mut self, payload: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(compressed_bound(payload.len()));
            self.compress
                .compress_vec(payload, &mut out, FlushCompress::Sync)
                .unwrap();
            assert!(out.len() < out.capacity());
            assert_eq!(out.split_off(out.len() - 4), TAIL);
            out
        }
    }

    #[test]
    fn a_client_window_is_kept_across_messages() {
        let messages: Vec<Vec<u8>> = (0..20)
            .map(|i| format!(r#"{{"type":"publish","channel":"room-7","data":{{"i":{i}}}}}"#))
            .map(String::into_bytes)
            .collect();
        let mut client = Client::new();
        let compressed: Vec<Vec<u8>> = messages.iter().map(|m| client.send(m)).collect();
        // Later messages are mostly references to earlier ones.
        assert!(compressed[10].len() < messages[10].len() / 2);
        let mut inflater = Inflater::new(true);
        for (message, compressed) in messages.iter().zip(&compressed) {
            assert_eq!(&inflate(&mut inflater, compressed).unwrap(), message);
        }
        // Without the window, the references do not reach the first message.
        let mut inflater = Inflater::new(false);
        assert_eq!(inflate(&mut inflater, &compressed[0]).unwrap(), messages[0]);
        assert_ne!(
            inflate(&mut inflater, &compressed[1]).ok().as_ref(),
            Some(&messages[1])
        );
    }

    #[test]
    fn a_final_block_ends_the_stream_and_the_next_message_starts_afresh() {
        let mut inflater = Inflater::new(true);
        for payload in [&b"first message"[..], b"second", b""] {
            // A stream finished with BFINAL, as some senders do (RFC 7692
            // §7.2.3.4), with nothing after it.
            let mut compress = Compress::new(Compression::default(), false);
            let mut finished = Vec::with_capacity(100);
            compress
                .compress_vec(payload, &mut finished, FlushCompress::Finish)
                .unwrap();
            assert_eq!(inflate(&mut inflater, &finished).unwrap(), payload);
        }
        // Then one from a sync-flushed stream.
        let mut client = Client::new();
        let message = client.send(b"third");
        assert_eq!(inflate(&mut inflater, &message).unwrap(), b"third");
        assert_eq!(
            inflate(&mut inflater, &client.send(b"third")).unwrap(),
            b"third"
        );
    }

    #[test]
    fn a_bomb_is_too_big_before_it_is_inflated() {
        let bomb = compress(&vec![0; 10 * 1024 * 1024]);
        assert!(bomb.len() < 50_000, "{}", bomb.len());
        let limit = 1024 * 1024;
        let mut out = b"kept".to_vec();
        let mut inflater = Inflater::new(true);
        assert_eq!(
            inflater.inflate(&bomb, limit, &mut out),
            Err(InflateError::TooBig)
        );
        assert_eq!(out, b"kept");
        assert!(out.capacity() <= 4 + limit + 1, "{}", out.capacity());
        // The inflater starts afresh after it.
        inflater.inflate(&compress(b"ok"), limit, &mut out).unwrap();
        assert_eq!(out, b"keptok");
    }

    #[test]
    fn the_limit_is_inclusive() {
        let payload = text(100_000);
        let compressed = compress(&payload);
        let mut out = Vec::new();
        let mut inflater = Inflater::new(false);
        assert_eq!(
            inflater.inflate(&compressed, payload.len() - 1, &mut out),
            Err(InflateError::TooBig)
        );
        assert!(out.is_empty());
        inflater
            .inflate(&compressed, payload.len(), &mut out)
            .unwrap();
        assert_eq!(out, payload);
    }

    #[test]
    fn garbage_is_corrupt() {
        for garbage in [
            &[0xff; 16][..],
            // A stored block whose length and complement disagree.
            &[0x00, 0x05, 0x00, 0x00, 0x00, b'H'],
            // A reserved block type.
            &[0x07, 0x00],
        ] {
            let mut out = b"kept".to_vec();
            assert_eq!(
                Inflater::new(true).inflate(garbage, 1024, &mut out),
                Err(InflateError::Corrupt),
                "{garbage:?}"
            );
            assert_eq!(out, b"kept");
        }
    }

    #[test]
    fn an_idle_inflater_holds_nothing() {
        assert!(std::mem::size_of::<Inflater>() <= 32);
        let mut inflater = Inflater::new(false);
        assert!(inflater.stream.is_none());
        inflate(&mut inflater, &compress(b"Hello")).unwrap();
        assert!(inflater.stream.is_none());
        let mut inflater = Inflater::new(true);
        inflate(&mut inflater, &compress(b"Hello")).unwrap();
        assert!(inflater.stream.is_some());
    }
}
