//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::ManualClock;
use apiauth_core::{Auth, AuthLayer, Authenticator, ScopeSet};
use apiauth_hmac::{
    HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer, VerifiedSignature,
    sign_request,
};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::Response;
use axum::routing::any;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// 2023-11-14T22:13:20Z: a fixed "now" for the manual clock.
pub const NOW: u64 = 1_700_000_000;

pub fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(NOW))
}

/// Echoes who was authenticated and the body the handler received.
async fn echo(Auth(p): Auth, body: Bytes) -> axum::Json<Value> {
    axum::Json(json!({
        "subject": p.subject(),
        "tenant": p.tenant(),
        "method": p.method().as_str(),
        "credential_id": p.credential_id(),
        "label": p.attribute::<VerifiedSignature>().map(|v| v.label.clone()),
        "body": String::from_utf8_lossy(&body),
    }))
}

pub fn app<A: Authenticator>(auth: A) -> Router {
    Router::new()
        .route("/{*path}", any(echo))
        .route("/", any(echo))
        .layer(AuthLayer::new(auth))
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let res: Response = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A copy of a request with an in-memory body (requests are not `Clone`).
pub fn copy(req: &Request<Vec<u8>>) -> Request<Body> {
    let mut b = Request::builder().method(req.method()).uri(req.uri());
    for (k, v) in req.headers() {
        b = b.header(k, v);
    }
    b.body(Body::from(req.body().clone())).unwrap()
}

/// Captures `tracing` output (the audit events) on this thread until dropped.
pub fn capture_logs() -> apiauth_testkit::LogCapture {
    apiauth_testkit::LogCapture::start()
}

// --- A key store with one client, its verifier and signer on a shared clock.

pub const SECRET: [u8; 32] = *b"0123456789abcdef0123456789abcdef";

pub fn secret() -> HmacSecret {
    HmacSecret::new(SECRET).unwrap()
}

pub fn keys() -> MemoryHmacKeyStore {
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

pub fn verifier(clock: &ManualClock) -> HttpSignatureVerifier {
    HttpSignatureVerifier::builder(keys())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

pub fn signer(clock: &ManualClock) -> Signer {
    Signer::builder("client-1", secret())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

pub fn signed(signer: &Signer, uri: &str, body: &[u8]) -> Request<Vec<u8>> {
    let mut req = Request::post(uri)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    sign_request(&mut req, signer).unwrap();
    req
}

pub fn app_for(clock: &ManualClock) -> Router {
    app(verifier(clock))
}
