//! One contract per store trait, run against the in-memory and the Redis implementation. The
//! record stores' contracts are shared with the SQL backend (`crates/testkit/contract`).
//!
//! Time: in-memory stores run on a `ManualClock` that the suite moves; Redis keeps its own
//! clock, so there the suite really waits (a few seconds, with wide margins).

mod common;
#[path = "../../testkit/contract/mod.rs"]
mod contract;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::ManualClock;
use apiauth_core::store::{MemoryReplayStore, MemoryRevocationList, ReplayStore, RevocationList};
use common::TestRedis;
use contract::time::Time;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn replay_contract(store: Arc<dyn ReplayStore>, time: Time) {
    let ttl = Duration::from_secs(2);
    assert!(
        store.insert_if_absent("n1", ttl).await.unwrap(),
        "first use"
    );
    assert!(!store.insert_if_absent("n1", ttl).await.unwrap(), "replay");
    assert!(
        store.insert_if_absent("n2", ttl).await.unwrap(),
        "other nonce"
    );
    let long = "n".repeat(10_000);
    assert!(store.insert_if_absent(&long, ttl).await.unwrap());
    assert!(!store.insert_if_absent(&long, ttl).await.unwrap());

    // A replay must not extend the original window.
    time.advance(Duration::from_secs(1)).await;
    assert!(
        !store
            .insert_if_absent("n1", Duration::from_secs(60))
            .await
            .unwrap()
    );
    time.advance(Duration::from_millis(1500)).await;
    assert!(
        store.insert_if_absent("n1", ttl).await.unwrap(),
        "usable again after ttl"
    );

    // Of many concurrent first uses exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.insert_if_absent("race", Duration::from_secs(60))
                .await
                .unwrap()
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
    contract::revocation::revocation_contract(Arc::new(list), Time::Manual(clock)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_list_contract_on_redis() {
    let redis = TestRedis::new();
    let list = redis.backend(TIMEOUT).revocation_list();
    contract::revocation::revocation_contract(Arc::new(list), Time::Real).await;
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
    list.revoke("jti-1", now + Duration::from_secs(600))
        .await
        .unwrap();
    list.revoke(&"y".repeat(1000), now + Duration::from_secs(600))
        .await
        .unwrap();
    let replay = backend.replay_store();
    replay
        .insert_if_absent("nonce-1", Duration::from_secs(300))
        .await
        .unwrap();

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

#[cfg(feature = "api-key")]
mod api_keys {
    use super::*;
    use apiauth_api_key::{ApiKeyStore, KeyChange, MemoryApiKeyStore};

    use super::contract::api_keys::{api_key_store_contract, record};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_key_store_contract_in_memory() {
        api_key_store_contract(Arc::new(MemoryApiKeyStore::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_key_store_contract_on_redis() {
        let redis = TestRedis::new();
        api_key_store_contract(Arc::new(redis.backend(TIMEOUT).api_key_store())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_key_records_hold_only_digests_and_expire_after_their_end() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let store = redis
            .backend_in(&ns, TIMEOUT)
            .api_key_store()
            .retention(Duration::from_secs(3600));
        let now = SystemTime::now();
        let mut live = record("idL000000001", "alice", None, 0);
        live.created_at = now;
        store.insert(live.clone()).await.unwrap();
        let mut ending = record("idX000000002", "alice", None, 0);
        ending.created_at = now;
        ending.expires_at = Some(now + Duration::from_secs(600));
        store.insert(ending).await.unwrap();

        let mut c = common::raw(redis.url()).await;
        let stored: String = redis::cmd("HGET")
            .arg(format!("{ns}:apikey:idL000000001"))
            .arg("r")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(stored.contains(&live.hash.to_hex()));
        assert!(!stored.contains("secret-of-"), "only the digest is stored");

        let ttl = |k: &str| {
            let k = format!("{ns}:apikey:{k}");
            let mut c = c.clone();
            async move {
                redis::cmd("PTTL")
                    .arg(k)
                    .query_async::<i64>(&mut c)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            ttl("idL000000001").await,
            -1,
            "a key without an end does not expire"
        );
        // Expiry (600 s) plus retention (3600 s).
        let t = ttl("idX000000002").await;
        assert!((4_000_000..=4_200_000).contains(&t), "{t}");
        // Revoking gives the live key an end, and so a TTL.
        store
            .update("idL000000001", &KeyChange::Revoke { at: now })
            .await
            .unwrap();
        let t = ttl("idL000000001").await;
        assert!((3_000_000..=3_600_000).contains(&t), "{t}");
    }
}

#[cfg(feature = "quota")]
mod quota {
    use super::*;
    use apiauth_quota::clock::FakeRelativeClock;
    use apiauth_quota::{MemoryRateLimiter, MemoryUsageMeter, QuotaPolicy, RateLimiter};

    /// One cell every 2 s, bursts of 3: slow enough that a stall on a busy machine does not
    /// refill the bucket mid-test on the real clock.
    fn policy(name: &str) -> QuotaPolicy {
        QuotaPolicy::per_minute(30).burst(3).named(name)
    }
    const T: Duration = Duration::from_secs(2);

    async fn rate_limiter_contract(limiter: Arc<dyn RateLimiter>, advance: impl AsyncFn(Duration)) {
        let p = policy("plan:free");
        for (i, left) in [2u32, 1, 0].into_iter().enumerate() {
            let d = limiter.check("alice", &p).await.unwrap();
            assert!(d.is_allowed(), "request {i}");
            assert_eq!((d.limit(), d.remaining()), (3, left));
            assert_eq!(d.retry_after(), None);
            // Full again once the used cells are regained.
            assert_eq!(d.reset(), T * (3 - left));
        }
        let d = limiter.check("alice", &p).await.unwrap();
        assert!(!d.is_allowed());
        assert_eq!((d.limit(), d.remaining()), (3, 0));
        let wait = d.retry_after().unwrap();
        assert!(wait > Duration::ZERO && wait <= T, "{wait:?}");
        assert_eq!(d.reset(), wait + T * 2);

        // Keys and policies have buckets of their own.
        assert_eq!(limiter.check("bob", &p).await.unwrap().remaining(), 2);
        let other = policy("plan:pro");
        assert_eq!(limiter.check("alice", &other).await.unwrap().remaining(), 2);

        advance(T + Duration::from_millis(300)).await;
        let d = limiter.check("alice", &p).await.unwrap();
        assert!(d.is_allowed(), "one cell regained");
        assert_eq!(d.remaining(), 0);
        assert!(!limiter.check("alice", &p).await.unwrap().is_allowed());

        // Concurrent requests never take more than the burst.
        let tight = QuotaPolicy::per_hour(1).burst(20).named("race");
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let l = limiter.clone();
            let p = tight.clone();
            tasks.push(tokio::spawn(async move {
                l.check("racer", &p).await.unwrap().is_allowed()
            }));
        }
        let mut allowed = 0;
        for t in tasks {
            allowed += usize::from(t.await.unwrap());
        }
        assert_eq!(allowed, 20);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limiter_contract_in_memory() {
        let clock = FakeRelativeClock::default();
        let limiter = MemoryRateLimiter::with_clock(clock.clone());
        rate_limiter_contract(Arc::new(limiter), async |d| clock.advance(d)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limiter_contract_on_redis() {
        let redis = TestRedis::new();
        let limiter = redis.backend(TIMEOUT).rate_limiter();
        rate_limiter_contract(Arc::new(limiter), async |d| tokio::time::sleep(d).await).await;
    }

    use super::contract::usage::usage_meter_contract;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_meter_contract_in_memory() {
        usage_meter_contract(Arc::new(MemoryUsageMeter::new())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_meter_contract_on_redis() {
        let redis = TestRedis::new();
        usage_meter_contract(Arc::new(redis.backend(TIMEOUT).usage_meter())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn extreme_policies_are_answered_not_failed() {
        let redis = TestRedis::new();
        let limiter = redis.backend(TIMEOUT).rate_limiter();
        let huge = QuotaPolicy::with_period(Duration::from_secs(u64::MAX / 4))
            .burst(u32::MAX)
            .named("huge");
        let d = limiter.check("k", &huge).await.unwrap();
        assert!(d.is_allowed());
        assert_eq!(d.limit(), u32::MAX);
        let tiny = QuotaPolicy::with_period(Duration::from_nanos(1)).named("tiny");
        assert!(limiter.check("k", &tiny).await.unwrap().is_allowed());
        // Invalid policies are clamped as the in-memory limiter clamps them, never a panic.
        let zero = QuotaPolicy::per_second(0).named("zero");
        assert_eq!(limiter.check("k", &zero).await.unwrap().limit(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit_buckets_expire_once_full_again() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let limiter = redis.backend_in(&ns, TIMEOUT).rate_limiter();
        limiter.check("alice", &policy("p")).await.unwrap();
        let keys = common::keys_with_ttl(redis.url(), &ns).await;
        assert_eq!(keys.len(), 1, "{keys:?}");
        // One cell used: full again after one period.
        assert!(keys[0].1 > 0 && keys[0].1 <= 2000, "{keys:?}");
    }
}

#[cfg(feature = "oauth2")]
mod oauth2 {
    use super::*;
    use apiauth_basic::PasswordHasher;
    use apiauth_core::ScopeSet;
    use apiauth_oauth2::{
        Audience, ClientRegistry, IntrospectionCache, IntrospectionResponse, MemoryClientRegistry,
        MemoryIntrospectionCache, RegisteredClient, TokenKey,
    };
    use apiauth_redis::RedisClientRegistry;

    fn answer(sub: &str) -> Arc<IntrospectionResponse> {
        Arc::new(IntrospectionResponse {
            active: true,
            scope: Some("invoices:read".into()),
            client_id: Some("billing".into()),
            sub: Some(sub.into()),
            exp: Some(1_900_000_000),
            aud: Some(Audience::Many(vec!["api".into(), "web".into()])),
            iss: Some("https://issuer.example".into()),
            jti: Some("j-1".into()),
            ..IntrospectionResponse::default()
        })
    }

    async fn introspection_cache_contract(cache: Arc<dyn IntrospectionCache>, time: Time) {
        let (k1, k2) = (TokenKey::of("token-one"), TokenKey::of("token-two"));
        assert_eq!(cache.get(&k1).await.unwrap(), None);
        cache
            .put(&k1, &answer("alice"), Duration::from_secs(2))
            .await
            .unwrap();
        cache
            .put(
                &k2,
                &Arc::new(IntrospectionResponse::inactive()),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        assert_eq!(cache.get(&k1).await.unwrap(), Some(answer("alice")));
        assert_eq!(
            cache.get(&k2).await.unwrap(),
            Some(Arc::new(IntrospectionResponse::inactive()))
        );
        // A new answer replaces the old one.
        cache
            .put(&k2, &answer("bob"), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(cache.get(&k2).await.unwrap(), Some(answer("bob")));

        time.advance(Duration::from_millis(2500)).await;
        assert_eq!(cache.get(&k1).await.unwrap(), None, "gone after its ttl");
        assert_eq!(cache.get(&k2).await.unwrap(), Some(answer("bob")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn introspection_cache_contract_in_memory() {
        let clock = ManualClock::starting_now();
        let cache = MemoryIntrospectionCache::with_capacity(100, Arc::new(clock.clone()));
        introspection_cache_contract(Arc::new(cache), Time::Manual(clock)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn introspection_cache_contract_on_redis() {
        let redis = TestRedis::new();
        let cache = redis.backend(TIMEOUT).introspection_cache();
        introspection_cache_contract(Arc::new(cache), Time::Real).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn introspection_cache_is_keyed_by_token_hash_and_never_holds_the_token() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let cache = redis.backend_in(&ns, TIMEOUT).introspection_cache();
        let token = "opaque-bearer-token-value";
        cache
            .put(
                &TokenKey::of(token),
                &answer("alice"),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        let keys = common::keys_with_ttl(redis.url(), &ns).await;
        assert_eq!(keys.len(), 1);
        let (key, ttl) = &keys[0];
        assert_eq!(
            key,
            &format!("{ns}:introspection:{}", TokenKey::of(token).to_hex())
        );
        assert!(*ttl > 0 && *ttl <= 30_000);
        let mut c = common::raw(redis.url()).await;
        let stored: String = redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(!stored.contains(token) && !key.contains(token));
    }

    use super::contract::clients::{Manage, client_registry_contract};

    #[async_trait::async_trait]
    impl Manage for RedisClientRegistry {
        async fn insert(&self, c: RegisteredClient) {
            RedisClientRegistry::insert(self, &c).await.unwrap()
        }
        async fn suspend(&self, id: &str, s: bool) -> bool {
            self.set_suspended(id, s).await.unwrap()
        }
        async fn remove(&self, id: &str) -> bool {
            RedisClientRegistry::remove(self, id).await.unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_registry_contract_in_memory() {
        client_registry_contract(MemoryClientRegistry::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_registry_contract_on_redis() {
        let redis = TestRedis::new();
        client_registry_contract(redis.backend(TIMEOUT).client_registry()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registered_client_secret_is_shown_once_and_stored_only_as_argon2id() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let registry = redis.backend_in(&ns, TIMEOUT).client_registry();
        // Cheap parameters: this checks what is stored, not argon2's cost.
        let hasher = PasswordHasher::dangerous_with_params(8, 1, 1).unwrap();
        let secret = registry
            .register("worker", ScopeSet::parse("jobs:run").unwrap(), &hasher)
            .await
            .unwrap();
        assert!(
            secret
                .expose_secret()
                .starts_with(apiauth_oauth2::CLIENT_SECRET_PREFIX)
        );
        let found = registry.find("worker").await.unwrap().unwrap();
        assert!(found.secret_hash().starts_with("$argon2id$"));
        assert!(
            apiauth_basic::verify_password(found.secret_hash(), secret.expose_secret())
                .await
                .unwrap()
        );
        let mut c = common::raw(redis.url()).await;
        let stored: Vec<String> = redis::cmd("HVALS")
            .arg(format!("{ns}:oauth-client:worker"))
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(stored.iter().all(|v| !v.contains(secret.expose_secret())));
    }
}

#[cfg(feature = "basic")]
mod basic {
    use super::*;
    use apiauth_basic::{CredentialRecord, CredentialStore, MemoryCredentialStore};
    use apiauth_redis::RedisCredentialStore;

    use super::contract::credentials::{Manage, credential_store_contract};

    #[async_trait::async_trait]
    impl Manage for RedisCredentialStore {
        async fn insert(&self, id: &str, r: CredentialRecord) {
            RedisCredentialStore::insert(self, id, &r).await.unwrap()
        }
        async fn set_hash(&self, id: &str, phc: &str) -> bool {
            self.set_password_hash(id, phc).await.unwrap()
        }
        async fn remove(&self, id: &str) -> bool {
            RedisCredentialStore::remove(self, id).await.unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credential_store_contract_in_memory() {
        credential_store_contract(MemoryCredentialStore::new()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn credential_store_contract_on_redis() {
        let redis = TestRedis::new();
        credential_store_contract(redis.backend(TIMEOUT).credential_store()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generations_are_shared_by_every_instance() {
        let redis = TestRedis::new();
        let ns = common::unique_namespace();
        let a = redis.backend_in(&ns, TIMEOUT).credential_store();
        let b = redis.backend_in(&ns, TIMEOUT).credential_store();
        a.insert_user("u1", "$argon2id$1").await.unwrap();
        b.insert_user("u2", "$argon2id$2").await.unwrap();
        let g1 = b.get("u1").await.unwrap().unwrap().current_generation();
        let g2 = a.get("u2").await.unwrap().unwrap().current_generation();
        assert_ne!(g1, g2);
        // A password change on B is seen, with a new generation, on A.
        assert!(
            b.set_password_hash("u1", "$argon2id$changed")
                .await
                .unwrap()
        );
        let r = a.get("u1").await.unwrap().unwrap();
        assert_eq!(r.password_hash(), "$argon2id$changed");
        assert!(r.current_generation() > g1.max(g2));
    }
}
