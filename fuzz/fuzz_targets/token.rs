//! Connection and subscription tokens: any string is verified or refused
//! with an error, never a panic, and nothing unsigned gets through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rookery::auth::Verifier;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verifier = Verifier::hs256(b"fuzzing-secret-0123456789").expect("a valid secret");
    assert!(
        verifier.verify_connection(token).is_err(),
        "a token nobody signed was accepted: {token:?}"
    );
    let channel = rookery_common::ChannelName::parse("chat:fuzz").expect("a valid channel");
    let user = rookery_common::UserId("fuzzer".into());
    assert!(verifier.verify_subscription(token, &user, &channel).is_err());
});
