//! Configuration and startup: issuers, their key sources, and the verifier's settings.

use super::*;

#[derive(Clone, Debug)]
enum RemoteSource {
    None,
    Jwks(String),
    Discovery(String),
}

/// One token issuer: its `iss` value, where its keys come from, and its audience.
///
/// ```
/// use apiauth_jwt::{Issuer, JwtKey};
/// // Keys from a JWKS URL:
/// let a = Issuer::jwks("https://idp.example", "https://idp.example/.well-known/jwks.json")
///     .audience("https://api.example");
/// // Keys found through OIDC discovery (`{iss}/.well-known/openid-configuration`):
/// let b = Issuer::discover("https://accounts.example").audience("api").require_at_jwt();
/// // Static keys:
/// let c = Issuer::new("internal")
///     .key(JwtKey::hmac(b"0123456789abcdef0123456789abcdef").unwrap().kid("k1"))
///     .audience("billing");
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Issuer {
    iss: String,
    keys: Vec<JwtKey>,
    remote: RemoteSource,
    audiences: Vec<String>,
    any_audience: bool,
    typ: Option<String>,
}

impl Issuer {
    /// An issuer whose tokens carry `"iss": iss`. Add keys, a JWKS URL or discovery.
    pub fn new(iss: impl Into<String>) -> Self {
        Self {
            iss: iss.into(),
            keys: Vec::new(),
            remote: RemoteSource::None,
            audiences: Vec::new(),
            any_audience: false,
            typ: None,
        }
    }

    /// An issuer whose keys are fetched from `jwks_url` (RFC 7517 §5).
    pub fn jwks(iss: impl Into<String>, jwks_url: impl Into<String>) -> Self {
        Self::new(iss).jwks_url(jwks_url)
    }

    /// An issuer found through OpenID Connect Discovery 1.0 §4: the metadata at
    /// `{iss}/.well-known/openid-configuration` names the `jwks_uri`.
    pub fn discover(iss: impl Into<String>) -> Self {
        let iss = iss.into();
        let url = format!(
            "{}/.well-known/openid-configuration",
            iss.trim_end_matches('/')
        );
        Self::new(iss).discovery_url(url)
    }

    /// An issuer found through RFC 8414 authorization server metadata: `jwks_uri` is read
    /// from `/.well-known/oauth-authorization-server`, inserted before any path of `iss`
    /// (RFC 8414 §3.1).
    pub fn oauth_metadata(iss: impl Into<String>) -> Self {
        let iss = iss.into();
        let url = match iss.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                format!(
                    "{scheme}://{host}/.well-known/oauth-authorization-server{}",
                    path.trim_end_matches('/')
                )
            }
            // Not a URL: `build` reports it as an invalid discovery URL.
            None => iss.clone(),
        };
        Self::new(iss).discovery_url(url)
    }

    /// Fetches keys from `url`.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.remote = RemoteSource::Jwks(url.into());
        self
    }

    /// Finds the JWKS through the metadata document at `url` (OpenID Connect Discovery, or
    /// RFC 8414 `/.well-known/oauth-authorization-server`). Its `issuer` must equal this
    /// issuer's `iss` exactly (OIDC Discovery §4.3, RFC 8414 §3.3).
    pub fn discovery_url(mut self, url: impl Into<String>) -> Self {
        self.remote = RemoteSource::Discovery(url.into());
        self
    }

    /// Adds a static key.
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds every usable signature key of a JWK Set document (RFC 7517 §5) as a static key,
    /// as `AuthorizationServer::jwks` gives it to a resource server in the same process.
    /// Keys this verifier cannot use (encryption keys, unknown types) are skipped; a set
    /// with none usable is an error.
    pub fn jwk_set(mut self, jwks: &serde_json::Value) -> Result<Self, JwtConfigError> {
        let bad = |reason: FetchError| JwtConfigError::Jwks {
            url: "(static JWK Set)".into(),
            reason,
        };
        let doc = jwks.as_object().ok_or_else(|| bad(FetchError::NotJson))?;
        self.keys
            .extend(crate::remote::parse_jwks(doc).map_err(bad)?);
        Ok(self)
    }

    /// Accepts tokens whose `aud` names `audience` (call again to accept several).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts any `aud`, or none. A token for another service then works here too; use
    /// only when the issuer mints tokens for this service alone.
    pub fn dangerous_accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Requires the `typ` header to be `typ` (compared case-insensitively, with or without
    /// `application/`, RFC 7515 §4.1.9).
    pub fn require_typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Requires `typ: at+jwt`, the RFC 9068 §2.1 access-token type, so an ID token or
    /// another JWT from the same issuer is not taken for an access token (RFC 9068 §4).
    pub fn require_at_jwt(self) -> Self {
        self.require_typ("at+jwt")
    }
}

pub(super) struct IssuerState {
    /// Shared with every principal it vouches for (`Principal::issuer`).
    pub(super) iss: Arc<str>,
    pub(super) keys: Vec<JwtKey>,
    pub(super) remote: Option<Arc<RemoteKeys>>,
    pub(super) audiences: Vec<String>,
    pub(super) any_audience: bool,
    pub(super) typ: Option<String>,
}

/// Builder for [`JwtVerifier`]. Every default is the safe one.
#[must_use]
pub struct JwtVerifierBuilder {
    issuers: Vec<Issuer>,
    leeway: Duration,
    max_token_len: usize,
    revocation: Option<Arc<dyn RevocationList>>,
    clock: SharedClock,
    cache: Option<(usize, Duration)>,
    tenant_claim: Option<String>,
    plan_claim: Option<String>,
    roles_claim: Option<String>,
    http_timeout: Duration,
    http_client: Option<reqwest::Client>,
    max_jwks_bytes: usize,
    refresh_interval: Duration,
    stale_window: Duration,
    min_refresh_gap: Duration,
    allow_http: bool,
}

impl fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifierBuilder")
            .field("issuers", &self.issuers)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtVerifierBuilder {
    pub(super) fn new() -> Self {
        Self {
            issuers: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            revocation: None,
            clock: Arc::new(SystemClock),
            cache: None,
            tenant_claim: None,
            plan_claim: None,
            roles_claim: None,
            http_timeout: Duration::from_secs(5),
            http_client: None,
            max_jwks_bytes: 256 * 1024,
            refresh_interval: Duration::from_secs(300),
            stale_window: Duration::from_secs(3600),
            min_refresh_gap: Duration::from_secs(10),
            allow_http: false,
        }
    }

    /// Adds an issuer. Tokens pick their issuer by the (unverified) `iss` claim; everything is
    /// then verified against that issuer's keys and audience only.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Clock-skew leeway for `exp`, `nbf` and `iat` (default 30 s, at most 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Largest token accepted, checked before any decoding (default 8 KiB, at most 64 KiB).
    pub fn max_token_length(mut self, bytes: usize) -> Self {
        self.max_token_len = bytes;
        self
    }

    /// Checks each token's `jti` against `list`; tokens without `jti` are then refused, since
    /// they could not be revoked. A list that cannot answer makes the request 503.
    pub fn revocation_list(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocation = Some(list);
        self
    }

    /// The clock for token times and key-set ages (default: the system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Caches up to `capacity` verified tokens, keyed by their SHA-256, each for at most
    /// `max_ttl` and never past its `exp`. Revocation is still checked on every hit. A key
    /// removed from a JWKS stops verifying cached tokens only when their entries end, so keep
    /// `max_ttl` short (a minute or so).
    pub fn cache(mut self, capacity: usize, max_ttl: Duration) -> Self {
        self.cache = Some((capacity, max_ttl));
        self
    }

    /// The claim holding the tenant (a string), copied to `Principal::tenant`.
    pub fn tenant_claim(mut self, name: impl Into<String>) -> Self {
        self.tenant_claim = Some(name.into());
        self
    }

    /// The claim holding the plan (a string), copied to `Principal::plan`.
    pub fn plan_claim(mut self, name: impl Into<String>) -> Self {
        self.plan_claim = Some(name.into());
        self
    }

    /// The claim holding the roles (an array of strings), attached as [`Roles`](crate::Roles).
    pub fn roles_claim(mut self, name: impl Into<String>) -> Self {
        self.roles_claim = Some(name.into());
        self
    }

    /// The HTTP client for JWKS and discovery documents, for proxies, extra root certificates
    /// or a client certificate. Build it with `redirect(reqwest::redirect::Policy::none())`:
    /// an answer that arrives from another URL than the one asked is refused (the keys stay
    /// as they were, and a verifier with none answers 503), and every fetch is still bounded
    /// by [`http_timeout`](Self::http_timeout) and
    /// [`max_jwks_bytes`](Self::max_jwks_bytes). Default: a client with no redirects and
    /// `http_timeout` as its connect and total timeout.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Timeout of each discovery or JWKS fetch, connection included (default 5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Largest JWKS or discovery document read (default 256 KiB).
    pub fn max_jwks_bytes(mut self, bytes: usize) -> Self {
        self.max_jwks_bytes = bytes;
        self
    }

    /// How old a fetched key set may get before it is refreshed in the background
    /// (default 5 minutes).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// How long past the refresh interval the last good key set keeps serving while its
    /// endpoint is down (default 1 hour). After that, requests get 503, never 401.
    pub fn stale_window(mut self, window: Duration) -> Self {
        self.stale_window = window;
        self
    }

    /// Least time between two fetches of one key set, so unknown `kid` values cannot make
    /// the verifier hammer the endpoint (default 10 s).
    pub fn min_refresh_gap(mut self, gap: Duration) -> Self {
        self.min_refresh_gap = gap;
        self
    }

    /// Allows plain `http` JWKS and discovery URLs on any host; without it only `https`, or
    /// `http` to loopback, is accepted. Keys fetched in the clear can be swapped by anyone
    /// on the path.
    pub fn dangerous_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Checks the configuration and fetches every remote key set once. Fails fast if an
    /// endpoint is unreachable or serves no usable key.
    pub async fn build(self) -> Result<JwtVerifier, JwtConfigError> {
        // No process-wide crypto provider is installed: signatures are checked with aws-lc-rs
        // directly (`key.rs`), and jsonwebtoken only parses keys, so that choice stays the
        // application's.
        if self.issuers.is_empty() {
            return Err(JwtConfigError::NoIssuer);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(JwtConfigError::InvalidSetting("leeway above 60 s"));
        }
        if !(64..=64 * 1024).contains(&self.max_token_len) {
            return Err(JwtConfigError::InvalidSetting(
                "max token length outside 64 B ..= 64 KiB",
            ));
        }
        if self.http_timeout.is_zero() || self.http_timeout > Duration::from_secs(60) {
            return Err(JwtConfigError::InvalidSetting(
                "HTTP timeout outside (0, 60 s]",
            ));
        }
        if self.max_jwks_bytes == 0 || self.max_jwks_bytes > 16 * 1024 * 1024 {
            return Err(JwtConfigError::InvalidSetting(
                "JWKS size limit outside (0, 16 MiB]",
            ));
        }
        let client = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(self.http_timeout)
                .connect_timeout(self.http_timeout)
                // A redirect could hand key selection to another host; issuers publish
                // direct URLs.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| JwtConfigError::HttpClient(Box::new(e)))?,
        };
        let settings = FetchSettings {
            client,
            timeout: self.http_timeout,
            max_bytes: self.max_jwks_bytes,
            allow_http: self.allow_http,
            refresh_interval: self.refresh_interval,
            stale_window: self.stale_window,
            min_refresh_gap: self.min_refresh_gap,
        };
        let mut issuers: Vec<IssuerState> = Vec::with_capacity(self.issuers.len());
        for i in self.issuers {
            if issuers.iter().any(|s| *s.iss == *i.iss) {
                return Err(JwtConfigError::DuplicateIssuer(i.iss));
            }
            if i.audiences.is_empty() && !i.any_audience {
                return Err(JwtConfigError::NoAudience(i.iss));
            }
            if i.keys.is_empty() && matches!(i.remote, RemoteSource::None) {
                return Err(JwtConfigError::NoKeySource(i.iss));
            }
            for k in &i.keys {
                k.check()?;
            }
            let jwks_url = match &i.remote {
                RemoteSource::None => None,
                RemoteSource::Jwks(u) => Some(check_url(u, settings.allow_http)?),
                RemoteSource::Discovery(u) => Some(discover(&i.iss, u, &settings).await?),
            };
            let remote = match jwks_url {
                Some(u) => Some(RemoteKeys::start(u, settings.clone(), self.clock.clone()).await?),
                None => None,
            };
            issuers.push(IssuerState {
                iss: i.iss.into(),
                keys: i.keys,
                remote,
                audiences: i.audiences,
                any_audience: i.any_audience,
                typ: i.typ,
            });
        }
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                issuers,
                leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(60),
                max_token_len: self.max_token_len,
                revocation: self.revocation,
                clock: self.clock,
                cache: self.cache.map(|(n, ttl)| TokenCache::new(n, ttl)),
                tenant_claim: self.tenant_claim,
                plan_claim: self.plan_claim,
                roles_claim: self.roles_claim,
            }),
        })
    }
}

/// Reads the metadata document and returns its `jwks_uri`.
async fn discover(
    iss: &str,
    url: &str,
    settings: &FetchSettings,
) -> Result<reqwest::Url, JwtConfigError> {
    let meta_url = check_url(url, settings.allow_http)?;
    let fail = |reason: FetchError| JwtConfigError::Discovery {
        url: url.to_owned(),
        reason,
    };
    let doc = fetch_json(settings, &meta_url).await.map_err(fail)?;
    // OIDC Discovery §4.3 and RFC 8414 §3.3: the document must name exactly this issuer, or
    // one issuer could publish keys for another.
    match doc.get("issuer") {
        Some(Value::String(s)) if s == iss => {}
        _ => return Err(fail(FetchError::IssuerMismatch)),
    }
    match doc.get("jwks_uri") {
        Some(Value::String(u)) => check_url(u, settings.allow_http),
        _ => Err(fail(FetchError::NoJwksUri)),
    }
}
