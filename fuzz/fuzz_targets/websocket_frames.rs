//! Client frames from the network (`/ws`): whatever arrives, however the
//! reads cut it, the decoder yields the same messages and the same
//! violation, never panics, and never yields a message over the limit;
//! with permessage-deflate agreed too (compressed messages inflated within
//! the limit).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::websocket::decoder::{Decoder, Incoming, Violation};

const MAX_MESSAGE: usize = 4096;

/// Everything `bytes` decodes to, fed `chunk` bytes at a time: the messages
/// and the violation that ended them, if any.
fn decode(bytes: &[u8], chunk: usize, deflate: bool) -> (Vec<Incoming>, Option<Violation>) {
    let mut decoder = Decoder::new(MAX_MESSAGE);
    if deflate {
        decoder = decoder.inflating();
    }
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(incoming)) => {
                    let len = match &incoming {
                        Incoming::Text(text) => text.len(),
                        Incoming::Binary(bytes) => bytes.len(),
                        _ => 0,
                    };
                    assert!(len <= MAX_MESSAGE, "a message over the limit");
                    out.push(incoming);
                }
                Ok(None) => break,
                Err(violation) => return (out, Some(violation)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    // The chunk byte's top bit: whether deflate was agreed.
    let deflate = chunk & 0x80 != 0;
    let chunk = usize::from(chunk & 0x7f);
    let whole = decode(bytes, bytes.len(), deflate);
    let cut = decode(bytes, chunk, deflate);
    assert_eq!(whole, cut, "the reads' sizes changed what was decoded");
});
