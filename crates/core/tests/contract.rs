//! The layer contract and the extractors, driven through a real axum `Router`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apiauth_core::header::authorization_token68;
use apiauth_core::{
    AllOf, AnyOf, Auth, AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, ErrorResponder,
    Principal, RequireScopes, ScopeSet, Scoped, scope,
};
use apiauth_testkit::send;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use http::{Request, StatusCode, header};

scope!(pub Read = "data:read");
scope!(pub Write = "data:write");
scope!(pub Admin = "admin");

/// `Authorization: Bearer <token>`; token `good-<scope names joined by +>` is valid, `down` is an
/// upstream failure, anything else is invalid.
struct TestBearer;

impl Authenticator for TestBearer {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    fn challenge(&self) -> Challenge {
        Challenge::bearer("test")
    }
    fn scope_challenge(&self) -> Option<Challenge> {
        Some(Challenge::new("Bearer").with_error_attributes())
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        Ok(authorization_token68(req, "Bearer")?.map(str::to_owned))
    }
    async fn verify(&self, token: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        if token == "down" {
            return Err(AuthError::unavailable("upstream_down"));
        }
        let Some(scopes) = token.strip_prefix("good-") else {
            return Err(AuthError::invalid_credentials("unknown_token"));
        };
        // token68 has no ':', so scopes travel as short names: `read`, `write`, `admin`.
        let scopes =
            ScopeSet::from_tokens(
                scopes
                    .split('+')
                    .filter(|s| !s.is_empty())
                    .map(|s| match s {
                        "read" => "data:read",
                        "write" => "data:write",
                        other => other,
                    }),
            )
            .unwrap();
        Ok(Principal::builder("bearer-user", AuthMethod::BEARER)
            .credential_id("tok-1")
            .scopes(scopes)
            .build())
    }
}

/// `X-Test-Key: <key>`; `k1` is valid with scope `data:read`.
struct TestKey;

impl Authenticator for TestKey {
    type Credential = String;
    fn method(&self) -> AuthMethod {
        AuthMethod::API_KEY
    }
    fn challenge(&self) -> Challenge {
        // A scheme sharing Bearer's error vocabulary, so both methods answer with one body.
        Challenge::new("ApiKey")
            .param("realm", "test")
            .with_error_attributes()
    }
    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        match req.headers().get("x-test-key") {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.to_owned()))
                .map_err(|_| AuthError::invalid_request("X-Test-Key must be ASCII")),
        }
    }
    async fn verify(&self, key: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        if key == "k1" {
            Ok(Principal::builder("key-user", AuthMethod::API_KEY)
                .scopes(ScopeSet::parse("data:read").unwrap())
                .build())
        } else {
            Err(AuthError::invalid_credentials("unknown_key"))
        }
    }
}

fn app(hits: Arc<AtomicUsize>) -> Router {
    let h = hits.clone();
    Router::new()
        .route(
            "/me",
            get(move |Auth(p): Auth| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    format!("{}:{}", p.subject(), p.method())
                }
            }),
        )
        .route(
            "/maybe",
            get(|a: Option<Auth>| async move {
                a.map_or("anonymous".to_owned(), |a| a.subject().to_owned())
            }),
        )
        .route("/read", get(|_: Scoped<Read>| async { "read" }))
        .route(
            "/read-write",
            get(|_: Scoped<AllOf<(Read, Write)>>| async { "rw" }),
        )
        .route(
            "/write-or-admin",
            get(|_: Scoped<AnyOf<(Write, Admin)>>| async { "wa" }),
        )
        .route(
            "/dynamic",
            get(|| async { "dyn" }).route_layer(RequireScopes::all(
                ScopeSet::parse("data:read data:write").unwrap(),
            )),
        )
        .layer(AuthLayer::new(TestKey))
        .layer(AuthLayer::new(TestBearer))
}

fn get_req(path: &str) -> http::request::Builder {
    Request::get(path)
}

fn challenges(h: &http::HeaderMap) -> Vec<String> {
    h.get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn problem(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn no_credentials_is_401_listing_every_offered_scheme() {
    let (s, h, b) = send(
        &app(Default::default()),
        get_req("/me").body(Body::empty()).unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Outermost layer first; no error code when nothing was sent (RFC 6750 §3).
    assert_eq!(
        challenges(&h),
        vec![
            r#"Bearer realm="test""#.to_owned(),
            r#"ApiKey realm="test""#.to_owned()
        ]
    );
    assert_eq!(h[header::CONTENT_TYPE], "application/problem+json");
    let p = problem(&b);
    assert_eq!(p["status"], 401);
    assert_eq!(p["type"], "about:blank");
    assert_eq!(p["title"], "Unauthorized");
    assert!(p.get("error").is_none());
}

#[tokio::test]
async fn valid_credentials_of_either_method_reach_the_handler() {
    let hits = Arc::new(AtomicUsize::new(0));
    let (s, _, b) = send(
        &app(hits.clone()),
        get_req("/me")
            .header("x-test-key", "k1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::OK, "key-user:api_key"));
    let (s, _, b) = send(
        &app(hits.clone()),
        get_req("/me")
            .header("authorization", "Bearer good-read")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::OK, "bearer-user:bearer"));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn invalid_credentials_answer_at_once_and_never_fall_through() {
    let hits = Arc::new(AtomicUsize::new(0));
    // Even a route that accepts anonymous callers must not see a request with a bad credential.
    for path in ["/me", "/maybe"] {
        let (s, h, b) = send(
            &app(hits.clone()),
            get_req(path)
                .header("authorization", "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .into_parts();
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenges(&h),
            vec![r#"Bearer realm="test", error="invalid_token", error_description="The credentials are not valid.""#.to_owned()]
        );
        let p = problem(&b);
        assert_eq!(p["error"], "invalid_token");
        assert!(
            !b.contains("unknown_token"),
            "audit reason leaked into the body"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rejection_body_is_the_same_whatever_failed() {
    let (_, _, a) = send(
        &app(Default::default()),
        get_req("/me")
            .header("x-test-key", "wrong")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    let (_, _, b) = send(
        &app(Default::default()),
        get_req("/me")
            .header("authorization", "Bearer wrong")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(a, b);
}

#[tokio::test]
async fn credentials_of_two_methods_are_400_invalid_request() {
    let hits = Arc::new(AtomicUsize::new(0));
    let (s, h, b) = send(
        &app(hits.clone()),
        get_req("/me")
            .header("authorization", "Bearer good-read")
            .header("x-test-key", "k1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(problem(&b)["error"], "invalid_request");
    assert!(
        h.get(header::WWW_AUTHENTICATE).is_none() || challenges(&h)[0].contains("invalid_request")
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn malformed_credentials_are_400() {
    let (s, _, b) = send(
        &app(Default::default()),
        get_req("/me")
            .header("authorization", "Bearer a b")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(problem(&b)["error"], "invalid_request");
}

#[tokio::test]
async fn optional_auth_serves_anonymous_callers() {
    let (s, _, b) = send(
        &app(Default::default()),
        get_req("/maybe").body(Body::empty()).unwrap(),
    )
    .await
    .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::OK, "anonymous"));
    let (s, _, b) = send(
        &app(Default::default()),
        get_req("/maybe")
            .header("x-test-key", "k1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::OK, "key-user"));
}

async fn bearer(path: &str, scopes: &str) -> (StatusCode, http::HeaderMap, String) {
    send(
        &app(Default::default()),
        get_req(path)
            .header("authorization", format!("Bearer good-{scopes}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts()
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope_with_scope_attribute() {
    let (s, h, b) = bearer("/read", "write").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        challenges(&h),
        vec![r#"Bearer error="insufficient_scope", error_description="The credentials do not grant the required scope.", scope="data:read""#.to_owned()]
    );
    let p = problem(&b);
    assert_eq!(p["error"], "insufficient_scope");
    assert_eq!(p["scope"], "data:read");
    assert_eq!(bearer("/read", "read").await.0, StatusCode::OK);
}

#[tokio::test]
async fn unauthenticated_scoped_route_is_401_not_403() {
    let (s, _, _) = send(
        &app(Default::default()),
        get_req("/read").body(Body::empty()).unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn all_of_requires_every_scope() {
    assert_eq!(bearer("/read-write", "read").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        bearer("/read-write", "write").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(bearer("/read-write", "read+write").await.0, StatusCode::OK);
    let (_, h, _) = bearer("/read-write", "read").await;
    assert!(challenges(&h)[0].ends_with(r#"scope="data:read data:write""#));
}

#[tokio::test]
async fn any_of_requires_one_scope() {
    assert_eq!(
        bearer("/write-or-admin", "read").await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(bearer("/write-or-admin", "admin").await.0, StatusCode::OK);
    assert_eq!(bearer("/write-or-admin", "write").await.0, StatusCode::OK);
}

#[tokio::test]
async fn non_bearer_principal_gets_403_without_a_bearer_challenge() {
    let (s, h, b) = send(
        &app(Default::default()),
        get_req("/read-write")
            .header("x-test-key", "k1")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(h.get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(problem(&b)["scope"], "data:read data:write");
}

#[tokio::test]
async fn runtime_scope_list_layer_enforces_scopes() {
    assert_eq!(bearer("/dynamic", "read").await.0, StatusCode::FORBIDDEN);
    assert_eq!(bearer("/dynamic", "read+write").await.0, StatusCode::OK);
    let (s, h, _) = send(
        &app(Default::default()),
        get_req("/dynamic").body(Body::empty()).unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&h).len(), 2);
}

#[tokio::test]
async fn upstream_failure_is_503_with_retry_after_never_401() {
    let hits = Arc::new(AtomicUsize::new(0));
    let (s, h, b) = send(
        &app(hits.clone()),
        get_req("/maybe")
            .header("authorization", "Bearer down")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(h[header::RETRY_AFTER], "1");
    assert!(h.get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(problem(&b)["status"], 503);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn user_supplied_error_responder_replaces_the_default_body() {
    let app = app(Default::default()).layer(Extension(ErrorResponder::new(|e: &AuthError| {
        (e.status(), format!("custom {}", e.status().as_u16())).into_response()
    })));
    // From a layer…
    let (s, _, b) = send(
        &app.clone(),
        get_req("/me")
            .header("x-test-key", "bad")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::UNAUTHORIZED, "custom 401"));
    // …and from an extractor.
    let (s, _, b) = send(&app, get_req("/me").body(Body::empty()).unwrap())
        .await
        .into_parts();
    assert_eq!((s, b.as_str()), (StatusCode::UNAUTHORIZED, "custom 401"));
}
