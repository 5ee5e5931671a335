//! The Basic [`Authenticator`] and its builder.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::header::authorization_token68;
use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal, audit};
use axum::body::Body;
use http::Request;

use crate::cache::{Fingerprint, VerificationCache};
use crate::error::BasicConfigError;
use crate::lockout::{
    Admission, AttemptId, LockoutKey, LockoutPolicy, LockoutStore, MemoryLockoutStore,
};
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
    lockouts: Arc<dyn LockoutStore>,
    user_lockout: LockoutPolicy,
    user_address_lockout: LockoutPolicy,
    address_lockout: LockoutPolicy,
    clock: SharedClock,
    cache_hits: AtomicU64,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("realm", &self.inner.realm)
            .field("encoding", &self.inner.encoding)
            .field("cache", &self.inner.cache.is_some())
            .field("user_lockout", &self.inner.user_lockout)
            .field("user_address_lockout", &self.inner.user_address_lockout)
            .field("address_lockout", &self.inner.address_lockout)
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
            user_address_lockout: LockoutPolicy::per_user_address(),
            address_lockout: LockoutPolicy::per_address(),
            tracker_capacity: 100_000,
            lockout_store: None,
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
        let mut b = Principal::builder(record.subject(), AuthMethod::BASIC)
            .credential_id(user_id)
            .scopes(record.granted_scopes().clone());
        if let Some(t) = record.tenant_id() {
            b = b.tenant(t);
        }
        b.build()
    }
}

/// One attempt admitted by the lock-out store, settled exactly once: [`fail`](Self::fail),
/// [`succeed`](Self::succeed), or dropped (a credential store outage, a client that went
/// away), which releases it without counting a failure.
struct Attempt {
    store: Arc<dyn LockoutStore>,
    key: LockoutKey,
    id: AttemptId,
    policy: LockoutPolicy,
    open: bool,
}

impl Attempt {
    /// Admits one attempt for `key`, or answers why not: 429 (RFC 6585 §4) with
    /// `Retry-After` (RFC 9110 §10.2.3) and no argon2 run when locked out, 503 with
    /// `Retry-After` when the store cannot answer.
    /// `reasons`: (locked out, attempts in flight).
    async fn admit(
        store: &Arc<dyn LockoutStore>,
        key: LockoutKey,
        policy: LockoutPolicy,
        now: SystemTime,
        reasons: (&'static str, &'static str),
    ) -> Result<Self, AuthError> {
        Self::try_admit(store, key, policy, now)
            .await?
            .map_err(|refusal| refusal.into_error(reasons))
    }

    /// [`admit`](Self::admit), with a refusal handed back to decide on: `Err` only when the
    /// store cannot answer (503, fail closed: no pass, no 401, no failure counted).
    async fn try_admit(
        store: &Arc<dyn LockoutStore>,
        key: LockoutKey,
        policy: LockoutPolicy,
        now: SystemTime,
    ) -> Result<Result<Self, Refusal>, AuthError> {
        match store.admit(&key, &policy, now).await {
            Ok(Admission::Admitted(id)) => Ok(Ok(Self {
                store: store.clone(),
                key,
                id,
                policy,
                open: true,
            })),
            Ok(Admission::LockedOut(left)) => Ok(Err(Refusal::LockedOut(left))),
            Ok(_) => Ok(Err(Refusal::AttemptsInFlight)),
            Err(_) => Err(AuthError::unavailable("lockout_store_unavailable")),
        }
    }

    /// Counts a failure. `Some(lockout)` if it started a lock-out.
    async fn fail(mut self, now: SystemTime) -> Result<Option<Duration>, AuthError> {
        let result = self
            .store
            .record_failure(&self.key, self.id, &self.policy, now)
            .await;
        // Settled, whatever the answer; cancelled before this line, `Drop` releases it.
        self.open = false;
        result.map_err(|_| AuthError::unavailable("lockout_store_unavailable"))
    }
}

impl Attempt {
    /// Releases the attempt and waits for the store, so the client's next request does not
    /// find it still in flight.
    async fn succeed(mut self) {
        self.store.release_now(&self.key, self.id).await;
        self.open = false;
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.open {
            self.store.release(&self.key, self.id);
        }
    }
}

/// Why the lock-out store refused an attempt.
enum Refusal {
    LockedOut(Duration),
    AttemptsInFlight,
}

impl Refusal {
    /// 429 (RFC 6585 §4) with `Retry-After` (RFC 9110 §10.2.3). `reasons`: (locked out,
    /// attempts in flight).
    fn into_error(self, reasons: (&'static str, &'static str)) -> AuthError {
        match self {
            Self::LockedOut(left) => AuthError::too_many_requests(left).with_reason(reasons.0),
            // Enough guesses are already being checked to reach the limit; they settle in
            // well under a second.
            Self::AttemptsInFlight => {
                AuthError::too_many_requests(Duration::from_secs(1)).with_reason(reasons.1)
            }
        }
    }
}

/// The attempts one password check holds, one per counter that applies.
struct Attempts(Vec<(&'static str, Attempt)>);

impl Attempts {
    /// Releases every attempt and waits for the store.
    async fn succeed(self) {
        for (_, a) in self.0 {
            a.succeed().await;
        }
    }

    /// Counts a failure on every counter; each is settled even if another store call fails.
    /// The kinds whose lock-out this started, with its length; 503 if any call failed (a
    /// failure that could not be recorded is never a 401).
    async fn fail(self, now: SystemTime) -> Result<Vec<(&'static str, Duration)>, AuthError> {
        let mut started = Vec::new();
        let mut error = None;
        for (kind, a) in self.0 {
            match a.fail(now).await {
                Ok(Some(lockout)) => started.push((kind, lockout)),
                Ok(None) => {}
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(started),
        }
    }
}

/// 429 (RFC 6585 §4) with `Retry-After` if `key` is locked out; 503 if the store cannot say.
async fn refuse_if_locked(
    inner: &Inner,
    key: &LockoutKey,
    policy: &LockoutPolicy,
    now: SystemTime,
    reason: &'static str,
) -> Result<(), AuthError> {
    match inner.lockouts.locked_out(key, policy, now).await {
        Ok(None) => Ok(()),
        Ok(Some(left)) => Err(AuthError::too_many_requests(left).with_reason(reason)),
        // Fail closed, as for an admission.
        Err(_) => Err(AuthError::unavailable("lockout_store_unavailable")),
    }
}

fn client_ip(req: &Request<Body>) -> Option<IpAddr> {
    audit::client(req)
}

/// `subject` is the user-id when it is known to exist, else its
/// [`LockoutKey::short_hash`]: an unknown user-id may be a password typed in the wrong field.
fn audit_lockout(kind: &'static str, subject: &str, lockout: Duration, req: &Request<Body>) {
    tracing::warn!(
        target: audit::TARGET,
        outcome = "lockout",
        method = AuthMethod::BASIC.as_str(),
        lockout = kind,
        subject = subject,
        lockout_secs = lockout.as_secs(),
        route = audit::route(req),
        client = client_ip(req).map(tracing::field::display),
    );
}

impl Authenticator for BasicAuth {
    type Credential = PresentedCredentials;

    fn method(&self) -> AuthMethod {
        AuthMethod::BASIC
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
        let ip = client_ip(req);
        let address_key = ip.map(LockoutKey::address);
        let pair_key = ip.map(|ip| LockoutKey::user_at(user_id, ip));

        // Credentials verified a moment ago: no password check runs, so this is no guess to
        // reserve a lock-out slot for. A lock-out of this address still refuses it; the
        // per-user lock does not, so that guesses from elsewhere cannot lock out a user who
        // is signed in.
        if let Some(cache) = &inner.cache
            && let Some(hit) = cache.get(&presented.fingerprint, now)
        {
            if let Some(key) = &address_key {
                refuse_if_locked(
                    inner,
                    key,
                    &inner.address_lockout,
                    now,
                    "address_locked_out",
                )
                .await?;
            }
            if let Some(key) = &pair_key {
                refuse_if_locked(
                    inner,
                    key,
                    &inner.user_address_lockout,
                    now,
                    "user_address_locked_out",
                )
                .await?;
            }
            // A hit counts only while the user still has the generation it was verified
            // against: a changed password or a removed user ends it at once.
            let record = inner.store.get(user_id).await?;
            if record.is_some_and(|r| r.current_generation() == hit.generation) {
                inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(hit.principal);
            }
            cache.remove(&presented.fingerprint);
        }

        // Lock-outs first: a locked-out attempt costs no store lookup and no argon2 run. The
        // narrowest counters first: address, then (user-id, address), then user-id.
        let mut held = Attempts(Vec::with_capacity(3));
        if let Some(key) = address_key {
            let a = Attempt::admit(
                &inner.lockouts,
                key,
                inner.address_lockout,
                now,
                ("address_locked_out", "address_attempts_in_flight"),
            )
            .await?;
            held.0.push(("address", a));
        }
        if let Some(key) = pair_key {
            let a = Attempt::admit(
                &inner.lockouts,
                key,
                inner.user_address_lockout,
                now,
                ("user_address_locked_out", "user_address_attempts_in_flight"),
            )
            .await?;
            held.0.push(("user_address", a));
        }
        let user_key = LockoutKey::user(user_id);
        let reasons = ("user_locked_out", "user_attempts_in_flight");
        match Attempt::try_admit(&inner.lockouts, user_key, inner.user_lockout, now).await? {
            Ok(a) => held.0.push(("user", a)),
            Err(Refusal::LockedOut(left)) => {
                // Not checked, yet a guess: it spends this address's budgets, so the lock
                // cannot be used to guess without limit against the cache above.
                for (kind, lockout) in held.fail(inner.clock.now()).await? {
                    audit_lockout(kind, &LockoutKey::short_hash(user_id), lockout, req);
                }
                return Err(Refusal::LockedOut(left).into_error(reasons));
            }
            Err(refusal) => return Err(refusal.into_error(reasons)),
        }
        let record = inner.store.get(user_id).await?;

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
                held.succeed().await;
                Ok(principal)
            }
            record => {
                // The layer's reject event carries the claimed user id when it exists (a
                // public name); an unknown one only as a short hash, since it may be a
                // password typed into the user field.
                let (reason, subject) = match record {
                    Some(_) => ("wrong_password", user_id.to_owned()),
                    None => ("unknown_user", LockoutKey::short_hash(user_id)),
                };
                let error = AuthError::invalid_credentials(reason)
                    .with_subject(subject.clone())
                    .with_credential_id(subject.clone());
                for (kind, lockout) in held.fail(inner.clock.now()).await? {
                    audit_lockout(kind, &subject, lockout, req);
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
    user_address_lockout: LockoutPolicy,
    address_lockout: LockoutPolicy,
    tracker_capacity: usize,
    lockout_store: Option<Arc<dyn LockoutStore>>,
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

    /// Lock-out per user-id from any address (known or not, so lock-outs do not reveal which
    /// exist). Default [`LockoutPolicy::per_user`]: high, with progressive back-off, since
    /// it is the one counter that guesses spread over many addresses reach, and it locks the
    /// real user out of every address. A verification-cache hit (the same credentials
    /// verified within [`cache_ttl`](Self::cache_ttl)) still passes while this lock is on:
    /// it runs no password check, so it is no guess, and the user already signed in keeps
    /// working. Guesses refused by this lock still count for their (user-id, address) and
    /// address counters.
    pub fn user_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.user_lockout = policy;
        self
    }

    /// Lock-out per (user-id, client address), counted first. Default
    /// [`LockoutPolicy::per_user_address`]: low, because it locks out only the address that
    /// guessed, so nobody can aim a lock-out at a user from elsewhere (OWASP Authentication
    /// Cheat Sheet, NIST SP 800-63B §5.2.2). Applies only when the client address is known.
    pub fn user_address_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.user_address_lockout = policy;
        self
    }

    /// Lock-out per client address across user-ids, from `apiauth_core::audit::client`
    /// (the `ClientAddr` a `ClientAddrLayer` resolved, else axum's `ConnectInfo`: serve with
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without either only the
    /// per-user counters apply). Default [`LockoutPolicy::per_address`].
    pub fn address_lockout(mut self, policy: LockoutPolicy) -> Self {
        self.address_lockout = policy;
        self
    }

    /// Most keys of each kind (user-ids, addresses, pairs) tracked at once by the default in-memory
    /// lock-out store. Default 100 000. Ignored with [`lockout_store`](Self::lockout_store).
    pub fn tracker_capacity(mut self, capacity: usize) -> Self {
        self.tracker_capacity = capacity;
        self
    }

    /// Where failed attempts are counted. Default: a [`MemoryLockoutStore`] of
    /// [`tracker_capacity`](Self::tracker_capacity), local to this process. Behind several
    /// instances give them one shared store (apiauth-redis's `RedisLockoutStore`), so the
    /// failure budget is one for all of them rather than one per instance. An
    /// `Arc<dyn LockoutStore>` works too. Layers given the same store share its counters.
    pub fn lockout_store(mut self, store: impl LockoutStore) -> Self {
        self.lockout_store = Some(Arc::new(store));
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
    pub fn build(self) -> Result<BasicAuth, BasicConfigError> {
        if self.cache_capacity == 0 || self.tracker_capacity == 0 {
            return Err(BasicConfigError::InvalidSetting(
                "capacities must be at least 1",
            ));
        }
        if self.max_credentials_len == 0 {
            return Err(BasicConfigError::InvalidSetting(
                "max_credentials_len must be at least 1",
            ));
        }
        let permits = self
            .max_concurrent_verifications
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
        let checker = PasswordChecker::new(&self.hasher, permits, self.queue_timeout)?;
        let mut cache_key = [0u8; 32];
        getrandom::fill(&mut cache_key).map_err(|_| BasicConfigError::Randomness)?;
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
                lockouts: self.lockout_store.unwrap_or_else(|| {
                    Arc::new(MemoryLockoutStore::with_capacity(self.tracker_capacity))
                }),
                user_lockout: self.user_lockout,
                user_address_lockout: self.user_address_lockout,
                address_lockout: self.address_lockout,
                clock: self.clock,
                cache_hits: AtomicU64::new(0),
            }),
        })
    }

    /// [`build`](Self::build) and wrap in an [`AuthLayer`].
    pub fn layer(self) -> Result<AuthLayer<BasicAuth>, BasicConfigError> {
        self.build().map(AuthLayer::new)
    }
}
