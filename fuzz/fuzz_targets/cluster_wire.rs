//! What a node reads from Redis (pub/sub messages of channels and notes):
//! any bytes are an event or ignored, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::cluster::{notes, wire};

fuzz_target!(|data: &[u8]| {
    let _ = wire::decode_event(data);
    let _ = notes::decode(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = wire::channel_of(text);
        let _ = wire::note_of(text);
        let _ = wire::parse_stamp(text);
    }
});
