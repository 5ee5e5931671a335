//! Where key records live: a small async trait and a sharded in-memory implementation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use apiauth_core::StoreError;
use async_trait::async_trait;

use crate::record::{ApiKeyRecord, KeyChange};

/// Which records [`ApiKeyStore::list`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFilter {
    /// Only keys of this owner.
    pub owner: Option<Arc<str>>,
    /// Only keys of this tenant.
    pub tenant: Option<Arc<str>>,
    /// At most this many records (default 1000), oldest first.
    pub limit: usize,
}

impl Default for KeyFilter {
    fn default() -> Self {
        Self {
            owner: None,
            tenant: None,
            limit: 1000,
        }
    }
}

impl KeyFilter {
    /// Every key, up to the default limit.
    pub fn all() -> Self {
        Self::default()
    }

    /// Only keys of `owner`.
    #[must_use]
    pub fn owner(mut self, owner: impl Into<Arc<str>>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Only keys of `tenant`.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// At most `limit` records.
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Whether `r` passes the owner and tenant conditions.
    pub fn matches(&self, r: &ApiKeyRecord) -> bool {
        self.owner.as_deref().is_none_or(|o| *r.owner == *o)
            && self
                .tenant
                .as_deref()
                .is_none_or(|t| r.tenant.as_deref() == Some(t))
    }
}

/// Storage of API key records, looked up by key id.
///
/// Records hold the SHA-256 digest of a key, never the key. Every method may fail with
/// [`StoreError`]; on the request path that is a 503, never an accept.
///
/// The trait is storage-shaped so that a networked implementation is a thin mapping:
/// `get`/`insert` by id, a filtered `list`, `update` applying a [`KeyChange`] atomically (with
/// [`ApiKeyRecord::apply`], so every store agrees on its meaning), and a batched
/// `record_last_used`.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// The record with key id `id`.
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Inserts a new record. `Ok(false)`: a record with that id exists and was left unchanged.
    async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError>;

    /// Records that pass `filter`, oldest first, at most `filter.limit`.
    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Applies `change` to the record `id` atomically and returns the updated record, or
    /// `None` if there is no such record.
    async fn update(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Records last-used times for many keys at once ([`ApiKeyRecord::touch`]); unknown ids
    /// are ignored.
    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError>;
}

const SHARDS: usize = 16;

/// Default cap on the number of records in a [`MemoryApiKeyStore`].
pub const DEFAULT_CAPACITY: usize = 1_000_000;

type Shard = RwLock<HashMap<Arc<str>, ApiKeyRecord>>;

/// In-memory [`ApiKeyStore`]: read-mostly, sharded so that concurrent lookups rarely touch
/// the same lock, and bounded (past `capacity` records, `insert` fails closed).
///
/// Clones share the same records.
#[derive(Clone)]
pub struct MemoryApiKeyStore {
    inner: Arc<Inner>,
}

struct Inner {
    shards: [Shard; SHARDS],
    capacity: usize,
}

impl Default for MemoryApiKeyStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryApiKeyStore")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl MemoryApiKeyStore {
    /// An empty store holding at most [`DEFAULT_CAPACITY`] records.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// An empty store holding at most `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: std::array::from_fn(|_| RwLock::new(HashMap::new())),
                capacity,
            }),
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| read(s).len()).sum()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, id: &str) -> &Shard {
        // FNV-1a: ids are random, so a cheap unkeyed hash spreads them evenly. A client that
        // aims forged ids at one shard only makes that shard as busy as an unsharded map;
        // the maps themselves keep std's keyed hashing against collision floods.
        let h = id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        &self.inner.shards[h as usize % SHARDS]
    }
}

// A poisoned lock only means a panic elsewhere while holding it; every write here leaves the
// map consistent, so carry on rather than turn one panic into a permanent outage.
fn read(s: &Shard) -> std::sync::RwLockReadGuard<'_, HashMap<Arc<str>, ApiKeyRecord>> {
    s.read().unwrap_or_else(|p| p.into_inner())
}

fn write(s: &Shard) -> std::sync::RwLockWriteGuard<'_, HashMap<Arc<str>, ApiKeyRecord>> {
    s.write().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl ApiKeyStore for MemoryApiKeyStore {
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(read(self.shard(id)).get(id).cloned())
    }

    async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError> {
        // The total is read shard by shard, so the cap is approximate under concurrent
        // inserts; it bounds memory, which is all it is for.
        if self.len() >= self.inner.capacity {
            return Err(StoreError::CapacityExceeded);
        }
        match write(self.shard(&record.id)).entry(record.id.clone()) {
            Entry::Occupied(_) => Ok(false),
            Entry::Vacant(v) => {
                v.insert(record);
                Ok(true)
            }
        }
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut out = Vec::new();
        for s in &self.inner.shards {
            out.extend(read(s).values().filter(|r| filter.matches(r)).cloned());
        }
        out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        out.truncate(filter.limit);
        Ok(out)
    }

    async fn update(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(write(self.shard(id)).get_mut(id).map(|r| {
            r.apply(change);
            r.clone()
        }))
    }

    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError> {
        for (id, at) in batch {
            if let Some(r) = write(self.shard(id)).get_mut(&**id) {
                r.touch(*at);
            }
        }
        Ok(())
    }
}
