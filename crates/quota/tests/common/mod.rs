//! Shared test fixtures: a toy authentication method and a router behind the quota layer.
#![allow(dead_code)]

pub mod recorder;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
use apiauth_quota::{QuotaLayer, own_usage};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use http::{Request, StatusCode};

/// `X-User: <subject>`, with optional `X-Plan` and `X-Tenant`; the user `mallory` is refused.
pub struct Demo;

fn header(req: &Request<Body>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl Authenticator for Demo {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        AuthMethod::custom("demo")
    }
    fn challenge(&self) -> Challenge {
        Challenge::new("Demo")
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        Ok(header(req, "x-user"))
    }
    async fn verify(&self, user: String, req: &mut Request<Body>) -> Result<Principal, AuthError> {
        if user == "mallory" {
            return Err(AuthError::invalid_credentials("unknown_user"));
        }
        let mut b = Principal::builder(user, self.method());
        if let Some(plan) = header(req, "x-plan") {
            b = b.plan(plan);
        }
        if let Some(t) = header(req, "x-tenant") {
            b = b.tenant(t);
        }
        Ok(b.build())
    }
}

/// Routes behind `quota`, inside the demo auth layer. `hits` counts handler runs.
pub fn app(quota: QuotaLayer, hits: Arc<AtomicUsize>) -> Router {
    let h1 = hits.clone();
    let h2 = hits.clone();
    Router::new()
        .route(
            "/items/{id}",
            get(move || {
                let h = h1.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    "item"
                }
            }),
        )
        .route(
            "/export",
            get(move || {
                let h = h2.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    "csv"
                }
            }),
        )
        .route(
            "/missing/{id}",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing") }),
        )
        .route("/usage", get(own_usage))
        .layer(quota)
        .layer(AuthLayer::new(Demo))
}

#[allow(unused_imports)]
pub use apiauth_testkit::{Seen, send};

/// The RateLimit fields of an answer.
pub trait RateFields {
    /// `(limit, remaining, reset)`.
    fn rate(&self) -> (u32, u32, u64);
}

impl RateFields for Seen {
    #[track_caller]
    fn rate(&self) -> (u32, u32, u64) {
        let field = |name: &str| {
            self.header(name)
                .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
                .to_owned()
        };
        (
            field("ratelimit-limit").parse().unwrap(),
            field("ratelimit-remaining").parse().unwrap(),
            field("ratelimit-reset").parse().unwrap(),
        )
    }
}

/// A request as `user` (with `plan`, if any) to `path`.
pub fn as_user(path: &str, user: &str, plan: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header("x-user", user);
    if let Some(p) = plan {
        b = b.header("x-plan", p);
    }
    b.body(Body::empty()).unwrap()
}

/// An anonymous request from `addr`, as axum's `into_make_service_with_connect_info` would
/// tag it.
pub fn anonymous_from(path: &str, addr: SocketAddr) -> Request<Body> {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}
