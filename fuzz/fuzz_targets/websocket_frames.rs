//! Client frames from the network (`/ws`): whatever arrives, however the
//! reads cut it, the decoder yields the same messages and the same
//! violation, never panics, and never yields a message over the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::websocket::decoder::{Decoder, Incoming, Violation};

const MAX_MESSAGE: usize = 4096;

/// Everything `bytes` decodes to, fed `chunk` bytes at a time: the messages
/// and the violation that ended them, if any.
fn decode(bytes: &[u8], chunk: usize) -> (Vec<Incoming>, Option<Violation>) {
    let mut decoder = Decoder::new(MAX_MESSAGE);
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(incoming)) => {
                    if let Incoming::Text(text) = &incoming {
                        assert!(text.len() <= MAX_MESSAGE, "a message over the limit");
                    }
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
    let whole = decode(bytes, bytes.len());
    let cut = decode(bytes, usize::from(chunk));
    assert_eq!(whole, cut, "the reads' sizes changed what was decoded");
});
