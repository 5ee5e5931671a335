//! Shared helpers: a router behind the Basic layer and a way to read what a client sees.
#![allow(dead_code)]

use std::net::SocketAddr;

use apiauth_basic::{BasicAuth, PasswordHasher};
use apiauth_core::{Auth, AuthLayer};
use axum::Extension;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Request;

/// Argon2 so cheap it costs nothing: for tests that are not about its cost.
pub fn cheap() -> PasswordHasher {
    PasswordHasher::dangerous_with_params(64, 1, 1).unwrap()
}

/// `/me` answers the principal as JSON; `/healthz` needs no authentication.
pub fn app(layer: AuthLayer<BasicAuth>) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move {
                serde_json::json!({
                    "subject": p.subject(),
                    "method": p.method().as_str(),
                    "credential_id": p.credential_id(),
                    "tenant": p.tenant(),
                    "scopes": p.scopes().to_string(),
                })
                .to_string()
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer)
}

/// [`app`] as seen from client address `addr`: the `ConnectInfo` extension that
/// `into_make_service_with_connect_info` puts on every request of a real server.
pub fn app_from(layer: AuthLayer<BasicAuth>, addr: &str) -> Router {
    let addr: SocketAddr = addr.parse().unwrap();
    app(layer).layer(Extension(ConnectInfo(addr)))
}

/// `Basic base64(user ":" pass)`, built independently of the crate's encoder.
pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

#[allow(unused_imports)]
pub use apiauth_testkit::{Seen, send};

/// GET `/me` with `Authorization: <authorization>` given as raw bytes.
pub async fn me_raw(app: &Router, authorization: &[u8]) -> Seen {
    let req = Request::get("/me")
        .header(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(authorization).unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

/// GET `/me` as `user` with `pass`.
pub async fn me(app: &Router, user: &str, pass: &str) -> Seen {
    me_raw(app, basic(user, pass).as_bytes()).await
}
