//! The warm path: bounded in-memory caches of verified records in front of the SQL stores, so
//! a known API key (or a JWT id already checked) costs no database round trip.
//!
//! **How a change reaches every instance.** Each cached entry lives at most
//! [`DEFAULT_CACHE_TTL`] (set with [`SqlDatabaseBuilder::cache_ttl`]), and is dropped sooner:
//!
//! - **PostgreSQL**: triggers (schema version 2) `NOTIFY apiauth_changes` in the same
//!   transaction as the change, whoever made it (this crate, another instance, an operator's
//!   `UPDATE`). Every instance `LISTEN`s on one connection of its own and drops the entry when
//!   the notification arrives, milliseconds after the commit. While that connection is down
//!   the caches are emptied and bypassed: every check goes to the database (and is a 503 when
//!   it is down), so no notification can be missed unseen. The TTL is the bound only when the
//!   listening connection stays up but stops hearing (a frozen server, a half-open network).
//! - **SQLite**: one process owns the file; a change made through this crate drops the entry
//!   in every cache of that process at once. Another process writing the same file is seen
//!   within the TTL.
//!
//! Unknown ids are not cached, so a key created elsewhere works at once on every instance.
//!
//! [`SqlDatabaseBuilder::cache_ttl`]: crate::SqlDatabaseBuilder::cache_ttl

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use apiauth_core::StoreError;
use apiauth_core::ttl::TtlMap;
use async_trait::async_trait;

use crate::db::SqlDatabase;
use crate::error::LOG_TARGET;

/// Default life of a cached record: the bound on seeing a change when no notification
/// arrives (see the module docs for when that is).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(10);
/// Default number of records each cache holds.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// The PostgreSQL channel the change triggers notify on.
pub(crate) const CHANNEL: &str = "apiauth_changes";

/// What a cache drops entries on.
trait Invalidate: Send + Sync {
    fn invalidate(&self, kind: char, key: &str);
    fn clear(&self);
}

/// Every cache of one database, and whether changes are being heard.
pub(crate) struct Registry {
    caches: Mutex<Vec<Weak<dyn Invalidate>>>,
    /// Bumped on every invalidation: a miss that read the database before a change landed
    /// must not store what it read.
    epoch: AtomicU64,
    /// Whether invalidations can arrive (always on SQLite; while listening on PostgreSQL).
    live: AtomicBool,
}

impl Registry {
    pub(crate) fn new(live: bool) -> Arc<Self> {
        Arc::new(Self {
            caches: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
            live: AtomicBool::new(live),
        })
    }

    fn register(&self, c: Weak<dyn Invalidate>) {
        let mut caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|w| w.strong_count() > 0);
        caches.push(c);
    }

    fn each(&self, f: impl Fn(&dyn Invalidate)) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let caches = self.caches.lock().unwrap_or_else(|e| e.into_inner());
        for c in caches.iter().filter_map(Weak::upgrade) {
            f(&*c);
        }
    }

    /// A change to `key` of `kind`: `k` API key id, `r` revocation (hex SHA-256 of the id).
    pub(crate) fn invalidate(&self, kind: char, key: &str) {
        self.each(|c| c.invalidate(kind, key));
    }

    /// A payload `kind:key` from the change channel.
    pub(crate) fn on_notification(&self, payload: &str) {
        let mut chars = payload.chars();
        match (chars.next(), chars.next()) {
            (Some(kind), Some(':')) => self.invalidate(kind, chars.as_str()),
            _ => self.clear_all(),
        }
    }

    pub(crate) fn clear_all(&self) {
        self.each(|c| c.clear());
    }

    /// Changes are heard (`true`) or may be missed (`false`: caches are emptied and bypassed).
    pub(crate) fn set_live(&self, live: bool) {
        self.clear_all();
        self.live.store(live, Ordering::SeqCst);
        self.clear_all();
    }

    fn live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// A bounded map with a time to live (core's [`TtlMap`] on the monotonic clock, so a wall-clock
/// step cannot stretch the TTL), whose entries a [`Registry`] drops.
struct RecordCache<V> {
    kind: char,
    ttl: Duration,
    map: TtlMap<Arc<str>, V, Instant>,
}

impl<V: Clone + Send + 'static> RecordCache<V> {
    fn new(registry: &Registry, kind: char, ttl: Duration, capacity: usize) -> Arc<Self> {
        let c = Arc::new(Self {
            kind,
            ttl,
            map: TtlMap::new(capacity.max(1)),
        });
        let weak: Weak<Self> = Arc::downgrade(&c);
        registry.register(weak);
        c
    }

    fn get(&self, key: &str, now: Instant) -> Option<V> {
        self.map.get(key, now)
    }

    fn put(&self, key: &str, v: V, now: Instant) {
        // Full of live entries: not cached (a miss costs one lookup).
        let _ = self.map.insert(key.into(), v, now + self.ttl, now);
    }

    fn remove(&self, key: &str) {
        self.map.remove(key);
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

impl<V: Send + 'static> Invalidate for RecordCache<V> {
    fn invalidate(&self, kind: char, key: &str) {
        if kind == self.kind {
            self.map.remove(key);
        }
    }

    fn clear(&self) {
        self.map.clear();
    }
}

/// Runs `load` and caches its answer, unless a change landed (or hearing changes stopped)
/// while it ran.
async fn read_through<V: Clone + Send + 'static>(
    db: &SqlDatabase,
    cache: &RecordCache<V>,
    key: &str,
    keep: impl FnOnce(&V) -> bool,
    load: impl Future<Output = Result<V, StoreError>>,
) -> Result<V, StoreError> {
    let registry = db.registry();
    let live = registry.live();
    if live && let Some(v) = cache.get(key, Instant::now()) {
        return Ok(v);
    }
    let epoch = registry.epoch.load(Ordering::SeqCst);
    let v = load.await?;
    if live && keep(&v) && registry.live() && registry.epoch.load(Ordering::SeqCst) == epoch {
        cache.put(key, v.clone(), Instant::now());
    }
    Ok(v)
}

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_key::CachedApiKeyStore;

#[cfg(feature = "api-key")]
mod api_key {
    use super::*;
    use apiauth_api_key::{ApiKeyRecord, ApiKeyStore, KeyChange, KeyFilter};
    use std::time::SystemTime;

    /// [`SqlApiKeyStore`](crate::SqlApiKeyStore) behind a bounded cache of the records it
    /// read: a known key is checked in memory. A revocation or rotation reaches every
    /// instance through PostgreSQL `LISTEN/NOTIFY` (in-process on SQLite); the cache is
    /// skipped while the listener is disconnected, and the TTL
    /// ([`DEFAULT_CACHE_TTL`](crate::DEFAULT_CACHE_TTL)) bounds the rest.
    #[derive(Clone)]
    pub struct CachedApiKeyStore {
        inner: crate::SqlApiKeyStore,
        db: SqlDatabase,
        cache: Arc<RecordCache<Option<ApiKeyRecord>>>,
    }

    impl fmt::Debug for CachedApiKeyStore {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CachedApiKeyStore")
                .field("cached", &self.cache.len())
                .finish_non_exhaustive()
        }
    }

    impl CachedApiKeyStore {
        pub(crate) fn new(db: SqlDatabase) -> Self {
            let cache = RecordCache::new(db.registry(), 'k', db.cache_ttl(), db.cache_capacity());
            Self {
                inner: db.api_key_store(),
                db,
                cache,
            }
        }

        /// How many records are cached now.
        pub fn cached(&self) -> usize {
            self.cache.len()
        }

        fn changed(&self, id: &str) {
            // PostgreSQL's trigger tells the other instances; this one hears it too, but
            // drops the entry now rather than a round trip later.
            self.cache.remove(id);
            self.db.registry().invalidate('k', id);
        }
    }

    #[async_trait]
    impl ApiKeyStore for CachedApiKeyStore {
        async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
            read_through(
                &self.db,
                &self.cache,
                id,
                Option::is_some,
                self.inner.get(id),
            )
            .await
        }

        async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError> {
            let id = record.id.clone();
            let r = self.inner.insert(record).await;
            self.changed(&id);
            r
        }

        async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
            self.inner.list(filter).await
        }

        async fn update(
            &self,
            id: &str,
            change: &KeyChange,
        ) -> Result<Option<ApiKeyRecord>, StoreError> {
            let r = self.inner.update(id, change).await;
            self.changed(id);
            r
        }

        async fn record_last_used(
            &self,
            batch: &[(Arc<str>, SystemTime)],
        ) -> Result<(), StoreError> {
            // Last-used times are not part of a check; cached records keep their old one.
            self.inner.record_last_used(batch).await
        }
    }
}

/// [`SqlRevocationList`](crate::SqlRevocationList) behind a bounded cache of its answers, so
/// a JWT checked once is not looked up again on every request. A revocation made elsewhere
/// is seen as [`CachedApiKeyStore`](crate::CachedApiKeyStore) sees a change: by
/// notification, bounded by the TTL.
#[derive(Clone)]
pub struct CachedRevocationList {
    inner: crate::SqlRevocationList,
    db: SqlDatabase,
    cache: Arc<RecordCache<bool>>,
}

impl fmt::Debug for CachedRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedRevocationList")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl CachedRevocationList {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        let cache = RecordCache::new(db.registry(), 'r', db.cache_ttl(), db.cache_capacity());
        Self {
            inner: db.revocation_list(),
            db,
            cache,
        }
    }
}

#[async_trait]
impl apiauth_core::RevocationList for CachedRevocationList {
    async fn revoke(&self, id: &str, until: std::time::SystemTime) -> Result<(), StoreError> {
        let r = self.inner.revoke(id, until).await;
        let key = crate::revocation::id_hash_hex(id);
        self.cache.remove(&key);
        self.db.registry().invalidate('r', &key);
        r
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let key = crate::revocation::id_hash_hex(id);
        // Only "not revoked" is cached: a revocation ends with its credential, and a cached
        // "revoked" would outlive that end. Refused requests may pay the round trip.
        read_through(
            &self.db,
            &self.cache,
            &key,
            |revoked| !revoked,
            self.inner.is_revoked(id),
        )
        .await
    }
}

/// Listens on [`CHANNEL`] for as long as the database handle lives; while not listening,
/// the caches are bypassed.
pub(crate) fn spawn_listener(url: String, registry: &Arc<Registry>) {
    let weak = Arc::downgrade(registry);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            if weak.strong_count() == 0 {
                return;
            }
            let listener = tokio::time::timeout(Duration::from_secs(5), async {
                let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                // A lost connection must be reported at once, not hidden by a reconnect.
                l.eager_reconnect(false);
                l.listen(CHANNEL).await?;
                Ok::<_, sqlx::Error>(l)
            })
            .await;
            let mut listener = match listener {
                Ok(Ok(l)) => l,
                _ => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let Some(r) = weak.upgrade() else { return };
            r.set_live(true);
            drop(r);
            tracing::debug!(target: LOG_TARGET, "listening for record changes");
            loop {
                // Wake now and then to notice the database handle was dropped.
                let next = tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await;
                let Some(r) = weak.upgrade() else { return };
                match next {
                    Err(_) => continue,
                    Ok(Ok(Some(n))) => r.on_notification(n.payload()),
                    Ok(Ok(None) | Err(_)) => {
                        tracing::warn!(
                            target: LOG_TARGET,
                            "lost the change notifications; caches bypassed until they resume"
                        );
                        r.set_live(false);
                        break;
                    }
                }
            }
        }
    });
}
