//! The audit trail of rejected signatures, alone in its binary: `tracing` caches per-callsite
//! interest, and a capture subscriber shared with parallel tests in one binary can miss events.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::ScopeSet;
use apiauth_core::clock::ManualClock;
use apiauth_hmac::{
    HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer, sign_request,
};
use axum::Router;
use common::{app, capture_logs, clock, copy, send};
use http::{Request, StatusCode};

const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

fn secret() -> HmacSecret {
    HmacSecret::new(SECRET).unwrap()
}

fn keys() -> MemoryHmacKeyStore {
    let keys = MemoryHmacKeyStore::new();
    keys.insert(
        "client-1",
        HmacKey::new("acme")
            .tenant("tenant-a")
            .scopes(ScopeSet::from_tokens(["orders:write"]).unwrap())
            .secret(secret()),
    );
    keys
}

fn verifier(clock: &ManualClock) -> HttpSignatureVerifier {
    HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn signer(clock: &ManualClock) -> Signer {
    Signer::builder("client-1", secret())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn signed(signer: &Signer, uri: &str, body: &[u8]) -> Request<Vec<u8>> {
    let mut req = Request::post(uri)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    sign_request(&mut req, signer).unwrap();
    req
}

fn app_for(clock: &ManualClock) -> Router {
    app(verifier(clock))
}

#[tokio::test]
async fn every_mismatch_answers_one_identical_401_and_the_reason_goes_to_the_audit_event() {
    let (logs, _guard) = capture_logs();
    let c = clock();
    let app = app_for(&c);
    let u = "http://api.example.com/orders";
    let mut bodies = Vec::new();

    let unknown = Signer::builder("nobody", secret())
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    bodies.push(send(&app, copy(&signed(&unknown, u, b"{}"))).await);
    let wrong = Signer::builder("client-1", HmacSecret::new([9u8; 32]).unwrap())
        .clock(Arc::new(c.clone()))
        .build()
        .unwrap();
    bodies.push(send(&app, copy(&signed(&wrong, u, b"{}"))).await);
    let mut tampered = signed(&signer(&c), u, b"{\"a\":1}");
    *tampered.body_mut() = b"{\"a\":2}".to_vec();
    bodies.push(send(&app, copy(&tampered)).await);
    let req = signed(&signer(&c), u, b"{}");
    assert_eq!(send(&app, copy(&req)).await.status, StatusCode::OK);
    bodies.push(send(&app, copy(&req)).await); // replay
    let old = signed(&signer(&c), u, b"{}");
    c.advance(Duration::from_secs(400));
    bodies.push(send(&app, copy(&old)).await); // stale

    for b in &bodies {
        assert_eq!(b.status, StatusCode::UNAUTHORIZED);
        assert_eq!(b.body, bodies[0].body);
        assert_eq!(
            b.headers["www-authenticate"],
            bodies[0].headers["www-authenticate"]
        );
    }
    let text = logs.text();
    for reason in [
        "unknown_key",
        "bad_signature",
        "content_digest_mismatch",
        "replayed_nonce",
        "stale_created",
    ] {
        assert!(text.contains(reason), "audit lacks {reason}: {text}");
    }
    // No secret in any log line, in any encoding.
    let s = std::str::from_utf8(&SECRET).unwrap();
    assert!(!text.contains(s));
    let hex: String = SECRET.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.contains(&hex));
}
