//! Shared-state traits with bounded in-memory implementations.
//!
//! Each trait is small and async so that a networked implementation (`apiauth-redis`) can
//! stand in for the in-memory one: then every instance behind a load balancer agrees.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::clock::{SharedClock, SystemClock};
use crate::error::AuthError;
use crate::ttl::TtlMap;

/// A store could not answer. On the request path this is a 503 with `Retry-After`: a check
/// that guards access fails closed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend is unreachable, timed out or answered nonsense.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The in-memory store is full of live entries and will not grow further.
    #[error("store at capacity")]
    CapacityExceeded,
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => AuthError::unavailable("store_unavailable"),
            StoreError::CapacityExceeded => AuthError::unavailable("store_at_capacity"),
        }
    }
}

/// Revoked credential ids (JWT `jti`, key ids), each remembered until the credential would
/// have expired anyway.
#[async_trait]
pub trait RevocationList: Send + Sync + 'static {
    /// Revokes `id` until `until`; after that the credential has expired by itself.
    async fn revoke(&self, id: &str, until: SystemTime) -> Result<(), StoreError>;
    /// Whether `id` is revoked now.
    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError>;
}

/// Single-use values (signature nonces, webhook ids), remembered for a time-to-live.
#[async_trait]
pub trait ReplayStore: Send + Sync + 'static {
    /// Records `key` if it is not already live. `true`: first use. `false`: a replay.
    async fn insert_if_absent(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: RevocationList + ?Sized> RevocationList for Arc<T> {
    async fn revoke(&self, id: &str, until: SystemTime) -> Result<(), StoreError> {
        (**self).revoke(id, until).await
    }
    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        (**self).is_revoked(id).await
    }
}

#[async_trait]
impl<T: ReplayStore + ?Sized> ReplayStore for Arc<T> {
    async fn insert_if_absent(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).insert_if_absent(key, ttl).await
    }
}

/// Default cap of the in-memory stores: about 100 MB at worst for 64-byte keys.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// The shared part of the in-memory stores: a bounded expiring set (core's [`TtlMap`]) and a
/// clock.
#[derive(Clone)]
struct Bounded {
    set: Arc<TtlMap<Arc<str>, ()>>,
    clock: SharedClock,
}

impl Bounded {
    fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            set: Arc::new(TtlMap::new(capacity)),
            clock,
        }
    }
}

/// The constructors and size accessors both in-memory stores share.
macro_rules! bounded_store {
    ($name:ident, $what:literal) => {
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            #[doc = concat!("An empty ", $what, " on the system clock.")]
            pub fn new() -> Self {
                Self::with_clock(Arc::new(SystemClock))
            }

            #[doc = concat!("An empty ", $what, " on `clock`.")]
            pub fn with_clock(clock: SharedClock) -> Self {
                Self::with_capacity(DEFAULT_CAPACITY, clock)
            }

            #[doc = concat!("An empty ", $what, " holding at most `capacity` live entries.")]
            pub fn with_capacity(capacity: usize, clock: SharedClock) -> Self {
                Self(Bounded::new(capacity, clock))
            }

            /// Number of entries held, live or not yet dropped.
            pub fn len(&self) -> usize {
                self.0.set.len()
            }

            /// Whether nothing is held.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}

/// In-memory [`RevocationList`]. Bounded: expired entries are dropped; past `capacity` live
/// entries, `revoke` fails with [`StoreError::CapacityExceeded`].
#[derive(Clone)]
pub struct MemoryRevocationList(Bounded);

bounded_store!(MemoryRevocationList, "list");

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, id: &str, until: SystemTime) -> Result<(), StoreError> {
        let now = self.0.clock.now();
        if until <= now {
            return Ok(()); // already expired: nothing to remember
        }
        // A later revoke never shortens an earlier one.
        self.0
            .set
            .extend(Arc::from(id), (), until, now)
            .map_err(|_| StoreError::CapacityExceeded)
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.0.clock.now();
        Ok(self.0.set.contains(id, now))
    }
}

/// In-memory [`ReplayStore`]. Bounded like [`MemoryRevocationList`]; when full of live
/// entries it fails closed ([`StoreError::CapacityExceeded`], a 503), never open.
#[derive(Clone)]
pub struct MemoryReplayStore(Bounded);

bounded_store!(MemoryReplayStore, "store");

#[async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn insert_if_absent(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.0.clock.now();
        self.0
            .set
            .insert_new(Arc::from(key), (), now + ttl, now)
            .map_err(|_| StoreError::CapacityExceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    #[tokio::test]
    async fn revocation_lasts_until_expiry_then_is_dropped() {
        let clock = ManualClock::starting_now();
        let list = MemoryRevocationList::with_clock(Arc::new(clock.clone()));
        list.revoke("k1", clock.now() + Duration::from_secs(10))
            .await
            .unwrap();
        assert!(list.is_revoked("k1").await.unwrap());
        assert!(!list.is_revoked("k2").await.unwrap());
        clock.advance(Duration::from_secs(11));
        assert!(!list.is_revoked("k1").await.unwrap());
    }

    #[tokio::test]
    async fn replay_store_accepts_once_then_again_after_ttl() {
        let clock = ManualClock::starting_now();
        let store = MemoryReplayStore::with_clock(Arc::new(clock.clone()));
        assert!(
            store
                .insert_if_absent("n", Duration::from_secs(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .insert_if_absent("n", Duration::from_secs(5))
                .await
                .unwrap()
        );
        clock.advance(Duration::from_secs(6));
        assert!(
            store
                .insert_if_absent("n", Duration::from_secs(5))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn memory_is_bounded_and_expired_entries_are_swept() {
        let clock = ManualClock::starting_now();
        let store = MemoryReplayStore::with_capacity(100, Arc::new(clock.clone()));
        for i in 0..100 {
            assert!(
                store
                    .insert_if_absent(&i.to_string(), Duration::from_secs(1))
                    .await
                    .unwrap()
            );
        }
        // Full of live entries: fail closed rather than grow or forget.
        assert!(matches!(
            store.insert_if_absent("x", Duration::from_secs(1)).await,
            Err(StoreError::CapacityExceeded)
        ));
        clock.advance(Duration::from_secs(2));
        assert!(
            store
                .insert_if_absent("x", Duration::from_secs(1))
                .await
                .unwrap()
        );
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn an_extended_revocation_outlives_its_first_expiry_and_the_queue_stays_bounded() {
        let clock = ManualClock::starting_now();
        let list = MemoryRevocationList::with_clock(Arc::new(clock.clone()));
        let t0 = clock.now();
        list.revoke("k", t0 + Duration::from_secs(10))
            .await
            .unwrap();
        list.revoke("k", t0 + Duration::from_secs(100))
            .await
            .unwrap();
        // A later revoke never shortens an earlier one.
        list.revoke("k", t0 + Duration::from_secs(5)).await.unwrap();
        clock.advance(Duration::from_secs(50));
        list.revoke("other", clock.now() + Duration::from_secs(1))
            .await
            .unwrap();
        assert!(
            list.is_revoked("k").await.unwrap(),
            "the stale heap item must not drop it"
        );
        clock.advance(Duration::from_secs(51));
        list.revoke("other2", clock.now() + Duration::from_secs(1))
            .await
            .unwrap();
        assert!(!list.is_revoked("k").await.unwrap());
        // Extending one key many times does not grow the queue without bound.
        for i in 0..10_000u64 {
            list.revoke("hot", clock.now() + Duration::from_secs(1000 + i))
                .await
                .unwrap();
        }
        let set = &list.0.set;
        assert!(set.queued() <= 2 * set.len() + 1025, "{}", set.queued());
    }

    #[tokio::test]
    async fn concurrent_inserts_of_one_nonce_admit_exactly_one() {
        let store = MemoryReplayStore::new();
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.insert_if_absent("same", Duration::from_secs(60))
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
}
