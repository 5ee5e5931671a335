//! The resource-server half: an RFC 7662 introspection client as a bearer [`TokenVerifier`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use apiauth_bearer::TokenVerifier;
use apiauth_core::clock::{SharedClock, SystemClock, unix_seconds};
use apiauth_core::confirmation::{CertificateBinding, refuse_unchecked_certificate_binding};
use apiauth_core::token::SecretString;
use apiauth_core::{AuthError, AuthMethod, Principal, ScopeSet};
use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use tokio::sync::OnceCell;

use crate::cache::{IntrospectionCache, MemoryIntrospectionCache, TokenKey};
use crate::claims::IntrospectionResponse;
use crate::error::OAuth2ConfigError;

/// How a client authenticates to an OAuth 2.0 endpoint (RFC 6749 §2.3.1; names from the RFC
/// 7591 `token_endpoint_auth_method` registry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (`client_secret_basic`).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    ClientSecretPost,
}

/// Verifies bearer tokens by asking an RFC 7662 introspection endpoint, with a cache.
///
/// Use it with [`apiauth_bearer::Bearer`]: `Bearer::new(verifier).layer()`.
///
/// - `active: false`, expired, not yet valid, wrong `aud` or `iss`: 401 `invalid_token`;
/// - endpoint unreachable, slower than the timeout, non-200, oversized or non-JSON answer:
///   503 with `Retry-After`, never a pass and never a 401;
/// - answers are cached under the SHA-256 of the token for the smaller of the cache TTL and
///   the token's remaining lifetime (inactive answers for the shorter negative TTL), and
///   re-checked on every hit; concurrent requests for one uncached token share one call.
#[derive(Clone)]
pub struct IntrospectionVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    endpoint: reqwest::Url,
    client_id: String,
    client_secret: SecretString,
    auth_method: ClientAuthMethod,
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    cache: Arc<dyn IntrospectionCache>,
    cache_ttl: Duration,
    negative_ttl: Duration,
    audience: Option<String>,
    issuer: Option<String>,
    /// Who vouches for answers that name no `iss`: the configured issuer, else the endpoint.
    vouching: Arc<str>,
    clock: SharedClock,
    inflight: Mutex<HashMap<TokenKey, Arc<Flight>>>,
}

/// One introspection call shared by every request waiting on the same token.
type Flight = OnceCell<Result<Arc<IntrospectionResponse>, &'static str>>;

/// A request's share in a [`Flight`]. The last one to leave, finished or cancelled, removes
/// the flight from the map, so requests that hang up cannot leave entries behind.
struct FlightGuard<'a> {
    map: &'a Mutex<HashMap<TokenKey, Arc<Flight>>>,
    key: TokenKey,
    flight: Option<Arc<Flight>>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = self.flight.take() {
            let ours = map.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &flight));
            // Two references: the map's and ours. Counted and released under the lock, so
            // two leaving requests cannot both see the other one still there.
            if ours && (flight.initialized() || Arc::strong_count(&flight) == 2) {
                map.remove(&self.key);
            }
            drop(flight);
        }
    }
}

impl fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("client_id", &self.inner.client_id)
            .field("auth_method", &self.inner.auth_method)
            .field("audience", &self.inner.audience)
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifier {
    /// Starts a verifier for the introspection endpoint at `endpoint`.
    pub fn builder(endpoint: impl Into<String>) -> IntrospectionVerifierBuilder {
        IntrospectionVerifierBuilder {
            endpoint: endpoint.into(),
            credentials: None,
            auth_method: ClientAuthMethod::default(),
            timeout: Duration::from_secs(5),
            max_response_bytes: 64 * 1024,
            cache: None,
            cache_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(5),
            audience: None,
            any_audience: false,
            issuer: None,
            clock: None,
            allow_http: false,
            http_client: None,
        }
    }

    /// The cache in use.
    pub fn cache(&self) -> &Arc<dyn IntrospectionCache> {
        &self.inner.cache
    }

    /// Checks a (possibly cached) answer against the clock and configuration and builds the
    /// principal. Runs on every request, cached or not.
    fn evaluate(&self, a: &Arc<IntrospectionResponse>) -> Result<Principal, AuthError> {
        if !a.active {
            return Err(AuthError::invalid_credentials("inactive"));
        }
        let now = unix_seconds(self.inner.clock.now());
        if a.exp.is_some_and(|exp| exp <= now) {
            return Err(AuthError::invalid_credentials("expired"));
        }
        if a.nbf.is_some_and(|nbf| nbf > now) {
            return Err(AuthError::invalid_credentials("not_yet_valid"));
        }
        if let Some(want) = &self.inner.audience
            && !a.aud.as_ref().is_some_and(|aud| aud.contains(want))
        {
            return Err(AuthError::invalid_credentials("wrong_audience"));
        }
        if let Some(want) = &self.inner.issuer
            && a.iss.as_deref() != Some(want.as_str())
        {
            return Err(AuthError::invalid_credentials("wrong_issuer"));
        }
        // Scopes were validated before caching; a parse failure here means a tampered store.
        let scopes = ScopeSet::parse(a.scope.as_deref().unwrap_or(""))
            .map_err(|_| AuthError::unavailable("introspection_malformed"))?;
        let subject = a
            .sub
            .as_deref()
            .or(a.client_id.as_deref())
            .ok_or_else(|| AuthError::invalid_credentials("no_subject"))?;
        // The identity's issuer (`Principal::issuer`): the answer's `iss` (RFC 7662 §2.2), else
        // the configured issuer or the endpoint, so that two authorization servers' subjects
        // never alias.
        let issuer: Arc<str> = match (&self.inner.issuer, a.iss.as_deref()) {
            (None, Some(iss)) => iss.into(),
            _ => Arc::clone(&self.inner.vouching),
        };
        let mut b = Principal::builder(subject, AuthMethod::INTROSPECTION)
            .issuer(issuer)
            .scopes(scopes);
        if let Some(jti) = &a.jti {
            b = b.credential_id(jti.as_str());
        }
        if let Some(tenant) = &a.tenant {
            b = b.tenant(tenant.as_str());
        }
        if let Some(at) = a
            .exp
            .and_then(|exp| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp)))
        {
            b = b.expires_at(at);
        }
        // RFC 9449 §6.2: the binding the answer names, for the DPoP method to check.
        #[cfg(feature = "dpop")]
        if let Some(jkt) = a.cnf.as_ref().and_then(|c| c.jkt.as_deref()) {
            b = b.attribute(apiauth_dpop::DpopBinding(jkt.to_owned()));
        }
        // RFC 8705 §3.2: the certificate the answer names, for `CertificateBound` to check.
        if let Some(x5t) = a.cnf.as_ref().and_then(|c| c.x5t_s256.as_deref()) {
            b = b.attribute(CertificateBinding::new(x5t));
        }
        // Shared with the cache: no copy of the answer per request.
        Ok(b.attribute(Arc::clone(a)).build())
    }

    /// The answer for `token`: from the cache, or from one shared introspection call.
    async fn answer(&self, token: &str) -> Result<Arc<IntrospectionResponse>, AuthError> {
        let key = TokenKey::of(token);
        if let Some(hit) = self.cache_get(&key).await {
            return Ok(hit);
        }
        let guard = {
            let mut map = self
                .inner
                .inflight
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            FlightGuard {
                map: &self.inner.inflight,
                key,
                flight: Some(map.entry(key).or_default().clone()),
            }
        };
        let Some(flight) = guard.flight.as_ref() else {
            return Err(AuthError::unavailable("introspection_internal"));
        };
        let result = flight
            .get_or_init(|| async {
                // A request that missed the cache just before another stored its answer.
                if let Some(hit) = self.cache_get(&key).await {
                    return Ok(hit);
                }
                let fetched = Arc::new(self.fetch(token).await?);
                self.cache_put(&key, &fetched).await;
                Ok(fetched)
            })
            .await
            .clone();
        drop(guard);
        result.map_err(AuthError::unavailable)
    }

    async fn cache_get(&self, key: &TokenKey) -> Option<Arc<IntrospectionResponse>> {
        // A cache is an optimisation: when it fails, ask the endpoint (still a real decision).
        match self.inner.cache.get(key).await {
            Ok(hit) => hit,
            Err(e) => {
                tracing::warn!(target: apiauth_core::audit::TARGET, error = %e, "introspection cache read failed");
                None
            }
        }
    }

    async fn cache_put(&self, key: &TokenKey, answer: &Arc<IntrospectionResponse>) {
        let ttl = if answer.active {
            let now = unix_seconds(self.inner.clock.now());
            let left = answer.exp.map_or(self.inner.cache_ttl, |exp| {
                Duration::from_secs(exp.saturating_sub(now))
            });
            self.inner.cache_ttl.min(left)
        } else {
            self.inner.negative_ttl
        };
        if ttl.is_zero() {
            return;
        }
        if let Err(e) = self.inner.cache.put(key, answer, ttl).await {
            tracing::warn!(target: apiauth_core::audit::TARGET, error = %e, "introspection cache write failed");
        }
    }

    /// One RFC 7662 §2.1 request. Errors are audit reasons for a 503.
    async fn fetch(&self, token: &str) -> Result<IntrospectionResponse, &'static str> {
        let i = &self.inner;
        let mut form: Vec<(&str, &str)> =
            vec![("token", token), ("token_type_hint", "access_token")];
        let mut req = i
            .http
            .post(i.endpoint.clone())
            .timeout(i.timeout)
            .header(http::header::ACCEPT, "application/json");
        match i.auth_method {
            ClientAuthMethod::ClientSecretBasic => {
                req = req.header(
                    http::header::AUTHORIZATION,
                    basic_header(&i.client_id, i.client_secret.expose_secret()),
                );
            }
            ClientAuthMethod::ClientSecretPost => {
                form.push(("client_id", &i.client_id));
                form.push(("client_secret", i.client_secret.expose_secret()));
            }
        }
        let mut res = req.form(&form).send().await.map_err(|e| {
            if e.is_timeout() {
                "introspection_timeout"
            } else {
                "introspection_unreachable"
            }
        })?;
        if res.url() != &i.endpoint {
            // Only a user-supplied client follows redirects; its answer is not the endpoint's.
            return Err("introspection_redirected");
        }
        if res.status() != StatusCode::OK {
            return Err("introspection_bad_status");
        }
        if res
            .content_length()
            .is_some_and(|n| n > i.max_response_bytes as u64)
        {
            return Err("introspection_too_large");
        }
        // Read at most the configured size, whatever the peer claims or streams.
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| {
            if e.is_timeout() {
                "introspection_timeout"
            } else {
                "introspection_unreachable"
            }
        })? {
            if body.len() + chunk.len() > i.max_response_bytes {
                return Err("introspection_too_large");
            }
            body.extend_from_slice(&chunk);
        }
        let answer: IntrospectionResponse =
            serde_json::from_slice(&body).map_err(|_| "introspection_not_json")?;
        if let Some(scope) = &answer.scope {
            ScopeSet::parse(scope).map_err(|_| "introspection_malformed_scope")?;
        }
        Ok(answer)
    }
}

/// `Authorization: Basic` for OAuth client credentials: RFC 6749 §2.3.1 form-urlencodes the
/// id and secret before the RFC 7617 encoding.
pub(crate) fn basic_header(client_id: &str, secret: &str) -> HeaderValue {
    let id: String = form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}").as_bytes());
    // Base64 output is always a valid header value.
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

impl TokenVerifier for IntrospectionVerifier {
    fn method(&self) -> AuthMethod {
        AuthMethod::INTROSPECTION
    }

    async fn verify(
        &self,
        token: &str,
        req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        let answer = self.answer(token).await?;
        // RFC 9449 §7.1: a DPoP-bound token presented as a bearer token is refused, whatever
        // layer carries it (the DPoP method presents it under its own scheme).
        if answer.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) && !presented_as_dpop(req) {
            return Err(AuthError::invalid_credentials("dpop_bound_token_as_bearer"));
        }
        let principal = self.evaluate(&answer)?;
        // RFC 8705 §3: a certificate-bound token only where a wrapper checks the certificate.
        refuse_unchecked_certificate_binding(&principal, req)?;
        Ok(principal)
    }
}

/// The token came in `Authorization: DPoP …` (a header, a form body or a query string under
/// Bearer's rules are all bearer presentations).
fn presented_as_dpop(req: &apiauth_core::RequestContext<'_>) -> bool {
    req.headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("DPoP"))
}

/// Builder for [`IntrospectionVerifier`].
#[must_use]
pub struct IntrospectionVerifierBuilder {
    endpoint: String,
    credentials: Option<(String, SecretString)>,
    auth_method: ClientAuthMethod,
    timeout: Duration,
    http_client: Option<reqwest::Client>,
    max_response_bytes: usize,
    cache: Option<Arc<dyn IntrospectionCache>>,
    cache_ttl: Duration,
    negative_ttl: Duration,
    audience: Option<String>,
    any_audience: bool,
    issuer: Option<String>,
    clock: Option<SharedClock>,
    allow_http: bool,
}

impl fmt::Debug for IntrospectionVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionVerifierBuilder")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.credentials.as_ref().map(|c| &c.0))
            .finish_non_exhaustive()
    }
}

impl IntrospectionVerifierBuilder {
    /// The resource server's own client credentials at the authorization server (required).
    pub fn client_credentials(
        mut self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        self.credentials = Some((client_id.into(), SecretString::from(client_secret.into())));
        self
    }

    /// How to send the credentials; default [`ClientAuthMethod::ClientSecretBasic`].
    pub fn client_auth(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = method;
        self
    }

    /// Total time allowed for one introspection call; default 5 s. Past it: 503.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The HTTP client for introspection calls, for proxies, extra root certificates or a
    /// client certificate. Build it with `redirect(reqwest::redirect::Policy::none())`: a
    /// client that follows redirects would resend this verifier's credentials to wherever
    /// the endpoint points. An answer that arrives from another URL is refused (503), and
    /// each call is still bounded by [`timeout`](Self::timeout) and
    /// [`max_response_bytes`](Self::max_response_bytes). Default: a client with no
    /// redirects and `timeout` as its connect and total timeout.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Largest answer read; default 64 KiB. Larger: 503.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Replaces the in-memory cache (for example with a shared one).
    pub fn cache(mut self, cache: Arc<dyn IntrospectionCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Longest time an active answer is reused; default 60 s. Never past the token's `exp`.
    /// This bounds how long a revoked token keeps working here.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an inactive answer is reused; default 5 s, so a flood of bad tokens does not
    /// become a flood of introspection calls.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// The audience this resource server is: tokens whose `aud` does not name it are refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Accepts tokens for any audience. Then a token issued for another API works here too.
    pub fn dangerous_accept_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// The expected `iss`; if set, answers naming another issuer are refused.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The clock used for `exp`/`nbf` checks and cache lifetimes (a `ManualClock` in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Allows a plain `http` endpoint. The client secret and every token then cross the
    /// network in clear text; for loopback tests only.
    pub fn dangerous_allow_http(mut self) -> Self {
        self.allow_http = true;
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Result<IntrospectionVerifier, OAuth2ConfigError> {
        let what = "introspection endpoint";
        let endpoint =
            reqwest::Url::parse(&self.endpoint).map_err(|_| OAuth2ConfigError::InvalidUrl {
                what,
                reason: "does not parse",
            })?;
        match endpoint.scheme() {
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
        if endpoint.fragment().is_some() {
            return Err(OAuth2ConfigError::InvalidUrl {
                what,
                reason: "has a fragment",
            });
        }
        let (client_id, client_secret) = self
            .credentials
            .ok_or(OAuth2ConfigError::Missing("client_credentials"))?;
        if self.audience.is_none() && !self.any_audience {
            return Err(OAuth2ConfigError::Missing(
                "audience (or dangerous_accept_any_audience)",
            ));
        }
        if self.timeout.is_zero() || self.max_response_bytes == 0 {
            return Err(OAuth2ConfigError::Invalid(
                "timeout and max_response_bytes must be > 0",
            ));
        }
        let http = match self.http_client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .connect_timeout(self.timeout)
                // A redirect would resend the credentials somewhere not configured.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| OAuth2ConfigError::HttpClient(Box::new(e)))?,
        };
        let clock: SharedClock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let cache = self.cache.unwrap_or_else(|| {
            Arc::new(MemoryIntrospectionCache::with_capacity(
                crate::cache::DEFAULT_CACHE_CAPACITY,
                clock.clone(),
            ))
        });
        let vouching: Arc<str> = self.issuer.as_deref().unwrap_or(endpoint.as_str()).into();
        Ok(IntrospectionVerifier {
            inner: Arc::new(Inner {
                endpoint,
                client_id,
                client_secret,
                auth_method: self.auth_method,
                http,
                timeout: self.timeout,
                max_response_bytes: self.max_response_bytes,
                cache,
                cache_ttl: self.cache_ttl,
                negative_ttl: self.negative_ttl,
                audience: self.audience,
                vouching,
                issuer: self.issuer,
                clock,
                inflight: Mutex::new(HashMap::new()),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflight(v: &IntrospectionVerifier) -> usize {
        v.inner.inflight.lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_request_that_hangs_up_leaves_no_flight_behind() {
        // An endpoint that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let v = IntrospectionVerifier::builder(format!("http://{addr}/introspect"))
            .dangerous_allow_http()
            .dangerous_accept_any_audience()
            .client_credentials("rs", "secret")
            .build()
            .unwrap();
        let task = {
            let v = v.clone();
            tokio::spawn(async move {
                let req = http::Request::get("/").body(()).unwrap();
                v.verify("some-token", &apiauth_core::RequestContext::new(&req))
                    .await
            })
        };
        for _ in 0..500 {
            if inflight(&v) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(inflight(&v), 1, "the request is in flight");
        task.abort();
        let _ = task.await;
        assert_eq!(inflight(&v), 0);
        hold.abort();
    }
}
