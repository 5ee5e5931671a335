//! The warm path: cached stores answer a known key from memory, and a change made through
//! any instance is seen by every other within the stated bound (PostgreSQL: LISTEN/NOTIFY).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use apiauth_api_key::{ApiKeyStore, ApiKeys, NewKey};
use apiauth_core::RevocationList;
use apiauth_sql::SqlDatabase;
use common::TempSqlite;
use common::postgres::{TestPostgres, skipped};

/// Polls `check` until it holds, failing after `within`.
async fn until<F: Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_known_key_is_answered_without_the_database_and_a_revocation_drops_it() {
    let file = TempSqlite::new();
    let db = SqlDatabase::builder(file.url()).connect().await.unwrap();
    let store = Arc::new(db.cached_api_key_store());
    let keys = ApiKeys::new(store.clone());
    let created = keys.create(NewKey::new("alice")).await.unwrap();
    let id = created.summary.id.clone();
    assert!(store.get(&id).await.unwrap().is_some());
    assert_eq!(store.cached(), 1);

    // A revocation through the store drops the entry at once.
    keys.revoke(&id).await.unwrap();
    assert_eq!(store.cached(), 0);
    assert!(store.get(&id).await.unwrap().unwrap().revoked_at.is_some());

    // Once read, a record is answered with the pool closed: no round trip.
    let other = keys.create(NewKey::new("bob")).await.unwrap().summary.id;
    assert!(store.get(&other).await.unwrap().is_some());
    db.close().await;
    assert!(store.get(&other).await.unwrap().is_some());
    // An id never read is not: it needs the database, now gone (a 503, not a pass).
    assert!(store.get("unknown").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_change_on_one_instance_reaches_the_others_cache_within_a_second() {
    if skipped("cache_on_postgres") {
        return;
    }
    let mut pg = TestPostgres::start();
    let connect = || {
        SqlDatabase::builder(pg.url())
            .command_timeout(Duration::from_millis(500))
            // Long, so only a notification can explain a change seen within a second.
            .cache_ttl(Duration::from_secs(3600))
            .connect()
    };
    let (a, b) = (connect().await.unwrap(), connect().await.unwrap());
    let (sa, sb) = (
        Arc::new(a.cached_api_key_store()),
        Arc::new(b.cached_api_key_store()),
    );
    let (ka, kb) = (ApiKeys::new(sa.clone()), ApiKeys::new(sb.clone()));
    let id = ka.create(NewKey::new("alice")).await.unwrap().summary.id;
    // Created on A: known on B at once (unknown ids are never cached).
    assert!(kb.get(&id).await.unwrap().is_some());
    // B's listener is up once it caches what it reads.
    until(Duration::from_secs(10), "B caches", || {
        let sb = sb.clone();
        let id = id.clone();
        async move { sb.get(&id).await.is_ok() && sb.cached() == 1 }
    })
    .await;

    ka.revoke(&id).await.unwrap();
    until(Duration::from_secs(1), "B sees A's revocation", || {
        let sb = sb.clone();
        let id = id.clone();
        async move { sb.get(&id).await.unwrap().unwrap().revoked_at.is_some() }
    })
    .await;

    // The revocation list too.
    let (ra, rb) = (a.cached_revocation_list(), b.cached_revocation_list());
    let until_end = SystemTime::now() + Duration::from_secs(600);
    assert!(!rb.is_revoked("jti-1").await.unwrap());
    ra.revoke("jti-1", until_end).await.unwrap();
    until(
        Duration::from_secs(1),
        "B sees A's token revocation",
        || {
            let rb = rb.clone();
            async move { rb.is_revoked("jti-1").await.unwrap() }
        },
    )
    .await;

    // Database gone: B's listener drops and bypasses its cache, so a cached key is no pass.
    let other = ka.create(NewKey::new("bob")).await.unwrap().summary.id;
    assert!(sb.get(&other).await.unwrap().is_some());
    pg.kill();
    until(
        Duration::from_secs(10),
        "B refuses to answer from its cache",
        || {
            let sb = sb.clone();
            let other = other.clone();
            async move { sb.get(&other).await.is_err() }
        },
    )
    .await;
    pg.restart();
    until(Duration::from_secs(20), "B recovers", || {
        let sb = sb.clone();
        let other = other.clone();
        async move { matches!(sb.get(&other).await, Ok(Some(_))) }
    })
    .await;
}
