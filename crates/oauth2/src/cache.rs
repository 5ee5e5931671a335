//! A cache of introspection answers, keyed by the SHA-256 of the token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apiauth_core::StoreError;
use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::ttl::TtlMap;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::claims::IntrospectionResponse;

/// The cache key of a token: its SHA-256. The raw token is never stored or logged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, for stores keyed by strings.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate; the hash of a bearer token is still worth guarding.
        let hex = self.to_hex();
        write!(f, "TokenKey({}…)", hex.get(..8).unwrap_or(""))
    }
}

/// Where [`IntrospectionVerifier`](crate::IntrospectionVerifier) keeps answers between calls.
///
/// Small and dyn-compatible so that a networked store can stand in for
/// [`MemoryIntrospectionCache`]. The verifier re-checks `active`, `exp`, `nbf`, `aud` and
/// `iss` on every hit and the route checks scopes, so a cache only has to keep entries no
/// longer than `ttl`.
///
/// Answers travel as `Arc`s: an in-process cache hands out a shared answer without copying its
/// strings on every request.
#[async_trait]
pub trait IntrospectionCache: Send + Sync + 'static {
    /// The live answer stored under `key`, if any.
    async fn get(&self, key: &TokenKey) -> Result<Option<Arc<IntrospectionResponse>>, StoreError>;

    /// Stores `answer` under `key` for `ttl`.
    async fn put(
        &self,
        key: &TokenKey,
        answer: &Arc<IntrospectionResponse>,
        ttl: Duration,
    ) -> Result<(), StoreError>;
}

/// Default number of answers [`MemoryIntrospectionCache`] holds.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// In-memory [`IntrospectionCache`], bounded by core's [`TtlMap`] rule: expired entries are
/// dropped, and when it is full of live entries new answers are simply not cached (the next
/// request introspects again).
#[derive(Clone)]
pub struct MemoryIntrospectionCache {
    map: Arc<TtlMap<TokenKey, Arc<IntrospectionResponse>>>,
    clock: SharedClock,
}

impl Default for MemoryIntrospectionCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryIntrospectionCache {
    /// A cache of [`DEFAULT_CACHE_CAPACITY`] entries on the system clock.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CACHE_CAPACITY, Arc::new(SystemClock))
    }

    /// A cache of at most `capacity` entries on `clock`.
    pub fn with_capacity(capacity: usize, clock: SharedClock) -> Self {
        Self {
            map: Arc::new(TtlMap::new(capacity)),
            clock,
        }
    }

    /// Number of entries held, live or not yet dropped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryIntrospectionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryIntrospectionCache")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl IntrospectionCache for MemoryIntrospectionCache {
    async fn get(&self, key: &TokenKey) -> Result<Option<Arc<IntrospectionResponse>>, StoreError> {
        Ok(self.map.get(key, self.clock.now()))
    }

    async fn put(
        &self,
        key: &TokenKey,
        answer: &Arc<IntrospectionResponse>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        // Full of live entries: not cached; the next request introspects again.
        let _ = self.map.insert(*key, answer.clone(), now + ttl, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiauth_core::clock::ManualClock;

    #[tokio::test]
    async fn entries_expire_and_capacity_is_a_hard_bound() {
        let clock = ManualClock::starting_now();
        let cache = MemoryIntrospectionCache::with_capacity(2, Arc::new(clock.clone()));
        let a = Arc::new(IntrospectionResponse::inactive());
        for t in ["a", "b", "c"] {
            cache
                .put(&TokenKey::of(t), &a, Duration::from_secs(10))
                .await
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&TokenKey::of("c")).await.unwrap().is_none());
        clock.advance(Duration::from_secs(11));
        assert!(cache.get(&TokenKey::of("a")).await.unwrap().is_none());
        cache
            .put(&TokenKey::of("c"), &a, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(cache.get(&TokenKey::of("c")).await.unwrap().is_some());
        assert!(cache.len() <= 2);
    }

    #[test]
    fn debug_of_a_key_shows_only_a_hash_prefix() {
        let k = TokenKey::of("secret-token");
        let d = format!("{k:?}");
        assert!(!d.contains("secret-token"));
        assert!(!d.contains(&k.to_hex()));
    }
}
