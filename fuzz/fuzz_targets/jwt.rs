//! JWT pre-validation (size limit, compact form, header rules) and claims, through the
//! public `JwtVerifier::verify_token`, plus `JwtKey::jwk` for key material from a JWKS.
#![no_main]

use std::sync::{Arc, OnceLock};

use apiauth_core::clock::ManualClock;
use apiauth_fuzz::{block_on, epoch_now};
use apiauth_jwt::{Algorithm, Issuer, JwtKey, JwtVerifier};
use arbitrary::Arbitrary;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

const SECRET_A: &[u8] = b"fuzz secret of issuer A, 32+ bytes long";
const SECRET_B: &[u8] = b"fuzz secret of issuer B, 32+ bytes long";
const WRONG: &[u8] = b"a secret nobody configured, 32+ bytes";
const ISS_A: &str = "https://a.example";
const ISS_B: &str = "https://b.example";
const MAX_LEN: usize = 8 * 1024;

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let key = |s: &[u8], kid: &str| {
            JwtKey::hmac(s)
                .expect("long enough")
                .kid(kid)
                .algorithms([Algorithm::HS256])
        };
        block_on(
            JwtVerifier::builder()
                .issuer(Issuer::new(ISS_A).key(key(SECRET_A, "a1")).audience("api"))
                .issuer(Issuer::new(ISS_B).key(key(SECRET_B, "b1")).audience("api"))
                .max_token_length(MAX_LEN)
                .clock(Arc::new(ManualClock::new(epoch_now())))
                .build(),
        )
        .expect("static verifier builds")
    })
}

fn now_s() -> i64 {
    1_750_000_000
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Alg<'a> {
    Hs256,
    Hs384,
    None,
    NoneMixedCase,
    Rs256,
    Es256,
    Lowercase,
    Other(&'a str),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Extra<'a> {
    Jku,
    X5u,
    Jwk,
    X5c,
    Crit,
    DuplicateAlg,
    DuplicateClaim,
    CtyJwt,
    Typ(&'a str),
    KidOther(&'a str),
    KidNumber,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Iss<'a> {
    A,
    B,
    Other(&'a str),
    Number,
    Missing,
}

#[derive(Arbitrary, Debug, Clone, PartialEq)]
enum Aud<'a> {
    Api,
    ApiInList(Vec<&'a str>),
    Other(&'a str),
    Number,
    Missing,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Time {
    Offset(i32),
    AsString(i32),
    Float(i32),
    Huge(i64),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Key {
    A,
    B,
    Wrong,
    Unsigned,
}

#[derive(Arbitrary, Debug)]
struct Built<'a> {
    alg: Alg<'a>,
    kid: bool,
    extra: Option<Extra<'a>>,
    iss: Iss<'a>,
    aud: Aud<'a>,
    exp: Option<Time>,
    nbf: Option<Time>,
    iat: Option<Time>,
    sub: Option<&'a str>,
    scope: Option<&'a str>,
    padding: u16,
    key: Key,
    mutate: Option<(u16, u8)>,
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw(&'a str),
    Built(Built<'a>),
    Jwk(&'a str),
}

fn time_value(t: Time) -> Value {
    match t {
        Time::Offset(o) => json!(now_s() + i64::from(o)),
        Time::AsString(o) => json!((now_s() + i64::from(o)).to_string()),
        Time::Float(o) => json!(now_s() as f64 + f64::from(o) + 0.5),
        Time::Huge(v) => json!(v),
    }
}

fn alg_name<'a>(a: Alg<'a>) -> &'a str {
    match a {
        Alg::Hs256 => "HS256",
        Alg::Hs384 => "HS384",
        Alg::None => "none",
        Alg::NoneMixedCase => "nOnE",
        Alg::Rs256 => "RS256",
        Alg::Es256 => "ES256",
        Alg::Lowercase => "hs256",
        Alg::Other(s) => s,
    }
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn build(b: &Built<'_>) -> String {
    let mut h = Map::new();
    h.insert("alg".into(), json!(alg_name(b.alg)));
    if b.kid {
        h.insert("kid".into(), json!(if b.key == Key::B { "b1" } else { "a1" }));
    }
    match b.extra {
        Some(Extra::Jku) => drop(h.insert("jku".into(), json!("https://evil.example/jwks"))),
        Some(Extra::X5u) => drop(h.insert("x5u".into(), json!("https://evil.example/cert"))),
        Some(Extra::Jwk) => drop(h.insert("jwk".into(), json!({"kty":"oct","k":"AAAA"}))),
        Some(Extra::X5c) => drop(h.insert("x5c".into(), json!(["MIIB"]))),
        Some(Extra::Crit) => drop(h.insert("crit".into(), json!(["exp"]))),
        Some(Extra::CtyJwt) => drop(h.insert("cty".into(), json!("JWT"))),
        Some(Extra::Typ(t)) => drop(h.insert("typ".into(), json!(t))),
        Some(Extra::KidOther(k)) => drop(h.insert("kid".into(), json!(k))),
        Some(Extra::KidNumber) => drop(h.insert("kid".into(), json!(7))),
        Some(Extra::DuplicateAlg | Extra::DuplicateClaim) | None => {}
    }
    let mut header = Value::Object(h).to_string();
    if b.extra == Some(Extra::DuplicateAlg) {
        header.insert_str(1, "\"alg\":\"HS256\",");
    }

    let mut c = Map::new();
    match b.iss {
        Iss::A => drop(c.insert("iss".into(), json!(ISS_A))),
        Iss::B => drop(c.insert("iss".into(), json!(ISS_B))),
        Iss::Other(s) => drop(c.insert("iss".into(), json!(s))),
        Iss::Number => drop(c.insert("iss".into(), json!(1))),
        Iss::Missing => {}
    }
    match &b.aud {
        Aud::Api => drop(c.insert("aud".into(), json!("api"))),
        Aud::ApiInList(others) => {
            let mut v: Vec<&str> = others.iter().take(4).copied().collect();
            v.push("api");
            c.insert("aud".into(), json!(v));
        }
        Aud::Other(s) => drop(c.insert("aud".into(), json!(s))),
        Aud::Number => drop(c.insert("aud".into(), json!(3))),
        Aud::Missing => {}
    }
    for (name, t) in [("exp", b.exp), ("nbf", b.nbf), ("iat", b.iat)] {
        if let Some(t) = t {
            c.insert(name.into(), time_value(t));
        }
    }
    if let Some(s) = b.sub {
        c.insert("sub".into(), json!(s));
    }
    if let Some(s) = b.scope {
        c.insert("scope".into(), json!(s));
    }
    if b.padding > 0 {
        c.insert("pad".into(), json!("p".repeat(usize::from(b.padding % 10_000))));
    }
    let mut claims = Value::Object(c).to_string();
    if b.extra == Some(Extra::DuplicateClaim) {
        claims.insert_str(1, "\"sub\":\"mallory\",");
    }

    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let secret = match b.key {
        Key::A => SECRET_A,
        Key::B => SECRET_B,
        Key::Wrong => WRONG,
        Key::Unsigned => return format!("{signing_input}."),
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Everything a correct verifier needs for this token to pass.
fn should_pass(b: &Built<'_>, token: &str) -> bool {
    let time_ok = |t: Option<Time>, lo: i64, hi: i64| match t {
        Some(Time::Offset(o)) => (lo..=hi).contains(&i64::from(o)),
        _ => false,
    };
    b.alg == Alg::Hs256
        && b.extra.is_none()
        && matches!((b.iss, b.key), (Iss::A, Key::A) | (Iss::B, Key::B))
        && matches!(b.aud, Aud::Api | Aud::ApiInList(_))
        && time_ok(b.exp, 60, i64::from(i32::MAX))
        && (b.nbf.is_none() || time_ok(b.nbf, i64::from(i32::MIN), -60))
        && (b.iat.is_none() || time_ok(b.iat, i64::from(i32::MIN), -60))
        && b.sub.is_some_and(|s| !s.is_empty())
        && b.scope.is_none_or(|s| apiauth_core::ScopeSet::parse(s).is_ok())
        && token.len() <= MAX_LEN
}

fn check_built(b: &Built<'_>) {
    let v = verifier();
    let token = build(b);
    let mut mutated = token.clone().into_bytes();
    if let Some((pos, byte)) = b.mutate {
        let i = usize::from(pos) % mutated.len();
        mutated[i] = byte;
    }
    let changed = mutated != token.as_bytes();
    let presented = String::from_utf8_lossy(&mutated).into_owned();
    let result = block_on(v.verify_token(&presented));
    if changed {
        // A single changed byte always changes the signing input or the signature.
        assert!(result.is_err(), "a mutated token was accepted: {b:?}");
    } else if should_pass(b, &token) {
        assert!(result.is_ok(), "a valid token was refused ({:?}): {b:?}", result.err().map(|e| e.reason().to_owned()));
    }
    match result {
        Ok(p) => {
            // Whatever passed was a well-formed token of the issuer whose key signed it.
            assert_eq!(b.alg, Alg::Hs256, "accepted alg {:?}", b.alg);
            assert!(
                !matches!(b.extra, Some(Extra::Jku | Extra::X5u | Extra::Jwk | Extra::X5c | Extra::Crit | Extra::DuplicateAlg | Extra::CtyJwt)),
                "forbidden header accepted: {b:?}"
            );
            // The inserted `sub` duplicates a name only when the token has its own `sub`.
            assert!(
                !(b.extra == Some(Extra::DuplicateClaim) && b.sub.is_some()),
                "duplicate claim accepted: {b:?}"
            );
            assert!(matches!((b.iss, b.key), (Iss::A, Key::A) | (Iss::B, Key::B)), "cross-issuer token accepted");
            assert!(matches!(b.aud, Aud::Api | Aud::ApiInList(_)));
            assert!(token.len() <= MAX_LEN);
            match b.exp {
                Some(Time::Offset(o)) => assert!(i64::from(o) > -31, "expired token accepted"),
                Some(Time::Float(o)) => assert!(i64::from(o) > -32),
                Some(Time::Huge(v)) => assert!(v > now_s() - 31),
                _ => panic!("token without a numeric exp accepted"),
            }
            if b.extra == Some(Extra::DuplicateClaim) {
                assert_eq!(p.subject(), "mallory");
            } else {
                assert_eq!(Some(p.subject()), b.sub);
            }
        }
        Err(e) => assert_eq!(e.status(), 401, "JWT refusals are 401 invalid_token"),
    }
}

fuzz_target!(|input: Input<'_>| match input {
    Input::Raw(t) => {
        // No made-up token can carry a valid HMAC of either issuer.
        let r = block_on(verifier().verify_token(t));
        let e = r.err().expect("a made-up token was accepted");
        assert_eq!(e.status(), 401);
        if t.len() > MAX_LEN {
            assert_eq!(e.reason(), "token_too_large");
        }
    }
    Input::Built(b) => check_built(&b),
    Input::Jwk(s) => {
        if let Ok(k) = JwtKey::jwk(s) {
            assert!(!k.allowed_algorithms().is_empty());
        }
    }
});

