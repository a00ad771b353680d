//! The `/ws` protocol decoders: any text (JSON) or bytes (MessagePack) get
//! a command or a classified error (never a panic), and a decoded command
//! encodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery_common::codec::{decode_client, decode_client_bin, encode_client, encode_client_bin};

fuzz_target!(|data: &[u8]| {
    match decode_client_bin(data) {
        Ok(command) => {
            let again =
                decode_client_bin(&encode_client_bin(&command)).expect("an encoded command decodes");
            assert_eq!(again, command);
        }
        Err(error) => {
            let _ = error.code.number();
        }
    }
    let _ = rookery_common::decode_server_bin(data);
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
