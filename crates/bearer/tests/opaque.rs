//! Opaque bearer tokens end to end through a Router: issue, use, scope, revoke, expire.

use std::sync::Arc;
use std::time::Duration;

use apiauth_api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
use apiauth_bearer::{Bearer, OpaqueTokens};
use apiauth_core::clock::ManualClock;
use apiauth_core::{Auth, ScopeSet, Scoped, scope};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

scope!(pub Read = "reports:read");

struct Fixture {
    tokens: ApiKeys,
    clock: ManualClock,
    app: Router,
}

fn fixture() -> Fixture {
    let clock = ManualClock::starting_now();
    let store = Arc::new(MemoryApiKeyStore::new());
    let tokens = ApiKeys::new(store)
        .prefix("pat_")
        .unwrap()
        .clock(Arc::new(clock.clone()));
    let app = Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move {
                format!("{} {} {:?}", p.subject(), p.method(), p.credential_id())
            }),
        )
        .route("/reports", get(|_: Scoped<Read>| async { "reports" }))
        .layer(
            Bearer::new(OpaqueTokens::new(&tokens).unwrap())
                .realm("api")
                .layer(),
        );
    Fixture { tokens, clock, app }
}

async fn call(app: &Router, path: &str, token: &str) -> (StatusCode, String, String) {
    let res = app
        .clone()
        .oneshot(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn issued_token_authenticates_as_a_bearer_principal() {
    let f = fixture();
    let t = f.tokens.create(NewKey::new("alice")).await.unwrap();
    let (s, _, body) = call(&f.app, "/me", t.key.expose_secret()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, format!("alice bearer Some({:?})", t.summary.id));
}

#[tokio::test]
async fn token_scopes_decide_scoped_routes_with_bearer_insufficient_scope() {
    let f = fixture();
    let none = f.tokens.create(NewKey::new("a")).await.unwrap();
    let read = f
        .tokens
        .create(NewKey::new("b").scopes(ScopeSet::parse("reports:read").unwrap()))
        .await
        .unwrap();
    let (s, c, _) = call(&f.app, "/reports", none.key.expose_secret()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(c.starts_with(r#"Bearer error="insufficient_scope""#), "{c}");
    assert_eq!(
        call(&f.app, "/reports", read.key.expose_secret()).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn revoked_expired_and_tampered_tokens_get_the_same_invalid_token_answer() {
    let f = fixture();
    let revoked = f.tokens.create(NewKey::new("r")).await.unwrap();
    f.tokens.revoke(&revoked.summary.id).await.unwrap();
    let expiring = f
        .tokens
        .create(NewKey::new("e").expires_in(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(
        call(&f.app, "/me", expiring.key.expose_secret()).await.0,
        StatusCode::OK
    );
    f.clock.advance(Duration::from_secs(61));
    let good = f.tokens.create(NewKey::new("g")).await.unwrap();
    let mut tampered = good.key.expose_secret().to_owned();
    let last = if tampered.ends_with('A') { 'B' } else { 'A' };
    tampered.pop();
    tampered.push(last);
    // An API key of another prefix is not a token here.
    let api_key = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()))
        .create(NewKey::new("k"))
        .await
        .unwrap();

    let mut answers = Vec::new();
    for t in [
        revoked.key.expose_secret(),
        expiring.key.expose_secret(),
        tampered.as_str(),
        api_key.key.expose_secret(),
        "pat_unknown",
    ] {
        let (s, c, body) = call(&f.app, "/me", t).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t}");
        assert_eq!(
            c,
            r#"Bearer realm="api", error="invalid_token", error_description="The credentials are not valid.""#
        );
        answers.push(body);
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "rejections must not differ: {answers:?}");
}
