//! Measures what the API key layer adds to a request over a bare handler.
//!
//! `cargo run --release -p apiauth-api-key --example overhead`

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiauth_api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower::ServiceExt;

const PER_BLOCK: u32 = 2_000;
const BLOCKS: usize = 50;

async fn per_request(app: &Router, key: Option<&str>) -> Duration {
    let started = Instant::now();
    for _ in 0..PER_BLOCK {
        let mut req = Request::get("/");
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(res.status().is_success());
    }
    started.elapsed() / PER_BLOCK
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let store = Arc::new(MemoryApiKeyStore::new());
    let keys = ApiKeys::new(store);
    for i in 0..10_000 {
        keys.create(NewKey::new(format!("user-{i}"))).await.unwrap();
    }
    let key = keys.create(NewKey::new("bench")).await.unwrap();
    let handler = get(|| async { "ok" });
    let bare = Router::new().route("/", handler.clone());
    let guarded = Router::new()
        .route("/", handler)
        .layer(keys.auth().layer().unwrap());

    // Interleaved blocks; the medians discount scheduler noise.
    let (mut b, mut g) = (Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        b.push(per_request(&bare, Some(key.key.expose_secret())).await);
        g.push(per_request(&guarded, Some(key.key.expose_secret())).await);
    }
    b.sort_unstable();
    g.sort_unstable();
    let (b, g) = (b[BLOCKS / 2], g[BLOCKS / 2]);
    println!(
        "bare handler: {b:?}/request, with API key layer: {g:?}/request, overhead: {:?}",
        g.saturating_sub(b)
    );
}
