//! The hand-written RFC 8941 dictionary parser of `apiauth-hmac` against `sfv`, its
//! reference, on the same bytes: both accept or both refuse, with the same visitor calls
//! (keys, items, inner lists, bare items, parameters), and the verifier reads the same
//! `Signature-Input` member (or refusal reason), `Signature` bytes and `Content-Digest`
//! digests from them with either.
#![no_main]

use apiauth_hmac::differential::{by_hand, by_sfv, verifier_readings_agree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(by_hand(data), by_sfv(data));
    // The first byte picks the label: none (the first member), or one of two.
    let label = match data.first().map(|b| b % 3) {
        Some(1) => Some("sig1"),
        Some(2) => Some("a"),
        _ => None,
    };
    assert!(verifier_readings_agree(data, label));
});
