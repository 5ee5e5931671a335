//! RS256 and PS256 proofs: refused by default, accepted once allowed, never with a key of
//! another family. Signed here with aws-lc-rs directly, outside the crate's own builder.

use apiauth_dpop::{DpopAlgorithm, DpopKey, DpopRefusal, DpopVerifier};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use serde_json::{Value, json};

const URL: &str = "https://api.example/items";

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(
    pair: &RsaKeyPair,
    enc: &'static dyn RsaEncoding,
    header: &Value,
    claims: &Value,
) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(enc, &SystemRandom::new(), input.as_bytes(), &mut sig)
        .unwrap();
    format!("{input}.{}", b64(&sig))
}

#[test]
fn rsa_proofs_pass_only_when_allowed_and_only_with_an_rsa_key() {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = pair.public_key();
    let jwk = json!({
        "kty": "RSA",
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    });
    let claims = |jti: &str| json!({"jti": jti, "htm": "GET", "htu": URL, "iat": now()});
    let rs = sign(
        &pair,
        &RSA_PKCS1_SHA256,
        &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk}),
        &claims("r"),
    );
    let ps = sign(
        &pair,
        &RSA_PSS_SHA256,
        &json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk}),
        &claims("p"),
    );

    let default = DpopVerifier::builder("https://api.example")
        .build()
        .unwrap();
    for p in [&rs, &ps] {
        let r = default.check(p, &Method::GET, "/items", None).unwrap_err();
        assert!(matches!(r, DpopRefusal::AlgorithmNotAllowed), "{r}");
    }

    let rsa_too = DpopVerifier::builder("https://api.example")
        .algorithms([
            DpopAlgorithm::Es256,
            DpopAlgorithm::Rs256,
            DpopAlgorithm::Ps256,
        ])
        .build()
        .unwrap();
    assert_eq!(rsa_too.algs_param(), "ES256 RS256 PS256");
    let a = rsa_too.check(&rs, &Method::GET, "/items", None).unwrap();
    let b = rsa_too.check(&ps, &Method::GET, "/items", None).unwrap();
    assert_eq!(a.jkt(), b.jkt(), "one key, one thumbprint");

    // PKCS#1 v1.5 bytes presented as PS256: the signature does not verify.
    let swapped = sign(
        &pair,
        &RSA_PKCS1_SHA256,
        &json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk}),
        &claims("s"),
    );
    let r = rsa_too
        .check(&swapped, &Method::GET, "/items", None)
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::BadSignature), "{r}");

    // An EC key under RS256 is refused before any signature check.
    let ec = DpopKey::generate_es256().unwrap();
    let confused = ec
        .sign_jws(
            &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": ec.public_jwk()}),
            &claims("c"),
        )
        .unwrap();
    let r = rsa_too
        .check(&confused, &Method::GET, "/items", None)
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::KeyAlgorithmMismatch), "{r}");
}
