//! DPoP proofs (RFC 9449 §4.3) through the public `DpopVerifier::check`: raw header values,
//! and proofs built from fuzzed header and claims, signed by a real key, then mutated.
#![no_main]

use std::sync::{Arc, OnceLock};

use apiauth_core::clock::ManualClock;
use apiauth_dpop::{DpopKey, DpopVerifier, access_token_hash, jwk_thumbprint_sha256};
use apiauth_fuzz::epoch_now;
use arbitrary::Arbitrary;
use http::Method;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const BASE: &str = "https://api.example";
const PATH: &str = "/v1/items";
const TOKEN: &str = "the-access-token";
const NOW: i64 = 1_750_000_000;

fn verifier() -> &'static DpopVerifier {
    static V: OnceLock<DpopVerifier> = OnceLock::new();
    V.get_or_init(|| {
        DpopVerifier::builder(BASE)
            .clock(Arc::new(ManualClock::new(epoch_now())))
            .build()
            .expect("static verifier builds")
    })
}

fn key() -> &'static DpopKey {
    static K: OnceLock<DpopKey> = OnceLock::new();
    K.get_or_init(|| DpopKey::generate_es256().expect("key"))
}

#[derive(Arbitrary, Debug)]
struct Built<'a> {
    typ: Option<&'a str>,
    alg: Option<&'a str>,
    with_jwk: bool,
    private_d: bool,
    htm: &'a str,
    htu: &'a str,
    iat_offset: i16,
    jti: &'a str,
    ath: Option<&'a str>,
    extra_claim: Option<(&'a str, &'a str)>,
    mutate_at: Option<u16>,
    mutate_to: u8,
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw(&'a str),
    Jwk(&'a str),
    Built(Built<'a>),
}

fuzz_target!(|input: Input<'_>| {
    let v = verifier();
    match input {
        // Nobody without the key can make a valid proof: raw input never passes.
        Input::Raw(raw) => {
            assert!(v.check(raw, &Method::GET, PATH, Some(TOKEN)).is_err());
        }
        Input::Jwk(raw) => {
            // Thumbprints are canonical base64url SHA-256, or an error.
            if let Ok(t) = jwk_thumbprint_sha256(raw) {
                assert_eq!(t.len(), 43);
            }
        }
        Input::Built(b) => {
            let k = key();
            let mut jwk = k.public_jwk().clone();
            if b.private_d {
                jwk["d"] = json!("AAAA");
            }
            let mut header = json!({});
            if let Some(t) = b.typ {
                header["typ"] = json!(t);
            }
            if let Some(a) = b.alg {
                header["alg"] = json!(a);
            }
            if b.with_jwk {
                header["jwk"] = jwk;
            }
            let iat = NOW + i64::from(b.iat_offset);
            let mut claims = json!({"jti": b.jti, "htm": b.htm, "htu": b.htu, "iat": iat});
            if let Some(a) = b.ath {
                claims["ath"] = json!(a);
            }
            if let Some((name, value)) = b.extra_claim
                && !["jti", "htm", "htu", "iat", "ath"].contains(&name)
            {
                claims[name] = Value::from(value);
            }
            let Ok(proof) = k.sign_jws(&header, &claims) else {
                return;
            };
            // The oracle: what RFC 9449 §4.3 accepts, written independently of the verifier.
            let htu_ok = b.htu == format!("{BASE}{PATH}")
                || b.htu == format!("{BASE}{PATH}?") // an empty query is still no query
                || b.htu.strip_prefix(&format!("{BASE}{PATH}")).is_some_and(|r| r.starts_with(['?', '#']));
            // `typ` is a media type: case-insensitive (RFC 7515 §4.1.9).
            let should_pass = b.typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
                && b.alg == Some("ES256")
                && b.with_jwk
                && !b.private_d
                && b.htm == "GET"
                && htu_ok
                && (-60..=5).contains(&i64::from(b.iat_offset))
                && !b.jti.is_empty()
                && b.jti.len() <= 256
                && b.ath == Some(access_token_hash(TOKEN).as_str())
                && proof.len() <= 8 * 1024;
            let result = v.check(&proof, &Method::GET, PATH, Some(TOKEN));
            if should_pass {
                let ok = result.expect("a proof the oracle accepts passes");
                assert_eq!(ok.jkt(), k.thumbprint());
                assert_eq!(ok.jti(), b.jti);
            } else if result.is_ok() {
                // Other spellings of the same target URI may be accepted (RFC 3986 §6.2),
                // and nothing else.
                assert!(
                    !htu_ok,
                    "only a normalised-equal htu differs from the oracle"
                );
            }
            // One changed byte anywhere is always refused.
            if let Some(at) = b.mutate_at
                && let Some(mutated) =
                    replace_byte(&proof, usize::from(at) % proof.len().max(1), b.mutate_to)
                && mutated != proof
            {
                assert!(v.check(&mutated, &Method::GET, PATH, Some(TOKEN)).is_err());
            }
        }
    }
});

/// `s` with the byte at `at` replaced by `to`, if the result is still text.
fn replace_byte(s: &str, at: usize, to: u8) -> Option<String> {
    let mut bytes = s.as_bytes().to_vec();
    *bytes.get_mut(at)? = to;
    String::from_utf8(bytes).ok()
}
