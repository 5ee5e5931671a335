//! Webhook signature headers: `t=<ts>,v1=<hex>` and GitHub's `sha256=<hex>`, through
//! `WebhookVerifier` behind a real `Router`.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{Auth, AuthLayer, MemoryReplayStore};
use apiauth_fuzz::{block_on, epoch_now, seen};
use apiauth_hmac::{HmacSecret, WebhookProfile, WebhookVerifier};
use arbitrary::Arbitrary;
use axum::Router;
use axum::body::Body;
use axum::routing::post;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const SECRET: &[u8] = b"fuzz webhook secret, at least 32 bytes";
const NOW: u64 = 1_750_000_000;
const TOLERANCE: u64 = 300;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Mutation {
    Body(u16, u8),
    Timestamp(i16),
    Signature(u8, u8),
}

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Raw { github: bool, value: &'a [u8], body: &'a [u8] },
    Signed { github: bool, offset: i16, body: &'a [u8], mutation: Option<Mutation> },
}

fn profile(github: bool) -> WebhookProfile {
    if github { WebhookProfile::github() } else { WebhookProfile::timestamped() }
}

fn router(github: bool) -> Router {
    let clock: SharedClock = Arc::new(ManualClock::new(epoch_now()));
    let v = WebhookVerifier::builder(profile(github), "partner")
        .secret(HmacSecret::new(SECRET).expect("long enough"))
        .tolerance(Duration::from_secs(TOLERANCE))
        .clock(clock.clone())
        .replay_store(MemoryReplayStore::with_capacity(16, clock))
        .max_body_bytes(64 * 1024)
        .build()
        .expect("verifier builds");
    Router::new()
        .route("/hook", post(|Auth(p): Auth| async move { p.subject().to_owned() }))
        .layer(AuthLayer::new(v))
}

fn status(router: &Router, header: &str, value: &[u8], body: &[u8]) -> Option<u16> {
    let v = http::HeaderValue::from_bytes(value).ok()?;
    let req = http::Request::post("/hook")
        .header(header, v)
        .body(Body::from(body.to_vec()))
        .ok()?;
    let r = router.clone();
    Some(block_on(async move { seen(r.oneshot(req).await.expect("infallible")).await }).status)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fuzz_target!(|input: Input<'_>| match input {
    Input::Raw { github, value, body } => {
        let p = profile(github);
        if let Some(st) = status(&router(github), p.header().as_str(), value, body) {
            assert!(matches!(st, 400 | 401 | 413), "raw webhook answered {st}");
        }
    }
    Input::Signed { github, offset, body, mutation } => {
        let p = profile(github);
        let ts = NOW.saturating_add_signed(i64::from(offset));
        let secret = HmacSecret::new(SECRET).expect("long enough");
        let value = p.sign(&secret, ts, body);
        let router = router(github);
        let header = p.header().as_str().to_owned();
        let in_window = github || NOW.abs_diff(ts) <= TOLERANCE;
        if let Some(m) = mutation {
            let (v, b, changed) = match m {
                Mutation::Body(pos, byte) if !body.is_empty() => {
                    let mut b = body.to_vec();
                    let i = usize::from(pos) % b.len();
                    b[i] = byte;
                    let changed = b != body;
                    (value.clone(), b, changed)
                }
                Mutation::Timestamp(delta) if !github && delta != 0 => {
                    let t2 = ts.saturating_add_signed(i64::from(delta));
                    let v = value.replacen(&format!("t={ts}"), &format!("t={t2}"), 1);
                    (v, body.to_vec(), t2 != ts)
                }
                Mutation::Signature(pos, flip) if flip != 0 => {
                    // Flip bits of the MAC itself, then write it back as hex.
                    let (head, sig_hex) = value.rsplit_once(['=']).expect("signed value has '='");
                    let mut mac = unhex(sig_hex);
                    let i = usize::from(pos) % mac.len();
                    mac[i] ^= flip;
                    (format!("{head}={}", hex(&mac)), body.to_vec(), true)
                }
                _ => (value.clone(), body.to_vec(), false),
            };
            if changed {
                let st = status(&router, &header, v.as_bytes(), &b).expect("valid header");
                assert_ne!(st, 200, "a mutated webhook was accepted: {m:?}");
            }
        }
        let st = status(&router, &header, value.as_bytes(), body).expect("valid header");
        if in_window {
            assert_eq!(st, 200, "sign then verify failed");
            let again = status(&router, &header, value.as_bytes(), body).expect("valid header");
            assert_eq!(again, 401, "a replayed delivery was accepted");
        } else {
            assert_eq!(st, 401, "a delivery outside the tolerance was accepted");
        }
    }
});
