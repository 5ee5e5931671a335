//! Fetched key sets: bounded HTTP fetches, interval and unknown-`kid` refresh with one fetch in
//! flight, and a stale window after which requests fail closed.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use apiauth_core::AuthError;
use apiauth_core::clock::SharedClock;
use reqwest::Url;
use serde_json::Value;

use crate::error::{FetchError, JwtConfigError};
use crate::key::{JwtKey, from_jwk};

/// Most keys taken from one JWKS; a set larger than this is refused as nonsense.
pub(crate) const MAX_JWKS_KEYS: usize = 100;

/// Fetch settings shared by every remote source of one verifier.
#[derive(Clone, Debug)]
pub(crate) struct FetchSettings {
    pub(crate) client: reqwest::Client,
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) allow_http: bool,
    pub(crate) refresh_interval: Duration,
    pub(crate) stale_window: Duration,
    pub(crate) min_refresh_gap: Duration,
}

/// Checks that `url` is absolute `https`, or `http` to loopback (or anywhere, if allowed).
pub(crate) fn check_url(url: &str, allow_http: bool) -> Result<Url, JwtConfigError> {
    let bad = |reason| JwtConfigError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let u = Url::parse(url).map_err(|_| bad("not an absolute URL"))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&u) => {}
        "http" => {
            return Err(bad(
                "plain http outside loopback needs dangerous_allow_http",
            ));
        }
        _ => return Err(bad("scheme must be https")),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("credentials in the URL"));
    }
    Ok(u)
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// GETs `url` and returns the body, refusing non-200 answers and bodies over `max_bytes`.
/// Each request carries the verifier's timeout (whatever client the user supplied), so this
/// never waits unboundedly.
pub(crate) async fn fetch_json(
    settings: &FetchSettings,
    url: &Url,
) -> Result<serde_json::Map<String, Value>, FetchError> {
    let max_bytes = settings.max_bytes;
    let mut res = settings
        .client
        .get(url.clone())
        .timeout(settings.timeout)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| FetchError::Request(e.without_url().into()))?;
    if res.url() != url {
        // A user-supplied client that follows redirects must not hand key selection to
        // another host: keys come only from the URL configured or discovered.
        return Err(FetchError::Redirected);
    }
    if res.status() != reqwest::StatusCode::OK {
        return Err(FetchError::Status(res.status().as_u16()));
    }
    if res.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| FetchError::Body(e.without_url().into()))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    crate::json::parse_object(&body).ok_or(FetchError::NotJson)
}

/// Parses a JWK Set (RFC 7517 §5). Keys we cannot use (encryption keys, unknown types,
/// symmetric keys) are skipped; a set with no usable key is an error.
pub(crate) fn parse_jwks(doc: &serde_json::Map<String, Value>) -> Result<Vec<JwtKey>, FetchError> {
    let Some(Value::Array(keys)) = doc.get("keys") else {
        return Err(FetchError::NoKeys);
    };
    if keys.len() > MAX_JWKS_KEYS {
        return Err(FetchError::TooManyKeys(MAX_JWKS_KEYS));
    }
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for k in keys {
        match k.as_object().map(|m| from_jwk(m, false)) {
            Some(Ok(key)) => out.push(key),
            _ => skipped += 1,
        }
    }
    if out.is_empty() {
        return Err(FetchError::NoUsableKey(skipped));
    }
    if skipped > 0 {
        tracing::debug!(skipped, "JWKS keys skipped as unusable");
    }
    Ok(out)
}

struct State {
    keys: Arc<[JwtKey]>,
    fetched_at: SystemTime,
    last_attempt: SystemTime,
    attempts: u64,
}

/// One JWKS endpoint and the last good key set it served.
pub(crate) struct RemoteKeys {
    url: Url,
    settings: FetchSettings,
    clock: SharedClock,
    state: RwLock<State>,
    /// Held while a fetch is in flight: concurrent refreshes wait for it instead of fetching.
    fetch_lock: tokio::sync::Mutex<()>,
    background: AtomicBool,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

struct Snapshot {
    keys: Arc<[JwtKey]>,
    fetched_at: SystemTime,
    last_attempt: SystemTime,
    attempts: u64,
}

fn since(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

impl RemoteKeys {
    /// Fetches the set once; fails if the endpoint is unreachable or serves no usable key.
    pub(crate) async fn start(
        url: Url,
        settings: FetchSettings,
        clock: SharedClock,
    ) -> Result<Arc<Self>, JwtConfigError> {
        let doc = fetch_json(&settings, &url)
            .await
            .and_then(|d| parse_jwks(&d));
        let keys = doc.map_err(|reason| JwtConfigError::Jwks {
            url: url.to_string(),
            reason,
        })?;
        let now = clock.now();
        Ok(Arc::new(Self {
            url,
            settings,
            clock,
            state: RwLock::new(State {
                keys: keys.into(),
                fetched_at: now,
                last_attempt: now,
                attempts: 1,
            }),
            fetch_lock: tokio::sync::Mutex::new(()),
            background: AtomicBool::new(false),
        }))
    }

    fn snapshot(&self) -> Snapshot {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            keys: s.keys.clone(),
            fetched_at: s.fetched_at,
            last_attempt: s.last_attempt,
            attempts: s.attempts,
        }
    }

    /// The current keys. Past the refresh interval a background refresh starts; past the
    /// stale window the request waits for a refresh, and gets 503 if it fails.
    pub(crate) async fn keys(self: &Arc<Self>) -> Result<Arc<[JwtKey]>, AuthError> {
        let s = self.snapshot();
        let now = self.clock.now();
        let age = since(now, s.fetched_at);
        let may_attempt = since(now, s.last_attempt) >= self.settings.min_refresh_gap;
        if age < self.settings.refresh_interval {
            return Ok(s.keys);
        }
        if age <= self.settings.refresh_interval + self.settings.stale_window {
            if may_attempt {
                self.refresh_in_background(s.attempts);
            }
            return Ok(s.keys);
        }
        if may_attempt {
            self.refresh(s.attempts).await;
        }
        self.usable()
    }

    /// A token named a `kid` the set lacks: refetch (at most once per minimum gap, one fetch
    /// however many requests ask) and return the keys after it.
    pub(crate) async fn refresh_for_unknown_kid(
        self: &Arc<Self>,
    ) -> Result<Arc<[JwtKey]>, AuthError> {
        let s = self.snapshot();
        if since(self.clock.now(), s.last_attempt) >= self.settings.min_refresh_gap {
            self.refresh(s.attempts).await;
        }
        self.usable()
    }

    fn usable(&self) -> Result<Arc<[JwtKey]>, AuthError> {
        let s = self.snapshot();
        let age = since(self.clock.now(), s.fetched_at);
        if age <= self.settings.refresh_interval + self.settings.stale_window {
            Ok(s.keys)
        } else {
            // Fail closed: an unverifiable token is an outage, never a 401 and never a pass.
            Err(AuthError::unavailable("jwks_stale"))
        }
    }

    fn refresh_in_background(self: &Arc<Self>, seen: u64) {
        // Outside a Tokio runtime there is nowhere to run it; the set is then refreshed
        // inline once it goes stale.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        runtime.spawn(async move {
            this.refresh(seen).await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// Fetches unless another fetch finished since the caller looked (`seen` attempts): the
    /// callers that queued behind one fetch all use its result.
    async fn refresh(&self, seen: u64) {
        let _guard = self.fetch_lock.lock().await;
        if self.snapshot().attempts != seen {
            return;
        }
        let result = fetch_json(&self.settings, &self.url)
            .await
            .and_then(|d| parse_jwks(&d));
        let now = self.clock.now();
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        s.attempts += 1;
        s.last_attempt = now;
        match result {
            Ok(keys) => {
                s.keys = keys.into();
                s.fetched_at = now;
            }
            Err(reason) => {
                tracing::warn!(
                    target: "apiauth::jwt",
                    jwks_url = %self.url,
                    reason = %reason,
                    cause = ?std::error::Error::source(&reason).map(ToString::to_string),
                    "JWKS refresh failed; serving the last good key set"
                );
            }
        }
    }
}
