//! The request path: find the key, check its format, look it up by id, compare digests.

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::header::authorization_token68;
use apiauth_core::token::{SecretHash, TokenFormat};
use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
use apiauth_core::{ErrorCodes, ErrorKind, StoreError, token};
use axum::body::Body;
use http::{HeaderName, Request};

use crate::error::ApiKeyConfigError;
use crate::last_used::LastUsed;
use crate::manage::{ApiKeys, DEFAULT_PREFIX};
use crate::store::ApiKeyStore;

/// The API key scheme's `error` vocabulary: RFC 6750's shape with a code of its own for a key
/// that is not valid (`invalid_token` is Bearer's word for its tokens).
pub const API_KEY_ERROR_CODES: ErrorCodes = ErrorCodes::custom(|kind| match kind {
    ErrorKind::InvalidRequest => Some("invalid_request"),
    ErrorKind::InvalidCredentials => Some("invalid_key"),
    ErrorKind::InsufficientScope => Some("insufficient_scope"),
    _ => None,
});

/// The longest key any format produces: a 16-character prefix and the 48-character body.
const MAX_KEY_LEN: usize = 16 + token::ID_LEN + token::SECRET_LEN + token::CHECKSUM_LEN;

/// Query parameter names that are taken to carry a key when query keys are not allowed.
const QUERY_KEY_NAMES: [&str; 4] = ["api_key", "apikey", "api-key", "x-api-key"];

/// Builder for the API key layer. Safe by default: keys are read from `X-API-Key` and
/// `Authorization: ApiKey`, never from the query string.
///
/// ```
/// use std::sync::Arc;
/// use apiauth_api_key::{ApiKeyAuth, MemoryApiKeyStore};
///
/// let layer = ApiKeyAuth::new(Arc::new(MemoryApiKeyStore::new()))
///     .prefix("sk_live_")
///     .header(http::HeaderName::from_static("x-api-key"))
///     .authorization_scheme("ApiKey")
///     .realm("api")
///     .layer()
///     .unwrap();
/// ```
#[derive(Clone)]
#[must_use]
pub struct ApiKeyAuth {
    store: Arc<dyn ApiKeyStore>,
    prefix: String,
    header: Option<HeaderName>,
    scheme: Option<String>,
    realm: String,
    query: Option<String>,
    clock: SharedClock,
    resolution: Duration,
    flush_after: Duration,
}

impl std::fmt::Debug for ApiKeyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuth")
            .field("prefix", &self.prefix)
            .field("header", &self.header)
            .field("scheme", &self.scheme)
            .field("realm", &self.realm)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl ApiKeyAuth {
    /// Keys with prefix `sk_live_`, looked up in `store`, on the system clock.
    pub fn new(store: Arc<dyn ApiKeyStore>) -> Self {
        Self {
            store,
            prefix: DEFAULT_PREFIX.to_owned(),
            header: Some(HeaderName::from_static("x-api-key")),
            scheme: Some("ApiKey".to_owned()),
            realm: "api".to_owned(),
            query: None,
            clock: Arc::new(SystemClock),
            resolution: Duration::from_secs(60),
            flush_after: Duration::from_secs(1),
        }
    }

    /// Same store, prefix and clock as `keys`.
    pub fn for_keys(keys: &ApiKeys) -> Self {
        let mut b = Self::new(keys.store().clone()).prefix(keys.format().prefix());
        b.clock = keys.clock_handle();
        b
    }

    /// The key prefix (2 to 16 characters of `[a-z0-9_]` ending in `_`), checked by
    /// [`build`](Self::build).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Reads keys from header `name` (default `X-API-Key`).
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = Some(name);
        self
    }

    /// Does not read keys from a dedicated header.
    pub fn without_header(mut self) -> Self {
        self.header = None;
        self
    }

    /// Reads keys from `Authorization: <scheme> <key>` (default scheme `ApiKey`, matched
    /// case-insensitively per RFC 7235 §2.1). The scheme also names the challenge.
    pub fn authorization_scheme(mut self, scheme: &str) -> Self {
        self.scheme = Some(scheme.to_owned());
        self
    }

    /// Does not read keys from `Authorization`. The challenge keeps the scheme name.
    pub fn without_authorization(mut self) -> Self {
        self.scheme = None;
        self
    }

    /// The realm of the `WWW-Authenticate` challenge (default `api`).
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.to_owned();
        self
    }

    /// Also accepts the key in query parameter `name`.
    ///
    /// Dangerous: URLs end up in access logs, proxy logs, browser history and `Referer`
    /// headers, so a key sent this way must be presumed leaked. Without this, a request
    /// carrying a key in the query string is refused with 400 telling the caller to use the
    /// header. Apply it with `route_layer` to the few routes that need it (for example a
    /// link-shareable export).
    pub fn dangerous_allow_query_key(mut self, name: &str) -> Self {
        self.query = Some(name.to_owned());
        self
    }

    /// The clock for expiry and rotation checks (a `ManualClock` in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How stale a stored last-used time may get before a use is recorded again (default 60
    /// seconds). Bounds the write rate to one per key per period.
    pub fn last_used_resolution(mut self, resolution: Duration) -> Self {
        self.resolution = resolution;
        self
    }

    /// How long queued last-used times wait before they are written in one batch (default
    /// one second). Needs a Tokio runtime with timers; otherwise call
    /// [`ApiKeyAuthenticator::flush_last_used`].
    pub fn last_used_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_after = interval;
        self
    }

    /// Checks the configuration and builds the authenticator.
    pub fn build(self) -> Result<ApiKeyAuthenticator, ApiKeyConfigError> {
        let format = TokenFormat::new(&self.prefix)?;
        let header = self.header.clone();
        let scheme_name = self.scheme.clone().unwrap_or_else(|| "ApiKey".to_owned());
        if !is_token(&scheme_name) {
            return Err(ApiKeyConfigError::InvalidScheme);
        }
        if header.is_none() && self.scheme.is_none() && self.query.is_none() {
            return Err(ApiKeyConfigError::NoKeySource);
        }
        if !self.realm.bytes().all(|b| (b' '..=b'~').contains(&b)) {
            return Err(ApiKeyConfigError::InvalidRealm);
        }
        if let Some(q) = &self.query {
            // RFC 3986 §2.3 unreserved characters: the name can be matched without decoding.
            let ok = !q.is_empty()
                && q.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok {
                return Err(ApiKeyConfigError::InvalidQueryParameter);
            }
        }
        let where_to = match (&header, &self.scheme) {
            (Some(h), _) => format!("the {} header", display_header(h)),
            (None, Some(s)) => format!("the Authorization header (\"{s} <key>\")"),
            (None, None) => "the query parameter this route names".to_owned(),
        };
        let query_refusal = format!(
            "API keys are not accepted in the query string, where they leak into logs and \
             proxies; send the key in {where_to}."
        );
        let challenge = Challenge::new(scheme_name)
            .param("realm", self.realm)
            .with_error_codes(API_KEY_ERROR_CODES);
        let last_used = Arc::new(LastUsed::new(
            self.store.clone(),
            self.resolution,
            self.flush_after,
        ));
        // The decoy digest stands in for the stored one when the id is unknown, so that case
        // does the same comparison as a wrong secret. The decoy key, with its checksum
        // broken, gives a malformed key the same checksum work as a well-formed one.
        let generated = format.generate();
        let decoy = generated.hash;
        let decoy_key = break_checksum(generated.token.expose_secret());
        Ok(ApiKeyAuthenticator {
            store: self.store,
            format,
            header,
            scheme: self.scheme,
            query: self.query,
            query_refusal,
            challenge,
            clock: self.clock,
            last_used,
            decoy,
            decoy_key,
        })
    }

    /// Builds the authenticator and wraps it in core's [`AuthLayer`].
    pub fn layer(self) -> Result<AuthLayer<ApiKeyAuthenticator>, ApiKeyConfigError> {
        Ok(AuthLayer::new(self.build()?))
    }
}

/// `X-API-Key` rather than `x-api-key` in messages, for the common spellings.
fn display_header(h: &HeaderName) -> String {
    if h.as_str() == "x-api-key" {
        "X-API-Key".to_owned()
    } else {
        h.as_str().to_owned()
    }
}

/// `key` with its last character changed, so its checksum no longer matches.
fn break_checksum(key: &str) -> String {
    let mut s = key.to_owned();
    let last = if s.pop() == Some('0') { '1' } else { '0' };
    s.push(last);
    s
}

/// RFC 7230 §3.2.6 `token`, which RFC 7235 §2.1 uses for auth-scheme.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The API key [`Authenticator`], made by [`ApiKeyAuth`].
pub struct ApiKeyAuthenticator {
    store: Arc<dyn ApiKeyStore>,
    format: TokenFormat,
    header: Option<HeaderName>,
    scheme: Option<String>,
    query: Option<String>,
    query_refusal: String,
    challenge: Challenge,
    clock: SharedClock,
    last_used: Arc<LastUsed>,
    decoy: SecretHash,
    decoy_key: String,
}

impl std::fmt::Debug for ApiKeyAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyAuthenticator")
            .field("prefix", &self.format.prefix())
            .field("header", &self.header)
            .field("scheme", &self.scheme)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl ApiKeyAuthenticator {
    /// Writes queued last-used times now (for graceful shutdown, or where no Tokio timer
    /// runs).
    pub async fn flush_last_used(&self) -> Result<(), StoreError> {
        self.last_used.flush().await
    }
}

/// A key as presented, copied to the stack: no allocation on the request path.
pub struct PresentedKey {
    buf: [u8; MAX_KEY_LEN],
    len: usize,
    overlong: bool,
}

impl PresentedKey {
    fn new(bytes: &[u8]) -> Self {
        let mut buf = [0u8; MAX_KEY_LEN];
        let len = bytes.len().min(MAX_KEY_LEN);
        for (d, s) in buf.iter_mut().zip(bytes) {
            *d = *s;
        }
        Self {
            buf,
            len,
            overlong: bytes.len() > MAX_KEY_LEN,
        }
    }

    fn as_str(&self) -> Option<&str> {
        if self.overlong {
            return None;
        }
        self.buf
            .get(..self.len)
            .and_then(|b| std::str::from_utf8(b).ok())
    }
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PresentedKey([redacted])")
    }
}

fn one_place_only() -> AuthError {
    AuthError::invalid_request("Send the API key in one place only.").with_reason("multiple_keys")
}

impl Authenticator for ApiKeyAuthenticator {
    type Credential = PresentedKey;

    fn method(&self) -> AuthMethod {
        AuthMethod::API_KEY
    }

    fn challenge(&self) -> Challenge {
        self.challenge.clone()
    }

    fn scope_challenge(&self) -> Option<Challenge> {
        // As RFC 6750 §3.1 does for Bearer: the 403 names the scheme and its error code.
        Some(
            Challenge::new(self.challenge.scheme().to_owned())
                .with_error_codes(API_KEY_ERROR_CODES),
        )
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<PresentedKey>, AuthError> {
        let mut found = None;
        if let Some(name) = &self.header {
            let mut values = req.headers().get_all(name).iter();
            if let Some(v) = values.next() {
                if values.next().is_some() {
                    return Err(one_place_only());
                }
                found = Some(PresentedKey::new(v.as_bytes()));
            }
        }
        if let Some(scheme) = &self.scheme
            && let Some(t) = authorization_token68(req, scheme)?
        {
            if found.is_some() {
                return Err(one_place_only());
            }
            found = Some(PresentedKey::new(t.as_bytes()));
        }
        if let Some(query) = req.uri().query() {
            match &self.query {
                Some(name) => {
                    for (k, v) in query_pairs(query) {
                        if k == name {
                            if found.is_some() {
                                return Err(one_place_only());
                            }
                            found = Some(PresentedKey::new(v.as_bytes()));
                        }
                    }
                }
                None => {
                    let prefix = self.format.prefix();
                    let leaked = query_pairs(query).any(|(k, v)| {
                        v.starts_with(prefix)
                            || QUERY_KEY_NAMES.iter().any(|n| k.eq_ignore_ascii_case(n))
                    });
                    if leaked {
                        return Err(AuthError::invalid_request(self.query_refusal.clone())
                            .with_reason("key_in_query"));
                    }
                }
            }
        }
        Ok(found)
    }

    async fn verify(
        &self,
        key: PresentedKey,
        _req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        self.check(&key, AuthMethod::API_KEY).await
    }
}

impl ApiKeyAuthenticator {
    /// Verifies a key that arrived some other way than this authenticator's own sources, for
    /// example as an RFC 6750 bearer token (`apiauth-bearer`'s opaque tokens): the same format,
    /// checksum, constant-time hash comparison and status checks, with `method` recorded on the
    /// principal.
    pub async fn verify_secret(
        &self,
        secret: &str,
        method: AuthMethod,
    ) -> Result<Principal, AuthError> {
        self.check(&PresentedKey::new(secret.as_bytes()), method)
            .await
    }

    async fn check(&self, key: &PresentedKey, method: AuthMethod) -> Result<Principal, AuthError> {
        // Every presented value is hashed and compared once, whatever fails, so the work a
        // caller can time is the same for a malformed key, a bad checksum, an unknown id and
        // a wrong secret. Only the store lookup is skipped for keys that fail the checksum:
        // refusing made-up keys without touching the store is the checksum's purpose.
        let parsed = match key.as_str() {
            Some(s) => self.format.parse(s).map_err(|e| e.reason()),
            None => Err("malformed"),
        };
        let parsed = match parsed {
            Ok(p) => p,
            Err(reason) => {
                if reason != "bad_checksum" {
                    // Same checksum work as a key that got as far as its checksum.
                    let _ = std::hint::black_box(
                        self.format.parse(std::hint::black_box(&self.decoy_key)),
                    );
                }
                // Hash the whole buffer: as many SHA-256 blocks as a real key.
                work::note(Step::Hash(key.buf.len()));
                let digest = SecretHash::of(&key.buf);
                work::note(Step::Compare);
                std::hint::black_box(digest.ct_eq(&self.decoy));
                return Err(AuthError::invalid_credentials(reason));
            }
        };
        work::note(Step::Hash(key.len));
        let digest = parsed.hash();
        work::note(Step::Lookup);
        let record = self.store.get(parsed.id).await?;
        let stored = record.as_ref().map_or(&self.decoy, |r| &r.hash);
        work::note(Step::Compare);
        let same = std::hint::black_box(digest.ct_eq(stored));
        let Some(record) = record else {
            return Err(AuthError::invalid_credentials("unknown_key"));
        };
        if !same {
            return Err(AuthError::invalid_credentials("wrong_secret"));
        }
        // Status after the digest: the audit says `revoked` or `expired` only for the real
        // key; a guess at a revoked key's id reads `wrong_secret`.
        let now = self.clock.now();
        let status = record.status(now);
        if !status.is_usable() {
            // Only the real key reaches here, so naming its id and owner in the audit event
            // reveals nothing to the caller (the body is the same for every rejection).
            return Err(AuthError::invalid_credentials(status.reason())
                .with_subject(&*record.owner)
                .with_credential_id(&*record.id));
        }
        self.last_used.note(&record, now);
        let mut p = Principal::builder(record.owner.clone(), method)
            .credential_id(record.id.clone())
            .scopes(record.scopes.clone());
        if let Some(t) = &record.tenant {
            p = p.tenant(t.clone());
        }
        if let Some(plan) = &record.plan {
            p = p.plan(plan.clone());
        }
        if let Some(until) = record.valid_until() {
            p = p.expires_at(until);
        }
        Ok(p.build())
    }
}

/// A step of [`ApiKeyAuthenticator::check`] whose cost a caller could time. Unit tests record
/// them per rejection class; in other builds noting one compiles to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// SHA-256 over this many bytes.
    Hash(usize),
    /// One store lookup by id.
    Lookup,
    /// One constant-time digest comparison.
    Compare,
}

#[cfg(not(test))]
mod work {
    #[inline(always)]
    pub(super) fn note(_: super::Step) {}
}

#[cfg(test)]
mod work {
    use std::cell::RefCell;

    thread_local! {
        static STEPS: RefCell<Vec<super::Step>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn note(step: super::Step) {
        STEPS.with(|s| s.borrow_mut().push(step));
    }

    /// The steps noted on this thread since the last call.
    pub(super) fn take() -> Vec<super::Step> {
        STEPS.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}

/// `name=value` pairs of a raw query string, undecoded (key names and keys never need
/// percent-encoding, so a key that was encoded fails the format check).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use apiauth_core::AuthMethod;

    use super::{Step, work};
    use crate::{ApiKeyAuthenticator, ApiKeys, MemoryApiKeyStore, NewKey};

    /// SHA-256 compression rounds for `len` input bytes (FIPS 180-4 §5.1.1 padding).
    fn blocks(len: usize) -> usize {
        (len + 9).div_ceil(64)
    }

    /// The steps one verification takes, with hash lengths turned into SHA-256 blocks.
    async fn steps_of(auth: &ApiKeyAuthenticator, key: &str) -> (bool, Vec<Step>) {
        let _ = work::take();
        let ok = auth.verify_secret(key, AuthMethod::API_KEY).await.is_ok();
        let steps = work::take()
            .into_iter()
            .map(|s| match s {
                Step::Hash(len) => Step::Hash(blocks(len)),
                other => other,
            })
            .collect();
        (ok, steps)
    }

    /// A well-formed key (valid checksum) with the given 12-character id and a made-up
    /// secret.
    fn forge(keys: &ApiKeys, id: &str) -> String {
        let signed = format!("{}{id}{}", keys.format().prefix(), "s".repeat(30));
        let mut v = crc32fast::hash(signed.as_bytes());
        const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut digits = String::new();
        for _ in 0..6 {
            digits.insert(0, char::from(B62[(v % 62) as usize]));
            v /= 62;
        }
        format!("{signed}{digits}")
    }

    /// What must take equal time is what a caller cannot know: whether an id exists, and
    /// whether a known id's key was revoked or expired. Those paths do the same steps as a
    /// wrong secret for a known id: one SHA-256 of as many blocks, one lookup, one compare.
    /// Keys failing the format or the checksum (public facts) skip the lookup only.
    #[tokio::test]
    async fn unknown_ids_revoked_and_expired_keys_do_the_hash_lookup_and_compare_of_a_wrong_secret()
    {
        let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()))
            .prefix("sk_test_")
            .unwrap();
        let auth = keys.auth().build().unwrap();
        let valid = keys.create(NewKey::new("v")).await.unwrap();
        let revoked = keys.create(NewKey::new("r")).await.unwrap();
        keys.revoke(&revoked.summary.id).await.unwrap();
        let expired = keys
            .create(NewKey::new("e").expires_in(Duration::ZERO))
            .await
            .unwrap();
        let v = valid.key.expose_secret();

        let (ok, reference) = steps_of(&auth, &forge(&keys, &valid.summary.id)).await;
        assert!(!ok);
        let two = blocks(v.len());
        assert_eq!(reference, [Step::Hash(two), Step::Lookup, Step::Compare]);
        for (name, key) in [
            ("valid", v.to_owned()),
            ("unknown_id", forge(&keys, "ZZZZZZZZZZZZ")),
            ("revoked", revoked.key.expose_secret().to_owned()),
            ("revoked_id_guessed", forge(&keys, &revoked.summary.id)),
            ("expired", expired.key.expose_secret().to_owned()),
        ] {
            let (ok, steps) = steps_of(&auth, &key).await;
            assert_eq!(ok, name == "valid", "{name}");
            assert_eq!(steps, reference, "{name}");
        }
        // A checksum or format failure is hashed and compared alike, without a lookup.
        let mut bad_checksum = v.to_owned();
        let last = if bad_checksum.pop() == Some('0') {
            '1'
        } else {
            '0'
        };
        bad_checksum.push(last);
        for (name, key) in [
            ("bad_checksum", bad_checksum),
            ("malformed", format!("sk_test_{}", &v[13..])),
            ("wrong_prefix", v.replace("sk_test_", "sk_live_")),
            ("overlong", format!("{v}{}", "x".repeat(200))),
            ("empty", String::new()),
        ] {
            let (ok, steps) = steps_of(&auth, &key).await;
            assert!(!ok, "{name}");
            assert_eq!(steps, [Step::Hash(two), Step::Compare], "{name}");
        }
    }
}
