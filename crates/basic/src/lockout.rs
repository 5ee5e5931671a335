//! Failure counters per user-id and per client address, with lock-out: the
//! [`LockoutStore`] trait and its bounded in-memory implementation.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use apiauth_core::StoreError;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::BasicError;

/// When failed attempts lead to a lock-out.
///
/// After `max_failures` failures within `window` (counted from the first), every attempt is
/// answered 429 with `Retry-After` for `lockout`, without running argon2. A success does not
/// wipe earlier failures: they expire with their window, so an attacker cannot hide guesses
/// between a legitimate client's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
}

impl LockoutPolicy {
    /// `max_failures` failures within `window` lock out for `lockout`. Zero for any of the
    /// three is refused.
    pub fn new(max_failures: u32, window: Duration, lockout: Duration) -> Result<Self, BasicError> {
        if max_failures == 0 {
            return Err(BasicError::InvalidSetting(
                "max_failures must be at least 1",
            ));
        }
        if window.is_zero() || lockout.is_zero() {
            return Err(BasicError::InvalidSetting(
                "the failure window and the lock-out must be longer than zero",
            ));
        }
        Ok(Self {
            max_failures,
            window,
            lockout,
        })
    }

    /// The default per user-id: 5 failures in 15 minutes lock out for 15 minutes.
    pub const fn per_user() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }

    /// The default per client address: 20 failures in 15 minutes lock out for 15 minutes.
    pub const fn per_address() -> Self {
        Self {
            max_failures: 20,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
        }
    }

    /// Failures that trigger the lock-out.
    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// How long failures are remembered.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long a lock-out lasts.
    pub fn lockout(&self) -> Duration {
        self.lockout
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 prefix (one host usually owns a
/// whole /64, so counting single IPv6 addresses would count nothing).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// What one set of failure counters is kept for: a user-id or a client address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockoutKey {
    /// A user-id, known or not, by the SHA-256 of its bytes: fixed-size whatever length of
    /// name is sent, and safe to use in a key of any store.
    User([u8; 32]),
    /// A client address: IPv4 as is, IPv6 by its /64 prefix.
    Address(IpAddr),
}

impl LockoutKey {
    /// The key of `user_id`.
    pub fn user(user_id: &str) -> Self {
        Self::User(Sha256::digest(user_id.as_bytes()).into())
    }

    /// The key of the client address `ip` (an IPv6 address counts by its /64, an IPv4-mapped
    /// one as the IPv4 address).
    pub fn address(ip: IpAddr) -> Self {
        Self::Address(address_key(ip))
    }

    /// A printable id, distinct for distinct keys and free of spaces and control characters:
    /// `user:<hex SHA-256>` or `addr:<address>`. Stores that need a string key use this.
    pub fn id(&self) -> String {
        match self {
            Self::User(hash) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(5 + 64);
                s.push_str("user:");
                for b in hash {
                    s.push(char::from(HEX[usize::from(b >> 4)]));
                    s.push(char::from(HEX[usize::from(b & 0x0f)]));
                }
                s
            }
            Self::Address(ip) => format!("addr:{ip}"),
        }
    }
}

impl fmt::Debug for LockoutKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

/// One admitted attempt, as the [`LockoutStore`] that admitted it names it. It means
/// something only to that store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId(u64);

impl AttemptId {
    /// An id with the store's own meaning.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number the store gave it.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A [`LockoutStore`]'s answer to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// The attempt may go on. The store counts it as in flight until it is settled with
    /// [`record_failure`](LockoutStore::record_failure) or
    /// [`release`](LockoutStore::release).
    Admitted(AttemptId),
    /// Locked out for this long still: 429 with `Retry-After`.
    LockedOut(Duration),
    /// Enough attempts are already under way to reach the limit if they all fail: 429 with a
    /// short `Retry-After`.
    AttemptsInFlight,
}

/// Where failed attempts are counted, per [`LockoutKey`].
///
/// [`BasicAuth`](crate::BasicAuth) asks the store before it looks up a user or runs argon2,
/// and settles every admitted attempt exactly once: a wrong password is a
/// [`record_failure`](Self::record_failure), a success a [`release_now`](Self::release_now),
/// anything else (a credential store outage, a client that went away) a
/// [`release`](Self::release); releases count nothing.
/// Counting admitted attempts as in flight until then keeps parallel guesses from
/// overshooting the limit.
///
/// A success does not wipe earlier failures; they expire with their window
/// ([`LockoutPolicy`]). The default is [`MemoryLockoutStore`] (one process); a shared store
/// (apiauth-redis's `RedisLockoutStore`) gives every instance behind a load balancer one
/// failure budget. Layers given the same store share its counters.
///
/// Errors fail closed: `admit` and `record_failure` failing is answered 503 with
/// `Retry-After`, never a pass and never a 401, and counts no failure.
#[async_trait]
pub trait LockoutStore: Send + Sync + 'static {
    /// Admits one attempt for `key` under `policy` at `now`, or refuses it.
    async fn admit(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Admission, StoreError>;

    /// Settles `attempt` as a failure. `Some(lockout)` if this failure started a lock-out of
    /// that length.
    async fn record_failure(
        &self,
        key: &LockoutKey,
        attempt: AttemptId,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError>;

    /// Settles `attempt` without counting a failure. Called from `Drop`, so it must not
    /// block; a store that needs I/O does it in the background and lets a lost release
    /// expire on its own.
    fn release(&self, key: &LockoutKey, attempt: AttemptId);

    /// Settles `attempt` without counting a failure and returns once that is done, so the
    /// client's next attempt does not find this one still in flight. Used after a success.
    /// It cannot fail: a store that could not release lets the attempt expire. Default:
    /// [`release`](Self::release).
    async fn release_now(&self, key: &LockoutKey, attempt: AttemptId) {
        self.release(key, attempt);
    }

    /// How long `key` is still locked out under `policy` at `now`, if it is; admits nothing.
    /// [`BasicAuth`](crate::BasicAuth) asks this instead of [`admit`](Self::admit) when the
    /// credentials are a hit in its verification cache: such a request runs no password
    /// check, so it is no guess to reserve a slot for, but a lock-out still refuses it.
    /// Default: an `admit` settled at once with `release_now`.
    async fn locked_out(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(match self.admit(key, policy, now).await? {
            Admission::Admitted(attempt) => {
                self.release_now(key, attempt).await;
                None
            }
            Admission::LockedOut(left) => Some(left),
            Admission::AttemptsInFlight => None,
        })
    }
}

#[async_trait]
impl<T: LockoutStore + ?Sized> LockoutStore for Arc<T> {
    async fn admit(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Admission, StoreError> {
        (**self).admit(key, policy, now).await
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        attempt: AttemptId,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        (**self).record_failure(key, attempt, policy, now).await
    }

    fn release(&self, key: &LockoutKey, attempt: AttemptId) {
        (**self).release(key, attempt);
    }

    async fn release_now(&self, key: &LockoutKey, attempt: AttemptId) {
        (**self).release_now(key, attempt).await;
    }

    async fn locked_out(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        (**self).locked_out(key, policy, now).await
    }
}

/// The default [`LockoutStore`]: counters in this process's memory, bounded to a number of
/// user-ids and of addresses (each). Behind several instances each has its own budget; use
/// a shared store there.
///
/// When every slot holds a lock-out or an attempt in flight, a new key is not counted rather
/// than everyone refused: refusing would let an attacker lock out the world, and the other
/// counter and the verifier's concurrency cap still hold.
pub struct MemoryLockoutStore {
    users: Tracker<[u8; 32]>,
    addresses: Tracker<IpAddr>,
}

impl fmt::Debug for MemoryLockoutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLockoutStore")
            .field("capacity", &self.users.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryLockoutStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLockoutStore {
    /// Up to 100 000 user-ids and 100 000 addresses.
    pub fn new() -> Self {
        Self::with_capacity(100_000)
    }

    /// Up to `capacity` user-ids and `capacity` addresses (at least 1 each).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            users: Tracker::new(capacity),
            addresses: Tracker::new(capacity),
        }
    }
}

/// The in-memory store's attempt ids: whether the attempt holds an in-flight slot.
const UNTRACKED: AttemptId = AttemptId(0);
const TRACKED: AttemptId = AttemptId(1);

fn admission(r: Result<bool, Refusal>) -> Admission {
    match r {
        Ok(true) => Admission::Admitted(TRACKED),
        Ok(false) => Admission::Admitted(UNTRACKED),
        Err(Refusal::LockedOut(left)) => Admission::LockedOut(left),
        Err(Refusal::AttemptsInFlight) => Admission::AttemptsInFlight,
    }
}

#[async_trait]
impl LockoutStore for MemoryLockoutStore {
    async fn admit(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Admission, StoreError> {
        Ok(admission(match key {
            LockoutKey::User(k) => self.users.admit(*k, policy, now),
            LockoutKey::Address(k) => self.addresses.admit(*k, policy, now),
        }))
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        attempt: AttemptId,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        if attempt != TRACKED {
            return Ok(None);
        }
        Ok(match key {
            LockoutKey::User(k) => self.users.fail(k, policy, now),
            LockoutKey::Address(k) => self.addresses.fail(k, policy, now),
        })
    }

    fn release(&self, key: &LockoutKey, attempt: AttemptId) {
        if attempt != TRACKED {
            return;
        }
        match key {
            LockoutKey::User(k) => self.users.release(k),
            LockoutKey::Address(k) => self.addresses.release(k),
        }
    }

    async fn locked_out(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(match key {
            LockoutKey::User(k) => self.users.locked_out(k, policy, now),
            LockoutKey::Address(k) => self.addresses.locked_out(k, policy, now),
        })
    }
}

#[derive(Debug)]
struct Counter {
    failures: u32,
    in_flight: u32,
    window_start: SystemTime,
    locked_until: Option<SystemTime>,
}

impl Counter {
    fn new(now: SystemTime) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            window_start: now,
            locked_until: None,
        }
    }

    /// Brings the counter up to `now`: ends a lock-out or a window that has run out.
    fn refresh(&mut self, now: SystemTime, policy: &LockoutPolicy) {
        if let Some(until) = self.locked_until {
            if now >= until {
                self.locked_until = None;
                self.failures = 0;
                self.window_start = now;
            }
        } else if now >= self.window_start + policy.window {
            self.failures = 0;
            self.window_start = now;
        }
    }

    fn is_idle(&self) -> bool {
        self.failures == 0 && self.in_flight == 0 && self.locked_until.is_none()
    }
}

/// Why an attempt may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Locked out for this long still.
    LockedOut(Duration),
    /// Enough attempts are already under way to reach the limit if they fail.
    AttemptsInFlight,
}

/// Counts failures per key in bounded memory.
struct Tracker<K> {
    capacity: usize,
    counters: Mutex<HashMap<K, Counter>>,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            counters: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one attempt or refuses it. An admitted attempt is counted as in flight until it
    /// is settled ([`fail`](Self::fail) or [`release`](Self::release)), so concurrent guesses
    /// cannot overshoot the limit. `Ok(false)`: admitted but not counted (no room).
    fn admit(&self, key: K, policy: &LockoutPolicy, now: SystemTime) -> Result<bool, Refusal> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if !counters.contains_key(&key) && counters.len() >= self.capacity {
            Self::make_room(&mut counters, self.capacity, policy, now);
            if counters.len() >= self.capacity {
                // Every slot holds a lock-out or an attempt in flight. Not counting this key
                // is the lesser evil: refusing everyone would let an attacker lock out the
                // world, and the other tracker and the verifier's concurrency cap still hold.
                return Ok(false);
            }
        }
        let counter = counters.entry(key).or_insert_with(|| Counter::new(now));
        counter.refresh(now, policy);
        if let Some(until) = counter.locked_until {
            let left = until.duration_since(now).unwrap_or(Duration::ZERO);
            return Err(Refusal::LockedOut(left));
        }
        if counter.failures.saturating_add(counter.in_flight) >= policy.max_failures {
            return Err(Refusal::AttemptsInFlight);
        }
        counter.in_flight += 1;
        Ok(true)
    }

    /// Drops counters that hold nothing any more; if none, one that is neither locked nor in
    /// flight (the one with the oldest window).
    fn make_room(
        counters: &mut HashMap<K, Counter>,
        capacity: usize,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) {
        for c in counters.values_mut() {
            c.refresh(now, policy);
        }
        counters.retain(|_, c| !c.is_idle());
        if counters.len() < capacity {
            return;
        }
        let victim = counters
            .iter()
            .filter(|(_, c)| c.locked_until.is_none() && c.in_flight == 0)
            .min_by_key(|(_, c)| c.window_start)
            .map(|(k, _)| k.clone());
        if let Some(k) = victim {
            counters.remove(&k);
        }
    }

    /// How long `key` is still locked out, if it is. Counts and reserves nothing.
    fn locked_out(&self, key: &K, policy: &LockoutPolicy, now: SystemTime) -> Option<Duration> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let counter = counters.get_mut(key)?;
        counter.refresh(now, policy);
        let until = counter.locked_until?;
        Some(until.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Settles one counted attempt as a failure. `Some(lockout)` if it started a lock-out.
    fn fail(&self, key: &K, policy: &LockoutPolicy, now: SystemTime) -> Option<Duration> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let counter = counters.get_mut(key)?;
        counter.in_flight = counter.in_flight.saturating_sub(1);
        counter.refresh(now, policy);
        if counter.locked_until.is_some() {
            return None;
        }
        counter.failures = counter.failures.saturating_add(1);
        if counter.failures >= policy.max_failures {
            counter.locked_until = Some(now + policy.lockout);
            return Some(policy.lockout);
        }
        None
    }

    /// Settles one counted attempt without a failure.
    fn release(&self, key: &K) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(counter) = counters.get_mut(key) {
            counter.in_flight = counter.in_flight.saturating_sub(1);
            if counter.is_idle() {
                counters.remove(key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LockoutPolicy {
        LockoutPolicy::new(3, Duration::from_secs(60), Duration::from_secs(30)).unwrap()
    }

    #[test]
    fn concurrent_attempts_cannot_overshoot_the_limit() {
        let t = Tracker::new(16);
        let p = policy();
        let now = SystemTime::now();
        assert_eq!(t.admit("k", &p, now), Ok(true));
        assert_eq!(t.admit("k", &p, now), Ok(true));
        assert_eq!(t.admit("k", &p, now), Ok(true));
        assert_eq!(t.admit("k", &p, now), Err(Refusal::AttemptsInFlight));
        assert_eq!(t.fail(&"k", &p, now), None);
        t.release(&"k"); // a success or an abandoned attempt: no failure counted
        assert_eq!(t.fail(&"k", &p, now), None);
        assert_eq!(t.admit("k", &p, now), Ok(true));
        assert_eq!(t.fail(&"k", &p, now), Some(Duration::from_secs(30)));
        assert_eq!(
            t.admit("k", &p, now),
            Err(Refusal::LockedOut(Duration::from_secs(30)))
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let t = Tracker::new(100);
        let p = policy();
        let now = SystemTime::now();
        for i in 0..10_000u32 {
            if t.admit(i, &p, now) == Ok(true) {
                t.fail(&i, &p, now);
            }
            assert!(t.len() <= 100);
        }
    }

    #[tokio::test]
    async fn untracked_attempts_settle_without_touching_other_counters() {
        let store = MemoryLockoutStore::with_capacity(1);
        let p = policy();
        let now = SystemTime::now();
        let a = LockoutKey::user("a");
        let b = LockoutKey::user("b");
        let Admission::Admitted(first) = store.admit(&a, &p, now).await.unwrap() else {
            panic!("admitted");
        };
        // The one slot is in flight: `b` goes through uncounted.
        let Admission::Admitted(second) = store.admit(&b, &p, now).await.unwrap() else {
            panic!("admitted");
        };
        assert_eq!(second, UNTRACKED);
        assert_eq!(
            store.record_failure(&b, second, &p, now).await.unwrap(),
            None
        );
        store.release(&b, second);
        store.release(&a, first);
        assert_eq!(store.users.len(), 0);
    }

    #[test]
    fn keys_have_distinct_printable_ids() {
        let u = LockoutKey::user("addr:192.0.2.1");
        let a = LockoutKey::address("192.0.2.1".parse().unwrap());
        assert_ne!(u.id(), a.id());
        assert_eq!(a.id(), "addr:192.0.2.1");
        assert!(u.id().starts_with("user:") && u.id().len() == 5 + 64);
        assert!(!format!("{u:?}").contains("192.0.2.1"));
        let v6 = LockoutKey::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(v6.id(), "addr:2001:db8:1:2::");
    }

    #[test]
    fn ipv6_addresses_count_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn policy_refuses_zeroes() {
        assert!(LockoutPolicy::new(0, Duration::from_secs(1), Duration::from_secs(1)).is_err());
        assert!(LockoutPolicy::new(1, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(LockoutPolicy::new(1, Duration::from_secs(1), Duration::ZERO).is_err());
    }
}
