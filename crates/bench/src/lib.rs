//! # apiauth-bench
//!
//! The fixtures behind the apiauth benchmarks: one axum [`Router`] per method, each guarding
//! the same bare handler, with a request maker that yields a valid credential, a tampered
//! one, and the raw cryptographic work ("floor") the method cannot avoid.
//!
//! The criterion benches (`cargo bench -p apiauth-bench`) and this crate's tests use the same
//! fixtures, so a benchmark can only measure a stack that the tests show accepts the right
//! credential and refuses a wrong or missing one.
//!
//! ```
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), apiauth_bench::BenchError> {
//! let case = apiauth_bench::api_key().await?;
//! let ok = case.router.clone().oneshot(case.request()).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! let refused = case.router.clone().oneshot(case.tampered_request()).await.unwrap();
//! assert_eq!(refused.status(), 401);
//! # Ok(()) }
//! ```
//!
//! Every key and secret in this crate protects nothing but benchmark requests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod floor;
mod signature_base;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_api_key::{ApiKeyConfigError, ApiKeyError, ApiKeys, MemoryApiKeyStore, NewKey};
use apiauth_basic::{BasicAuth, BasicConfigError, MemoryCredentialStore, PasswordHasher};
use apiauth_bearer::{Bearer, OpaqueTokens};
use apiauth_core::clock::{Clock, ManualClock, SharedClock, unix_seconds};
use apiauth_core::{Auth, AuthLayer, MemoryReplayStore, RequireScopes, ScopeSet};
use apiauth_hmac::{
    HmacKey, HmacSecret, HttpSigConfigError, HttpSignatureVerifier, MemoryHmacKeyStore, Signer,
};
use apiauth_jwt::{Issuer, JwtConfigError, JwtKey, JwtVerifier};
use apiauth_oauth2::{AuthorizationServer, IntrospectionVerifier, MemoryClientRegistry};
use apiauth_quota::{QuotaConfigError, QuotaLayer, QuotaPolicy};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use http::Request;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

pub use floor::{DpopFloor, HmacFloor, JwtFloor, Sha256Floor, SignatureFloor};
pub use signature_base::signature_base;

/// The route every case guards (the example API's company lookup).
pub const ROUTE: &str = "/v1/companies/{domain}";
/// The path every request asks for.
pub const PATH: &str = "/v1/companies/example.com";
/// The absolute URI of signed requests (RFC 9421 `@authority` comes from it).
pub const SIGNED_URI: &str = "http://api.bench.example/v1/companies/example.com";
/// The scope the guarded route of the full stack requires.
pub const SCOPE: &str = "companies:read";
/// `iss` of every benchmark JWT.
pub const ISSUER: &str = "https://idp.bench.example";
/// `aud` of every benchmark JWT.
pub const AUDIENCE: &str = "bench-api";
/// The HS256 secret of the benchmark JWTs (benchmark-only).
pub const HS256_SECRET: &[u8] = b"apiauth-bench hs256 secret, protects nothing";
/// Size of the signed request body (the issue asks for 1 KiB).
pub const SIGNED_BODY_LEN: usize = 1024;

/// P-256 private key (PKCS#8 PEM) generated for these benchmarks only.
pub const ES256_PRIVATE_PEM: &str = include_str!("../fixtures/es256_private.pem");
/// Its public key (SPKI PEM).
pub const ES256_PUBLIC_PEM: &str = include_str!("../fixtures/es256_public.pem");
/// RSA-2048 private key (PKCS#8 PEM) generated for these benchmarks only.
pub const RS256_PRIVATE_PEM: &str = include_str!("../fixtures/rs256_private.pem");
/// Its public key (SPKI PEM).
pub const RS256_PUBLIC_PEM: &str = include_str!("../fixtures/rs256_public.pem");
/// Both public keys as an RFC 7517 JWK Set, `kid` `bench-es256` and `bench-rs256`.
pub const JWKS_JSON: &str = include_str!("../fixtures/jwks.json");

/// Setting up a benchmark case failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// API key or opaque-token configuration.
    #[error(transparent)]
    ApiKeyConfig(#[from] ApiKeyConfigError),
    /// Issuing a benchmark API key.
    #[error(transparent)]
    ApiKey(#[from] ApiKeyError),
    /// Basic configuration.
    #[error(transparent)]
    Basic(#[from] BasicConfigError),
    /// JWT verifier configuration.
    #[error(transparent)]
    Jwt(#[from] JwtConfigError),
    /// Minting or decoding a benchmark token.
    #[error("token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// HTTP Message Signatures configuration.
    #[error(transparent)]
    Hmac(#[from] HttpSigConfigError),
    /// Signing a benchmark request.
    #[error(transparent)]
    Sign(#[from] apiauth_hmac::SignError),
    /// OAuth 2.0 configuration.
    #[error(transparent)]
    OAuth2(#[from] apiauth_oauth2::OAuth2ConfigError),
    /// Quota configuration.
    #[error(transparent)]
    Quota(#[from] QuotaConfigError),
    /// DPoP configuration or signing.
    #[error("dpop: {0}")]
    Dpop(String),
    /// A loopback socket.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A fixture did not behave as expected while being prepared.
    #[error("setup: {0}")]
    Setup(String),
}

type MakeRequest = Arc<dyn Fn() -> Request<Body> + Send + Sync>;

/// A guarded router plus requests for it.
#[derive(Clone)]
pub struct Case {
    /// The router: a method layer in front of [`ok`] with core's `Auth` required (see
    /// [`guarded`]), or `ok` alone.
    pub router: Router,
    /// The method layer in front of [`ok`] and nothing else: the method's own cost.
    pub layer_only: Router,
    valid: MakeRequest,
    tampered: MakeRequest,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case").finish_non_exhaustive()
    }
}

impl Case {
    fn new(
        routers: Routers,
        valid: impl Fn() -> Request<Body> + Send + Sync + 'static,
        tampered: impl Fn() -> Request<Body> + Send + Sync + 'static,
    ) -> Self {
        Self {
            router: routers.guarded,
            layer_only: routers.layer_only,
            valid: Arc::new(valid),
            tampered: Arc::new(tampered),
        }
    }

    /// A request with a valid credential (a fresh one where credentials are single-use).
    pub fn request(&self) -> Request<Body> {
        (self.valid)()
    }

    /// The same request with one character of the credential changed.
    pub fn tampered_request(&self) -> Request<Body> {
        (self.tampered)()
    }

    /// The bare handler behind the same kind of request: what this case's layer adds to.
    pub fn unguarded(&self) -> Case {
        Case {
            router: bare_router(),
            layer_only: bare_router(),
            valid: self.valid.clone(),
            tampered: self.tampered.clone(),
        }
    }
}

/// The handler every case guards: it does no work, so the layers' cost stands out.
pub async fn ok() -> &'static str {
    "ok"
}

/// [`ok`] on [`ROUTE`] (GET and POST), with no layer.
pub fn bare_router() -> Router {
    Router::new().route(ROUTE, get(ok).post(ok))
}

/// The two routers of a case.
#[derive(Clone, Debug)]
pub struct Routers {
    /// [`ok`] behind the layer, with core's [`Auth`] extractor run as middleware so that a
    /// request with no credential is refused (401), as peer middleware does.
    pub guarded: Router,
    /// [`ok`] behind the layer alone. apiauth layers pass a request without their credential
    /// on (so several methods can be stacked); this measures the method by itself.
    pub layer_only: Router,
}

/// Both routers for `layer`.
pub fn guarded<L>(layer: L) -> Routers
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<Request<Body>, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<Body>>>::Response: axum::response::IntoResponse + 'static,
    <L::Service as tower::Service<Request<Body>>>::Future: Send + 'static,
{
    Routers {
        guarded: bare_router()
            .route_layer(axum::middleware::from_extractor::<Auth>())
            .layer(layer.clone()),
        layer_only: bare_router().layer(layer),
    }
}

fn get_with(name: &'static str, value: String) -> Request<Body> {
    Request::get(PATH)
        .header(name, value)
        .body(Body::empty())
        .unwrap_or_default()
}

/// Changes one character of `s`, ten from the end (ASCII credentials only): inside the
/// signature of a JWT and the secret of a key, and never the last base64 character, whose
/// low bits may not count.
pub fn tamper(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let i = bytes.len().saturating_sub(10);
    if let Some(b) = bytes.get_mut(i) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

async fn expect_status(router: &Router, req: Request<Body>, want: u16) -> Result<(), BenchError> {
    let got = router
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| BenchError::Setup(format!("router error: {e}")))?
        .status()
        .as_u16();
    if got == want {
        Ok(())
    } else {
        Err(BenchError::Setup(format!("expected {want}, got {got}")))
    }
}

/// A fixed-layout API key case, with its store.
pub struct ApiKeyCase {
    /// The router and requests.
    pub case: Case,
    /// The key (benchmark-only).
    pub key: String,
}

async fn api_key_parts() -> Result<(ApiKeys, String), BenchError> {
    api_key_parts_on(Arc::new(MemoryApiKeyStore::new())).await
}

async fn api_key_parts_on(
    store: Arc<dyn apiauth_api_key::ApiKeyStore>,
) -> Result<(ApiKeys, String), BenchError> {
    let keys = ApiKeys::new(store);
    let created = keys
        .create(
            NewKey::new("bench-user")
                .tenant("bench")
                .plan("pro")
                .scopes(scopes()),
        )
        .await?;
    Ok((keys, created.key.expose_secret().to_owned()))
}

fn scopes() -> ScopeSet {
    // A constant, valid RFC 6749 §3.3 scope string.
    ScopeSet::parse(SCOPE).unwrap_or_else(|_| ScopeSet::empty())
}

/// API key in `X-API-Key`, from an in-memory store.
pub async fn api_key() -> Result<Case, BenchError> {
    Ok(api_key_case().await?.case)
}

/// [`api_key`], also handing back the key (for the floor).
pub async fn api_key_case() -> Result<ApiKeyCase, BenchError> {
    let (keys, key) = api_key_parts().await?;
    let routers = guarded(keys.auth().realm("api").layer()?);
    let (k1, k2) = (key.clone(), key.clone());
    let case = Case::new(
        routers,
        move || get_with("x-api-key", k1.clone()),
        move || get_with("x-api-key", tamper(&k2)),
    );
    expect_status(&case.router, case.request(), 200).await?;
    Ok(ApiKeyCase { case, key })
}

/// [`api_key_case`] over another store (the SQL stores' warm path, `benches/sql.rs`).
pub async fn api_key_case_on(
    store: Arc<dyn apiauth_api_key::ApiKeyStore>,
) -> Result<ApiKeyCase, BenchError> {
    let (keys, key) = api_key_parts_on(store).await?;
    let routers = guarded(keys.auth().realm("api").layer()?);
    let (k1, k2) = (key.clone(), key.clone());
    let case = Case::new(
        routers,
        move || get_with("x-api-key", k1.clone()),
        move || get_with("x-api-key", tamper(&k2)),
    );
    expect_status(&case.router, case.request(), 200).await?;
    Ok(ApiKeyCase { case, key })
}

/// An opaque bearer token (`Authorization: Bearer pat_…`) over the API key records.
pub async fn opaque_bearer() -> Result<ApiKeyCase, BenchError> {
    let tokens = ApiKeys::new(Arc::new(MemoryApiKeyStore::new())).prefix("pat_")?;
    let created = tokens
        .create(NewKey::new("bench-user").scopes(scopes()))
        .await?;
    let token = created.key.expose_secret().to_owned();
    let routers = guarded(Bearer::new(OpaqueTokens::new(&tokens)?).layer());
    let (t1, t2) = (token.clone(), token.clone());
    let case = Case::new(
        routers,
        move || get_with("authorization", format!("Bearer {t1}")),
        move || get_with("authorization", format!("Bearer {}", tamper(&t2))),
    );
    expect_status(&case.router, case.request(), 200).await?;
    Ok(ApiKeyCase { case, key: token })
}

/// Basic with argon2id at rest and a warm verification cache.
pub struct BasicCase {
    /// The router and requests.
    pub case: Case,
    /// The layer, for its statistics (cache hits).
    pub layer: AuthLayer<BasicAuth>,
    /// `user-id:password` as sent (benchmark-only).
    pub credentials: String,
}

/// Basic (RFC 7617) with the verification cache warmed by one request.
pub async fn basic() -> Result<BasicCase, BenchError> {
    let hasher = PasswordHasher::default();
    let users = MemoryCredentialStore::new();
    let password = "bench password, protects nothing";
    users.insert_user("bench-admin", hasher.hash(password));
    let layer = BasicAuth::builder(users)
        .realm("admin")
        .password_hasher(hasher)
        // Longer than any benchmark run, so every measured request is a cache hit.
        .cache_ttl(Duration::from_secs(3600))
        .layer()?;
    let credentials = format!("bench-admin:{password}");
    let header = format!("Basic {}", B64.encode(&credentials));
    let wrong = format!("Basic {}", B64.encode(tamper(&credentials)));
    let case = Case::new(
        guarded(layer.clone()),
        move || get_with("authorization", header.clone()),
        move || get_with("authorization", wrong.clone()),
    );
    // Warm the cache: this request pays the one argon2 run.
    expect_status(&case.router, case.request(), 200).await?;
    Ok(BasicCase {
        case,
        layer,
        credentials,
    })
}

/// The signature algorithms the JWT cases use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlg {
    /// HMAC-SHA256 with [`HS256_SECRET`].
    Hs256,
    /// ECDSA P-256 with [`ES256_PRIVATE_PEM`], `kid` `bench-es256`.
    Es256,
    /// RSASSA-PKCS1-v1_5 with [`RS256_PRIVATE_PEM`], `kid` `bench-rs256`.
    Rs256,
}

impl JwtAlg {
    /// The `jsonwebtoken` algorithm.
    pub fn algorithm(self) -> Algorithm {
        match self {
            JwtAlg::Hs256 => Algorithm::HS256,
            JwtAlg::Es256 => Algorithm::ES256,
            JwtAlg::Rs256 => Algorithm::RS256,
        }
    }

    /// The `kid` of tokens and keys.
    pub fn kid(self) -> &'static str {
        match self {
            JwtAlg::Hs256 => "bench-hs256",
            JwtAlg::Es256 => "bench-es256",
            JwtAlg::Rs256 => "bench-rs256",
        }
    }

    /// Lowercase name, for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            JwtAlg::Hs256 => "hs256",
            JwtAlg::Es256 => "es256",
            JwtAlg::Rs256 => "rs256",
        }
    }

    /// The verifying key for `jsonwebtoken` (the floor and the peers use it).
    pub fn decoding_key(self) -> Result<jsonwebtoken::DecodingKey, BenchError> {
        Ok(match self {
            JwtAlg::Hs256 => jsonwebtoken::DecodingKey::from_secret(HS256_SECRET),
            JwtAlg::Es256 => jsonwebtoken::DecodingKey::from_ec_pem(ES256_PUBLIC_PEM.as_bytes())?,
            JwtAlg::Rs256 => jsonwebtoken::DecodingKey::from_rsa_pem(RS256_PUBLIC_PEM.as_bytes())?,
        })
    }

    fn jwt_key(self) -> Result<JwtKey, JwtConfigError> {
        Ok(match self {
            JwtAlg::Hs256 => JwtKey::hmac(HS256_SECRET)?,
            JwtAlg::Es256 => JwtKey::ec_pem(ES256_PUBLIC_PEM)?,
            JwtAlg::Rs256 => JwtKey::rsa_pem(RS256_PUBLIC_PEM)?,
        }
        .kid(self.kid()))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Mints the benchmark token for `alg`: `iss`, `aud`, `sub`, `scope`, `jti`, `iat`, `nbf`
/// and an `exp` a day away, so no run outlives it.
pub fn mint_token(alg: JwtAlg) -> Result<String, BenchError> {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "scope": SCOPE,
        "jti": "bench-token-1", "iat": now, "nbf": now.saturating_sub(60), "exp": now + 86_400,
    });
    let mut header = Header::new(alg.algorithm());
    header.kid = Some(alg.kid().to_owned());
    let key = match alg {
        JwtAlg::Hs256 => EncodingKey::from_secret(HS256_SECRET),
        JwtAlg::Es256 => EncodingKey::from_ec_pem(ES256_PRIVATE_PEM.as_bytes())?,
        JwtAlg::Rs256 => EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM.as_bytes())?,
    };
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}

/// A JWT case.
pub struct JwtCase {
    /// The router and requests.
    pub case: Case,
    /// The layer, for its verifier (cached-token count).
    pub layer: AuthLayer<Bearer<JwtVerifier>>,
    /// The token every request carries.
    pub token: String,
}

/// A bearer JWT verified by `apiauth-jwt` against a static key; `cache` turns on the
/// verified-token cache (and warms it with one request).
pub async fn jwt(alg: JwtAlg, cache: bool) -> Result<JwtCase, BenchError> {
    let mut builder =
        JwtVerifier::builder().issuer(Issuer::new(ISSUER).key(alg.jwt_key()?).audience(AUDIENCE));
    if cache {
        builder = builder.cache(10_000, Duration::from_secs(300));
    }
    let layer = Bearer::new(builder.build().await?).realm("api").layer();
    let token = mint_token(alg)?;
    let (t1, t2) = (token.clone(), token.clone());
    let case = Case::new(
        guarded(layer.clone()),
        move || get_with("authorization", format!("Bearer {t1}")),
        move || get_with("authorization", format!("Bearer {}", tamper(&t2))),
    );
    expect_status(&case.router, case.request(), 200).await?;
    Ok(JwtCase { case, layer, token })
}

/// An RFC 9421 case: `hmac-sha256` over method, authority, path, query and a 1 KiB body's
/// `Content-Digest`, with a fresh nonce and `created` per request.
pub struct HmacCase {
    /// The router and requests.
    pub case: Case,
    /// The signer the requests come from.
    pub signer: Arc<Signer>,
    /// The shared secret (benchmark-only).
    pub secret: HmacSecret,
    /// The clock the signer, verifier and replay store share.
    pub clock: ManualClock,
}

/// The key id of the signed requests.
pub const HMAC_KEY_ID: &str = "bench-client";

/// The 1 KiB JSON body of signed requests.
pub fn signed_body() -> Vec<u8> {
    let mut body = b"{\"note\":\"".to_vec();
    body.resize(SIGNED_BODY_LEN - 2, b'x');
    body.extend_from_slice(b"\"}");
    body
}

/// Signs a POST of [`signed_body`] to [`SIGNED_URI`].
pub fn signed_request(signer: &Signer) -> Result<Request<Vec<u8>>, BenchError> {
    let mut req = Request::post(SIGNED_URI)
        .header("content-type", "application/json")
        .body(signed_body())
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    signer.sign(&mut req)?;
    Ok(req)
}

/// [`HttpSignatureVerifier`] with its defaults (nonce required, in-memory replay store,
/// five-minute `created` window) on a [`ManualClock`].
///
/// Each request made advances the clock by 10 ms, as if 100 signed requests a second
/// arrived: nonces then expire from the replay store at the rate they enter it, so the
/// store stays at its steady-state size however long criterion runs.
pub async fn hmac() -> Result<HmacCase, BenchError> {
    let clock = ManualClock::starting_now();
    let shared: SharedClock = Arc::new(clock.clone());
    let secret = HmacSecret::generate();
    let keys = MemoryHmacKeyStore::new();
    keys.insert(
        HMAC_KEY_ID,
        HmacKey::new("bench-user").secret(secret.clone()),
    );
    let verifier = HttpSignatureVerifier::builder(keys)
        .clock(shared.clone())
        .replay_store(MemoryReplayStore::with_clock(shared.clone()))
        .build()?;
    let signer = Arc::new(
        Signer::builder(HMAC_KEY_ID, secret.clone())
            .clock(shared)
            .build()?,
    );
    let (k1, k2, c1, c2) = (secret.clone(), secret.clone(), clock.clone(), clock.clone());
    let case = Case::new(
        guarded(AuthLayer::new(verifier)),
        move || {
            c1.advance(Duration::from_millis(10));
            let created = unix_seconds(c1.now());
            reference_signed_request(k1.expose_secret(), created)
                .map_or_else(|_| Request::default(), |r| r.map(Body::from))
        },
        move || {
            c2.advance(Duration::from_millis(10));
            let created = unix_seconds(c2.now());
            match reference_signed_request(k2.expose_secret(), created) {
                Ok(mut r) => {
                    let bad = r
                        .headers()
                        .get("signature")
                        .and_then(|v| v.to_str().ok())
                        .map(tamper_signature)
                        .and_then(|v| http::HeaderValue::from_str(&v).ok());
                    if let Some(bad) = bad {
                        r.headers_mut().insert("signature", bad);
                    }
                    r.map(Body::from)
                }
                Err(_) => Request::default(),
            }
        },
    );
    expect_status(&case.router, case.request(), 200).await?;
    Ok(HmacCase {
        case,
        signer,
        secret,
        clock,
    })
}

/// A POST of [`signed_body`] to [`SIGNED_URI`] signed with `hmac-sha256` by this crate's
/// own RFC 9421 code: the same components as [`Signer`]'s defaults, and the parameters in
/// the order `created`, `nonce`, `alg`, `keyid`.
///
/// Why not [`Signer`]: `httpsig-hyper` rebuilds `@signature-params` in its own parameter
/// order instead of using the received serialization (RFC 9421 §3.2), so it refuses valid
/// signatures whose parameters come in another order, `apiauth-hmac`'s among them. Signing
/// in its order lets every verifier get the very same request.
pub fn reference_signed_request(
    secret: &[u8],
    created: u64,
) -> Result<Request<Vec<u8>>, BenchError> {
    static NONCES: AtomicU64 = AtomicU64::new(0);
    let body = signed_body();
    let digest = B64.encode(Sha256::digest(&body));
    // Unique within the process, which is as far as a replay store remembers.
    let nonce = format!("bench{:020}", NONCES.fetch_add(1, Ordering::Relaxed));
    let params = format!(
        "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");\
         created={created};nonce=\"{nonce}\";alg=\"hmac-sha256\";keyid=\"{HMAC_KEY_ID}\""
    );
    let mut req = Request::post(SIGNED_URI)
        .header("content-type", "application/json")
        // RFC 9530 §2
        .header("content-digest", format!("sha-256=:{digest}:"))
        .header("signature-input", format!("sig1={params}"))
        .body(body)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let base = signature_base(&req, "sig1").map_err(BenchError::Setup)?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|_| BenchError::Setup("HMAC key".into()))?;
    mac.update(base.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    let value = http::HeaderValue::from_str(&format!("sig1=:{sig}:"))
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    req.headers_mut().insert("signature", value);
    Ok(req)
}

/// Changes the first character of the signature bytes in a `Signature` value
/// (`label=:<base64>:`, RFC 9421 §4.2), keeping it valid base64.
pub fn tamper_signature(value: &str) -> String {
    match value.find("=:") {
        Some(i) => {
            let (head, tail) = value.split_at(i + 2);
            let mut chars = tail.chars();
            let first = chars.next();
            let swapped = if first == Some('A') { 'B' } else { 'A' };
            format!("{head}{swapped}{}", chars.as_str())
        }
        None => tamper(value),
    }
}

/// An authorization server served on loopback for introspection.
pub struct LoopbackAuthServer {
    /// Its address.
    pub addr: SocketAddr,
    /// The server.
    pub server: AuthorizationServer,
    /// A client that may request tokens, and its secret (benchmark-only).
    pub client: (String, String),
    /// A resource server that may introspect, and its secret (benchmark-only).
    pub resource_server: (String, String),
}

/// Starts `apiauth-oauth2`'s authorization server on 127.0.0.1 in a thread of its own (with
/// its own runtime, so it answers whatever runtime the caller polls).
pub fn start_auth_server() -> Result<LoopbackAuthServer, BenchError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let clients = MemoryClientRegistry::new();
    let client_secret = clients.register("bench-worker", scopes());
    let rs_secret = clients.register_resource_server("bench-api");
    let server = AuthorizationServer::builder(format!("http://{addr}"))
        .audience(AUDIENCE)
        .token_lifetime(Duration::from_secs(3600))
        .clients(Arc::new(clients))
        .dangerous_allow_http_issuer()
        .build()?;
    let router = server.router();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("bench-auth-server".into())
        .spawn(move || {
            rt.block_on(async move {
                if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(l, router).await;
                }
            });
        })?;
    Ok(LoopbackAuthServer {
        addr,
        server,
        client: (
            "bench-worker".into(),
            client_secret.expose_secret().to_owned(),
        ),
        resource_server: ("bench-api".into(), rs_secret.expose_secret().to_owned()),
    })
}

impl LoopbackAuthServer {
    /// Gets an access token by the client-credentials grant (RFC 6749 §4.4), in process.
    pub async fn access_token(&self) -> Result<String, BenchError> {
        let (id, secret) = &self.client;
        let req = Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                format!("Basic {}", B64.encode(format!("{id}:{secret}"))),
            )
            .body(Body::from(format!(
                "grant_type=client_credentials&scope={}",
                SCOPE.replace(':', "%3A")
            )))
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let res = self
            .server
            .router()
            .oneshot(req)
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let status = res.status();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| BenchError::Setup(format!("token endpoint ({status}): {e}")))?;
        json.get("access_token")
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Setup(format!("token endpoint answered {status}")))
    }
}

/// An introspection case: the bearer token is checked at the loopback authorization server
/// once, then served from the verifier's cache.
pub struct IntrospectionCase {
    /// The router and requests.
    pub case: Case,
    /// The server it asks.
    pub server: LoopbackAuthServer,
    /// The token.
    pub token: String,
}

/// RFC 7662 introspection with a warm cache.
pub async fn introspection() -> Result<IntrospectionCase, BenchError> {
    let server = start_auth_server()?;
    let token = server.access_token().await?;
    let (rs_id, rs_secret) = &server.resource_server;
    let verifier = IntrospectionVerifier::builder(server.server.introspection_endpoint())
        .client_credentials(rs_id, rs_secret)
        .audience(AUDIENCE)
        .issuer(server.server.issuer())
        // Longer than any benchmark run (the token lives an hour), so every measured request
        // is a cache hit.
        .cache_ttl(Duration::from_secs(3000))
        .dangerous_allow_http()
        .build()?;
    let (t1, t2) = (token.clone(), token.clone());
    let case = Case::new(
        guarded(Bearer::new(verifier).layer()),
        move || get_with("authorization", format!("Bearer {t1}")),
        move || get_with("authorization", format!("Bearer {}", tamper(&t2))),
    );
    // Warm the cache: this request makes the one introspection call.
    expect_status(&case.router, case.request(), 200).await?;
    Ok(IntrospectionCase {
        case,
        server,
        token,
    })
}

/// The example's stack in process: API key, bearer JWT (ES256, cached) and RFC 9421
/// signatures, [`QuotaLayer`] with the usage meter (quotas far above any benchmark rate),
/// and the `companies:read` scope required on the route.
pub struct FullStack {
    /// The router.
    pub router: Router,
    /// An API key of the `pro` plan (benchmark-only).
    pub api_key: String,
    /// An ES256 bearer token with `plan` unset (the default plan).
    pub jwt: String,
}

impl FullStack {
    /// A request with the API key.
    pub fn api_key_request(&self) -> Request<Body> {
        get_with("x-api-key", self.api_key.clone())
    }

    /// A request with the JWT.
    pub fn jwt_request(&self) -> Request<Body> {
        get_with("authorization", format!("Bearer {}", self.jwt))
    }

    /// The API key case against this stack.
    pub fn api_key_case(&self) -> Case {
        let (k1, k2) = (self.api_key.clone(), self.api_key.clone());
        Case::new(
            Routers {
                guarded: self.router.clone(),
                layer_only: self.router.clone(),
            },
            move || get_with("x-api-key", k1.clone()),
            move || get_with("x-api-key", tamper(&k2)),
        )
    }

    /// The JWT case against this stack.
    pub fn jwt_case(&self) -> Case {
        let (t1, t2) = (self.jwt.clone(), self.jwt.clone());
        Case::new(
            Routers {
                guarded: self.router.clone(),
                layer_only: self.router.clone(),
            },
            move || get_with("authorization", format!("Bearer {t1}")),
            move || get_with("authorization", format!("Bearer {}", tamper(&t2))),
        )
    }
}

/// Builds [`FullStack`]. Call inside a tokio runtime (the quota layer starts its sweeper).
pub async fn full_stack() -> Result<FullStack, BenchError> {
    let (keys, api_key) = api_key_parts().await?;
    let jwt_verifier = JwtVerifier::builder()
        .issuer(
            Issuer::new(ISSUER)
                .key(JwtAlg::Es256.jwt_key()?)
                .audience(AUDIENCE),
        )
        .cache(10_000, Duration::from_secs(300))
        .build()
        .await?;
    let hmac_keys = MemoryHmacKeyStore::new();
    hmac_keys.insert(
        HMAC_KEY_ID,
        HmacKey::new("bench-user").secret(HmacSecret::generate()),
    );
    // Far above any rate a benchmark reaches: the limiter runs its arithmetic on every
    // request but never refuses.
    let generous = QuotaPolicy::per_second(1_000_000).burst(1_000_000);
    let quota = QuotaLayer::builder()
        .plan("pro", generous.clone())
        .default_plan(generous.clone())
        .anonymous(generous)
        .usage_meter(apiauth_quota::MemoryUsageMeter::new())
        .build()?;
    let router = bare_router()
        .route_layer(RequireScopes::all(scopes()))
        .layer(quota)
        .layer(AuthLayer::new(
            HttpSignatureVerifier::builder(hmac_keys).build()?,
        ))
        .layer(Bearer::new(jwt_verifier).layer())
        .layer(keys.auth().layer()?);
    let stack = FullStack {
        router,
        api_key,
        jwt: mint_token(JwtAlg::Es256)?,
    };
    expect_status(&stack.router, stack.api_key_request(), 200).await?;
    expect_status(&stack.router, stack.jwt_request(), 200).await?;
    Ok(stack)
}

/// The public origin DPoP proofs name (`htu` is this plus [`PATH`]).
pub const DPOP_ORIGIN: &str = "https://api.bench.example";

/// A DPoP case (RFC 9449): an ES256 JWT bound to an ES256 proof key (`cnf.jkt`), verified by
/// `apiauth-jwt` without its cache (as `jwt_es256`'s `layer`), with a fresh proof per request
/// (a proof is single-use: its `jti` is spent in the in-memory replay store).
pub struct DpopCase {
    /// `Authorization: DPoP <token>` plus a `DPoP` proof behind the `Dpop` layer
    /// ([`DpopMode::Required`](apiauth_dpop::DpopMode::Required)). The tampered request
    /// changes one character of the proof's signature.
    pub case: Case,
    /// The token alone, unbound, as `Bearer` to the same verifier: today's token cost.
    pub token_case: Case,
    /// The proof key.
    pub key: Arc<apiauth_dpop::DpopKey>,
    /// The bound token.
    pub token: String,
}

impl DpopCase {
    /// A fresh proof for the benchmark request.
    pub fn proof(&self) -> Result<String, BenchError> {
        dpop_proof(&self.key, &self.token)
    }
}

fn dpop_proof(key: &apiauth_dpop::DpopKey, token: &str) -> Result<String, BenchError> {
    key.proof("GET", format!("{DPOP_ORIGIN}{PATH}"))
        .access_token(token)
        .sign()
        .map_err(|e| BenchError::Dpop(e.to_string()))
}

fn dpop_request(proof: String, token: &str) -> Request<Body> {
    Request::get(PATH)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap_or_default()
}

/// See [`DpopCase`].
pub async fn dpop() -> Result<DpopCase, BenchError> {
    let key = Arc::new(
        apiauth_dpop::DpopKey::generate_es256().map_err(|e| BenchError::Dpop(e.to_string()))?,
    );
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "bench-user", "scope": SCOPE,
        "jti": "bench-dpop-token-1", "iat": now, "nbf": now.saturating_sub(60), "exp": now + 86_400,
        "cnf": { "jkt": key.thumbprint() },
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(JwtAlg::Es256.kid().to_owned());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(ES256_PRIVATE_PEM.as_bytes())?,
    )?;
    let verifier = || async {
        JwtVerifier::builder()
            .issuer(
                Issuer::new(ISSUER)
                    .key(JwtAlg::Es256.jwt_key()?)
                    .audience(AUDIENCE),
            )
            .build()
            .await
    };
    let proofs = apiauth_dpop::DpopVerifier::builder(DPOP_ORIGIN)
        .build()
        .map_err(|e| BenchError::Dpop(e.to_string()))?;
    let layer = apiauth_dpop::Dpop::new(verifier().await?, proofs)
        .realm("api")
        .layer();
    let (k1, k2) = (key.clone(), key.clone());
    let (t1, t2) = (token.clone(), token.clone());
    // A proof that cannot be signed yields a request without one: refused, never measured
    // as a pass (the bench checks 200 before and after).
    let case = Case::new(
        guarded(layer),
        move || dpop_request(dpop_proof(&k1, &t1).unwrap_or_default(), &t1),
        move || dpop_request(tamper(&dpop_proof(&k2, &t2).unwrap_or_default()), &t2),
    );
    expect_status(&case.router, case.request(), 200).await?;

    let unbound = mint_token(JwtAlg::Es256)?;
    let (u1, u2) = (unbound.clone(), unbound.clone());
    let token_case = Case::new(
        guarded(Bearer::new(verifier().await?).realm("api").layer()),
        move || get_with("authorization", format!("Bearer {u1}")),
        move || get_with("authorization", format!("Bearer {}", tamper(&u2))),
    );
    expect_status(&token_case.router, token_case.request(), 200).await?;
    Ok(DpopCase {
        case,
        token_case,
        key,
        token,
    })
}

/// The cost of a credit check: the same principal's request through [`QuotaLayer`] built from
/// [`Plans`](apiauth_quota::Plans), without and with the credits layer on the route (an
/// in-memory balance far above any benchmark's draw, cost 1), and with the billing history
/// as well.
///
/// The principal (tenant `acme` on plan `pro`) is put on the request by a map layer, so no
/// authentication method's cost enters either router.
pub struct CreditsCase {
    /// The route behind the quota layer alone.
    pub quota: Router,
    /// The route behind the quota layer and the credits layer (no history).
    pub credits: Router,
    /// As `credits`, recording each answer in a [`MemoryUsageHistory`](apiauth_quota::MemoryUsageHistory).
    pub credits_history: Router,
    /// The credits state of `credits` (its balance is readable and settable).
    pub ledger: apiauth_quota::Credits,
}

impl CreditsCase {
    /// The request every router serves (no credential: the principal is injected).
    pub fn request(&self) -> Request<Body> {
        Request::get(PATH).body(Body::empty()).unwrap_or_default()
    }
}

/// Builds [`CreditsCase`]. Call inside a tokio runtime.
pub fn credits_case() -> Result<CreditsCase, BenchError> {
    use apiauth_quota::{CreditAllowance, Credits, MemoryCreditStore, Plan, Plans};
    // Far above any rate or draw a benchmark reaches: both checks run their arithmetic on
    // every request but never refuse.
    let generous = QuotaPolicy::per_second(1_000_000).burst(1_000_000);
    let plans = Plans::new()
        .plan(
            "pro",
            Plan::new(generous.clone()).credits(CreditAllowance::per_month(1 << 50)),
        )
        .tenant("acme", "pro");
    let principal =
        apiauth_core::Principal::builder("bench-user", apiauth_core::AuthMethod::API_KEY)
            .tenant("acme")
            .plan("pro")
            .build();
    let with_principal = tower::util::MapRequestLayer::new(move |mut req: Request<Body>| {
        req.extensions_mut().insert(principal.clone());
        req
    });
    let quota = || {
        QuotaLayer::builder()
            .plans(plans.clone())
            .default_plan(generous.clone())
            .anonymous(generous.clone())
            .usage_meter(apiauth_quota::MemoryUsageMeter::new())
            .build()
    };
    let ledger = Credits::builder(MemoryCreditStore::new())
        .plans(plans.clone())
        .build();
    let with_history = Credits::builder(MemoryCreditStore::new())
        .plans(plans.clone())
        .history(Arc::new(apiauth_quota::MemoryUsageHistory::new()))
        .build();
    let route = |credits: Option<&Credits>| match credits {
        Some(c) => Router::new().route(ROUTE, get(ok).route_layer(c.layer())),
        None => bare_router(),
    };
    Ok(CreditsCase {
        quota: route(None).layer(quota()?).layer(with_principal.clone()),
        credits: route(Some(&ledger))
            .layer(quota()?)
            .layer(with_principal.clone()),
        credits_history: route(Some(&with_history))
            .layer(quota()?)
            .layer(with_principal),
        ledger,
    })
}
