//! The Basic [`Authenticator`] and its builder.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::header::authorization_token68;
use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal, audit};
use axum::body::Body;
use http::Request;
use sha2::{Digest, Sha256};

use crate::cache::{Fingerprint, VerificationCache};
use crate::error::BasicError;
use crate::lockout::{LockoutPolicy, Refusal, Tracker, address_key};
use crate::parse::{BasicCredentials, CredentialEncoding, decode_credentials};
use crate::password::{PasswordChecker, PasswordHasher};
use crate::store::{CredentialRecord, CredentialStore};

/// HTTP Basic authentication (RFC 7617) against a [`CredentialStore`] of argon2id hashes.
///
/// Build it with [`BasicAuth::builder`] and wrap it in [`AuthLayer`] (or call
/// [`BasicAuthBuilder::layer`]). Cheap to clone: clones share the cache, the failure counters
/// and the [`stats`](BasicAuth::stats).
#[derive(Clone)]
pub struct BasicAuth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CredentialStore>,
    realm: Cow<'static, str>,
    encoding: CredentialEncoding,
    max_credentials_len: usize,
    checker: PasswordChecker,
    cache: Option<VerificationCache>,
    users: Tracker<[u8; 32]>,
    addresses: Tracker<IpAddr>,
    clock: SharedClock,
    cache_hits: AtomicU64,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("realm", &self.inner.realm)
            .field("encoding", &self.inner.encoding)
            .field("cache", &self.inner.cache.is_some())
            .field("user_lockout", self.inner.users.policy())
            .field("address_lockout", self.inner.addresses.policy())
            .finish_non_exhaustive()
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BasicStats {
    /// Argon2 runs started on the blocking pool (real users and the dummy hash alike).
    pub password_verifications: u64,
    /// Requests answered from the verification cache.
    pub cache_hits: u64,
}

/// What [`BasicAuth`]'s `extract` hands to `verify`.
pub struct PresentedCredentials {
    credentials: BasicCredentials,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedCredentials")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Starts a configuration over `store` (an `Arc<dyn CredentialStore>` works too).
    pub fn builder(store: impl CredentialStore) -> BasicAuthBuilder {
        BasicAuthBuilder {
            store: Arc::new(store),
            realm: Cow::Borrowed("api"),
            hasher: PasswordHasher::default(),
            encoding: CredentialEncoding::Plain,
            max_credentials_len: 4096,
            cache_ttl: Duration::from_secs(30),
            cache_capacity: 10_000,
            user_lockout: LockoutPolicy::per_user(),
            address_lockout: LockoutPolicy::per_address(),
            tracker_capacity: 100_000,
            clock: Arc::new(SystemClock),
            max_concurrent_verifications: None,
            queue_timeout: Duration::from_secs(5),
        }
    }

    /// Counters since the authenticator was built.
    pub fn stats(&self) -> BasicStats {
        BasicStats {
            password_verifications: self.inner.checker.runs(),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
        }
    }

    /// Wraps this authenticator in an [`AuthLayer`].
    pub fn into_layer(self) -> AuthLayer<Self> {
        AuthLayer::new(self)
    }

    fn principal(&self, user_id: &str, record: &CredentialRecord) -> Principal {
        let mut b = Principal::builder(record.subject(), AuthMethod::Basic)
            .credential_id(user_id)
            .scopes(record.granted_scopes().clone());
        if let Some(t) = record.tenant_id() {
            b = b.tenant(t);
        }
        b.build()
    }
}

/// 429 with `Retry-After`, and no argon2 run. `reasons`: (locked out, attempts in flight).
fn refuse(refusal: Refusal, reasons: (&'static str, &'static str)) -> AuthError {
    match refusal {
        Refusal::LockedOut(left) => AuthError::too_many_requests(left).with_reason(reasons.0),
        // Enough guesses are already being checked to reach the limit; they settle in well
        // under a second.
        Refusal::AttemptsInFlight => {
            AuthError::too_many_requests(Duration::from_secs(1)).with_reason(reasons.1)
        }
    }
}

fn client_ip(req: &Request<Body>) -> Option<IpAddr> {
    audit::client(req).map(|a| a.ip())
}

fn user_key(user_id: &str) -> [u8; 32] {
    // Fixed-size keys keep the counters' memory bounded whatever length of name is sent.
    Sha256::digest(user_id.as_bytes()).into()
}

fn audit_lockout(kind: &'static str, user_id: &str, lockout: Duration, req: &Request<Body>) {
    tracing::warn!(
        target: audit::TARGET,
        outcome = "lockout",
        method = AuthMethod::Basic.as_str(),
        lockout = kind,
        subject = user_id,
        lockout_secs = lockout.as_secs(),
        route = audit::route(req),
        client = client_ip(req).map(tracing::field::display),
    );
}

impl Authenticator for BasicAuth {
    type Credential = PresentedCredentials;

    fn method(&self) -> AuthMethod {
        AuthMethod::Basic
    }

    fn challenge(&self) -> Challenge {
        // RFC 7617 §2.1: charset="UTF-8", the only value allowed.
        Challenge::basic(self.inner.realm.clone())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<PresentedCredentials>, AuthError> {
        let Some(token) = authorization_token68(req, "Basic")? else {
            return Ok(None);
        };
        if token.len() > self.inner.max_credentials_len {
            return Err(
                AuthError::invalid_request("The Basic credentials are too long.")
                    .with_reason("credentials_too_long"),
            );
        }
        let credentials = decode_credentials(token, self.inner.encoding)?;
        let fingerprint = match &self.inner.cache {
            Some(cache) => cache.fingerprint(token),
            None => [0; 32],
        };
        Ok(Some(PresentedCredentials {
            credentials,
            fingerprint,
        }))
    }

    async fn verify(
        &self,
        presented: PresentedCredentials,
        req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        let user_id = presented.credentials.user_id();
        let password = presented.credentials.password().expose_secret();
        let now = inner.clock.now();

        // Lock-outs first: a locked-out attempt costs no store lookup and no argon2 run.
        let ip = client_ip(req).map(address_key);
        let address_attempt =
            match ip {
                Some(ip) => Some(inner.addresses.admit(ip, now).map_err(|r| {
                    refuse(r, ("address_locked_out", "address_attempts_in_flight"))
                })?),
                None => None,
            };
        let user_attempt = inner
            .users
            .admit(user_key(user_id), now)
            .map_err(|r| refuse(r, ("user_locked_out", "user_attempts_in_flight")))?;

        let cached = inner
            .cache
            .as_ref()
            .and_then(|c| c.get(&presented.fingerprint, now));
        let record = inner.store.get(user_id).await?;
        if let (Some(hit), Some(cache)) = (cached, &inner.cache) {
            // A hit counts only while the user still has the generation it was verified
            // against: a changed password or a removed user ends it at once.
            if record
                .as_ref()
                .is_some_and(|r| r.current_generation() == hit.generation)
            {
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit.principal);
            }
            cache.remove(&presented.fingerprint);
        }

        // Unknown users are checked against a dummy hash made with the same parameters, so
        // they cost the same time as a wrong password and user-ids cannot be enumerated.
        let stored = record.as_ref().map(CredentialRecord::password_hash);
        let matched = inner.checker.check(stored, password).await?;

        match record {
            Some(record) if matched => {
                let principal = self.principal(user_id, &record);
                if let Some(cache) = &inner.cache {
                    cache.insert(
                        presented.fingerprint,
                        record.current_generation(),
                        principal.clone(),
                        inner.clock.now(),
                    );
                }
                Ok(principal)
            }
            record => {
                let reason = if record.is_some() {
                    "wrong_password"
                } else {
                    "unknown_user"
                };
                // The layer's reject event carries the claimed user id (a public part).
                let error = AuthError::invalid_credentials(reason)
                    .with_subject(user_id)
                    .with_credential_id(user_id);
                let now = inner.clock.now();
                if let Some(lockout) = user_attempt.fail(now) {
                    audit_lockout("user", user_id, lockout, req);
                }
                if let Some(lockout) = address_attempt.and_then(|a| a.fail(now)) {
                    audit_lockout("address", user_id, lockout, req);
                }
                Err(error)
            }
        }
    }
}

/// Configuration of [`BasicAuth`]. Every default is the safe choice.
#[must_use]
pub struct BasicAuthBuilder {
    store: Arc<dyn CredentialStore>,
    realm: Cow<'static, str>,
    hasher: PasswordHasher,
    encoding: CredentialEncoding,
    max_credentials_len: usize,
    cache_ttl: Duration,
    cache_capacity: usize,
    user_lockout: LockoutPolicy,
    address_lockout: LockoutPolicy,
    tracker_capacity: usize,
    clock: SharedClock,
    max_concurrent_verifications: Option<usize>,
    queue_timeout: Duration,
}

impl fmt::Debug for BasicAuthBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuthBuilder")
            .field("realm", &self.realm)
            .field("hasher", &self.hasher)
            .field("encoding", &self.encoding)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl BasicAuthBuilder {
    /// The `realm` of the challenge (RFC 7617 §2). Default `api`.
    pub fn realm(mut self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.realm = realm.into();
        self
    }

    /// The argon2 parameters of the dummy hash that unknown users are checked against. Use the
    /// same hasher that made the stored hashes, so both cost the same. Default: OWASP
    /// (m = 19456 KiB, t = 2, p = 1).
    pub fn password_hasher(mut self, hasher: PasswordHasher) -> Self {
        self.hasher = hasher;
        self
    }

    /// How user-id and password are encoded; [`CredentialEncoding::FormUrlEncoded`] for OAuth
    /// 2.0 client authentication (RFC 6749 §2.3.1). Default [`CredentialEncoding::Plain`].
    pub fn encoding(mut self, encoding: CredentialEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Longest base64 credentials accepted before decoding; longer is 400. Default 4096.
    pub fn max_credentials_len(mut self, len: usize) -> Self {
        self.max_credentials_len = len;
        self
    }

    /// How long a successful verification is remembered; `Duration::ZERO` turns the cache
    /// off. Default 30 seconds. A changed password or a removed user ends it at once anyway.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Most verifications remembered at once. Default 10 000.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Lock-out per user-id (known or not, so lock-outs do not reveal which exist). Default
    /// [`LockoutPolicy::per_user`].
    pub fn user_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.user_lockout = policy;
        self
    }

    /// Lock-out per client address, from axum's `ConnectInfo<SocketAddr>` (serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without it only the per-user
    /// counters apply). Default [`LockoutPolicy::per_address`].
    pub fn address_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.address_lockout = policy;
        self
    }

    /// Most user-ids and most addresses tracked at once (each). Default 100 000.
    pub fn tracker_capacity(mut self, capacity: usize) -> Self {
        self.tracker_capacity = capacity;
        self
    }

    /// The clock for cache expiry and lock-outs (a `ManualClock` in tests).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Most argon2 runs at once; the rest wait. Default: the number of CPUs.
    pub fn max_concurrent_verifications(mut self, n: usize) -> Self {
        self.max_concurrent_verifications = Some(n);
        self
    }

    /// Longest wait for a verification slot before answering 503 with `Retry-After`.
    /// Default 5 seconds.
    pub fn verification_queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// Builds the authenticator: checks the settings, draws the cache key and makes the dummy
    /// hash (one argon2 run).
    pub fn build(self) -> Result<BasicAuth, BasicError> {
        if self.cache_capacity == 0 || self.tracker_capacity == 0 {
            return Err(BasicError::InvalidSetting("capacities must be at least 1"));
        }
        if self.max_credentials_len == 0 {
            return Err(BasicError::InvalidSetting(
                "max_credentials_len must be at least 1",
            ));
        }
        let permits = self
            .max_concurrent_verifications
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        let checker = PasswordChecker::new(&self.hasher, permits, self.queue_timeout)?;
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).map_err(|_| BasicError::Randomness)?;
        let cache = (!self.cache_ttl.is_zero())
            .then(|| VerificationCache::new(cache_key, self.cache_ttl, self.cache_capacity));
        Ok(BasicAuth {
            inner: Arc::new(Inner {
                store: self.store,
                realm: self.realm,
                encoding: self.encoding,
                max_credentials_len: self.max_credentials_len,
                checker,
                cache,
                users: Tracker::new(self.user_lockout, self.tracker_capacity),
                addresses: Tracker::new(self.address_lockout, self.tracker_capacity),
                clock: self.clock,
                cache_hits: AtomicU64::new(0),
            }),
        })
    }

    /// [`build`](Self::build) and wrap in an [`AuthLayer`].
    pub fn layer(self) -> Result<AuthLayer<BasicAuth>, BasicError> {
        self.build().map(AuthLayer::new)
    }
}
