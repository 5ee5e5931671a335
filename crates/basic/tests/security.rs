//! Timing, the verification cache, lock-outs, fail-closed paths and audit events, all through a
//! real router.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_basic::{
    Admission, AttemptId, BasicAuth, CredentialRecord, CredentialStore, LockoutKey, LockoutPolicy,
    LockoutStore, MemoryCredentialStore, MemoryLockoutStore, PasswordHasher,
};
use apiauth_core::StoreError;
use apiauth_core::clock::ManualClock;
use async_trait::async_trait;
use common::{app, app_from, cheap, me};
use http::{StatusCode, header};

fn policy(max: u32, lockout_secs: u64) -> LockoutPolicy {
    LockoutPolicy::new(
        max,
        Duration::from_secs(600),
        Duration::from_secs(lockout_secs),
    )
    .unwrap()
}

fn relaxed() -> LockoutPolicy {
    policy(100_000, 1)
}

fn alice() -> MemoryCredentialStore {
    let s = MemoryCredentialStore::new();
    s.insert_user("alice", cheap().hash("correct horse"));
    s
}

#[tokio::test]
async fn repeated_valid_credentials_run_argon2_once_while_cached() {
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    for _ in 0..1000 {
        let a = me(&r, "alice", "correct horse").await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json()["subject"], "alice");
    }
    let s = auth.stats();
    assert_eq!(s.password_verifications, 1);
    assert_eq!(s.cache_hits, 999);
}

#[tokio::test]
async fn cached_verification_does_not_admit_another_password() {
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(
        me(&r, "alice", "correct horsf").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(auth.stats().password_verifications, 2);
}

#[tokio::test]
async fn changing_the_password_ends_the_cached_verification_at_once() {
    let store = alice();
    let auth = BasicAuth::builder(store.clone())
        .password_hasher(cheap())
        .cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().cache_hits, 1);

    assert!(store.set_password_hash("alice", cheap().hash("battery staple")));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&r, "alice", "battery staple").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().cache_hits, 1);
}

#[tokio::test]
async fn removing_the_user_ends_the_cached_verification_at_once() {
    let store = alice();
    let auth = BasicAuth::builder(store.clone())
        .password_hasher(cheap())
        .cache_ttl(Duration::from_secs(3600))
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert!(store.remove("alice"));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::UNAUTHORIZED
    );
    // Re-adding the same password does not revive the old entry: a new generation, a new check.
    store.insert_user("alice", cheap().hash("correct horse"));
    let before = auth.stats().password_verifications;
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().password_verifications, before + 1);
}

#[tokio::test]
async fn cache_entries_expire_after_the_ttl() {
    let clock = ManualClock::starting_now();
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .cache_ttl(Duration::from_secs(10))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().password_verifications, 1);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().password_verifications, 2);
}

#[tokio::test]
async fn zero_ttl_turns_the_cache_off() {
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    for _ in 0..3 {
        assert_eq!(
            me(&r, "alice", "correct horse").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(auth.stats().password_verifications, 3);
}

#[tokio::test]
async fn user_is_locked_out_with_429_and_retry_after_then_released() {
    let clock = ManualClock::starting_now();
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .user_lockout(policy(3, 30))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    for i in 0..3 {
        let a = me(&r, "alice", &format!("guess{i}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right password is refused, and argon2 does not run.
    let runs = auth.stats().password_verifications;
    let a = me(&r, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "30");
    assert_eq!(a.json()["status"], 429);
    clock.advance(Duration::from_secs(20));
    let a = me(&r, "alice", "guess").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "10");
    assert_eq!(auth.stats().password_verifications, runs);
    // Other users are not affected.
    assert_eq!(me(&r, "bob", "x").await.status, StatusCode::UNAUTHORIZED);
    // Released after the back-off period.
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn unknown_user_ids_are_locked_out_like_known_ones() {
    // Otherwise a lock-out would reveal which user-ids exist.
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .user_lockout(policy(3, 30))
        .build()
        .unwrap();
    let r = app(auth.into_layer());
    for _ in 0..3 {
        assert_eq!(me(&r, "ghost", "x").await.status, StatusCode::UNAUTHORIZED);
    }
    let a = me(&r, "ghost", "x").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "30");
}

#[tokio::test]
async fn client_address_is_locked_out_across_user_ids() {
    let store = alice();
    let layer = BasicAuth::builder(store)
        .password_hasher(cheap())
        .user_lockout(relaxed())
        .address_lockout(policy(4, 60))
        .layer()
        .unwrap();
    let attacker = app_from(layer.clone(), "203.0.113.7:5000");
    let same_host_other_port = app_from(layer.clone(), "203.0.113.7:6000");
    let elsewhere = app_from(layer, "198.51.100.1:5000");
    for i in 0..4 {
        let a = me(&attacker, &format!("user{i}"), "x").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = me(&same_host_other_port, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "60");
    assert_eq!(
        me(&elsewhere, "alice", "correct horse").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn concurrent_guesses_cannot_exceed_the_failure_limit() {
    let hasher = PasswordHasher::dangerous_with_params(1024, 1, 1).unwrap();
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", hasher.hash("correct horse"));
    let auth = BasicAuth::builder(store)
        .password_hasher(hasher)
        .user_lockout(policy(3, 60))
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move { me(&r, "alice", &format!("guess{i}")).await.status })
        })
        .collect();
    let mut unauthorized = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unauthorized <= 3, "{unauthorized} guesses were checked");
    assert!(auth.stats().password_verifications <= 3);
}

struct DownStore;

#[async_trait]
impl CredentialStore for DownStore {
    async fn get(&self, _: &str) -> Result<Option<CredentialRecord>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn store_failure_is_503_never_a_pass_or_a_401() {
    let r = app(BasicAuth::builder(DownStore)
        .password_hasher(cheap())
        .layer()
        .unwrap());
    let a = me(&r, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers[header::RETRY_AFTER], "1");
    assert!(a.headers.get(header::WWW_AUTHENTICATE).is_none());
    assert!(!a.body.contains("connection refused"));
}

#[tokio::test]
async fn store_outages_do_not_count_as_failures() {
    let store: Arc<dyn CredentialStore> = Arc::new(DownStore);
    let r = app(BasicAuth::builder(store)
        .password_hasher(cheap())
        .user_lockout(policy(2, 60))
        .layer()
        .unwrap());
    for _ in 0..5 {
        assert_eq!(
            me(&r, "alice", "x").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

#[tokio::test]
async fn corrupt_stored_hash_fails_closed_with_503() {
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", "correct horse"); // plaintext by mistake: never compared
    let r = app(BasicAuth::builder(store)
        .password_hasher(cheap())
        .layer()
        .unwrap());
    let a = me(&r, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn verifier_busy_past_the_queue_timeout_is_503() {
    // One slot, a ~100 ms argon2, a 1 ms queue: the second of two simultaneous requests waits
    // too long and is answered 503 rather than queued without bound.
    let hasher = PasswordHasher::default();
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", hasher.hash("correct horse"));
    let r = app(BasicAuth::builder(store)
        .password_hasher(hasher)
        .max_concurrent_verifications(1)
        .verification_queue_timeout(Duration::from_millis(1))
        .layer()
        .unwrap());
    let (a, b) = tokio::join!(me(&r, "alice", "x"), me(&r, "bob", "y"));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE]
    );
}

#[tokio::test]
async fn two_layers_given_one_lockout_store_share_one_failure_budget() {
    // What a shared (Redis) store does across instances, with the in-memory store.
    let shared = Arc::new(MemoryLockoutStore::new());
    let instance = |store: Arc<MemoryLockoutStore>| {
        app(BasicAuth::builder(alice())
            .password_hasher(cheap())
            .user_lockout(policy(4, 30))
            .lockout_store(store)
            .layer()
            .unwrap())
    };
    let (a, b) = (instance(shared.clone()), instance(shared));
    for r in [&a, &b, &a, &b] {
        assert_eq!(
            me(r, "alice", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for r in [&a, &b] {
        let seen = me(r, "alice", "correct horse").await;
        assert_eq!(seen.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(seen.headers[header::RETRY_AFTER], "30");
    }
}

/// A lock-out store that is down for admissions, or only for recording failures.
struct BrokenLockouts {
    admit_fails: bool,
}

#[async_trait]
impl LockoutStore for BrokenLockouts {
    async fn admit(
        &self,
        _: &LockoutKey,
        _: &LockoutPolicy,
        _: SystemTime,
    ) -> Result<Admission, StoreError> {
        if self.admit_fails {
            return Err(StoreError::Unavailable("lockout backend refused".into()));
        }
        Ok(Admission::Admitted(AttemptId::new(7)))
    }

    async fn record_failure(
        &self,
        _: &LockoutKey,
        _: AttemptId,
        _: &LockoutPolicy,
        _: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        Err(StoreError::Unavailable("lockout backend refused".into()))
    }

    fn release(&self, _: &LockoutKey, _: AttemptId) {}
}

#[tokio::test]
async fn lockout_store_down_is_503_with_retry_after_never_a_pass_or_a_401() {
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .lockout_store(BrokenLockouts { admit_fails: true })
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    for pass in ["correct horse", "wrong"] {
        let a = me(&r, "alice", pass).await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(a.headers[header::RETRY_AFTER], "1");
        assert!(a.headers.get(header::WWW_AUTHENTICATE).is_none());
        assert!(!a.body.contains("lockout backend"));
    }
    // Refused before argon2.
    assert_eq!(auth.stats().password_verifications, 0);
}

#[tokio::test]
async fn failure_that_cannot_be_recorded_is_503_not_401() {
    let r = app(BasicAuth::builder(alice())
        .password_hasher(cheap())
        .lockout_store(BrokenLockouts { admit_fails: false })
        .layer()
        .unwrap());
    let a = me(&r, "alice", "wrong").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.headers[header::RETRY_AFTER], "1");
    // Successes record nothing, so they still pass.
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
}

/// The in-memory lock-out store, counting what `BasicAuth` asks of it.
#[derive(Default)]
struct Counting {
    inner: MemoryLockoutStore,
    admits: std::sync::atomic::AtomicUsize,
    checks: std::sync::atomic::AtomicUsize,
}

impl Counting {
    fn admits(&self) -> usize {
        self.admits.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn checks(&self) -> usize {
        self.checks.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl LockoutStore for Counting {
    async fn admit(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Admission, StoreError> {
        self.admits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.admit(key, policy, now).await
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        attempt: AttemptId,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        self.inner.record_failure(key, attempt, policy, now).await
    }

    fn release(&self, key: &LockoutKey, attempt: AttemptId) {
        self.inner.release(key, attempt);
    }

    async fn release_now(&self, key: &LockoutKey, attempt: AttemptId) {
        self.inner.release_now(key, attempt).await;
    }

    async fn locked_out(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.locked_out(key, policy, now).await
    }
}

#[tokio::test]
async fn cached_credentials_reserve_no_attempt_but_a_lockout_still_refuses_them() {
    let clock = ManualClock::starting_now();
    let lockouts = Arc::new(Counting::default());
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .user_address_lockout(policy(3, 30))
        .cache_ttl(Duration::from_secs(3600))
        .lockout_store(lockouts.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let r = app_from(auth.clone().into_layer(), "192.0.2.5:4000");
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    // Address, (user, address) and user: three counters admitted once each.
    assert_eq!(lockouts.admits(), 3);
    // Cache hits run no password check: they only ask whether this address is locked out
    // (across users, and for alice).
    for _ in 0..10 {
        assert_eq!(
            me(&r, "alice", "correct horse").await.status,
            StatusCode::OK
        );
    }
    assert_eq!((lockouts.admits(), lockouts.checks()), (3, 20));

    // Three wrong guesses lock alice out of this address: the cached right password from
    // here is refused as well.
    for i in 0..3 {
        let a = me(&r, "alice", &format!("guess{i}")).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let runs = auth.stats().password_verifications;
    let a = me(&r, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.headers[header::RETRY_AFTER], "30");
    assert_eq!(a.json()["status"], 429);
    assert_eq!(auth.stats().password_verifications, runs);
    // After the back-off the cached verification serves again, still without argon2.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    assert_eq!(auth.stats().password_verifications, runs);
}
