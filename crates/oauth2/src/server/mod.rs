//! The authorization-server half: an axum [`Router`] serving the client-credentials grant,
//! revocation, introspection, the JWKS and RFC 8414 metadata.

mod client_auth;
mod endpoints;
mod keys;
mod registry;
mod secret_cache;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apiauth_basic::{LockoutPolicy, LockoutStore, MemoryLockoutStore, PasswordHasher};
use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::{MemoryRevocationList, RevocationList};
use axum::Router;
use axum::routing::{get, post};

use crate::error::OAuth2ConfigError;
pub use keys::KeyRotation;
use keys::Keys;
#[cfg(feature = "mtls")]
pub use registry::TlsClientAuth;
pub use registry::{CLIENT_SECRET_PREFIX, ClientRegistry, MemoryClientRegistry, RegisteredClient};

/// Relative paths of the endpoints, under the issuer's path.
const TOKEN_PATH: &str = "/oauth/token";
const REVOKE_PATH: &str = "/oauth/revoke";
const INTROSPECT_PATH: &str = "/oauth/introspect";
const JWKS_PATH: &str = "/.well-known/jwks.json";
/// RFC 8414 §3: inserted between the host and the issuer's path.
const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// An OAuth 2.0 authorization server for the client-credentials grant (RFC 6749 §4.4) that
/// issues RFC 9068 JWT access tokens signed with rotating ES256 keys.
///
/// Mount [`router`](Self::router) at the root of the issuer's host; the routes carry the
/// issuer's path themselves. Cheap to clone.
#[derive(Clone)]
pub struct AuthorizationServer {
    state: Arc<State>,
}

pub(crate) struct State {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    /// Every resource this server issues tokens for (RFC 8707): the audience first.
    pub(crate) resources: Vec<String>,
    pub(crate) token_lifetime: Duration,
    pub(crate) clients: Arc<dyn ClientRegistry>,
    pub(crate) revoked: Arc<dyn RevocationList>,
    pub(crate) keys: Keys,
    pub(crate) clock: SharedClock,
    /// Checked against when the client id is unknown, so that both cases cost one argon2 run.
    pub(crate) dummy_hash: String,
    /// Bounds the argon2 runs in flight: each holds ~19 MiB and a blocking thread.
    pub(crate) secret_checks: Arc<tokio::sync::Semaphore>,
    pub(crate) secret_check_wait: Duration,
    /// Failed client authentications, per (client id, address) and per address.
    pub(crate) lockouts: Arc<dyn LockoutStore>,
    pub(crate) client_lockout: LockoutPolicy,
    pub(crate) address_lockout: LockoutPolicy,
    pub(crate) secret_cache: secret_cache::SecretCache,
    /// Checks `DPoP` proofs at the token endpoint, when DPoP-bound tokens are offered.
    #[cfg(feature = "dpop")]
    pub(crate) dpop: Option<apiauth_dpop::DpopVerifier>,
    /// RFC 8705: mTLS client authentication and certificate-bound tokens are on.
    #[cfg(feature = "mtls")]
    pub(crate) mtls: bool,
    pub(crate) path_prefix: String,
    base: String,
}

impl fmt::Debug for AuthorizationServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServer")
            .field("issuer", &self.state.issuer)
            .field("audience", &self.state.audience)
            .field("token_lifetime", &self.state.token_lifetime)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServer {
    /// Starts a server whose issuer identifier (RFC 8414 §2: `https`, no query or fragment)
    /// is `issuer`.
    pub fn builder(issuer: impl Into<String>) -> AuthorizationServerBuilder {
        AuthorizationServerBuilder {
            issuer: issuer.into(),
            audience: None,
            resources: Vec::new(),
            token_lifetime: Duration::from_secs(10 * 60),
            clients: None,
            revoked: None,
            rotation: KeyRotation::default(),
            clock: None,
            hasher: None,
            max_secret_checks: None,
            secret_check_wait: Duration::from_secs(2),
            lockouts: None,
            client_lockout: default_client_lockout(),
            address_lockout: LockoutPolicy::per_address(),
            secret_cache_ttl: Duration::from_secs(5 * 60),
            secret_cache_capacity: 10_000,
            allow_http: false,
            signing_key: None,
            #[cfg(feature = "dpop")]
            dpop: None,
            #[cfg(feature = "mtls")]
            mtls: false,
        }
    }

    /// The routes: `POST {path}/oauth/token`, `POST {path}/oauth/revoke`,
    /// `POST {path}/oauth/introspect`, `GET {path}/.well-known/jwks.json` and
    /// `GET /.well-known/oauth-authorization-server{path}`, where `{path}` is the issuer's path
    /// (usually empty).
    pub fn router(&self) -> Router {
        let p = &self.state.path_prefix;
        Router::new()
            .route(&format!("{p}{TOKEN_PATH}"), post(endpoints::token))
            .route(&format!("{p}{REVOKE_PATH}"), post(endpoints::revoke))
            .route(
                &format!("{p}{INTROSPECT_PATH}"),
                post(endpoints::introspect),
            )
            .route(&format!("{p}{JWKS_PATH}"), get(endpoints::jwks))
            .route(&format!("{METADATA_PATH}{p}"), get(endpoints::metadata))
            .with_state(self.state.clone())
    }

    /// The issuer identifier (`iss` of every token).
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The audience (`aud` of every token): what resource servers must expect.
    pub fn audience(&self) -> &str {
        &self.state.audience
    }

    /// The lifetime of issued tokens.
    pub fn token_lifetime(&self) -> Duration {
        self.state.token_lifetime
    }

    /// The absolute URL of the token endpoint.
    pub fn token_endpoint(&self) -> String {
        self.state.token_endpoint()
    }

    /// The absolute URL of the revocation endpoint (RFC 7009).
    pub fn revocation_endpoint(&self) -> String {
        self.state.url(REVOKE_PATH)
    }

    /// The absolute URL of the introspection endpoint (RFC 7662).
    pub fn introspection_endpoint(&self) -> String {
        self.state.url(INTROSPECT_PATH)
    }

    /// The absolute URL of the JWKS, for JWT verifiers.
    pub fn jwks_uri(&self) -> String {
        self.state.url(JWKS_PATH)
    }

    /// The absolute URL of the RFC 8414 metadata document.
    pub fn metadata_url(&self) -> String {
        format!(
            "{}{METADATA_PATH}{}",
            self.state.base, self.state.path_prefix
        )
    }

    /// The JWK Set (RFC 7517 §5) as served at [`jwks_uri`](Self::jwks_uri): the current
    /// and the previous signing key. For a resource server in the same process, which gives
    /// it to `apiauth-jwt` (`Issuer::jwk_set`) instead of fetching its own JWKS over HTTP.
    ///
    /// A JSON document rather than a JOSE library's type, so that this crate's API does not
    /// change with that library's versions.
    pub fn jwks(&self) -> Result<serde_json::Value, OAuth2ConfigError> {
        let set = self.state.keys.jwks()?;
        serde_json::to_value(set).map_err(|e| OAuth2ConfigError::key("JWKS serialisation", e))
    }

    /// Replaces the signing key now. The previous key stays in the JWKS until the next
    /// rotation, so tokens it signed stay valid until they expire.
    pub fn rotate_keys(&self) -> Result<(), OAuth2ConfigError> {
        self.state.keys.rotate()
    }
}

impl State {
    fn url(&self, path: &str) -> String {
        format!("{}{}{path}", self.base, self.path_prefix)
    }

    pub(crate) fn token_endpoint(&self) -> String {
        self.url(TOKEN_PATH)
    }

    pub(crate) fn metadata(&self) -> serde_json::Value {
        #[allow(unused_mut)]
        let mut auth_methods = vec!["client_secret_basic", "client_secret_post"];
        // RFC 8705 §2.1.1, §2.2.1.
        #[cfg(feature = "mtls")]
        if self.mtls {
            auth_methods.extend(["tls_client_auth", "self_signed_tls_client_auth"]);
        }
        // RFC 8414 §2. No authorization endpoint: this server grants client credentials only.
        #[allow(unused_mut)]
        let mut doc = serde_json::json!({
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint(),
            "jwks_uri": self.url(JWKS_PATH),
            "revocation_endpoint": self.url(REVOKE_PATH),
            "introspection_endpoint": self.url(INTROSPECT_PATH),
            "response_types_supported": [],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "introspection_endpoint_auth_methods_supported": auth_methods,
        });
        // RFC 9449 §5.1.
        #[cfg(feature = "dpop")]
        if let (Some(v), Some(map)) = (&self.dpop, doc.as_object_mut()) {
            let algs: Vec<&str> = v.algorithms().iter().map(|a| a.as_str()).collect();
            map.insert("dpop_signing_alg_values_supported".into(), algs.into());
        }
        // RFC 8705 §3.3.
        #[cfg(feature = "mtls")]
        if let (true, Some(map)) = (self.mtls, doc.as_object_mut()) {
            map.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                true.into(),
            );
        }
        doc
    }
}

/// 10 failures per (client id, address) in 15 minutes: 1 minute, doubling up to 1 hour.
fn default_client_lockout() -> LockoutPolicy {
    LockoutPolicy::new(10, Duration::from_secs(15 * 60), Duration::from_secs(60))
        .and_then(|p| p.with_backoff_up_to(Duration::from_secs(60 * 60)))
        .unwrap_or_else(|_| LockoutPolicy::per_user())
}

/// Builder for [`AuthorizationServer`].
#[must_use]
pub struct AuthorizationServerBuilder {
    #[cfg(feature = "dpop")]
    dpop: Option<apiauth_dpop::DpopVerifier>,
    #[cfg(feature = "mtls")]
    mtls: bool,
    issuer: String,
    audience: Option<String>,
    resources: Vec<String>,
    token_lifetime: Duration,
    clients: Option<Arc<dyn ClientRegistry>>,
    revoked: Option<Arc<dyn RevocationList>>,
    rotation: KeyRotation,
    clock: Option<SharedClock>,
    hasher: Option<PasswordHasher>,
    max_secret_checks: Option<usize>,
    secret_check_wait: Duration,
    lockouts: Option<Arc<dyn LockoutStore>>,
    client_lockout: LockoutPolicy,
    address_lockout: LockoutPolicy,
    secret_cache_ttl: Duration,
    secret_cache_capacity: usize,
    allow_http: bool,
    // Private key material: never in `Debug`.
    signing_key: Option<Vec<u8>>,
}

impl fmt::Debug for AuthorizationServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationServerBuilder")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl AuthorizationServerBuilder {
    /// The `aud` of issued tokens: the API the tokens are for (required).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Another resource this server issues tokens for: a client asks for it with the RFC 8707
    /// `resource` parameter, and the token's `aud` is then that resource. A request without
    /// `resource` gets the [`audience`](Self::audience); one naming a resource not configured
    /// is 400 `invalid_target` (RFC 8707 §2).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// How long issued tokens live; default 10 minutes.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.token_lifetime = lifetime;
        self
    }

    /// The registered clients (required).
    pub fn clients(mut self, clients: Arc<dyn ClientRegistry>) -> Self {
        self.clients = Some(clients);
        self
    }

    /// Where revoked token ids go; default an in-memory list on the server's clock. Share it
    /// with JWT verifiers so that revocation takes effect there.
    pub fn revocation_list(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revoked = Some(list);
        self
    }

    /// Signs with this P-256 private key (PKCS#8 or RFC 5915 DER) instead of one generated at
    /// start. Instances behind one load balancer that are given the same key accept each
    /// other's tokens and publish the same JWKS. A configured key is not rotated
    /// automatically (that would give each instance its own): combine it with
    /// [`KeyRotation::manual`], and roll keys by deploying a new one.
    pub fn signing_key_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.signing_key = Some(der.into());
        self
    }

    /// When to replace the signing key; default daily.
    pub fn key_rotation(mut self, rotation: KeyRotation) -> Self {
        self.rotation = rotation;
        self
    }

    /// The clock for `iat`/`exp`, expiry checks and rotation (a `ManualClock` in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The argon2id parameters of the dummy hash that unknown client ids are checked
    /// against; use the same as the registry so both paths cost the same. Default OWASP.
    pub fn password_hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = Some(hasher);
        self
    }

    /// How many client-secret checks (argon2id runs) may be in flight at once; default the
    /// number of available cores (argon2 is CPU-bound: more at once only queue on the
    /// cores). Each costs the hasher's memory and a blocking thread, so without a bound a
    /// flood of bad credentials could exhaust the host.
    pub fn max_concurrent_secret_checks(mut self, n: usize) -> Self {
        self.max_secret_checks = Some(n);
        self
    }

    /// How long a request waits for a free secret check before it gets 503 with
    /// `Retry-After` (never 401: the secret was not checked); default 2 s.
    pub fn secret_check_queue_timeout(mut self, wait: Duration) -> Self {
        self.secret_check_wait = wait;
        self
    }

    /// Where failed client authentications at the token, revocation and introspection
    /// endpoints are counted; default an in-memory [`MemoryLockoutStore`] of this process.
    /// Give instances behind one load balancer one shared store (apiauth-redis's
    /// `RedisLockoutStore`); sharing it with a `BasicAuth` is fine, the keys differ.
    pub fn lockout_store(mut self, store: Arc<dyn LockoutStore>) -> Self {
        self.lockouts = Some(store);
        self
    }

    /// Lock-out per (client id, client address): past it 429 with `Retry-After`, and the
    /// secret is not checked. Default: 10 failures in 15 minutes lock out for 1 minute,
    /// doubling on each renewed lock-out up to 1 hour (a misconfigured deployment retrying
    /// in a loop recovers soon after it is fixed; an attacker's waits grow). There is no
    /// counter per client id alone: it would let anyone lock a client out.
    pub fn client_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.client_lockout = policy;
        self
    }

    /// Lock-out per client address across client ids. Default
    /// [`LockoutPolicy::per_address`] (20 failures in 15 minutes, 15 minutes).
    pub fn address_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.address_lockout = policy;
        self
    }

    /// How long a verified client secret is remembered (under an HMAC of client id and
    /// secret, bound to the client's current hash, so a rotated secret or a removed client
    /// ends it at once) and how many are at most; default 5 minutes and 10 000.
    /// `Duration::ZERO` turns it off.
    pub fn verified_secret_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.secret_cache_ttl = ttl;
        self.secret_cache_capacity = capacity;
        self
    }

    /// Issues DPoP-bound tokens (RFC 9449 §5): a token request with a valid `DPoP` proof
    /// gets a token whose `cnf.jkt` is the proof key's thumbprint, with `token_type: DPoP`;
    /// an invalid proof is 400 `invalid_dpop_proof`. Requests without a proof still get
    /// bearer tokens. `proofs` must be built for the issuer's origin
    /// (`DpopVerifier::builder("https://as.example")`), so that its target URI for the token
    /// path is the token endpoint; `build` checks it. Share its replay store across
    /// instances, as for a resource server.
    #[cfg(feature = "dpop")]
    pub fn dpop(mut self, proofs: apiauth_dpop::DpopVerifier) -> Self {
        self.dpop = Some(proofs);
        self
    }

    /// Mutual-TLS client authentication and certificate-bound access tokens (RFC 8705).
    ///
    /// Clients registered with [`RegisteredClient::tls_client_auth`] authenticate with their
    /// certificate (§2): the [`ClientCertificate`](apiauth_mtls::ClientCertificate) the server
    /// put into the request extensions, whose chain the TLS layer verified against the CAs it
    /// trusts. Every token issued over a request with a client certificate is bound to it
    /// (`cnf.x5t#S256`, §3.1), whatever the client authenticated with, and introspection
    /// answers name the binding (§3.2). Metadata advertises
    /// `tls_client_certificate_bound_access_tokens` and the two authentication methods.
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn mutual_tls(mut self) -> Self {
        self.mtls = true;
        self
    }

    /// Allows an `http` issuer. Tokens and client secrets then travel in clear text; for
    /// loopback tests only (RFC 8414 §2 requires `https`).
    pub fn dangerous_allow_http_issuer(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Builds the server and generates its first signing key.
    pub fn build(self) -> Result<AuthorizationServer, OAuth2ConfigError> {
        let what = "issuer";
        let url = url::Url::parse(&self.issuer).map_err(|_| OAuth2ConfigError::InvalidUrl {
            what,
            reason: "does not parse",
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(OAuth2ConfigError::InsecureUrl { what }),
            _ => {
                return Err(OAuth2ConfigError::InvalidUrl {
                    what,
                    reason: "scheme must be https",
                });
            }
        }
        // RFC 8414 §2: no query or fragment components.
        if url.query().is_some() || url.fragment().is_some() {
            return Err(OAuth2ConfigError::InvalidUrl {
                what,
                reason: "has a query or fragment",
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OAuth2ConfigError::InvalidUrl {
                what,
                reason: "has user information",
            });
        }
        let host = url.host_str().ok_or(OAuth2ConfigError::InvalidUrl {
            what,
            reason: "has no host",
        })?;
        let base = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        let path_prefix = url.path().trim_end_matches('/').to_owned();
        let audience = self
            .audience
            .ok_or(OAuth2ConfigError::Missing("audience"))?;
        if audience.is_empty() {
            return Err(OAuth2ConfigError::Invalid("audience must not be empty"));
        }
        let mut resources = vec![audience.clone()];
        for r in self.resources {
            // RFC 8707 §2: an absolute URI without a fragment.
            let ok = !r.contains('#') && url::Url::parse(&r).is_ok();
            if !ok {
                return Err(OAuth2ConfigError::Invalid(
                    "a resource must be an absolute URI without a fragment (RFC 8707 §2)",
                ));
            }
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
        let clients = self.clients.ok_or(OAuth2ConfigError::Missing("clients"))?;
        if self.token_lifetime < Duration::from_secs(1) {
            return Err(OAuth2ConfigError::Invalid(
                "token lifetime must be at least 1 s",
            ));
        }
        if let Some(every) = self.rotation.interval() {
            // Overlap: a key is served for one interval after it stops signing, which must
            // outlast every token it signed.
            if every < self.token_lifetime {
                return Err(OAuth2ConfigError::Invalid(
                    "key rotation interval must not be shorter than the token lifetime",
                ));
            }
        }
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let revoked = self
            .revoked
            .unwrap_or_else(|| Arc::new(MemoryRevocationList::with_clock(clock.clone())));
        let hasher = self.hasher.unwrap_or_default();
        let dummy_hash = hasher.hash("apiauth-oauth2 dummy client secret");
        if self.signing_key.is_some() && self.rotation.interval().is_some() {
            return Err(OAuth2ConfigError::Invalid(
                "a configured signing key needs KeyRotation::manual()",
            ));
        }
        let keys = Keys::new(self.rotation, clock.clone(), self.signing_key.as_deref())?;
        let max_checks = self
            .max_secret_checks
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        if max_checks == 0 {
            return Err(OAuth2ConfigError::Invalid(
                "max_concurrent_secret_checks must be at least 1",
            ));
        }
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key)
            .map_err(|_| OAuth2ConfigError::Invalid("the OS random number generator failed"))?;
        // A zero TTL or capacity keeps nothing: every entry is expired or evicted at once.
        let secret_cache = secret_cache::SecretCache::new(
            cache_key,
            self.secret_cache_ttl,
            self.secret_cache_capacity.max(1),
        );
        #[cfg(feature = "dpop")]
        if let Some(v) = &self.dpop {
            let endpoint = format!("{base}{path_prefix}{TOKEN_PATH}");
            if v.target_uri(&format!("{path_prefix}{TOKEN_PATH}")) != endpoint {
                return Err(OAuth2ConfigError::Invalid(
                    "the DPoP verifier's base URL must be the issuer's origin",
                ));
            }
        }
        Ok(AuthorizationServer {
            state: Arc::new(State {
                issuer: self.issuer,
                audience,
                resources,
                token_lifetime: self.token_lifetime,
                clients,
                revoked,
                keys,
                clock,
                dummy_hash,
                secret_checks: Arc::new(tokio::sync::Semaphore::new(max_checks)),
                secret_check_wait: self.secret_check_wait,
                lockouts: self
                    .lockouts
                    .unwrap_or_else(|| Arc::new(MemoryLockoutStore::new())),
                client_lockout: self.client_lockout,
                address_lockout: self.address_lockout,
                secret_cache,
                #[cfg(feature = "dpop")]
                dpop: self.dpop,
                #[cfg(feature = "mtls")]
                mtls: self.mtls,
                path_prefix,
                base,
            }),
        })
    }
}
