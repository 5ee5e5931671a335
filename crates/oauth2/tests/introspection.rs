//! The resource-server half: an API guarded by `IntrospectionVerifier`, introspecting against
//! the authorization-server half over real HTTP on loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_bearer::Bearer;
use apiauth_core::clock::SharedClock;
use apiauth_core::{Auth, Scoped, scope};
use apiauth_oauth2::{
    ClientAuthMethod, IntrospectionCache, IntrospectionResponse, IntrospectionVerifier,
    KeyRotation, MemoryIntrospectionCache, TokenKey,
};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{AUDIENCE, As, LIFETIME};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

scope!(A = "a");
scope!(B = "b");

const CACHE_TTL: Duration = Duration::from_secs(60);
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

fn verifier_for(a: &As) -> apiauth_oauth2::IntrospectionVerifierBuilder {
    let clock: SharedClock = Arc::new(a.clock.clone());
    IntrospectionVerifier::builder(a.url("/oauth/introspect"))
        .dangerous_allow_http()
        .client_credentials(a.rs.id.clone(), a.rs.secret.clone())
        .audience(AUDIENCE)
        .issuer(a.base.clone())
        .cache_ttl(CACHE_TTL)
        .negative_cache_ttl(NEGATIVE_TTL)
        .clock(clock)
}

fn api(verifier: IntrospectionVerifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .route(
            "/client",
            get(|Auth(p): Auth| async move {
                let a = IntrospectionResponse::of(&p).expect("the answer is attached");
                format!("{:?} {:?}", a.client_id, a.iss.is_some())
            }),
        )
        .route(
            "/tenant",
            get(|Auth(p): Auth| async move { format!("{:?}", p.tenant()) }),
        )
        .route(
            "/a",
            get(|Scoped(p, ..): Scoped<A>| async move { p.scopes().to_string() }),
        )
        .route(
            "/b",
            get(|Scoped(p, ..): Scoped<B>| async move { p.scopes().to_string() }),
        )
        .layer(Bearer::new(verifier).layer())
}

struct Answer {
    status: StatusCode,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    body: String,
}

async fn call(app: &Router, path: &str, token: &str) -> Answer {
    let res = app
        .clone()
        .oneshot(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let (www_authenticate, retry_after) = {
        let header = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        (header("www-authenticate"), header("retry-after"))
    };
    let status = res.status();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Answer {
        status,
        www_authenticate,
        retry_after,
        body,
    }
}

#[tokio::test]
async fn active_token_is_accepted_and_the_answer_is_reused() {
    let a = As::start().await;
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&a.worker, None).await;
    for _ in 0..3 {
        let res = call(&app, "/me", &token).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, "worker");
    }
    assert_eq!(a.introspection_count(), 1);
    // The handler can read the answer the principal was built from, fresh or cached.
    for _ in 0..2 {
        let res = call(&app, "/client", &token).await;
        assert_eq!(res.body, r#"Some("worker") true"#);
    }
    assert_eq!(a.introspection_count(), 1);
    // Past the cache TTL the endpoint is asked again.
    a.clock.advance(CACHE_TTL + Duration::from_secs(1));
    assert_eq!(call(&app, "/me", &token).await.status, 200);
    assert_eq!(a.introspection_count(), 2);
}

#[tokio::test]
async fn the_answers_tenant_becomes_the_principals_fresh_or_cached() {
    let a = As::start().await;
    let secret = "ocs_tenant-client-secret-0123456789abcdef";
    a.clients.insert(
        apiauth_oauth2::RegisteredClient::new(
            "crm-sync",
            common::cheap_hasher().hash(secret),
            apiauth_core::ScopeSet::parse("a").unwrap(),
        )
        .tenant("acme"),
    );
    let client = common::Client {
        id: "crm-sync".into(),
        secret: secret.into(),
    };
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&client, None).await;
    for _ in 0..2 {
        let res = call(&app, "/tenant", &token).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, r#"Some("acme")"#);
    }
    assert_eq!(a.introspection_count(), 1);
    let untenanted = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/tenant", &untenanted).await.body, "None");
}

#[tokio::test]
async fn a_cached_answer_does_not_grant_another_routes_scope() {
    let a = As::start().await;
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&a.worker, Some("a")).await;
    assert_eq!(call(&app, "/a", &token).await.status, 200);
    // Same token, cached answer, a route that needs `b`: 403, not a pass.
    let res = call(&app, "/b", &token).await;
    assert_eq!(res.status, 403);
    assert!(res.body.contains("insufficient_scope"));
    assert!(res.www_authenticate.unwrap().contains("insufficient_scope"));
    assert_eq!(a.introspection_count(), 1);
}

#[tokio::test]
async fn expiry_is_rechecked_on_every_cache_hit() {
    let a = As::start().await;
    // A cache TTL far beyond the token lifetime: the entry must still end at `exp`, and the
    // verifier re-checks `exp` on hits, whatever the cache returns.
    let cache = Arc::new(ForgetfulTtlCache::default());
    let app = api(verifier_for(&a)
        .cache_ttl(Duration::from_secs(24 * 3600))
        .cache(cache.clone())
        .build()
        .unwrap());
    let token = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/me", &token).await.status, 200);
    assert_eq!(
        cache.last_ttl(),
        Some(LIFETIME),
        "TTL = min(configured, exp - now)"
    );
    a.clock.advance(LIFETIME);
    let res = call(&app, "/me", &token).await;
    assert_eq!(res.status, 401);
    assert!(res.body.contains("invalid_token"));
    assert_eq!(a.introspection_count(), 1, "refused from the cached answer");
}

#[tokio::test]
async fn revoked_token_is_refused_once_the_cached_answer_ends() {
    let a = As::start().await;
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/me", &token).await.status, 200);
    let res = a
        .http
        .post(a.url("/oauth/revoke"))
        .basic_auth(&a.worker.id, Some(&a.worker.secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The cache TTL is the documented bound on how long revocation takes to reach here.
    a.clock.advance(CACHE_TTL + Duration::from_secs(1));
    let res = call(&app, "/me", &token).await;
    assert_eq!(res.status, 401);
    assert!(res.body.contains("invalid_token"));
    let challenge = res.www_authenticate.unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn unknown_token_is_401_and_the_negative_answer_is_cached_briefly() {
    let a = As::start().await;
    let app = api(verifier_for(&a).build().unwrap());
    for _ in 0..3 {
        let res = call(&app, "/me", "no-such-token").await;
        assert_eq!(res.status, 401);
        assert!(res.body.contains("invalid_token"));
    }
    assert_eq!(a.introspection_count(), 1);
    a.clock.advance(NEGATIVE_TTL + Duration::from_secs(1));
    assert_eq!(call(&app, "/me", "no-such-token").await.status, 401);
    assert_eq!(a.introspection_count(), 2);
}

#[tokio::test]
async fn expired_token_is_401() {
    let a = As::start().await;
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&a.worker, None).await;
    a.clock.advance(LIFETIME + Duration::from_secs(1));
    let res = call(&app, "/me", &token).await;
    assert_eq!(res.status, 401);
    assert!(res.body.contains("invalid_token"));
}

#[tokio::test]
async fn a_token_for_another_audience_is_401() {
    let a = As::start().await;
    let app = api(verifier_for(&a)
        .audience("https://other-api.example.test")
        .build()
        .unwrap());
    let token = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/me", &token).await.status, 401);
}

#[tokio::test]
async fn concurrent_requests_for_one_uncached_token_make_one_call() {
    // The endpoint holds each answer back, so all requests arrive while the first is open.
    let a = As::start_with(
        KeyRotation::every(common::ROTATION),
        Duration::from_millis(500),
    )
    .await;
    let app = api(verifier_for(&a).build().unwrap());
    let token = a.token(&a.worker, None).await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            call(&app, "/me", &token).await.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(a.introspection_count(), 1);
}

#[tokio::test]
async fn client_secret_post_authenticates_the_resource_server() {
    let a = As::start().await;
    let app = api(verifier_for(&a)
        .client_auth(ClientAuthMethod::ClientSecretPost)
        .build()
        .unwrap());
    let token = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/me", &token).await.status, 200);
}

#[tokio::test]
async fn wrong_resource_server_credentials_are_503_not_401() {
    // The API cannot decide, so it must not blame the caller's token.
    let a = As::start().await;
    let app = api(verifier_for(&a)
        .client_credentials("rs", "ocs_wrong")
        .build()
        .unwrap());
    let token = a.token(&a.worker, None).await;
    let res = call(&app, "/me", &token).await;
    assert_eq!(res.status, 503);
    assert!(res.retry_after.is_some());
}

/// A loopback server answering every request with `answer`, after `delay`.
async fn fake_endpoint(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    delay: Duration,
) -> String {
    let (listener, addr) = common::listener().await;
    let app = Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let body = body.clone();
            async move {
                tokio::time::sleep(delay).await;
                (status, [("content-type", content_type)], body)
            }
        }),
    );
    common::serve_on(listener, app).await;
    format!("http://{addr}/introspect")
}

fn verifier_at(endpoint: String) -> IntrospectionVerifier {
    IntrospectionVerifier::builder(endpoint)
        .dangerous_allow_http()
        .client_credentials("rs", "secret")
        .audience(AUDIENCE)
        .timeout(Duration::from_millis(300))
        .max_response_bytes(4096)
        .build()
        .unwrap()
}

async fn assert_unavailable(app: &Router) {
    let res = call(app, "/me", "some-token").await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert!(res.retry_after.is_some());
    assert!(!res.body.contains("some-token"));
}

#[tokio::test]
async fn endpoint_down_is_503_with_retry_after() {
    // Bind a port, then free it: nothing listens there.
    let (listener, addr) = common::listener().await;
    drop(listener);
    let app = api(verifier_at(format!("http://{addr}/introspect")));
    assert_unavailable(&app).await;
}

#[tokio::test]
async fn slow_endpoint_is_503_after_the_timeout() {
    let ok = r#"{"active":true,"sub":"x","aud":"https://api.example.test"}"#.to_owned();
    let url = fake_endpoint(
        StatusCode::OK,
        "application/json",
        ok,
        Duration::from_secs(10),
    )
    .await;
    let app = api(verifier_at(url));
    let started = std::time::Instant::now();
    assert_unavailable(&app).await;
    // Generous bound: only proves the wait is not the endpoint's 10 s.
    assert!(started.elapsed() < Duration::from_secs(8));
}

#[tokio::test]
async fn non_json_non_200_oversized_or_malformed_answers_are_503() {
    let ok = r#"{"active":true,"sub":"x","aud":"https://api.example.test"}"#;
    let cases = [
        (StatusCode::OK, "text/html", "<html>login</html>".to_owned()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            ok.to_owned(),
        ),
        (
            StatusCode::UNAUTHORIZED,
            "application/json",
            r#"{"error":"invalid_client"}"#.to_owned(),
        ),
        (
            StatusCode::OK,
            "application/json",
            r#"{"sub":"x"}"#.to_owned(),
        ),
        (
            StatusCode::OK,
            "application/json",
            format!(r#"{{"active":true,"sub":"{}"}}"#, "x".repeat(8192)),
        ),
        (
            StatusCode::OK,
            "application/json",
            r#"{"active":true,"sub":"x","aud":"https://api.example.test","scope":"a  b"}"#
                .to_owned(),
        ),
    ];
    for (status, ct, body) in cases {
        let app = api(verifier_at(
            fake_endpoint(status, ct, body, Duration::ZERO).await,
        ));
        assert_unavailable(&app).await;
    }
    // Control: the same fake with a good answer passes, so the cases above fail for their
    // own reason.
    let app = api(verifier_at(
        fake_endpoint(
            StatusCode::OK,
            "application/json",
            ok.to_owned(),
            Duration::ZERO,
        )
        .await,
    ));
    assert_eq!(call(&app, "/me", "some-token").await.status, 200);
}

#[tokio::test]
async fn the_cache_is_keyed_by_a_hash_of_the_token() {
    let a = As::start().await;
    let cache = Arc::new(ForgetfulTtlCache::default());
    let app = api(verifier_for(&a).cache(cache.clone()).build().unwrap());
    let token = a.token(&a.worker, None).await;
    assert_eq!(call(&app, "/me", &token).await.status, 200);
    let keys = cache.keys();
    assert_eq!(keys, vec![TokenKey::of(&token)]);
    assert!(!keys[0].to_hex().contains(&token));
    assert_ne!(keys[0].to_hex(), token);
}

#[test]
fn startup_refuses_plain_http_and_a_missing_audience() {
    let b = || {
        IntrospectionVerifier::builder("http://auth.example.test/introspect")
            .client_credentials("rs", "secret")
    };
    assert!(matches!(
        b().audience(AUDIENCE).build(),
        Err(apiauth_oauth2::OAuth2ConfigError::InsecureUrl { .. })
    ));
    assert!(matches!(
        b().dangerous_allow_http().build(),
        Err(apiauth_oauth2::OAuth2ConfigError::Missing(_))
    ));
    assert!(
        b().dangerous_allow_http()
            .dangerous_accept_any_audience()
            .build()
            .is_ok()
    );
    let v = IntrospectionVerifier::builder("https://auth.example.test/introspect")
        .client_credentials("rs", "very-secret-value")
        .audience(AUDIENCE)
        .build()
        .unwrap();
    assert!(!format!("{v:?}").contains("very-secret-value"));
}

/// A cache that records the keys and TTLs it is given, and ignores the TTL when reading (so
/// that only the verifier's own checks stand between a stale answer and the route).
#[derive(Default)]
struct ForgetfulTtlCache {
    inner: std::sync::Mutex<Vec<(TokenKey, Arc<IntrospectionResponse>, Duration)>>,
}

impl ForgetfulTtlCache {
    fn last_ttl(&self) -> Option<Duration> {
        self.inner.lock().unwrap().last().map(|e| e.2)
    }
    fn keys(&self) -> Vec<TokenKey> {
        self.inner.lock().unwrap().iter().map(|e| e.0).collect()
    }
}

#[async_trait::async_trait]
impl IntrospectionCache for ForgetfulTtlCache {
    async fn get(
        &self,
        key: &TokenKey,
    ) -> Result<Option<Arc<IntrospectionResponse>>, apiauth_core::StoreError> {
        Ok(self
            .inner
            .lock()
            .unwrap()
            .iter()
            .find(|e| e.0 == *key)
            .map(|e| e.1.clone()))
    }
    async fn put(
        &self,
        key: &TokenKey,
        answer: &Arc<IntrospectionResponse>,
        ttl: Duration,
    ) -> Result<(), apiauth_core::StoreError> {
        self.inner.lock().unwrap().push((*key, answer.clone(), ttl));
        Ok(())
    }
}

#[allow(dead_code)]
fn _cache_is_dyn_compatible(c: MemoryIntrospectionCache) -> Arc<dyn IntrospectionCache> {
    Arc::new(c)
}

#[tokio::test]
async fn a_user_supplied_client_is_used_and_a_redirected_answer_is_refused() {
    let a = As::start().await;
    let token = a.token(&a.worker, None).await;
    let following = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap()
    };
    // Pointed straight at the endpoint, the supplied client serves as the verifier's own.
    let app = api(verifier_for(&a).http_client(following()).build().unwrap());
    assert_eq!(call(&app, "/me", &token).await.status, 200);
    assert_eq!(a.introspection_count(), 1);
    // An endpoint that redirects (307 keeps the method and the form) to the real one: the
    // supplied client follows it, and the answer from elsewhere is refused, closed.
    let target = a.url("/oauth/introspect");
    let hop = Router::new().route(
        "/introspect",
        axum::routing::post(move || {
            let to = target.clone();
            async move { axum::response::Redirect::temporary(&to) }
        }),
    );
    let (listener, addr) = common::listener().await;
    tokio::spawn(common::serve_on(listener, hop));
    let clock: SharedClock = Arc::new(a.clock.clone());
    let redirected = IntrospectionVerifier::builder(format!("http://{addr}/introspect"))
        .dangerous_allow_http()
        .client_credentials(a.rs.id.clone(), a.rs.secret.clone())
        .audience(AUDIENCE)
        .issuer(a.base.clone())
        .clock(clock)
        .http_client(following())
        .build()
        .unwrap();
    let res = call(&api(redirected), "/me", &token).await;
    assert_eq!(res.status, StatusCode::SERVICE_UNAVAILABLE, "{}", res.body);
    assert!(res.retry_after.is_some());
    assert_eq!(
        a.introspection_count(),
        2,
        "the client did follow the redirect"
    );
}
