//! The whole loop over real HTTP on loopback: a token from the authorization-server half, an
//! API that verifies it locally with `apiauth-jwt` (keys found through the RFC 8414 metadata
//! and the JWKS), revocation through the shared revocation list, rotation with overlap.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_bearer::Bearer;
use apiauth_core::clock::SharedClock;
use apiauth_core::{Scoped, scope};
use apiauth_jwt::{Issuer, JwtVerifier};
use axum::Router;
use axum::routing::get;
use common::{AUDIENCE, As};

scope!(A = "a");
scope!(B = "b");

/// An API on its own loopback port, verifying tokens with the server's published keys.
async fn start_api(a: &As) -> String {
    let clock: SharedClock = Arc::new(a.clock.clone());
    let verifier = JwtVerifier::builder()
        .issuer(
            Issuer::new(a.server.issuer())
                .discovery_url(a.server.metadata_url())
                .audience(a.server.audience())
                .require_at_jwt(),
        )
        .revocation_list(Arc::new(a.revoked.clone()))
        .clock(clock)
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/a",
            get(|Scoped(p, ..): Scoped<A>| async move { format!("a for {}", p.subject()) }),
        )
        .route(
            "/b",
            get(|Scoped(p, ..): Scoped<B>| async move { format!("b for {}", p.subject()) }),
        )
        .layer(Bearer::new(verifier).layer());
    let (listener, addr) = common::listener().await;
    common::serve_on(listener, app).await;
    format!("http://{addr}")
}

async fn get_with(a: &As, url: &str, token: &str) -> (u16, String, String) {
    let res = a.http.get(url).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, challenge, res.text().await.unwrap())
}

#[tokio::test]
async fn token_then_guarded_route_then_revoke_then_401() {
    let a = As::start().await;
    assert_eq!(a.server.audience(), AUDIENCE);
    let api = start_api(&a).await;
    let token = a.token(&a.worker, Some("a")).await;

    let (status, _, body) = get_with(&a, &format!("{api}/a"), &token).await;
    assert_eq!(status, 200);
    assert_eq!(body, "a for worker");
    // The token carries only `a`: the other route is 403 insufficient_scope.
    let (status, challenge, _) = get_with(&a, &format!("{api}/b"), &token).await;
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    let res = a
        .http
        .post(a.url("/oauth/revoke"))
        .basic_auth(&a.worker.id, Some(&a.worker.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (status, challenge, body) = get_with(&a, &format!("{api}/a"), &token).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(body.contains("invalid_token"));
    // A fresh token still works: revocation is per token, not per client.
    let fresh = a.token(&a.worker, Some("a")).await;
    assert_eq!(get_with(&a, &format!("{api}/a"), &fresh).await.0, 200);
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_keep_working_and_new_ones_verify_too() {
    let a = As::start().await;
    let api = start_api(&a).await;
    let before = a.token(&a.worker, Some("a")).await;
    assert_eq!(get_with(&a, &format!("{api}/a"), &before).await.0, 200);

    a.server.rotate_keys().unwrap();
    // Past the verifier's least gap between JWKS fetches, so the new `kid` is looked up.
    a.clock.advance(Duration::from_secs(30));
    let after = a.token(&a.worker, Some("a")).await;
    assert_eq!(get_with(&a, &format!("{api}/a"), &after).await.0, 200);
    assert_eq!(
        get_with(&a, &format!("{api}/a"), &before).await.0,
        200,
        "the previous key is still published"
    );
}

#[tokio::test]
async fn an_in_process_verifier_takes_the_servers_public_keys_without_http() {
    let a = As::start().await;
    let jwks = a.server.jwks().unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        1,
        "a fresh server publishes one key"
    );
    let issuer = Issuer::new(a.server.issuer())
        .audience(a.server.audience())
        .require_at_jwt()
        .jwk_set(&jwks)
        .unwrap();
    let clock: SharedClock = Arc::new(a.clock.clone());
    let verifier = JwtVerifier::builder()
        .issuer(issuer)
        .revocation_list(Arc::new(a.revoked.clone()))
        .clock(clock)
        .build()
        .await
        .unwrap();
    let token = a.token(&a.worker, Some("a")).await;
    let p = verifier.verify_token(&token).await.unwrap();
    assert_eq!(p.subject(), "worker");
    // A token from another server (other keys) is refused.
    let other = As::start().await;
    let foreign = other.token(&other.worker, Some("a")).await;
    assert_eq!(
        verifier.verify_token(&foreign).await.unwrap_err().status(),
        401
    );
}
