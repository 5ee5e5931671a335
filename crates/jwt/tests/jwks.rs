//! Remote key sets against a mock JWKS/OIDC server on 127.0.0.1: startup, discovery,
//! rotation, coalesced refetch, the minimum gap, the stale window and its 503.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::ManualClock;
use apiauth_jwt::{Algorithm, Issuer, JwtConfigError, JwtVerifier, JwtVerifierBuilder};
use common::*;
use http::StatusCode;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

fn jwks_with(keys: &[(&EncodingKey, Algorithm, &str)]) -> Value {
    json!({ "keys": keys.iter().map(|(k, a, kid)| public_jwk(k, *a, kid)).collect::<Vec<_>>() })
}

fn claims_for(iss: &str) -> Value {
    let mut c = good_claims(now_secs());
    c["iss"] = json!(iss);
    c
}

fn es(key: &EncodingKey, kid: &str, iss: &str) -> String {
    sign(
        json!({"alg": "ES256", "kid": kid}),
        claims_for(iss),
        key,
        Algorithm::ES256,
    )
}

fn jwks_builder(idp: &MockIdp, clock: &ManualClock) -> JwtVerifierBuilder {
    JwtVerifier::builder()
        .issuer(Issuer::jwks(idp.base(), idp.jwks_url()).audience(AUD))
        .clock(Arc::new(clock.clone()))
        .http_timeout(Duration::from_secs(5))
}

/// An error and its sources, as `a: b: c` (the reason of a startup failure is its source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

#[tokio::test]
async fn jwks_issuer_verifies_tokens_signed_with_fetched_keys() {
    let ec = ec_private();
    let idp = MockIdp::start(jwks_with(&[(&ec, Algorithm::ES256, "k1")])).await;
    let clock = ManualClock::starting_now();
    let app = app(jwks_builder(&idp, &clock).build().await.unwrap());
    assert_eq!(idp.fetches(), 1, "fetched once at startup");
    let a = call(&app, "/me", &es(&ec, "k1", &idp.base())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // Another key under a known kid: the signature does not verify.
    call(&app, "/me", &es(&ec2_private(), "k1", &idp.base()))
        .await
        .assert_invalid_token("bad_signature");
}

#[tokio::test]
async fn oidc_discovery_finds_the_jwks_and_checks_the_issuer() {
    let ed = ed_private();
    let idp = MockIdp::start(jwks_with(&[(&ed, Algorithm::EdDSA, "ed")])).await;
    let v = JwtVerifier::builder()
        .issuer(Issuer::discover(idp.base()).audience(AUD).require_at_jwt())
        .build()
        .await
        .unwrap();
    let app = app(v);
    let t = sign(
        json!({"alg": "EdDSA", "kid": "ed", "typ": "at+jwt"}),
        claims_for(&idp.base()),
        &ed,
        Algorithm::EdDSA,
    );
    assert_eq!(call(&app, "/me", &t).await.status, StatusCode::OK);

    // A metadata document naming another issuer is refused at startup (OIDC Discovery §4.3).
    *idp.discovery_issuer.lock().unwrap() = Some("https://someone-else.test".into());
    let e = JwtVerifier::builder()
        .issuer(Issuer::discover(idp.base()).audience(AUD))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::Discovery { .. }), "{e}");
}

#[tokio::test]
async fn rfc8414_metadata_is_found_under_the_well_known_path_before_the_issuer_path() {
    let ec = ec_private();
    let idp = MockIdp::start(jwks_with(&[(&ec, Algorithm::ES256, "k1")])).await;
    let iss = format!("{}/tenant-a", idp.base());
    let v = JwtVerifier::builder()
        .issuer(Issuer::oauth_metadata(&iss).audience(AUD))
        .build()
        .await
        .unwrap();
    let a = call(&app(v), "/me", &es(&ec, "k1", &iss)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn startup_fails_fast_when_the_jwks_is_unreachable_broken_or_too_large() {
    // Nothing listens on this port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = JwtVerifier::builder()
        .issuer(Issuer::jwks("x", format!("http://127.0.0.1:{port}/jwks.json")).audience(AUD))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::Jwks { .. }), "{e}");

    let idp = MockIdp::start(json!({"keys": []})).await;
    let e = jwks_builder(&idp, &ManualClock::starting_now())
        .build()
        .await
        .unwrap_err();
    assert!(chain(&e).contains("no usable signature key"), "{e}");

    // Only symmetric keys: a public JWKS never supplies an HMAC secret.
    idp.set_keys(json!({"keys": [{"kty": "oct", "kid": "s", "k": b64([7u8; 32])}]}));
    let e = jwks_builder(&idp, &ManualClock::starting_now())
        .build()
        .await
        .unwrap_err();
    assert!(chain(&e).contains("no usable signature key"), "{e}");

    let ec = ec_private();
    let mut big = jwks_with(&[(&ec, Algorithm::ES256, "k1")]);
    big["padding"] = json!("x".repeat(300 * 1024));
    idp.set_keys(big);
    let e = jwks_builder(&idp, &ManualClock::starting_now())
        .build()
        .await
        .unwrap_err();
    assert!(chain(&e).contains("too large"), "{e}");

    idp.set_keys(jwks_with(&[(&ec, Algorithm::ES256, "k1")]));
    idp.set_failing(true);
    let e = jwks_builder(&idp, &ManualClock::starting_now())
        .build()
        .await
        .unwrap_err();
    assert!(chain(&e).contains("status 500"), "{e}");
}

#[tokio::test]
async fn fetches_time_out_instead_of_waiting_forever() {
    let ec = ec_private();
    let idp = MockIdp::start(jwks_with(&[(&ec, Algorithm::ES256, "k1")])).await;
    idp.delay_ms
        .store(10_000, std::sync::atomic::Ordering::SeqCst);
    let e = jwks_builder(&idp, &ManualClock::starting_now())
        .http_timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, JwtConfigError::Jwks { .. }), "{e}");
}

#[tokio::test]
async fn rotation_to_a_new_kid_is_picked_up_without_restart() {
    let (old, new) = (ec_private(), ec2_private());
    let idp = MockIdp::start(jwks_with(&[(&old, Algorithm::ES256, "old")])).await;
    let clock = ManualClock::starting_now();
    let app = app(jwks_builder(&idp, &clock).build().await.unwrap());
    assert_eq!(
        call(&app, "/me", &es(&old, "old", &idp.base()))
            .await
            .status,
        StatusCode::OK
    );

    idp.set_keys(jwks_with(&[(&new, Algorithm::ES256, "new")]));
    clock.advance(Duration::from_secs(11)); // past the minimum gap since the startup fetch
    let a = call(&app, "/me", &es(&new, "new", &idp.base())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(idp.fetches(), 2);
    // The retired key is gone with its set.
    call(&app, "/me", &es(&old, "old", &idp.base()))
        .await
        .assert_invalid_token("unknown_key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_with_one_unknown_kid_cause_one_fetch() {
    let (old, new) = (ec_private(), ec2_private());
    let idp = MockIdp::start(jwks_with(&[(&old, Algorithm::ES256, "old")])).await;
    let clock = ManualClock::starting_now();
    // No minimum gap: only the single-flight can keep this to one fetch.
    let v = jwks_builder(&idp, &clock)
        .min_refresh_gap(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let app = app(v);
    idp.set_keys(jwks_with(&[
        (&old, Algorithm::ES256, "old"),
        (&new, Algorithm::ES256, "new"),
    ]));
    // Slow answers make sure the requests overlap the fetch.
    idp.delay_ms.store(300, std::sync::atomic::Ordering::SeqCst);
    let before = idp.fetches();
    let token = es(&new, "new", &idp.base());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let app = app.clone();
            let token = token.clone();
            tokio::spawn(async move {
                use tower::ServiceExt;
                app.oneshot(bearer("/me", &token)).await.unwrap().status()
            })
        })
        .collect();
    for t in futures_util::future::join_all(tasks).await {
        assert_eq!(t.unwrap(), StatusCode::OK);
    }
    assert_eq!(idp.fetches() - before, 1);
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_minimum_gap() {
    let ec = ec_private();
    let idp = MockIdp::start(jwks_with(&[(&ec, Algorithm::ES256, "k1")])).await;
    let clock = ManualClock::starting_now();
    let app = app(jwks_builder(&idp, &clock)
        .min_refresh_gap(Duration::from_secs(10))
        .build()
        .await
        .unwrap());
    clock.advance(Duration::from_secs(10));
    for i in 0..20 {
        call(&app, "/me", &es(&ec, &format!("junk-{i}"), &idp.base()))
            .await
            .assert_invalid_token("unknown_key");
    }
    assert_eq!(idp.fetches(), 2, "one refetch for twenty unknown kids");
    clock.advance(Duration::from_secs(10));
    call(&app, "/me", &es(&ec, "junk-x", &idp.base()))
        .await
        .assert_invalid_token("unknown_key");
    assert_eq!(idp.fetches(), 3);
}

#[tokio::test]
async fn interval_refresh_runs_in_the_background_and_picks_up_new_keys() {
    let (old, new) = (ec_private(), ec2_private());
    let idp = MockIdp::start(jwks_with(&[(&old, Algorithm::ES256, "old")])).await;
    let clock = ManualClock::starting_now();
    let app = app(jwks_builder(&idp, &clock)
        .refresh_interval(Duration::from_secs(60))
        .build()
        .await
        .unwrap());
    idp.set_keys(jwks_with(&[
        (&old, Algorithm::ES256, "old"),
        (&new, Algorithm::ES256, "new2"),
    ]));
    clock.advance(Duration::from_secs(61));
    // Served at once from the current set; the refresh happens behind it.
    assert_eq!(
        call(&app, "/me", &es(&old, "old", &idp.base()))
            .await
            .status,
        StatusCode::OK
    );
    for _ in 0..500 {
        if idp.fetches() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(idp.fetches(), 2);
    // Give the background task a moment to store the set, then use the new key without any
    // unknown-kid refetch (the minimum gap forbids one now).
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..500 {
        status = call(&app, "/me", &es(&new, "new2", &idp.base()))
            .await
            .status;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, StatusCode::OK);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn stale_keys_serve_through_the_window_then_503_never_401_then_recover() {
    let ec = ec_private();
    let idp = MockIdp::start(jwks_with(&[(&ec, Algorithm::ES256, "k1")])).await;
    let clock = ManualClock::starting_now();
    let app = app(jwks_builder(&idp, &clock)
        .refresh_interval(Duration::from_secs(60))
        .stale_window(Duration::from_secs(600))
        .build()
        .await
        .unwrap());
    // Valid for an hour: the manual clock moves about twelve minutes in this test.
    let mut c = claims_for(&idp.base());
    c["exp"] = json!(now_secs() + 3600);
    let token = sign(
        json!({"alg": "ES256", "kid": "k1"}),
        c,
        &ec,
        Algorithm::ES256,
    );
    idp.set_failing(true);

    // Due for refresh and the endpoint is down: the last good set keeps serving.
    clock.advance(Duration::from_secs(300));
    assert_eq!(call(&app, "/me", &token).await.status, StatusCode::OK);

    // Past interval + stale window: fail closed with 503 and Retry-After.
    clock.advance(Duration::from_secs(400));
    let a = call(&app, "/me", &token).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
    assert!(a.headers.contains_key(http::header::RETRY_AFTER));
    assert!(!a.headers.contains_key(http::header::WWW_AUTHENTICATE));
    assert_eq!(a.reasons, ["jwks_stale"]);
    // Unknown kids too: an outage is never reported as a bad token.
    clock.advance(Duration::from_secs(11));
    let a = call(&app, "/me", &es(&ec, "other", &idp.base())).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);

    // The endpoint comes back: after the minimum gap the next request refreshes and passes.
    idp.set_failing(false);
    clock.advance(Duration::from_secs(11));
    assert_eq!(call(&app, "/me", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn symmetric_keys_in_a_fetched_jwks_are_never_used() {
    let ec = ec_private();
    let secret = [9u8; 32];
    let mut set = jwks_with(&[(&ec, Algorithm::ES256, "k1")]);
    set["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64(secret)}));
    let idp = MockIdp::start(set).await;
    let app = app(jwks_builder(&idp, &ManualClock::starting_now())
        .build()
        .await
        .unwrap());
    let t = sign(
        json!({"alg": "HS256", "kid": "sym"}),
        claims_for(&idp.base()),
        &EncodingKey::from_secret(&secret),
        Algorithm::HS256,
    );
    call(&app, "/me", &t)
        .await
        .assert_invalid_token("unknown_key");
}

/// A JWKS server that answers only requests carrying `x-egress: proxy` (as a proxy or a
/// custom client would add), and a second path that redirects to `elsewhere`.
async fn picky_jwks_server(jwks: Value, elsewhere: String) -> String {
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let router = axum::Router::new()
        .route(
            "/jwks.json",
            get(move |h: HeaderMap| {
                let jwks = jwks.clone();
                async move {
                    if h.get("x-egress").is_some_and(|v| v == "proxy") {
                        (StatusCode::OK, jwks.to_string()).into_response()
                    } else {
                        (StatusCode::FORBIDDEN, "egress only").into_response()
                    }
                }
            }),
        )
        .route(
            "/moved.json",
            get(move || {
                let to = elsewhere.clone();
                async move { Redirect::temporary(&to) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn egress_client(follow_redirects: bool) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "x-egress",
        reqwest::header::HeaderValue::from_static("proxy"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(5)
        } else {
            reqwest::redirect::Policy::none()
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_user_supplied_http_client_fetches_the_keys() {
    let ec = ec_private();
    let base = picky_jwks_server(jwks_with(&[(&ec, Algorithm::ES256, "k1")]), String::new()).await;
    let issuer = || Issuer::jwks(base.clone(), format!("{base}/jwks.json")).audience(AUD);
    // The verifier's own client lacks what this egress demands: no keys, no verifier.
    assert!(
        JwtVerifier::builder()
            .issuer(issuer())
            .build()
            .await
            .is_err()
    );
    let app = app(JwtVerifier::builder()
        .issuer(issuer())
        .http_client(egress_client(false))
        .build()
        .await
        .unwrap());
    let a = call(&app, "/me", &es(&ec, "k1", &base)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

#[tokio::test]
async fn keys_reached_through_a_redirect_are_refused_even_when_the_client_follows_it() {
    // The configured URL redirects to a server holding an attacker's key.
    let attacker = ec2_private();
    let evil = MockIdp::start(jwks_with(&[(&attacker, Algorithm::ES256, "k1")])).await;
    let base = picky_jwks_server(json!({"keys": []}), evil.jwks_url()).await;
    let err = JwtVerifier::builder()
        .issuer(Issuer::jwks(base.clone(), format!("{base}/moved.json")).audience(AUD))
        .http_client(egress_client(true))
        .build()
        .await
        .expect_err("a redirected key set must not be used");
    assert!(chain(&err).contains("redirected"), "{err}");
    assert_eq!(evil.fetches(), 1, "the client did follow the redirect");
}
