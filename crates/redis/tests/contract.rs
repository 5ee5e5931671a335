//! One contract per store trait, run against the in-memory and the Redis implementation.
//!
//! Time: in-memory stores run on a `ManualClock` that the suite moves; Redis keeps its own
//! clock, so there the suite really waits (a few seconds, with wide margins).

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{Clock, ManualClock};
use apiauth_core::store::{MemoryReplayStore, MemoryRevocationList, ReplayStore, RevocationList};
use common::TestRedis;

/// How the suite reads and moves time for one implementation.
#[derive(Clone)]
enum Time {
    Manual(ManualClock),
    Real,
}

impl Time {
    fn now(&self) -> SystemTime {
        match self {
            Time::Manual(c) => c.now(),
            Time::Real => SystemTime::now(),
        }
    }

    async fn advance(&self, d: Duration) {
        match self {
            Time::Manual(c) => c.advance(d),
            Time::Real => tokio::time::sleep(d).await,
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(5);

async fn revocation_contract(list: Arc<dyn RevocationList>, time: Time) {
    let t0 = time.now();
    assert!(!list.is_revoked("never").await.unwrap(), "unknown id");

    list.revoke("short", t0 + Duration::from_secs(2)).await.unwrap();
    // A later revoke with an earlier end must not shorten the first.
    list.revoke("long", t0 + Duration::from_secs(8)).await.unwrap();
    list.revoke("long", t0 + Duration::from_secs(1)).await.unwrap();
    // Already expired: nothing to remember.
    list.revoke("past", t0 - Duration::from_secs(1)).await.unwrap();
    let odd = format!("ünï cödé {}", "x".repeat(5000));
    list.revoke(&odd, t0 + Duration::from_secs(8)).await.unwrap();

    assert!(list.is_revoked("short").await.unwrap());
    assert!(list.is_revoked("long").await.unwrap());
    assert!(!list.is_revoked("past").await.unwrap());
    assert!(list.is_revoked(&odd).await.unwrap());
    assert!(!list.is_revoked(&odd[..odd.len() - 1]).await.unwrap(), "ids are exact");
    assert!(!list.is_revoked("shor").await.unwrap(), "no prefix match");

    time.advance(Duration::from_secs(3)).await;
    assert!(!list.is_revoked("short").await.unwrap(), "forgotten after expiry");
    assert!(list.is_revoked("long").await.unwrap(), "the longer revocation stands");
}

async fn replay_contract(store: Arc<dyn ReplayStore>, time: Time) {
    let ttl = Duration::from_secs(2);
    assert!(store.insert_if_absent("n1", ttl).await.unwrap(), "first use");
    assert!(!store.insert_if_absent("n1", ttl).await.unwrap(), "replay");
    assert!(store.insert_if_absent("n2", ttl).await.unwrap(), "other nonce");
    let long = "n".repeat(10_000);
    assert!(store.insert_if_absent(&long, ttl).await.unwrap());
    assert!(!store.insert_if_absent(&long, ttl).await.unwrap());

    // A replay must not extend the original window.
    time.advance(Duration::from_secs(1)).await;
    assert!(!store.insert_if_absent("n1", Duration::from_secs(60)).await.unwrap());
    time.advance(Duration::from_millis(1500)).await;
    assert!(store.insert_if_absent("n1", ttl).await.unwrap(), "usable again after ttl");

    // Of many concurrent first uses exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_if_absent("race", Duration::from_secs(60)).await.unwrap()
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        firsts += usize::from(t.await.unwrap());
    }
    assert_eq!(firsts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_list_contract_in_memory() {
    let clock = ManualClock::starting_now();
    let list = MemoryRevocationList::with_clock(Arc::new(clock.clone()));
    revocation_contract(Arc::new(list), Time::Manual(clock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_list_contract_on_redis() {
    let redis = TestRedis::new();
    let list = redis.backend(TIMEOUT).revocation_list();
    revocation_contract(Arc::new(list), Time::Real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_store_contract_in_memory() {
    let clock = ManualClock::starting_now();
    let store = MemoryReplayStore::with_clock(Arc::new(clock.clone()));
    replay_contract(Arc::new(store), Time::Manual(clock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_store_contract_on_redis() {
    let redis = TestRedis::new();
    let store = redis.backend(TIMEOUT).replay_store();
    replay_contract(Arc::new(store), Time::Real).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_key_is_namespaced_and_expires() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let backend = redis.backend_in(&ns, TIMEOUT);
    let now = SystemTime::now();
    let list = backend.revocation_list();
    list.revoke("jti-1", now + Duration::from_secs(600)).await.unwrap();
    list.revoke(&"y".repeat(1000), now + Duration::from_secs(600)).await.unwrap();
    let replay = backend.replay_store();
    replay.insert_if_absent("nonce-1", Duration::from_secs(300)).await.unwrap();

    let keys = common::keys_with_ttl(redis.url(), &ns).await;
    assert_eq!(keys.len(), 3, "{keys:?}");
    for (k, ttl) in &keys {
        assert!(k.starts_with(&format!("{ns}:")), "{k}");
        assert!(k.len() < ns.len() + 100, "long ids are hashed: {k}");
        assert!(*ttl > 0 && *ttl <= 600_000, "{k} has TTL {ttl}");
    }
    // Revocations live until the credential's expiry: TTL close to 600 s, not a default.
    let rev = keys.iter().find(|(k, _)| k.ends_with(":jti-1")).unwrap();
    assert!(rev.1 > 500_000, "{rev:?}");
}
