//! Shared test helpers: keys, token minting, an app, a request runner that also captures the
//! audit events the request produced, and a mock JWKS/OIDC server on loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_bearer::Bearer;
use apiauth_core::{Auth, Scoped, scope};
use apiauth_jwt::{Claims, JwtVerifier, Roles};
pub use apiauth_testkit::Seen;
use axum::body::Body;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

pub const ISS: &str = "https://issuer.test";
pub const AUD: &str = "https://api.test";

pub fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("test data file")
}

pub fn ec_private() -> EncodingKey {
    EncodingKey::from_ec_pem(data("ec_private.pem").as_bytes()).unwrap()
}
pub fn ec2_private() -> EncodingKey {
    EncodingKey::from_ec_pem(data("ec2_private.pem").as_bytes()).unwrap()
}
pub fn rsa_private() -> EncodingKey {
    EncodingKey::from_rsa_pem(data("rsa_private.pem").as_bytes()).unwrap()
}
pub fn ed_private() -> EncodingKey {
    EncodingKey::from_ed_pem(data("ed_private.pem").as_bytes()).unwrap()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs `header_json` and `claims_json` exactly as given (so tests can send duplicate names,
/// odd headers, any `alg` string) with `key` under `alg`.
pub fn sign_raw(header_json: &str, claims_json: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let input = format!("{}.{}", b64(header_json), b64(claims_json));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).unwrap();
    format!("{input}.{sig}")
}

pub fn sign(header: Value, claims: Value, key: &EncodingKey, alg: Algorithm) -> String {
    sign_raw(&header.to_string(), &claims.to_string(), key, alg)
}

/// Claims that pass every check, valid for 10 minutes from `now`.
pub fn good_claims(now: i64) -> Value {
    json!({
        "iss": ISS, "aud": AUD, "sub": "user-1", "jti": "jti-1",
        "iat": now, "nbf": now, "exp": now + 600,
        "scope": "reports:read profile",
        "tenant_id": "acme", "plan": "pro", "roles": ["admin", "billing"],
    })
}

pub fn es256(kid: &str, claims: Value) -> String {
    sign(
        json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}),
        claims,
        &ec_private(),
        Algorithm::ES256,
    )
}

scope!(pub ReportsRead = "reports:read");
scope!(pub ReportsWrite = "reports:write");

#[derive(serde::Deserialize)]
pub struct MyClaims {
    pub sub: String,
    pub tenant_id: String,
}

pub fn app(verifier: JwtVerifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move {
                Json(json!({
                    "sub": p.subject(),
                    "method": p.method().as_str(),
                    "credential_id": p.credential_id(),
                    "tenant": p.tenant(),
                    "plan": p.plan(),
                    "scopes": p.scopes().to_string(),
                    "roles": p.attribute::<Roles>().map(|r| r.iter().map(str::to_owned).collect::<Vec<_>>()),
                    "expires_at": p.expires_at().map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs()),
                }))
            }),
        )
        .route("/reports", get(|_: Scoped<ReportsRead>| async { "reports" }))
        .route("/write", get(|_: Scoped<ReportsWrite>| async { "write" }))
        .route(
            "/claims",
            get(|Claims(c): Claims<MyClaims>| async move { format!("{}@{}", c.sub, c.tenant_id) }),
        )
        .layer(Bearer::new(verifier).realm("api").layer())
}

/// What a client sees, with the audit events the request produced.
pub struct Answer {
    pub seen: Seen,
    /// The `reason` of every audit event the request produced.
    pub reasons: Vec<String>,
    /// Every field of every event, formatted, to check that no secret is logged.
    pub log: Vec<String>,
}

impl std::ops::Deref for Answer {
    type Target = Seen;
    fn deref(&self) -> &Seen {
        &self.seen
    }
}

impl Answer {
    pub fn www_authenticate(&self) -> String {
        self.challenges().join(" | ")
    }

    /// 401 `invalid_token` exactly as RFC 6750 §3.1 has it, with `reason` in the audit event
    /// and not in the response.
    #[track_caller]
    pub fn assert_invalid_token(&self, reason: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "body: {}", self.body);
        assert_eq!(
            self.www_authenticate(),
            r#"Bearer realm="api", error="invalid_token", error_description="The credentials are not valid.""#
        );
        let j = self.json();
        assert_eq!(j["error"], "invalid_token");
        assert_eq!(j["detail"], "The credentials are not valid.");
        assert!(!self.body.contains(reason), "reason leaked into the body");
        assert_eq!(self.reasons, [reason.to_owned()], "audit reasons");
    }
}

/// Sends `req` through `app` and collects the answer and the audit events. The capture is
/// thread-local, so tests using it run on the current-thread runtime.
pub async fn send(app: &Router, req: Request<Body>) -> Answer {
    let logs = apiauth_testkit::LogCapture::start();
    let seen = apiauth_testkit::send(app, req).await;
    let events = logs.take_events();
    let reasons = events
        .iter()
        .filter(|e| e.target == apiauth_core::audit::TARGET)
        .filter_map(|e| e.field("reason").map(str::to_owned))
        .collect();
    let log = events
        .iter()
        .map(|e| {
            e.fields
                .iter()
                .map(|(k, v)| format!("{k}={v} "))
                .collect::<String>()
        })
        .collect();
    Answer { seen, reasons, log }
}

pub fn bearer(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

pub async fn call(app: &Router, path: &str, token: &str) -> Answer {
    send(app, bearer(path, token)).await
}

/// A JWK for the public half of `key`, with `kid` and `alg`.
pub fn public_jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk =
        serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// A JWKS and OIDC discovery server on 127.0.0.1, with a fetch counter, a failure switch and
/// an optional delay on JWKS answers.
#[derive(Clone)]
pub struct MockIdp {
    pub addr: SocketAddr,
    pub jwks: Arc<Mutex<Value>>,
    pub fetches: Arc<AtomicUsize>,
    pub fail: Arc<AtomicBool>,
    pub delay_ms: Arc<AtomicUsize>,
    pub discovery_issuer: Arc<Mutex<Option<String>>>,
}

impl MockIdp {
    pub async fn start(jwks: Value) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idp = MockIdp {
            addr,
            jwks: Arc::new(Mutex::new(jwks)),
            fetches: Arc::default(),
            fail: Arc::default(),
            delay_ms: Arc::default(),
            discovery_issuer: Arc::default(),
        };
        let s = idp.clone();
        let s2 = idp.clone();
        let s3 = idp.clone();
        let router = Router::new()
            .route(
                "/jwks.json",
                get(move || {
                    let s = s.clone();
                    async move {
                        s.fetches.fetch_add(1, Ordering::SeqCst);
                        let delay = s.delay_ms.load(Ordering::SeqCst) as u64;
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        if s.fail.load(Ordering::SeqCst) {
                            return (StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned());
                        }
                        let body = s.jwks.lock().unwrap().to_string();
                        (StatusCode::OK, body)
                    }
                }),
            )
            .route(
                "/.well-known/openid-configuration",
                get(move || {
                    let s = s2.clone();
                    async move {
                        let iss = s
                            .discovery_issuer
                            .lock()
                            .unwrap()
                            .clone()
                            .unwrap_or_else(|| s.base());
                        Json(json!({ "issuer": iss, "jwks_uri": s.jwks_url() }))
                    }
                }),
            )
            .route(
                "/.well-known/oauth-authorization-server/tenant-a",
                get(move || {
                    let s = s3.clone();
                    async move {
                        Json(json!({ "issuer": format!("{}/tenant-a", s.base()), "jwks_uri": s.jwks_url() }))
                    }
                }),
            );
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        idp
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.base())
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: Value) {
        *self.jwks.lock().unwrap() = keys;
    }

    pub fn set_failing(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}
