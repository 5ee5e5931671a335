//! Shared-state traits with bounded in-memory implementations.
//!
//! Each trait is small and async so that a networked implementation (`apiauth-redis`) can
//! stand in for the in-memory one: then every instance behind a load balancer agrees.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::clock::{SharedClock, SystemClock};
use crate::error::AuthError;

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

/// A map of keys to expiry times that drops expired entries and refuses to grow past a cap.
///
/// Each entry's expiry also sits in a queue, so an insert drops what has expired without ever
/// scanning the map. Entries almost always arrive in expiry order (one TTL, a clock that moves
/// forward: replay nonces, revocations of equal lifetime), so the queue is a FIFO, O(1) per
/// entry and cache-friendly; an entry that would expire before the FIFO's last one goes to a
/// min-heap instead, O(log n). Map and queues share each key's one allocation.
struct ExpiringSet {
    entries: HashMap<Arc<str>, SystemTime>,
    // (expiry, key) in non-decreasing expiry order. An extended entry leaves a stale item
    // behind in either queue, skipped when popped.
    fifo: VecDeque<(SystemTime, Arc<str>)>,
    // (expiry, key) of the entries that arrived out of order.
    heap: BinaryHeap<Reverse<(SystemTime, Arc<str>)>>,
    capacity: usize,
}

impl ExpiringSet {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            fifo: VecDeque::new(),
            heap: BinaryHeap::new(),
            capacity,
        }
    }

    fn queued(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    fn enqueue(&mut self, until: SystemTime, key: Arc<str>) {
        if self.fifo.back().is_none_or(|(last, _)| *last <= until) {
            self.fifo.push_back((until, key));
        } else {
            self.heap.push(Reverse((until, key)));
        }
    }

    /// The earliest queued item, if it has expired by `now`.
    fn pop_expired(&mut self, now: SystemTime) -> Option<(SystemTime, Arc<str>)> {
        let fifo = self.fifo.front().map(|(e, _)| *e);
        let heap = self.heap.peek().map(|Reverse((e, _))| *e);
        match (fifo, heap) {
            (Some(f), h) if f <= now && h.is_none_or(|h| f <= h) => self.fifo.pop_front(),
            (_, Some(h)) if h <= now => self.heap.pop().map(|Reverse(item)| item),
            _ => None,
        }
    }

    fn drop_expired(&mut self, now: SystemTime) {
        while let Some((exp, key)) = self.pop_expired(now) {
            // Only if the entry was not extended past this item's expiry. One lookup: the
            // queue's key is moved into `entry`, and its comparison is by pointer first.
            if let Entry::Occupied(current) = self.entries.entry(key)
                && *current.get() <= exp
            {
                current.remove();
            }
        }
        // Stale items from extensions are bounded by rebuilding when they dominate.
        if self.queued() > 2 * self.entries.len() + 1024 {
            let mut items: Vec<_> = self
                .entries
                .iter()
                .map(|(k, e)| (*e, Arc::clone(k)))
                .collect();
            items.sort_unstable_by_key(|(e, _)| *e);
            self.fifo = items.into();
            self.heap.clear();
        }
    }

    /// Inserts `key` if it holds no live entry: `Ok(false)` if it does.
    fn insert_new(
        &mut self,
        key: &str,
        until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        // After this, every entry left in the map is live.
        self.drop_expired(now);
        let full = self.entries.len() >= self.capacity;
        // One lookup for both the check and the insert; a replay wastes one allocation.
        let key: Arc<str> = Arc::from(key);
        match self.entries.entry(Arc::clone(&key)) {
            Entry::Occupied(_) => return Ok(false),
            Entry::Vacant(_) if full => return Err(StoreError::CapacityExceeded),
            Entry::Vacant(slot) => {
                slot.insert(until);
            }
        }
        self.enqueue(until, key);
        Ok(true)
    }

    /// Inserts or extends `key` (an entry is never shortened).
    fn insert(&mut self, key: &str, until: SystemTime, now: SystemTime) -> Result<(), StoreError> {
        if self.insert_new(key, until, now)? {
            return Ok(());
        }
        if let Some((k, exp)) = self.entries.get_key_value(key)
            && until > *exp
        {
            let k = Arc::clone(k);
            self.entries.insert(Arc::clone(&k), until);
            self.enqueue(until, k);
        }
        Ok(())
    }

    fn is_live(&self, key: &str, now: SystemTime) -> bool {
        self.entries.get(key).is_some_and(|exp| *exp > now)
    }
}

/// Default cap of the in-memory stores: about 100 MB at worst for 64-byte keys.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// The shared part of the in-memory stores: a bounded expiring set behind a lock, and a clock.
#[derive(Clone)]
struct Bounded {
    set: Arc<Mutex<ExpiringSet>>,
    clock: SharedClock,
}

impl Bounded {
    fn new(capacity: usize, clock: SharedClock) -> Self {
        Self {
            set: Arc::new(Mutex::new(ExpiringSet::new(capacity))),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ExpiringSet> {
        // A panic elsewhere while holding the lock leaves the set consistent: every method
        // finishes its writes before it could panic.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
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
                self.0.lock().entries.len()
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
        self.0.lock().insert(id, until, now)
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.0.clock.now();
        Ok(self.0.lock().is_live(id, now))
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
        self.0.lock().insert_new(key, now + ttl, now)
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
        let set = list.0.lock();
        assert!(
            set.queued() <= 2 * set.entries.len() + 1025,
            "{}",
            set.queued()
        );
    }

    /// The set against a plain map model: random keys, TTLs in and out of order, extensions
    /// and clock steps. Every answer matches, and nothing expired stays held.
    #[test]
    fn expiring_set_matches_a_naive_model_whatever_the_expiry_order() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut now = start;
        let mut set = ExpiringSet::new(10_000);
        let mut model: HashMap<String, SystemTime> = HashMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for step in 0..50_000 {
            let key = format!("k{}", next(500));
            // Mostly one TTL (the FIFO path), sometimes shorter or longer ones (the heap).
            let ttl = Duration::from_millis(match next(10) {
                0 => 1 + next(50),
                1 => 5_000 + next(5_000),
                _ => 1_000,
            });
            let until = now + ttl;
            model.retain(|_, e| *e > now);
            if next(3) == 0 {
                set.insert(&key, until, now).unwrap();
                let e = model.entry(key.clone()).or_insert(until);
                *e = (*e).max(until);
            } else {
                let fresh = !model.contains_key(&key);
                assert_eq!(
                    set.insert_new(&key, until, now).unwrap(),
                    fresh,
                    "step {step}"
                );
                if fresh {
                    model.insert(key.clone(), until);
                }
            }
            assert_eq!(set.entries.len(), model.len(), "step {step}");
            for (k, e) in &model {
                assert_eq!(set.entries.get(k.as_str()), Some(e), "step {step}");
            }
            assert!(set.queued() <= 2 * set.entries.len() + 1024);
            now += Duration::from_millis(next(40));
        }
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
