//! [`TtlMap`]: the one bounded map with per-entry expiry behind the crates' caches and the
//! in-memory stores.
//!
//! # Eviction rule
//!
//! An entry lives until its own expiry, then is gone: lookups never return it, and inserts
//! drop expired entries first, earliest expiry first. A map holding `capacity` live entries
//! refuses a new key ([`Full`]) rather than evicting a live one: a cache then simply does not
//! cache (the next request does the work again) and a store fails closed. Nothing a client
//! sends can grow it past `capacity`.
//!
//! # Cost
//!
//! Lookups are one hash probe. Expiry is kept in a queue ordered by expiry time (a FIFO for
//! the common case of non-decreasing expiries, a heap for the rest), so dropping expired
//! entries costs amortised `O(log n)` per entry and never scans the map.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

/// A new key was refused: the map holds `capacity` live entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the map is full of live entries")]
pub struct Full;

/// A bounded, thread-safe map whose entries each expire at their own time. See the
/// [module docs](self) for the eviction rule.
///
/// Times are passed in (`now`), so the caller's clock (a `ManualClock` in tests) rules. They are
/// `SystemTime`s by default; any ordered time works (`Instant` where wall-clock steps must not
/// stretch a lifetime).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use apiauth_core::ttl::{Full, TtlMap};
///
/// let map = TtlMap::new(1);
/// let now = SystemTime::now();
/// map.insert("a", 1, now + Duration::from_secs(10), now).unwrap();
/// assert_eq!(map.get("a", now), Some(1));
/// // Full of live entries: a new key is refused, the live entry kept.
/// assert_eq!(map.insert("b", 2, now + Duration::from_secs(10), now), Err(Full));
/// // Once `a` has expired it no longer counts.
/// let later = now + Duration::from_secs(11);
/// assert_eq!(map.get("a", later), None);
/// map.insert("b", 2, later + Duration::from_secs(10), later).unwrap();
/// assert_eq!(map.len(), 1);
/// ```
pub struct TtlMap<K, V, T = SystemTime> {
    inner: Mutex<Inner<K, V, T>>,
}

struct Inner<K, V, T> {
    entries: HashMap<K, (V, T)>,
    // (expiry, key) in non-decreasing expiry order. A replaced entry leaves a stale item
    // behind in either queue, skipped when popped.
    fifo: VecDeque<(T, K)>,
    // (expiry, key) of the entries that arrived out of order.
    heap: BinaryHeap<Reverse<Due<K, T>>>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V, T: Ord + Copy> TtlMap<K, V, T> {
    /// An empty map holding at most `capacity` live entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                fifo: VecDeque::new(),
                heap: BinaryHeap::new(),
                capacity,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V, T>> {
        // Every method finishes its writes before it could panic, so a poisoned map is
        // still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key`, if it holds a live entry at `now`.
    pub fn get<Q>(&self, key: &Q, now: T) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.get_with(key, now, V::clone)
    }

    /// `read` applied to the value of `key`, if it holds a live entry at `now` (no clone of
    /// the whole value).
    pub fn get_with<Q, R>(&self, key: &Q, now: T, read: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((v, until)) if *until > now => Some(read(v)),
            _ => None,
        }
    }

    /// Whether `key` holds a live entry at `now`.
    pub fn contains<Q>(&self, key: &Q, now: T) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_with(key, now, |_| ()).is_some()
    }

    /// When the live entry of `key` expires, if it has one at `now`.
    pub fn expiry<Q>(&self, key: &Q, now: T) -> Option<T>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        inner
            .entries
            .get(key)
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }

    /// Sets `key` to `value` until `until`, replacing any entry it had. An entry already
    /// expired at `now` is not stored. Refused when `key` is new and the map is full of live
    /// entries.
    pub fn insert(&self, key: K, value: V, until: T, now: T) -> Result<(), Full> {
        let mut inner = self.lock();
        inner.drop_expired(now);
        if until <= now {
            inner.entries.remove(&key);
            return Ok(());
        }
        inner.put(key, value, until)
    }

    /// Like [`insert`](Self::insert), only if `key` holds no live entry: `Ok(false)` if it
    /// does (and nothing changes).
    pub fn insert_new(&self, key: K, value: V, until: T, now: T) -> Result<bool, Full> {
        let mut inner = self.lock();
        // After this, every entry left in the map is live.
        inner.drop_expired(now);
        if inner.entries.contains_key(&key) {
            return Ok(false);
        }
        if until <= now {
            return Ok(true);
        }
        inner.put(key, value, until).map(|()| true)
    }

    /// Like [`insert`](Self::insert), but a live entry is only ever lengthened: one that
    /// already lasts until `until` or later is kept as it is.
    pub fn extend(&self, key: K, value: V, until: T, now: T) -> Result<(), Full> {
        let mut inner = self.lock();
        inner.drop_expired(now);
        if until <= now || inner.entries.get(&key).is_some_and(|(_, u)| *u >= until) {
            return Ok(());
        }
        inner.put(key, value, until)
    }

    /// Removes the entry of `key`; whether it held one (live or not yet dropped).
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().entries.remove(key).is_some()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.fifo.clear();
        inner.heap.clear();
    }

    /// Number of entries held, live or expired but not yet dropped.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most live entries the map holds.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Items in the expiry queue, stale ones included.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.lock().queued()
    }
}

/// A queued expiry, ordered by its time alone (keys need no order).
struct Due<K, T>(T, K);

impl<K, T: Ord> PartialEq for Due<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K, T: Ord> Eq for Due<K, T> {}

impl<K, T: Ord> PartialOrd for Due<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K, T: Ord> Ord for Due<K, T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<K: Hash + Eq + Clone, V, T: Ord + Copy> Inner<K, V, T> {
    fn put(&mut self, key: K, value: V, until: T) -> Result<(), Full> {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            return Err(Full);
        }
        self.enqueue(until, key.clone());
        self.entries.insert(key, (value, until));
        Ok(())
    }

    fn queued(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    fn enqueue(&mut self, until: T, key: K) {
        if self.fifo.back().is_none_or(|(last, _)| *last <= until) {
            self.fifo.push_back((until, key));
        } else {
            self.heap.push(Reverse(Due(until, key)));
        }
    }

    /// The earliest queued item, if it has expired by `now`.
    fn pop_expired(&mut self, now: T) -> Option<(T, K)> {
        let fifo = self.fifo.front().map(|(e, _)| *e);
        let heap = self.heap.peek().map(|Reverse(Due(e, _))| *e);
        match (fifo, heap) {
            (Some(f), h) if f <= now && h.is_none_or(|h| f <= h) => self.fifo.pop_front(),
            (_, Some(h)) if h <= now => self.heap.pop().map(|Reverse(Due(e, k))| (e, k)),
            _ => None,
        }
    }

    fn drop_expired(&mut self, now: T) {
        while let Some((exp, key)) = self.pop_expired(now) {
            // Only if the entry was not replaced by one that lasts past this item's expiry.
            if self
                .entries
                .get(&key)
                .is_some_and(|(_, current)| *current <= exp)
            {
                self.entries.remove(&key);
            }
        }
        // Stale items from replaced entries are bounded by rebuilding when they dominate.
        if self.queued() > 2 * self.entries.len() + 1024 {
            let mut items: Vec<_> = self
                .entries
                .iter()
                .map(|(k, (_, e))| (*e, k.clone()))
                .collect();
            items.sort_unstable_by_key(|(e, _)| *e);
            self.fifo = items.into();
            self.heap.clear();
        }
    }
}

impl<K, V, T> fmt::Debug for TtlMap<K, V, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys and values may be secrets' fingerprints or principals: only the size shows.
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("TtlMap")
            .field("len", &inner.entries.len())
            .field("capacity", &inner.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    #[test]
    fn an_entry_lives_until_its_own_expiry() {
        let m = TtlMap::new(4);
        m.insert("a", 1, at(10), at(0)).unwrap();
        m.insert("b", 2, at(5), at(0)).unwrap();
        assert_eq!(m.get("a", at(9)), Some(1));
        assert_eq!(m.get("b", at(4)), Some(2));
        assert_eq!(m.get("b", at(5)), None);
        assert_eq!(m.get("a", at(10)), None);
        // Dropped on the next write, earliest first.
        m.insert("c", 3, at(30), at(6)).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_full_map_refuses_new_keys_but_replaces_held_ones() {
        let m = TtlMap::new(2);
        m.insert("a", 1, at(10), at(0)).unwrap();
        m.insert("b", 2, at(10), at(0)).unwrap();
        assert_eq!(m.insert("c", 3, at(10), at(0)), Err(Full));
        assert_eq!(m.get("c", at(0)), None);
        m.insert("a", 9, at(3), at(0)).unwrap();
        assert_eq!(m.get("a", at(2)), Some(9));
        // The shortened entry expires at its new time, and frees its place.
        assert_eq!(m.get("a", at(3)), None);
        m.insert("c", 3, at(10), at(3)).unwrap();
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn capacity_is_a_hard_bound_under_a_flood_of_keys() {
        let m = TtlMap::new(8);
        for i in 0u32..1000 {
            let _ = m.insert(i, (), at(u64::from(i % 7) + 1), at(u64::from(i / 100)));
            assert!(m.len() <= 8);
        }
    }

    #[test]
    fn insert_new_and_extend_keep_a_live_entry() {
        let m = TtlMap::new(4);
        assert_eq!(m.insert_new("n", 1, at(5), at(0)), Ok(true));
        assert_eq!(m.insert_new("n", 2, at(50), at(1)), Ok(false));
        assert_eq!(m.get("n", at(1)), Some(1));
        assert_eq!(m.insert_new("n", 3, at(10), at(5)), Ok(true));
        m.extend("n", 4, at(8), at(5)).unwrap();
        assert_eq!(m.expiry("n", at(5)), Some(at(10)));
        assert_eq!(m.get("n", at(5)), Some(3));
        m.extend("n", 5, at(20), at(5)).unwrap();
        assert_eq!(m.expiry("n", at(5)), Some(at(20)));
        assert!(m.remove("n"));
        assert!(!m.contains("n", at(6)));
        assert!(!m.remove("n"));
    }

    #[test]
    fn replaced_entries_do_not_grow_the_expiry_queue_without_bound() {
        let m = TtlMap::new(2);
        for i in 0..10_000u64 {
            m.insert("k", i, at(100_000 - i), at(0)).unwrap();
        }
        assert!(m.queued() <= 2 * m.len() + 1024 + 1);
        assert_eq!(m.get("k", at(0)), Some(9_999));
    }

    /// The set against a plain map model: random keys, TTLs in and out of order, extensions
    /// and clock steps. Every answer matches, and nothing expired stays held.
    #[test]
    fn the_map_matches_a_naive_model_whatever_the_expiry_order() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut now = start;
        let set = TtlMap::new(10_000);
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
                set.extend(Arc::<str>::from(key.as_str()), (), until, now)
                    .unwrap();
                let e = model.entry(key.clone()).or_insert(until);
                *e = (*e).max(until);
            } else {
                let fresh = !model.contains_key(&key);
                assert_eq!(
                    set.insert_new(Arc::<str>::from(key.as_str()), (), until, now)
                        .unwrap(),
                    fresh,
                    "step {step}"
                );
                if fresh {
                    model.insert(key.clone(), until);
                }
            }
            let held = set.lock();
            assert_eq!(held.entries.len(), model.len(), "step {step}");
            for (k, e) in &model {
                assert_eq!(
                    held.entries.get(k.as_str()).map(|(_, u)| u),
                    Some(e),
                    "step {step}"
                );
            }
            assert!(held.queued() <= 2 * held.entries.len() + 1024);
            drop(held);
            now += Duration::from_millis(next(40));
        }
    }
}
