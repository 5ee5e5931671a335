//! Webhook profiles (`t=…,v1=…` and GitHub's `sha256=…`) as an authenticator on a Router.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::MemoryReplayStore;
use apiauth_core::clock::ManualClock;
use apiauth_hmac::{HmacSecret, RotatingSecret, WebhookProfile, WebhookVerifier};
use axum::body::Body;
use common::{NOW, app, clock, send};
use http::{HeaderName, Request, StatusCode};

fn github_secret() -> HmacSecret {
    HmacSecret::dangerous_short("It's a Secret to Everybody").unwrap()
}

fn delivery(header: &str, value: &str, body: &str) -> Request<Body> {
    Request::post("http://hooks.example.com/webhooks/partner")
        .header(header, value)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn github_documentation_example_verifies() {
    let v = WebhookVerifier::builder(WebhookProfile::github(), "github")
        .secret(github_secret())
        .build()
        .unwrap();
    let app = app(v);
    // GitHub's published example: this secret, this payload, this header.
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let res = send(&app, delivery("x-hub-signature-256", good, "Hello, World!")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["subject"], "github");
    assert_eq!(res.json()["method"], "webhook");
    assert_eq!(res.json()["body"], "Hello, World!");

    let res = send(&app, delivery("x-hub-signature-256", good, "Hello, World?")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let bad = good.replace("757107", "757108");
    let res = send(&app, delivery("x-hub-signature-256", &bad, "Hello, World!")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

fn timestamped(clock: &ManualClock, secrets: Vec<RotatingSecret>) -> WebhookVerifier {
    let mut b = WebhookVerifier::builder(WebhookProfile::timestamped(), "partner-x")
        .clock(Arc::new(clock.clone()));
    for s in secrets {
        b = b.secret(s);
    }
    b.build().unwrap()
}

fn s(n: u8) -> HmacSecret {
    HmacSecret::new([n; 32]).unwrap()
}

#[tokio::test]
async fn timestamped_signature_verifies_and_hands_the_body_on() {
    let c = clock();
    let app = app(timestamped(&c, vec![s(1).into()]));
    let body = r#"{"event":"paid"}"#;
    let header = WebhookProfile::timestamped().sign(&s(1), NOW, body.as_bytes());
    assert!(header.starts_with(&format!("t={NOW},v1=")));
    let res = send(&app, delivery("webhook-signature", &header, body)).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["body"], body);
    assert_eq!(res.json()["subject"], "partner-x");

    // Tampered body, tampered timestamp, wrong secret.
    let res = send(
        &app,
        delivery("webhook-signature", &header, r#"{"event":"void"}"#),
    )
    .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
    let res = send(&app, delivery("webhook-signature", &moved, body)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let other = WebhookProfile::timestamped().sign(&s(2), NOW, body.as_bytes());
    let res = send(&app, delivery("webhook-signature", &other, body)).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn timestamp_outside_the_tolerance_is_rejected() {
    let c = clock();
    let app = app(timestamped(&c, vec![s(1).into()]));
    let body = "{}";
    for t in [NOW - 301, NOW + 301] {
        let h = WebhookProfile::timestamped().sign(&s(1), t, body.as_bytes());
        let res = send(&app, delivery("webhook-signature", &h, body)).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "t={t}");
    }
    for t in [NOW - 299, NOW + 299] {
        let h = WebhookProfile::timestamped().sign(&s(1), t, body.as_bytes());
        let res = send(&app, delivery("webhook-signature", &h, body)).await;
        assert_eq!(res.status, StatusCode::OK, "t={t}");
    }
}

#[tokio::test]
async fn several_v1_signatures_during_rotation_and_the_old_secret_retires() {
    let c = clock();
    let cutover = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW + 60);
    let app = app(timestamped(
        &c,
        vec![RotatingSecret::new(s(1)).until(cutover), s(2).into()],
    ));
    let body = "{}";
    let sig = |secret: &HmacSecret, t: u64| {
        WebhookProfile::timestamped().sign(secret, t, body.as_bytes())
    };
    // The sender signs with both while rotating: `t=…,v1=<old>,v1=<new>`.
    let both = format!(
        "{},{}",
        sig(&s(1), NOW),
        &sig(&s(2), NOW)[format!("t={NOW},").len()..]
    );
    assert_eq!(both.matches("v1=").count(), 2);
    assert_eq!(
        send(&app, delivery("webhook-signature", &both, body))
            .await
            .status,
        StatusCode::OK
    );
    let old_only = sig(&s(1), NOW);
    assert_eq!(
        send(&app, delivery("webhook-signature", &old_only, body))
            .await
            .status,
        StatusCode::OK
    );

    c.advance(Duration::from_secs(61));
    let t = NOW + 61;
    let old_only = sig(&s(1), t);
    assert_eq!(
        send(&app, delivery("webhook-signature", &old_only, body))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let new_only = sig(&s(2), t);
    assert_eq!(
        send(&app, delivery("webhook-signature", &new_only, body))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn malformed_webhook_headers_are_400_and_never_panic() {
    let c = clock();
    let app = app(timestamped(&c, vec![s(1).into()]));
    let good_hex = "a".repeat(64);
    let long = format!("t={NOW},{}", "v1=x,".repeat(500));
    let nine = format!("t={NOW}{}", format!(",v1={good_hex}").repeat(9));
    let cases = [
        String::new(),
        "garbage".to_owned(),
        format!("v1={good_hex}"),
        format!("t={NOW}"),
        format!("t=abc,v1={good_hex}"),
        format!("t=-1,v1={good_hex}"),
        format!("t=99999999999999999999999,v1={good_hex}"),
        format!("t={NOW},t={NOW},v1={good_hex}"),
        format!("t={NOW},v1=zz"),
        format!("t={NOW},v1={}", "é".repeat(32)),
        long,
        nine,
    ];
    for h in &cases {
        let req = Request::post("http://hooks.example.com/w")
            .header(
                "webhook-signature",
                http::HeaderValue::from_bytes(h.as_bytes()).unwrap(),
            )
            .body(Body::from("{}"))
            .unwrap();
        let res = send(&app, req).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{h}");
    }
    // Unknown schemes next to a valid v1 are ignored.
    let h = WebhookProfile::timestamped().sign(&s(1), NOW, b"{}");
    let with_v0 = format!("{h},v0=deadbeef");
    let res = send(&app, delivery("webhook-signature", &with_v0, "{}")).await;
    assert_eq!(res.status, StatusCode::OK);
}

#[tokio::test]
async fn webhook_body_over_the_limit_is_413() {
    let c = clock();
    let v = WebhookVerifier::builder(WebhookProfile::timestamped(), "partner-x")
        .clock(Arc::new(c.clone()))
        .secret(s(1))
        .max_body_bytes(8)
        .build()
        .unwrap();
    let app = app(v);
    let body = "123456789";
    let h = WebhookProfile::timestamped().sign(&s(1), NOW, body.as_bytes());
    let res = send(&app, delivery("webhook-signature", &h, body)).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn replayed_delivery_is_rejected_when_a_replay_store_is_set() {
    let c = clock();
    let v = WebhookVerifier::builder(WebhookProfile::timestamped(), "partner-x")
        .clock(Arc::new(c.clone()))
        .secret(s(1))
        .replay_store(MemoryReplayStore::with_clock(Arc::new(c.clone())))
        .build()
        .unwrap();
    let app = app(v);
    let h = WebhookProfile::timestamped().sign(&s(1), NOW, b"{}");
    assert_eq!(
        send(&app, delivery("webhook-signature", &h, "{}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, delivery("webhook-signature", &h, "{}"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn requests_without_the_webhook_header_pass_on_to_a_401_with_challenge() {
    let c = clock();
    let app = app(timestamped(&c, vec![s(1).into()]));
    let req = Request::post("http://hooks.example.com/w")
        .body(Body::from("{}"))
        .unwrap();
    let res = send(&app, req).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers["www-authenticate"],
        r#"Webhook header="webhook-signature""#
    );
}

#[test]
fn a_webhook_verifier_needs_a_secret() {
    assert!(
        WebhookVerifier::builder(WebhookProfile::github(), "x")
            .build()
            .is_err()
    );
    // The header is a `HeaderName`, valid by construction; the prefix is checked here.
    let header = HeaderName::from_static("x-signature");
    assert!(WebhookProfile::prefixed_hex(header, "sha 256=").is_err());
}

#[test]
fn hmac_sha256_matches_rfc4231_vectors() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/rfc4231_hmac_sha256.json")).unwrap();
    let profile = WebhookProfile::prefixed_hex(HeaderName::from_static("x-signature"), "").unwrap();
    let unhex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let tests = v["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 7);
    for t in tests {
        let key = HmacSecret::dangerous_short(unhex(t["key_hex"].as_str().unwrap())).unwrap();
        let data = unhex(t["data_hex"].as_str().unwrap());
        let got = profile.sign(&key, 0, &data);
        let want = t["hmac_sha256_hex"].as_str().unwrap();
        // Test case 5 publishes a truncated tag.
        assert!(got.starts_with(want), "RFC 4231 test case {}", t["tc"]);
    }
}

#[tokio::test]
async fn v1_hex_other_than_64_lowercase_digits_is_400_even_when_it_decodes_to_the_mac() {
    let c = clock();
    let app = app(timestamped(&c, vec![s(1).into()]));
    // A body whose MAC starts with a 0 digit, so that digit can be spelled `+`.
    let (body, header) = (0..)
        .map(|i| format!(r#"{{"n":{i}}}"#))
        .map(|b| {
            let h = WebhookProfile::timestamped().sign(&s(1), NOW, b.as_bytes());
            (b, h)
        })
        .find(|(_, h)| h.contains(",v1=0"))
        .unwrap();
    let hex = header.split_once(",v1=").unwrap().1.to_owned();
    let spellings = [
        hex.to_ascii_uppercase(),
        format!("+{}", &hex[1..]),
        format!("{} ", &hex[..63]),
        hex[..62].to_owned(),
        format!("{hex}0"),
    ];
    for other in &spellings {
        let h = format!("t={NOW},v1={other}");
        let res = send(&app, delivery("webhook-signature", &h, &body)).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{h}");
    }
    let gh = WebhookVerifier::builder(WebhookProfile::github(), "github")
        .secret(github_secret())
        .build()
        .unwrap();
    let upper = "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";
    let res = send(
        &common::app(gh),
        delivery("x-hub-signature-256", upper, "Hello, World!"),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // The one spelling the sender writes is accepted.
    let res = send(&app, delivery("webhook-signature", &header, &body)).await;
    assert_eq!(res.status, StatusCode::OK);
}
