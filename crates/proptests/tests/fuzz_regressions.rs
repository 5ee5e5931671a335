//! Inputs found by the `cargo fuzz` targets under `fuzz/`, kept as ordinary tests so that
//! `cargo test` runs them without cargo-fuzz.
//!
//! So far every finding was an input on which the fuzz harness's own oracle was wrong about
//! what the library should do; the library's answer was right each time. Each test pins that
//! answer, on the exact input the fuzzer found, so that neither drifts. A finding that shows a
//! library bug is added here with its fix (see `fuzz/README.md`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{Auth, AuthLayer, MemoryReplayStore};
use apiauth_hmac::{
    CoveragePolicy, HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer,
    WebhookProfile, WebhookVerifier,
};
use apiauth_jwt::{Algorithm, Issuer, JwtKey, JwtVerifier};
use apiauth_proptests::send;
use axum::Router;
use axum::body::Body;
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Request;

const NOW: u64 = 1_750_000_000;
const SECRET: &[u8] = b"fuzz regression secret, 32+ bytes long";

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW),
    ))
}

fn me() -> Router {
    Router::new()
        .route(
            "/",
            any(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .route(
            "/{*rest}",
            any(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
}

async fn jwt_app() -> Router {
    let key = JwtKey::hmac(SECRET).unwrap().algorithms([Algorithm::HS256]);
    let v = JwtVerifier::builder()
        .issuer(Issuer::new("https://a.example").key(key).audience("api"))
        .clock(clock())
        .build()
        .await
        .unwrap();
    me().layer(apiauth_bearer::Bearer::new(v).layer())
}

/// A compact JWS over exactly these header and claims texts, signed with `SECRET`.
fn hs256(header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{input}.{sig}")
}

fn bearer(token: &str) -> Request<Body> {
    Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// fuzz `jwt`, crash-5519f877: `cty: "JWT"` on a correctly signed token. RFC 8725 §3.11
/// nested tokens are not supported, so it is refused, signature or not.
#[tokio::test]
async fn a_correctly_signed_token_declaring_a_nested_jwt_is_refused() {
    let app = jwt_app().await;
    let claims = format!(
        r#"{{"iss":"https://a.example","aud":"api","exp":{},"sub":"."}}"#,
        NOW + 811_653_901
    );
    let plain = hs256(r#"{"alg":"HS256"}"#, &claims);
    assert_eq!(send(&app, bearer(&plain)).await.status, 200);
    let nested = hs256(r#"{"alg":"HS256","cty":"JWT"}"#, &claims);
    let s = send(&app, bearer(&nested)).await;
    assert_eq!(s.status, 401);
    assert!(s.header_text().contains("invalid_token"), "{s:?}");
}

/// fuzz `jwt`, crash-d4b88a91: the harness inserted `"sub":"mallory"` into claims that had
/// no `sub`, which is one ordinary claim; only a name that really repeats is refused.
#[tokio::test]
async fn a_claim_name_is_refused_only_when_it_really_repeats() {
    let app = jwt_app().await;
    let exp = NOW + 600;
    let once = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"sub":"mallory","iss":"https://a.example","aud":"api","exp":{exp}}}"#),
    );
    let s = send(&app, bearer(&once)).await;
    assert_eq!((s.status.as_u16(), s.body.as_str()), (200, "mallory"));
    let twice = hs256(
        r#"{"alg":"HS256"}"#,
        &format!(
            r#"{{"sub":"mallory","iss":"https://a.example","aud":"api","exp":{exp},"sub":"alice"}}"#
        ),
    );
    assert_eq!(send(&app, bearer(&twice)).await.status, 401);
}

/// fuzz `http_signature`, crash-bfb89df9: `DELETE /?` over HTTP/1.1 with a signature that
/// covers no component at all. Under the minimal policy it verifies exactly once (the nonce
/// is burned); under the recommended policy it is refused.
#[tokio::test]
async fn a_signature_over_no_components_verifies_once_and_only_under_the_minimal_policy() {
    let app = |policy: CoveragePolicy, clock: SharedClock| {
        let keys = MemoryHmacKeyStore::new();
        keys.insert(
            "client-1",
            HmacKey::new("acme").secret(HmacSecret::new(SECRET).unwrap()),
        );
        let v = HttpSignatureVerifier::builder(keys)
            .policy(policy)
            .clock(clock.clone())
            .replay_store(MemoryReplayStore::with_clock(clock))
            .build()
            .unwrap();
        me().layer(AuthLayer::new(v))
    };
    let signed = |clock: SharedClock| {
        let mut req = Request::delete("/?")
            .header("host", "api.example.com")
            .body(Vec::new())
            .unwrap();
        Signer::builder("client-1", HmacSecret::new(SECRET).unwrap())
            .components([])
            .clock(clock)
            .build()
            .unwrap()
            .sign(&mut req)
            .unwrap();
        req
    };
    let copy = |r: &Request<Vec<u8>>| {
        let mut b = Request::builder().method(r.method()).uri(r.uri());
        for (k, v) in r.headers() {
            b = b.header(k, v);
        }
        b.body(Body::from(r.body().clone())).unwrap()
    };

    let c = clock();
    let minimal = app(CoveragePolicy::dangerous_minimal(), c.clone());
    let req = signed(c.clone());
    let first = send(&minimal, copy(&req)).await;
    assert_eq!((first.status.as_u16(), first.body.as_str()), (200, "acme"));
    assert_eq!(send(&minimal, copy(&req)).await.status, 401, "replay");

    let recommended = app(CoveragePolicy::recommended(), c.clone());
    assert_eq!(send(&recommended, copy(&signed(c))).await.status, 401);
}

/// fuzz `webhook`, crash-ea0bde14: a "mutation" that changed nothing re-sent the delivery
/// unchanged. The first delivery passes, the identical second one is a replay.
#[tokio::test]
async fn an_unchanged_webhook_redelivery_is_refused_as_a_replay() {
    let c = clock();
    let v = WebhookVerifier::builder(WebhookProfile::timestamped(), "partner")
        .secret(HmacSecret::new(SECRET).unwrap())
        .clock(c.clone())
        .replay_store(MemoryReplayStore::with_clock(c))
        .build()
        .unwrap();
    let app = me().layer(AuthLayer::new(v));
    let value = WebhookProfile::timestamped().sign(&HmacSecret::new(SECRET).unwrap(), NOW, b"");
    let delivery = || {
        Request::post("/hook")
            .header("webhook-signature", value.as_str())
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, delivery()).await.status, 200);
    assert_eq!(send(&app, delivery()).await.status, 401);
}
