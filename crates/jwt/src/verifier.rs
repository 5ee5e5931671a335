//! The verifier: configuration, startup and the per-request checks.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_bearer::TokenVerifier;
use apiauth_core::clock::{SharedClock, SystemClock, unix_seconds};
use apiauth_core::confirmation::{CertificateBinding, refuse_unchecked_certificate_binding};
use apiauth_core::{
    AuthError, AuthMethod, AuthenticationContext, Principal, PrincipalBuilder, RevocationList,
    ScopeSet,
};
use serde_json::Value;

use crate::cache::{self, TokenCache};
use crate::claims::{JwtClaims, Roles};
use crate::error::JwtConfigError;
use crate::json::{Member, Members, Wanted};
use crate::key::JwtKey;
use crate::remote::{FetchSettings, RemoteKeys, check_url, fetch_json};
use crate::token::{self, Parsed, typ_matches};

/// Default and largest clock-skew leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// Default largest token accepted, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Keys tried for one token without a `kid`; more candidates than this need a `kid`.
const MAX_CANDIDATES: usize = 4;

fn invalid(reason: &'static str) -> AuthError {
    AuthError::invalid_credentials(reason)
}

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
        let bad = |reason: String| JwtConfigError::Jwks {
            url: "(static JWK Set)".into(),
            reason,
        };
        let doc = jwks
            .as_object()
            .ok_or_else(|| bad("not a JSON object".into()))?;
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

struct IssuerState {
    /// Shared with every principal it vouches for (`Principal::issuer`).
    iss: Arc<str>,
    keys: Vec<JwtKey>,
    remote: Option<Arc<RemoteKeys>>,
    audiences: Vec<String>,
    any_audience: bool,
    typ: Option<String>,
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
    fn new() -> Self {
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

    /// The claim holding the roles (an array of strings), attached as [`Roles`].
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
    let fail = |reason: String| JwtConfigError::Discovery {
        url: url.to_owned(),
        reason,
    };
    let doc = fetch_json(settings, &meta_url).await.map_err(fail)?;
    // OIDC Discovery §4.3 and RFC 8414 §3.3: the document must name exactly this issuer, or
    // one issuer could publish keys for another.
    match doc.get("issuer") {
        Some(Value::String(s)) if s == iss => {}
        _ => return Err(fail("the document's issuer does not match".into())),
    }
    match doc.get("jwks_uri") {
        Some(Value::String(u)) => check_url(u, settings.allow_http),
        _ => Err(fail("no jwks_uri".into())),
    }
}

struct Inner {
    issuers: Vec<IssuerState>,
    leeway: i64,
    max_token_len: usize,
    revocation: Option<Arc<dyn RevocationList>>,
    clock: SharedClock,
    cache: Option<TokenCache>,
    tenant_claim: Option<String>,
    plan_claim: Option<String>,
    roles_claim: Option<String>,
}

/// Verifies JWT bearer tokens (RFC 7519, RFC 9068) for `apiauth_bearer::Bearer`.
///
/// Cheap to clone. Built once at startup with [`JwtVerifier::builder`].
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuers: Vec<&str> = self.inner.issuers.iter().map(|i| &*i.iss).collect();
        f.debug_struct("JwtVerifier")
            .field("issuers", &issuers)
            .finish_non_exhaustive()
    }
}

/// Registered and scope claims the verifier reads, by slot; other claims are read only when
/// configured (tenant, plan, roles), and every claim is checked (valid JSON, no repeated
/// names) and left in the payload for [`JwtClaims`].
const CLAIM_SLOTS: usize = 12;
const ISS: usize = 0;
const SUB: usize = 1;
const AUD: usize = 2;
const EXP: usize = 3;
const NBF: usize = 4;
const IAT: usize = 5;
const JTI: usize = 6;
const SCOPE: usize = 7;
const SCP: usize = 8;
// RFC 9470 §6.1: read for step-up routes.
const ACR: usize = 9;
const AUTH_TIME: usize = 10;
// RFC 7800 §3.1: read to tell DPoP-bound tokens (RFC 9449 §6.1) apart.
const CNF: usize = 11;

fn claim_slot(name: &str) -> Option<usize> {
    Some(match name {
        "iss" => ISS,
        "sub" => SUB,
        "aud" => AUD,
        "exp" => EXP,
        "nbf" => NBF,
        "iat" => IAT,
        "jti" => JTI,
        "scope" => SCOPE,
        "scp" => SCP,
        "acr" => ACR,
        "auth_time" => AUTH_TIME,
        "cnf" => CNF,
        _ => return None,
    })
}

type Claims<'p> = Members<'p, CLAIM_SLOTS>;

/// A NumericDate claim (RFC 7519 §2): a JSON number of seconds; fractions are truncated.
/// Present with another type is an error, never "absent".
fn numeric_date(
    claims: &Claims<'_>,
    name: &str,
    malformed: &'static str,
) -> Result<Option<i64>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Member::Num(n)) => Ok(Some(*n)),
        Some(_) => Err(invalid(malformed)),
    }
}

fn optional_string<'a>(
    claims: &'a Claims<'_>,
    name: &str,
    malformed: &'static str,
) -> Result<Option<&'a str>, AuthError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Member::Str(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(malformed)),
    }
}

fn string_array<'a, 'de>(v: &'a Member<'de>) -> Option<&'a [std::borrow::Cow<'de, str>]> {
    match v {
        Member::StrList(l) => Some(l),
        _ => None,
    }
}

fn to_system_time(secs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)))
}

impl JwtVerifier {
    /// Starts a builder with safe defaults.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::new()
    }

    /// Number of verified tokens currently cached (0 without a cache).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// Verifies `token` and builds its principal.
    pub async fn verify_token(&self, token: &str) -> Result<Principal, AuthError> {
        let inner = &*self.inner;
        // Bounded before anything else touches the token, the cache's hash included.
        if token.len() > inner.max_token_len {
            return Err(invalid("token_too_large"));
        }
        let cache_key = inner.cache.as_ref().map(|_| cache::key(token));
        if let (Some(c), Some(k)) = (&inner.cache, &cache_key)
            && let Some((principal, jti)) = c.get(k, inner.clock.now())
        {
            self.check_revoked(jti.as_deref()).await?;
            return Ok(principal);
        }
        let parsed = token::parse(token, inner.max_token_len)?;
        let claims = parsed.claims(Wanted::<CLAIM_SLOTS> {
            slot: claim_slot,
            extra: &|name| self.wants_claim(name),
        })?;
        // The unverified `iss` only chooses whose keys to try; everything is verified below.
        let iss = match claims.at(ISS) {
            Some(Member::Str(s)) => &**s,
            Some(_) => return Err(invalid("malformed_iss")),
            None => return Err(invalid("missing_iss")),
        };
        let issuer = inner
            .issuers
            .iter()
            .find(|i| &*i.iss == iss)
            .ok_or_else(|| invalid("unknown_issuer"))?;
        self.verify_signature(issuer, &parsed).await?;
        if let Some(expected) = &issuer.typ {
            match &parsed.typ {
                Some(t) if typ_matches(t, expected) => {}
                _ => return Err(invalid("wrong_typ")),
            }
        }
        // From here the claims are the issuer's own words, so a refusal may name whom it
        // refused in the audit event (never in the response).
        let now = inner.clock.now();
        let (builder, jti, exp) = self
            .validate_claims(issuer, &claims, parsed.kid.as_deref(), now)
            .map_err(|e| attribute_to_claims(e, &claims, parsed.kid.as_deref()))?;
        // The decoded payload moves into the principal, read into JSON values only if a
        // handler asks for the claims.
        let has_cnf = claims.at(CNF).is_some();
        let jwt_claims = JwtClaims::from_payload(parsed.payload);
        // Only a token that carries `cnf` pays for reading the payload again here.
        let cnf = if has_cnf { jwt_claims.get("cnf") } else { None };
        let bound = cnf.and_then(|c| c.get("jkt")).is_some();
        // RFC 8705 §3.1: `x5t#S256` binds the token to a client certificate.
        let certificate = match cnf.and_then(|c| c.get("x5t#S256")) {
            None => None,
            Some(Value::String(x5t)) => Some(CertificateBinding::new(x5t.as_str())),
            Some(_) => return Err(invalid("malformed_cnf")),
        };
        let mut builder = builder.attribute(jwt_claims);
        if bound {
            builder = builder.attribute(DpopBound);
        }
        if let Some(c) = certificate {
            builder = builder.attribute(c);
        }
        let principal = builder.build();
        self.check_revoked(jti.as_deref()).await.map_err(|e| {
            let e = e.with_subject(principal.subject());
            match principal.credential_id() {
                Some(id) => e.with_credential_id(id),
                None => e,
            }
        })?;
        if let (Some(c), Some(k)) = (&inner.cache, cache_key) {
            c.insert(k, principal.clone(), jti, exp, now);
        }
        Ok(principal)
    }

    /// Whether `validate_claims` reads the claim `name`, besides the registered ones.
    fn wants_claim(&self, name: &str) -> bool {
        let inner = &*self.inner;
        [&inner.tenant_claim, &inner.plan_claim, &inner.roles_claim]
            .into_iter()
            .any(|c| c.as_deref() == Some(name))
    }

    async fn check_revoked(&self, jti: Option<&str>) -> Result<(), AuthError> {
        let (Some(list), Some(jti)) = (&self.inner.revocation, jti) else {
            return Ok(());
        };
        // A store failure is an outage (503), not a pass and not a 401.
        if list.is_revoked(jti).await? {
            return Err(invalid("revoked"));
        }
        Ok(())
    }

    /// `Some(valid)` if `keys` hold a candidate for this token, `None` if none fits.
    fn try_keys(keys: &[JwtKey], parsed: &Parsed<'_>) -> Result<Option<bool>, AuthError> {
        let candidates = || {
            keys.iter()
                .filter(|k| k.allows(parsed.alg))
                .filter(|k| match (&parsed.kid, &k.kid) {
                    // `kid` only selects among configured keys: an exact, case-sensitive
                    // lookup, never a path, URL or query.
                    (Some(want), Some(have)) => **want == **have,
                    (Some(_), None) => false,
                    (None, _) => true,
                })
        };
        match candidates().take(MAX_CANDIDATES + 1).count() {
            0 => return Ok(None),
            n if n > MAX_CANDIDATES => return Err(invalid("kid_required")),
            _ => {}
        }
        Ok(Some(candidates().any(|k| {
            // RFC 7515 §5.2 step 8: the signature over the exact received signing input.
            k.verify(
                parsed.alg,
                parsed.signing_input.as_bytes(),
                parsed.signature,
            )
        })))
    }

    async fn verify_signature(
        &self,
        issuer: &IssuerState,
        parsed: &Parsed<'_>,
    ) -> Result<(), AuthError> {
        let verdict = match Self::try_keys(&issuer.keys, parsed)? {
            Some(v) => Some(v),
            None => match &issuer.remote {
                None => None,
                Some(remote) => {
                    let keys = remote.keys().await?;
                    match Self::try_keys(&keys, parsed)? {
                        Some(v) => Some(v),
                        None if parsed.kid.is_some() => {
                            // Maybe the issuer rotated: refetch (rate-limited, one in flight).
                            let keys = remote.refresh_for_unknown_kid().await?;
                            Self::try_keys(&keys, parsed)?
                        }
                        None => None,
                    }
                }
            },
        };
        match verdict {
            Some(true) => Ok(()),
            Some(false) => Err(invalid("bad_signature")),
            None => Err(invalid("unknown_key")),
        }
    }

    fn validate_claims(
        &self,
        issuer: &IssuerState,
        c: &Claims<'_>,
        kid: Option<&str>,
        now: SystemTime,
    ) -> Result<(PrincipalBuilder, Option<String>, SystemTime), AuthError> {
        let inner = &*self.inner;
        let now_s = i64::try_from(unix_seconds(now)).unwrap_or(i64::MAX);
        let leeway = inner.leeway;
        // RFC 7519 §4.1.4: required here, and the current time must be before it.
        let exp = numeric_date(c, "exp", "malformed_exp")?.ok_or_else(|| invalid("missing_exp"))?;
        if now_s >= exp.saturating_add(leeway) {
            return Err(invalid("expired"));
        }
        // RFC 7519 §4.1.5: not before.
        if let Some(nbf) = numeric_date(c, "nbf", "malformed_nbf")?
            && now_s.saturating_add(leeway) < nbf
        {
            return Err(invalid("not_yet_valid"));
        }
        // RFC 7519 §4.1.6: a token issued in the future is refused.
        if let Some(iat) = numeric_date(c, "iat", "malformed_iat")?
            && iat > now_s.saturating_add(leeway)
        {
            return Err(invalid("issued_in_future"));
        }
        // RFC 7519 §4.1.3: `aud` is a string or an array of strings.
        let aud: Option<&[std::borrow::Cow<'_, str>]> = match c.get("aud") {
            None => None,
            Some(Member::Str(s)) => Some(std::slice::from_ref(s)),
            Some(v) => Some(string_array(v).ok_or_else(|| invalid("malformed_aud"))?),
        };
        if !issuer.any_audience {
            let aud = aud.ok_or_else(|| invalid("missing_aud"))?;
            if !aud.iter().any(|a| issuer.audiences.iter().any(|x| x == a)) {
                return Err(invalid("wrong_aud"));
            }
        }
        let sub = match optional_string(c, "sub", "malformed_sub")? {
            Some(s) if !s.is_empty() => s,
            _ => return Err(invalid("missing_sub")),
        };
        let jti = optional_string(c, "jti", "malformed_jti")?;
        if jti.is_none() && inner.revocation.is_some() {
            return Err(invalid("missing_jti"));
        }
        // RFC 9068 §2.2.3 / RFC 8693 §4.2: `scope` is a space-delimited string; `scp` is the
        // common array form. A token with both is ambiguous.
        let scopes = match (c.get("scope"), c.get("scp")) {
            (None, None) => ScopeSet::empty(),
            (Some(Member::Str(s)), None) => {
                ScopeSet::parse(s).map_err(|_| invalid("malformed_scope"))?
            }
            (None, Some(v)) => {
                let list = string_array(v).ok_or_else(|| invalid("malformed_scope"))?;
                ScopeSet::from_tokens(list).map_err(|_| invalid("malformed_scope"))?
            }
            (Some(_), Some(_)) => return Err(invalid("ambiguous_scope")),
            _ => return Err(invalid("malformed_scope")),
        };
        let exp_time = to_system_time(exp);
        let mut b = Principal::builder(sub, AuthMethod::JWT)
            .issuer(Arc::clone(&issuer.iss))
            .scopes(scopes)
            .expires_at(exp_time);
        if let Some(id) = jti.or(kid) {
            b = b.credential_id(id);
        }
        if let Some(name) = &inner.tenant_claim
            && let Some(t) = optional_string(c, name, "malformed_tenant")?
        {
            b = b.tenant(t);
        }
        if let Some(name) = &inner.plan_claim
            && let Some(p) = optional_string(c, name, "malformed_plan")?
        {
            b = b.plan(p);
        }
        // RFC 9470 §6.1 (OpenID Connect Core §2): how and when the user authenticated, for
        // routes that require a step-up (`RequireAuthentication`).
        let acr = optional_string(c, "acr", "malformed_acr")?;
        let auth_time = numeric_date(c, "auth_time", "malformed_auth_time")?;
        if acr.is_some() || auth_time.is_some() {
            b = b.attribute(AuthenticationContext {
                acr: acr.map(Into::into),
                auth_time: auth_time.map(to_system_time),
            });
        }
        if let Some(name) = &inner.roles_claim
            && let Some(v) = c.get(name)
        {
            let roles = string_array(v).ok_or_else(|| invalid("malformed_roles"))?;
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            b = b.attribute(Roles(roles.into()));
        }
        // Kept past the claims only for the revocation list (checked again on cache hits).
        let jti = jti
            .filter(|_| inner.revocation.is_some())
            .map(str::to_owned);
        Ok((b, jti, exp_time))
    }
}

/// Names the subject and credential id of verified claims on a refusal, for the audit event.
fn attribute_to_claims(e: AuthError, claims: &Claims<'_>, kid: Option<&str>) -> AuthError {
    let e = match claims.get("sub") {
        Some(Member::Str(s)) => e.with_subject(&**s),
        _ => e,
    };
    match (claims.get("jti").and_then(Member::as_str), kid) {
        (Some(j), _) => e.with_credential_id(j),
        (_, Some(k)) => e.with_credential_id(k),
        _ => e,
    }
}

impl TokenVerifier for JwtVerifier {
    fn method(&self) -> AuthMethod {
        AuthMethod::JWT
    }

    async fn verify(
        &self,
        token: &str,
        req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        let principal = self.verify_token(token).await?;
        // RFC 9449 §7.1: a DPoP-bound token (`cnf.jkt`) presented as a bearer token is
        // refused on every route; the DPoP method presents it under its own scheme.
        if principal.attribute::<DpopBound>().is_some() && !presented_as_dpop(req) {
            return Err(invalid("dpop_bound_token_as_bearer")
                .with_subject(principal.subject())
                .with_credential_id(principal.credential_id().unwrap_or("")));
        }
        // RFC 8705 §3: a certificate-bound token (`cnf.x5t#S256`) only where a wrapper
        // compares it with the client certificate (`apiauth-mtls`'s `CertificateBound`).
        refuse_unchecked_certificate_binding(&principal, req)?;
        Ok(principal)
    }
}

/// Marks a principal whose token is bound to a DPoP key (`cnf.jkt`).
#[derive(Clone, Copy, Debug)]
struct DpopBound;

/// The token came in `Authorization: DPoP …`.
fn presented_as_dpop(req: &apiauth_core::RequestContext<'_>) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("DPoP"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn rfc7515_appendix_a_signatures_verify_and_a_changed_payload_does_not() {
        let v: Value =
            serde_json::from_str(include_str!("../tests/data/rfc7515_appendix_a_jws.json"))
                .unwrap();
        for (section, prefix) in [("A.1", "a.1.1"), ("A.2", "a.2.1"), ("A.3", "a.3.1")] {
            let jwk = v[section][format!("{prefix}.jwk+json")].as_str().unwrap();
            let key = JwtKey::jwk(jwk).unwrap();
            let token = v[section][format!("{prefix}.compact")].as_str().unwrap();
            let parsed = token::parse(token, DEFAULT_MAX_TOKEN_LEN).unwrap();
            let keys = [key];
            assert_eq!(
                JwtVerifier::try_keys(&keys, &parsed).unwrap(),
                Some(true),
                "{section}"
            );
            let (h, rest) = token.split_once('.').unwrap();
            let sig = rest.rsplit('.').next().unwrap();
            let payload = v[section][format!("{prefix}.payload")].as_str().unwrap();
            let changed = URL_SAFE_NO_PAD.encode(payload.replace("joe", "eve"));
            let tampered = format!("{h}.{changed}.{sig}");
            let parsed = token::parse(&tampered, DEFAULT_MAX_TOKEN_LEN).unwrap();
            assert_eq!(
                JwtVerifier::try_keys(&keys, &parsed).unwrap(),
                Some(false),
                "{section}"
            );
        }
    }
}
