//! DPoP proof parsing under arbitrary input (the `dpop_proof` fuzz target's properties,
//! without cargo-fuzz): no panic, nothing made up passes, one changed byte of a valid proof
//! is always refused.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use apiauth_core::clock::ManualClock;
use apiauth_dpop::{DpopKey, DpopVerifier, PublicJwk};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use proptest::prelude::*;

const NOW: u64 = 1_750_000_000;
const URL: &str = "https://api.example/v1/items";

fn verifier() -> &'static DpopVerifier {
    static V: OnceLock<DpopVerifier> = OnceLock::new();
    V.get_or_init(|| {
        DpopVerifier::builder("https://api.example")
            .clock(Arc::new(ManualClock::new(
                SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
            )))
            .build()
            .unwrap()
    })
}

fn key() -> &'static DpopKey {
    static K: OnceLock<DpopKey> = OnceLock::new();
    K.get_or_init(|| DpopKey::generate_es256().unwrap())
}

fn valid_proof() -> String {
    key()
        .proof("GET", URL)
        .access_token("tok")
        .issued_at(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
        .jti("fixed")
        .sign()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_passes_and_never_panics(raw in ".{0,600}") {
        prop_assert!(verifier().check(&raw, &Method::GET, "/v1/items", Some("tok")).is_err());
    }

    #[test]
    fn arbitrary_json_parts_never_pass(h in "\\PC{0,200}", p in "\\PC{0,200}", s in proptest::collection::vec(any::<u8>(), 0..80)) {
        let proof = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p), URL_SAFE_NO_PAD.encode(s)
        );
        prop_assert!(verifier().check(&proof, &Method::GET, "/v1/items", Some("tok")).is_err());
    }

    #[test]
    fn arbitrary_jwk_text_never_panics(raw in "\\PC{0,300}") {
        let _ = PublicJwk::from_json(&raw);
    }

    #[test]
    fn one_changed_byte_of_a_valid_proof_is_refused(at in any::<prop::sample::Index>(), to in any::<u8>()) {
        let proof = valid_proof();
        prop_assert!(verifier().check(&proof, &Method::GET, "/v1/items", Some("tok")).is_ok());
        let mut bytes = proof.clone().into_bytes();
        let i = at.index(bytes.len());
        bytes[i] = to;
        if let Ok(mutated) = String::from_utf8(bytes)
            && mutated != proof
        {
            prop_assert!(verifier().check(&mutated, &Method::GET, "/v1/items", Some("tok")).is_err());
        }
    }
}
