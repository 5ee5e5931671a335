//! Published vectors: RFC 7638 §3.1, RFC 9449 §4.2 / §6.1 / §7.1, RFC 8037 §A.3, and the
//! thumbprints of generated keys against an independent implementation (jsonwebtoken).

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use apiauth_core::clock::ManualClock;
use apiauth_dpop::{
    DpopAlgorithm, DpopKey, DpopRefusal, DpopVerifier, JwkError, PublicJwk, access_token_hash,
    jwk_thumbprint_sha256,
};
use http::Method;

const RFC7638_RSA: &str = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;

/// RFC 9449 §4.2 (Figure 2): the example proof to the token endpoint.
const RFC9449_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
/// RFC 9449 §6.1 (Figure 9): the thumbprint of that proof's key, as `cnf.jkt`.
const RFC9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const RFC9449_IAT: u64 = 1_562_262_616;

#[test]
fn rfc7638_section_3_1_rsa_thumbprint() {
    assert_eq!(
        jwk_thumbprint_sha256(RFC7638_RSA).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn rfc9449_example_key_has_the_published_thumbprint() {
    let jwk = r#"{"kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA","crv":"P-256"}"#;
    assert_eq!(jwk_thumbprint_sha256(jwk).unwrap(), RFC9449_JKT);
}

#[test]
fn rfc8037_appendix_a3_ed25519_thumbprint() {
    let jwk = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    assert_eq!(
        jwk_thumbprint_sha256(jwk).unwrap(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn rfc9449_section_7_1_ath_example() {
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

fn at_rfc_example_time() -> ManualClock {
    ManualClock::new(UNIX_EPOCH + Duration::from_secs(RFC9449_IAT + 10))
}

#[test]
fn rfc9449_section_4_2_example_proof_verifies_with_its_published_signature() {
    let v = DpopVerifier::builder("https://server.example.com")
        .clock(Arc::new(at_rfc_example_time()))
        .build()
        .unwrap();
    let proof = v
        .check(RFC9449_PROOF, &Method::POST, "/token", None)
        .expect("the published proof verifies");
    assert_eq!(proof.jkt(), RFC9449_JKT);
    assert_eq!(proof.jti(), "-BwC3ESc6acc2lTc");
    assert_eq!(proof.algorithm(), DpopAlgorithm::Es256);
    assert_eq!(proof.issued_at(), RFC9449_IAT as i64);

    // The same published proof against anything else is refused, each for its own reason.
    let r = v
        .check(RFC9449_PROOF, &Method::GET, "/token", None)
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::MethodMismatch), "{r}");
    let r = v
        .check(RFC9449_PROOF, &Method::POST, "/other", None)
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::UriMismatch), "{r}");
    let r = v
        .check(RFC9449_PROOF, &Method::POST, "/token", Some("a-token"))
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::AthMissing), "{r}");
    // One flipped signature bit.
    let mut tampered = RFC9449_PROOF.to_owned();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'g' { 'w' } else { 'g' });
    let r = v
        .check(&tampered, &Method::POST, "/token", None)
        .unwrap_err();
    assert!(
        matches!(r, DpopRefusal::BadSignature | DpopRefusal::Malformed),
        "{r}"
    );

    // Today, the 2019 proof is far too old.
    let now = DpopVerifier::builder("https://server.example.com")
        .build()
        .unwrap();
    let r = now
        .check(RFC9449_PROOF, &Method::POST, "/token", None)
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::IssuedTooLongAgo), "{r}");
}

#[test]
fn generated_key_thumbprints_match_an_independent_implementation() {
    for key in [
        DpopKey::generate_es256().unwrap(),
        DpopKey::generate_ed25519().unwrap(),
    ] {
        let theirs: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.public_jwk().clone()).unwrap();
        assert_eq!(
            key.thumbprint(),
            theirs
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
        );
    }
    let rsa: jsonwebtoken::jwk::Jwk = serde_json::from_str(RFC7638_RSA).unwrap();
    assert_eq!(
        rsa.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        jwk_thumbprint_sha256(RFC7638_RSA).unwrap()
    );
}

#[test]
fn private_and_symmetric_jwks_are_refused_and_odd_ones_are_not_keys() {
    let ec = r#""kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA""#;
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        let jwk = format!(r#"{{{ec},"{member}":"AAAA"}}"#);
        assert_eq!(
            PublicJwk::from_json(&jwk),
            Err(JwkError::PrivateMaterial),
            "{member}"
        );
    }
    assert_eq!(
        PublicJwk::from_json(r#"{"kty":"oct","k":"c2VjcmV0"}"#),
        Err(JwkError::PrivateMaterial)
    );
    // A member twice, an array instead of an object, the wrong curve, a short coordinate.
    let twice = format!(r#"{{{ec},"x":"AAAA"}}"#);
    assert_eq!(PublicJwk::from_json(&twice), Err(JwkError::Malformed));
    assert_eq!(
        PublicJwk::from_json(r#"["EC","P-256"]"#),
        Err(JwkError::Malformed)
    );
    assert_eq!(
        PublicJwk::from_json(r#"{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}"#),
        Err(JwkError::Unsupported)
    );
    assert_eq!(
        PublicJwk::from_json(r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}"#),
        Err(JwkError::InvalidKey)
    );
    // RSA below 2048 bits.
    assert_eq!(
        PublicJwk::from_json(r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#),
        Err(JwkError::InvalidKey)
    );
}
