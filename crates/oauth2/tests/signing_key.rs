//! A configured signing key: instances given the same key publish the same JWKS and accept
//! each other's tokens; unsafe combinations are refused at startup.

use std::sync::Arc;

use apiauth_basic::PasswordHasher;
use apiauth_core::ScopeSet;
use apiauth_jwt::{Issuer, JwtVerifier};
use apiauth_oauth2::{
    AuthorizationServer, KeyRotation, MemoryClientRegistry, OAuth2ConfigError, RegisteredClient,
};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

const ISSUER: &str = "https://auth.example.test";
const AUDIENCE: &str = "https://api.example.test";

fn p256_pkcs8() -> Vec<u8> {
    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn server(key: Option<&[u8]>) -> AuthorizationServer {
    let hasher = PasswordHasher::dangerous_with_params(64, 1, 1).unwrap();
    let clients = MemoryClientRegistry::with_hasher(hasher.clone());
    clients.insert(RegisteredClient::new(
        "worker",
        hasher.hash("worker-secret"),
        ScopeSet::parse("a").unwrap(),
    ));
    let mut b = AuthorizationServer::builder(ISSUER)
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .password_hasher(hasher)
        .key_rotation(KeyRotation::manual());
    if let Some(k) = key {
        b = b.signing_key_der(k.to_vec());
    }
    b.build().unwrap()
}

async fn token(server: &AuthorizationServer) -> String {
    let res = server
        .router()
        .oneshot(
            Request::post("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(
                    "grant_type=client_credentials&client_id=worker&client_secret=worker-secret",
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn verifier_for(server: &AuthorizationServer) -> JwtVerifier {
    let issuer = Issuer::new(ISSUER)
        .audience(AUDIENCE)
        .require_at_jwt()
        .jwk_set(&server.jwks().unwrap())
        .unwrap();
    JwtVerifier::builder().issuer(issuer).build().await.unwrap()
}

#[tokio::test]
async fn instances_given_the_same_key_accept_each_others_tokens() {
    let key = p256_pkcs8();
    let a = server(Some(&key));
    let b = server(Some(&key));
    assert_eq!(
        a.jwks().unwrap()["keys"][0]["kid"],
        b.jwks().unwrap()["keys"][0]["kid"],
        "same key, same RFC 7638 kid"
    );
    let from_a = token(&a).await;
    let p = verifier_for(&b).await.verify_token(&from_a).await.unwrap();
    assert_eq!(p.subject(), "worker");

    // Without a configured key each instance has its own, and refuses the other's tokens.
    let c = server(None);
    assert_ne!(
        a.jwks().unwrap()["keys"][0]["kid"],
        c.jwks().unwrap()["keys"][0]["kid"]
    );
    let err = verifier_for(&c)
        .await
        .verify_token(&from_a)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 401);
}

#[tokio::test]
async fn a_configured_key_with_automatic_rotation_or_a_bad_key_is_a_startup_error() {
    let clients = Arc::new(MemoryClientRegistry::new());
    let auto = AuthorizationServer::builder(ISSUER)
        .audience(AUDIENCE)
        .clients(clients.clone())
        .signing_key_der(p256_pkcs8())
        .build();
    assert!(
        matches!(auto, Err(OAuth2ConfigError::Invalid(_))),
        "{auto:?}"
    );
    let garbage = AuthorizationServer::builder(ISSUER)
        .audience(AUDIENCE)
        .clients(clients)
        .key_rotation(KeyRotation::manual())
        .signing_key_der(b"not a key".to_vec())
        .build();
    assert!(
        matches!(garbage, Err(OAuth2ConfigError::Key { .. })),
        "{garbage:?}"
    );
    // The key never shows in the builder's Debug output.
    let b = AuthorizationServer::builder(ISSUER).signing_key_der(vec![0xAB; 64]);
    assert!(!format!("{b:?}").contains("171"));
}
