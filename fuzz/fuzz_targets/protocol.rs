//! The `/ws` protocol decoder: any text gets a command or a classified
//! error (never a panic), and a decoded command encodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery_common::codec::{decode_client, encode_client};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_client(text) {
        Ok(command) => {
            let again = decode_client(&encode_client(&command)).expect("an encoded command decodes");
            assert_eq!(again, command);
        }
        Err(error) => {
            // Every error carries a code a client can act on.
            let _ = error.code.number();
        }
    }
    let _ = rookery_common::decode_server(text);
});
