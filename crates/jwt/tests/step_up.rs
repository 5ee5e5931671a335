//! RFC 9470 step-up over real HTTP on loopback: a route that needs a stronger or more recent
//! user authentication answers 401 `insufficient_user_authentication` with `acr_values` and
//! `max_age`, and serves the token that meets them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_bearer::Bearer;
use apiauth_core::clock::ManualClock;
use apiauth_core::{Auth, RequireAuthentication};
use apiauth_jwt::{Issuer, JwtKey, JwtVerifier};
use axum::Router;
use axum::routing::get;
use common::*;
use http::StatusCode;
use serde_json::{Value, json};

/// The app served on a free loopback port, as a client reaches it.
struct Served {
    base: String,
    http: reqwest::Client,
}

async fn app(clock: &ManualClock) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = router(clock).await;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Served {
        base,
        http: reqwest::Client::new(),
    }
}

/// A GET with the bearer token, over the socket; what the client sees.
async fn call(app: &Served, path: &str, token: &str) -> apiauth_testkit::Seen {
    let res = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    apiauth_testkit::Seen::read(http::Response::from(res)).await
}

async fn router(clock: &ManualClock) -> Router {
    let verifier = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISS)
                .key(JwtKey::ec_pem(data("ec_public.pem")).unwrap().kid("ec-1"))
                .audience(AUD),
        )
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    let me = || get(|Auth(p): Auth| async move { p.subject().to_owned() });
    Router::new()
        .route("/me", me())
        .route(
            "/payouts",
            me().route_layer(RequireAuthentication::acr_values(["phrh", "phr"])),
        )
        .route(
            "/password",
            me().route_layer(
                RequireAuthentication::within(Duration::from_secs(300))
                    .clock(Arc::new(clock.clone())),
            ),
        )
        .layer(Bearer::new(verifier).realm("api").layer())
}

fn token(clock: &ManualClock, extra: Value) -> String {
    let now = apiauth_core::clock::unix_seconds(apiauth_core::clock::Clock::now(clock)) as i64;
    let mut claims = good_claims(now);
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    es256("ec-1", claims)
}

#[tokio::test]
async fn a_route_needing_a_stronger_acr_asks_for_it() {
    let clock = ManualClock::starting_now();
    let app = app(&clock).await;
    // Any valid token serves the plain route; one without the acr is told what to get.
    let weak = token(&clock, json!({"acr": "pwd"}));
    assert_eq!(call(&app, "/me", &weak).await.status, StatusCode::OK);
    for t in [weak, token(&clock, json!({}))] {
        let a = call(&app, "/payouts", &t).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        assert_eq!(
            a.challenges().join(" | "),
            r#"Bearer error="insufficient_user_authentication", error_description="A stronger or more recent authentication is required.", acr_values="phrh phr""#
        );
        let p = a.json();
        assert_eq!(p["error"], "insufficient_user_authentication");
        assert_eq!(p["acr_values"], "phrh phr");
        assert!(p.get("max_age").is_none());
    }
    for acr in ["phr", "phrh"] {
        let a = call(&app, "/payouts", &token(&clock, json!({ "acr": acr }))).await;
        assert_eq!(a.status, StatusCode::OK, "{acr}: {}", a.body);
    }
}

#[tokio::test]
async fn a_route_needing_a_recent_login_asks_for_max_age() {
    let clock = ManualClock::starting_now();
    let app = app(&clock).await;
    let now = apiauth_core::clock::unix_seconds(apiauth_core::clock::Clock::now(&clock)) as i64;
    let fresh = token(&clock, json!({"auth_time": now - 60}));
    assert_eq!(call(&app, "/password", &fresh).await.status, StatusCode::OK);
    for stale in [
        token(&clock, json!({"auth_time": now - 301})),
        token(&clock, json!({})),
    ] {
        let a = call(&app, "/password", &stale).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.body);
        assert!(
            a.challenges()
                .join(" | ")
                .contains(r#"error="insufficient_user_authentication""#)
        );
        assert!(
            a.challenges().join(" | ").ends_with(r#"max_age="300""#),
            "{}",
            a.challenges().join(" | ")
        );
        assert_eq!(a.json()["max_age"], 300);
    }
    // The same fresh token grows stale as time passes.
    clock.advance(Duration::from_secs(241));
    assert_eq!(
        call(&app, "/password", &fresh).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_malformed_acr_or_auth_time_is_an_invalid_token() {
    let clock = ManualClock::starting_now();
    let app = app(&clock).await;
    for bad in [json!({"acr": 3}), json!({"auth_time": "yesterday"})] {
        let a = call(&app, "/me", &token(&clock, bad.clone())).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(
            a.challenges()
                .join(" | ")
                .contains(r#"error="invalid_token""#)
        );
    }
}
