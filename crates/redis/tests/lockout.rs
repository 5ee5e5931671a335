//! HTTP Basic lock-outs shared through Redis: two instances (two `BasicAuth` layers on two
//! connections) spend one failure budget, lock-outs end after their back-off, and Redis down
//! means 503 with `Retry-After`, never a pass and never a 401.
#![cfg(feature = "basic")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use apiauth_basic::{
    Admission, BasicAuth, LockoutKey, LockoutPolicy, LockoutStore, MemoryCredentialStore,
    PasswordHasher,
};
use apiauth_core::Auth;
use apiauth_redis::RedisBackend;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use common::TestRedis;
use common::app::{Seen, send};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Short, so an outage is noticed quickly (the fault tests).
const FAULT_TIMEOUT: Duration = Duration::from_millis(400);
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse";

/// Argon2 so cheap it costs nothing: these tests are about shared counters.
fn cheap() -> PasswordHasher {
    PasswordHasher::dangerous_with_params(8, 1, 1).unwrap()
}

fn policy(max: u32, lockout: Duration) -> LockoutPolicy {
    LockoutPolicy::new(max, Duration::from_secs(600), lockout).unwrap()
}

fn relaxed() -> LockoutPolicy {
    policy(100_000, Duration::from_secs(1))
}

/// One instance: its own user store (same user) and its own Basic layer, with the lock-out
/// counters of `backend`. Requests come from `client`.
fn instance(
    backend: &RedisBackend,
    user: LockoutPolicy,
    address: LockoutPolicy,
    client: &str,
) -> Router {
    instance_hashing(backend, user, address, client, cheap())
}

fn instance_hashing(
    backend: &RedisBackend,
    user: LockoutPolicy,
    address: LockoutPolicy,
    client: &str,
    hasher: PasswordHasher,
) -> Router {
    let users = MemoryCredentialStore::new();
    users.insert_user("alice", hasher.hash(PASSWORD));
    let layer = BasicAuth::builder(users)
        .realm("admin")
        .password_hasher(hasher)
        .user_lockout(user)
        .address_lockout(address)
        .lockout_store(backend.stores().lockouts)
        .layer()
        .unwrap();
    let client: SocketAddr = client.parse().unwrap();
    Router::new()
        .route(
            "/admin",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(layer)
        .layer(Extension(ConnectInfo(client)))
}

async fn login(app: &Router, user: &str, password: &str) -> Seen {
    use base64::Engine as _;
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let req = http::Request::get("/admin")
        .header("authorization", format!("Basic {creds}"))
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}

fn retry_after(seen: &Seen) -> u64 {
    seen.retry_after().unwrap_or_else(|| {
        panic!(
            "Retry-After in whole seconds: {:?}",
            seen.headers.get("retry-after")
        )
    })
}

fn assert_locked(seen: &Seen, max_secs: u64) {
    assert_eq!(seen.status, 429, "body: {}", seen.body);
    let after = retry_after(seen);
    assert!((1..=max_secs).contains(&after), "Retry-After {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_a_and_b_add_up_to_one_lockout_seen_by_both() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let lockout = Duration::from_secs(60);
    let a = instance(
        &redis.backend_in(&ns, TIMEOUT),
        policy(4, lockout),
        relaxed(),
        "192.0.2.1:4000",
    );
    let b = instance(
        &redis.backend_in(&ns, TIMEOUT),
        policy(4, lockout),
        relaxed(),
        "192.0.2.2:4000",
    );

    // Alice signs in on A first: A now holds her verification in its cache, so her next
    // request there is checked against the lock key alone (no attempt is admitted).
    assert_eq!(login(&a, "alice", PASSWORD).await.status, 200);

    // Two failures on each: per-process counters would lock neither.
    for app in [&a, &b, &a] {
        let s = login(app, "alice", "guess").await;
        assert_eq!(s.status, 401);
        assert!(s.header("www-authenticate").unwrap().starts_with("Basic"));
    }
    assert_eq!(login(&b, "alice", "guess").await.status, 401);

    // Locked on B even with the right password. On A her verification is cached: the
    // per-user lock does not refuse a signed-in user (it could be aimed from anywhere).
    let s = login(&b, "alice", PASSWORD).await;
    assert_locked(&s, 60);
    assert!(retry_after(&s) > 50);
    assert!(!s.headers.contains_key("www-authenticate"));
    assert_eq!(login(&a, "alice", PASSWORD).await.status, 200);
    assert_locked(&login(&a, "alice", "guess").await, 60);
    // Another user is not affected.
    assert_eq!(login(&a, "bob", "x").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_address_is_locked_out_on_both_instances_across_user_ids() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let backend_a = redis.backend_in(&ns, TIMEOUT);
    let backend_b = redis.backend_in(&ns, TIMEOUT);
    let address = policy(3, Duration::from_secs(60));
    let a = instance(&backend_a, relaxed(), address, "203.0.113.7:5000");
    let b = instance(&backend_b, relaxed(), address, "203.0.113.7:6000");
    let b_elsewhere = instance(&backend_b, relaxed(), address, "198.51.100.1:5000");

    assert_eq!(login(&a, "user1", "x").await.status, 401);
    assert_eq!(login(&b, "user2", "x").await.status, 401);
    assert_eq!(login(&a, "user3", "x").await.status, 401);

    assert_locked(&login(&b, "alice", PASSWORD).await, 60);
    assert_locked(&login(&a, "alice", PASSWORD).await, 60);
    assert_eq!(login(&b_elsewhere, "alice", PASSWORD).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_ends_after_the_back_off_on_both_instances() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let user = policy(2, Duration::from_secs(1));
    let a = instance(
        &redis.backend_in(&ns, TIMEOUT),
        user,
        relaxed(),
        "192.0.2.1:1",
    );
    let b = instance(
        &redis.backend_in(&ns, TIMEOUT),
        user,
        relaxed(),
        "192.0.2.2:1",
    );
    assert_eq!(login(&a, "alice", "guess").await.status, 401);
    assert_eq!(login(&b, "alice", "guess").await.status, 401);
    assert_locked(&login(&a, "alice", PASSWORD).await, 1);
    assert_locked(&login(&b, "alice", PASSWORD).await, 1);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(login(&b, "alice", PASSWORD).await.status, 200);
    assert_eq!(login(&a, "alice", PASSWORD).await.status, 200);
    // The count started afresh: one more failure is a 401, not a lock-out.
    assert_eq!(login(&a, "alice", "guess").await.status, 401);
    assert_eq!(login(&a, "alice", PASSWORD).await.status, 200);
}

// One thread: a release left to a background task would run only after the next request's
// admission was sent, and be caught here.
#[tokio::test(flavor = "current_thread")]
async fn a_client_signing_in_over_and_over_never_finds_its_own_attempts_in_flight() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    // One attempt in flight at most: any attempt still in flight refuses the next one.
    let tight = policy(1, Duration::from_secs(60));
    let a = instance(&redis.backend_in(&ns, TIMEOUT), tight, tight, "192.0.2.1:1");
    let b = instance(&redis.backend_in(&ns, TIMEOUT), tight, tight, "192.0.2.1:2");
    // Each success releases its slot before answering (cached or not), so even a limit of
    // one never refuses one client's sequential requests.
    for i in 0..20 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_eq!(login(app, "alice", PASSWORD).await.status, 200);
    }
    let keys = common::keys_with_ttl(redis.url(), &ns).await;
    assert!(keys.is_empty(), "{keys:?}");
    // The budget is intact: the first failure is a 401 (and, at a limit of one, locks).
    assert_eq!(login(&a, "alice", "guess").await.status, 401);
    assert_locked(&login(&b, "alice", PASSWORD).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_on_two_instances_cannot_exceed_the_limit() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let user = policy(3, Duration::from_secs(60));
    // A costlier hash keeps guesses in flight long enough to overlap.
    let hasher = PasswordHasher::dangerous_with_params(4096, 1, 1).unwrap();
    let a = instance_hashing(
        &redis.backend_in(&ns, TIMEOUT),
        user,
        relaxed(),
        "192.0.2.1:1",
        hasher.clone(),
    );
    let b = instance_hashing(
        &redis.backend_in(&ns, TIMEOUT),
        user,
        relaxed(),
        "192.0.2.2:1",
        hasher,
    );
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let app = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { login(&app, "alice", &format!("guess{i}")).await.status })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap().as_u16() {
            401 => checked += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(checked <= 3, "{checked} guesses were checked");
    // Once settled, the budget is spent: locked on both.
    assert_locked(&login(&a, "alice", PASSWORD).await, 60);
    assert_locked(&login(&b, "alice", PASSWORD).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_keys_are_namespaced_expire_and_never_hold_the_user_id() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let backend = redis.backend_in(&ns, TIMEOUT);
    let a = instance(
        &backend,
        policy(2, Duration::from_secs(60)),
        policy(50, Duration::from_secs(60)),
        "192.0.2.9:1",
    );
    // A user-id shaped like a key of another counter cannot reach it.
    let sneaky = "x:basic-lock:addr:192.0.2.9";
    assert_eq!(login(&a, sneaky, "x").await.status, 401);
    assert_eq!(login(&a, "alice", "x").await.status, 401);
    assert_eq!(login(&a, "alice", "x").await.status, 401);

    let keys = common::keys_with_ttl(redis.url(), &ns).await;
    assert!(!keys.is_empty());
    for (k, ttl) in &keys {
        assert!(k.starts_with(&format!("{ns}:basic-")), "{k}");
        assert!(!k.contains("alice") && !k.contains("x:basic"), "{k}");
        // At most the longest window in play: the default (user, address) policy's 15 min.
        assert!(*ttl > 0 && *ttl <= 900_000, "{k} has TTL {ttl}");
    }
    // The address counter (two users' failures, 3 in all) and alice's lock are there; the
    // sneaky user-id only counted for itself.
    assert!(
        keys.iter()
            .any(|(k, _)| *k == format!("{ns}:basic-fails:addr:192.0.2.9"))
    );
    assert!(
        keys.iter()
            .any(|(k, ttl)| k.starts_with(&format!("{ns}:basic-lock:user:")) && *ttl > 50_000)
    );
    assert!(!keys.iter().any(|(k, _)| k.contains("basic-lock:addr")));
    assert_eq!(login(&a, "bob", "x").await.status, 401);
}

async fn until_ok(app: &Router) {
    let start = Instant::now();
    loop {
        let s = login(app, "alice", PASSWORD).await;
        match s.status.as_u16() {
            200 => return,
            503 => {}
            // A 429 would mean the outage was counted against alice.
            other => panic!("during recovery got {other}: {}", s.body),
        }
        assert!(start.elapsed() < RECOVERY_DEADLINE, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_unavailable(s: &Seen) {
    assert_eq!(s.status, 503, "body: {}", s.body);
    assert!(retry_after(s) >= 1);
    assert!(!s.headers.contains_key("www-authenticate"));
    assert!(!s.body.to_lowercase().contains("redis"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_503_with_retry_after_for_right_and_wrong_passwords_then_recovers() {
    let mut redis = TestRedis::own();
    let backend = redis.backend(FAULT_TIMEOUT);
    let app = instance(
        &backend,
        policy(2, Duration::from_secs(60)),
        policy(2, Duration::from_secs(60)),
        "192.0.2.1:1",
    );
    assert_eq!(login(&app, "alice", PASSWORD).await.status, 200);

    redis.kill();
    for _ in 0..3 {
        // Never a pass, never a 401: no decision without the counters.
        assert_unavailable(&login(&app, "alice", PASSWORD).await);
        assert_unavailable(&login(&app, "alice", "guess").await);
    }

    redis.restart();
    until_ok(&app).await;
    assert_eq!(login(&app, "alice", "guess").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_not_counted_as_failures_and_leaves_nothing_in_flight() {
    // Frozen, Redis keeps its data and runs the queued commands when thawed: the test sees
    // whether the outage left failures or attempts in flight behind.
    let redis = TestRedis::own();
    let backend = redis.backend(FAULT_TIMEOUT);
    let app = instance(
        &backend,
        policy(2, Duration::from_secs(60)),
        policy(2, Duration::from_secs(60)),
        "192.0.2.1:1",
    );
    assert_eq!(login(&app, "alice", PASSWORD).await.status, 200);

    redis.freeze();
    for _ in 0..4 {
        assert_unavailable(&login(&app, "alice", "guess").await);
    }
    redis.thaw();
    // Let the commands queued while frozen run before looking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let keys = common::keys_with_ttl(redis.url(), backend.namespace()).await;
    assert!(
        !keys
            .iter()
            .any(|(k, _)| k.contains(":basic-fails:") || k.contains(":basic-inflight:")),
        "{keys:?}"
    );
    // More wrong passwords than the limit were sent while frozen; none counted, and none of
    // the attempts admitted late still holds a slot (that would be 429).
    until_ok(&app).await;
    assert_eq!(login(&app, "alice", "guess").await.status, 401);
    assert_eq!(login(&app, "alice", PASSWORD).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_guesses_from_one_address_lock_that_address_only_on_both_instances() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    // The default policies: 5 per (user, address), 20 per address, 100 per user.
    let a = instance(
        &redis.backend_in(&ns, TIMEOUT),
        LockoutPolicy::per_user(),
        LockoutPolicy::per_address(),
        "203.0.113.66:4000",
    );
    let b_attacker = instance(
        &redis.backend_in(&ns, TIMEOUT),
        LockoutPolicy::per_user(),
        LockoutPolicy::per_address(),
        "203.0.113.66:5000",
    );
    let b_user = instance(
        &redis.backend_in(&ns, TIMEOUT),
        LockoutPolicy::per_user(),
        LockoutPolicy::per_address(),
        "203.0.113.77:5000",
    );
    for i in 0..60 {
        let app = if i % 2 == 0 { &a } else { &b_attacker };
        let s = login(app, "alice", "guess").await;
        if i < 5 {
            assert_eq!(s.status, 401, "guess {i}");
        } else {
            assert_locked(&s, 900);
            assert!(retry_after(&s) > 800);
        }
    }
    assert_eq!(login(&b_user, "alice", PASSWORD).await.status, 200);
    let keys = common::keys_with_ttl(redis.url(), &ns).await;
    assert!(
        keys.iter()
            .any(|(k, _)| k.starts_with(&format!("{ns}:basic-lock:user:"))
                && k.ends_with("@203.0.113.66")),
        "{keys:?}"
    );
}

async fn lock_once(store: &dyn LockoutStore, key: &LockoutKey, p: &LockoutPolicy) -> Duration {
    let now = std::time::SystemTime::now();
    for _ in 0..p.max_failures() {
        let Admission::Admitted(id) = store.admit(key, p, now).await.unwrap() else {
            panic!("refused before the limit");
        };
        if let Some(lockout) = store.record_failure(key, id, p, now).await.unwrap() {
            return lockout;
        }
    }
    panic!("no lock-out at the limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_lockouts_double_up_to_the_cap_and_strikes_expire_on_the_server() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let store = redis.backend_in(&ns, TIMEOUT).lockout_store();
    let p = LockoutPolicy::new(2, Duration::from_secs(600), Duration::from_millis(150))
        .unwrap()
        .with_backoff_up_to(Duration::from_millis(600))
        .unwrap();
    let key = LockoutKey::user_at("alice", "192.0.2.1".parse().unwrap());
    let mut seen = Vec::new();
    for _ in 0..4 {
        let lockout = lock_once(&store, &key, &p).await;
        seen.push(lockout.as_millis());
        tokio::time::sleep(lockout + Duration::from_millis(30)).await;
    }
    assert_eq!(seen, [150, 300, 600, 600]);
    // Quiet for the cap after the last lock-out: the strikes key is gone, the next lock-out
    // is the first length again.
    tokio::time::sleep(Duration::from_millis(650)).await;
    assert_eq!(
        lock_once(&store, &key, &p).await,
        Duration::from_millis(150)
    );
    // A fixed policy keeps no strikes.
    let fixed = LockoutPolicy::new(1, Duration::from_secs(60), Duration::from_secs(60)).unwrap();
    let other = LockoutKey::client_address("192.0.2.2".parse().unwrap());
    assert_eq!(
        lock_once(&store, &other, &fixed).await,
        Duration::from_secs(60)
    );
    let keys = common::keys_with_ttl(redis.url(), &ns).await;
    assert!(
        !keys
            .iter()
            .any(|(k, _)| k.contains("basic-strikes:oauth-addr")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|(k, _)| *k == format!("{ns}:basic-lock:oauth-addr:192.0.2.2"))
    );
}
