//! The audit trail of rejected signatures.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_hmac::{HmacSecret, Signer};
use common::{SECRET, app_for, capture_logs, clock, copy, secret, send, signed, signer};
use http::StatusCode;

#[tokio::test]
async fn every_mismatch_answers_one_identical_401_and_the_reason_goes_to_the_audit_event() {
    let logs = capture_logs();
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
