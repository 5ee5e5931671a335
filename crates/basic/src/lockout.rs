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

use crate::error::BasicConfigError;

/// When failed attempts lead to a lock-out, and for how long.
///
/// After `max_failures` failures within `window` (counted from the first), every attempt is
/// answered 429 with `Retry-After` for the lock-out, without running argon2. A success does
/// not wipe earlier failures: they expire with their window, so an attacker cannot hide
/// guesses between a legitimate client's requests.
///
/// A policy is fixed ([`new`](Self::new): every lock-out lasts `lockout`) or progressive
/// ([`with_backoff_up_to`](Self::with_backoff_up_to): each renewed lock-out lasts twice the
/// one before, up to a cap). A progressive counter remembers its lock-outs (its strikes)
/// until it has been quiet for the cap after the last one ended; then it starts again at
/// `lockout`. This is the throttling NIST SP 800-63B §5.2.2 asks for: a limit high enough
/// that it rarely locks out a real user, and waits that grow while the guessing goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    max_failures: u32,
    window: Duration,
    lockout: Duration,
    max_lockout: Duration,
}

impl LockoutPolicy {
    /// `max_failures` failures within `window` lock out for `lockout`. Zero for any of the
    /// three is refused.
    pub fn new(
        max_failures: u32,
        window: Duration,
        lockout: Duration,
    ) -> Result<Self, BasicConfigError> {
        if max_failures == 0 {
            return Err(BasicConfigError::InvalidSetting(
                "max_failures must be at least 1",
            ));
        }
        if window.is_zero() || lockout.is_zero() {
            return Err(BasicConfigError::InvalidSetting(
                "the failure window and the lock-out must be longer than zero",
            ));
        }
        Ok(Self {
            max_failures,
            window,
            lockout,
            max_lockout: lockout,
        })
    }

    /// Progressive back-off: the first lock-out lasts `lockout`, each renewed one twice the
    /// one before, never more than `max_lockout`. A cap below `lockout` is refused.
    pub fn with_backoff_up_to(mut self, max_lockout: Duration) -> Result<Self, BasicConfigError> {
        if max_lockout < self.lockout {
            return Err(BasicConfigError::InvalidSetting(
                "the longest lock-out must not be shorter than the first",
            ));
        }
        self.max_lockout = max_lockout;
        Ok(self)
    }

    /// The default per user-id, whatever the address: 100 failures in 15 minutes lock out
    /// for 1 minute, doubling on each renewed lock-out up to 1 hour.
    ///
    /// High on purpose: this is the counter an attacker spreading guesses over many
    /// addresses reaches, and when it locks it locks the real user out of every address
    /// that has no cached verification (OWASP Authentication Cheat Sheet, "Account
    /// Lockout": a lock-out must not become a denial of service).
    pub const fn per_user() -> Self {
        Self {
            max_failures: 100,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(60 * 60),
        }
    }

    /// The default per (user-id, client address): 5 failures in 15 minutes lock that user
    /// out of that address for 15 minutes. Low, because it locks out only the address
    /// that guessed.
    pub const fn per_user_address() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_lockout: Duration::from_secs(15 * 60),
        }
    }

    /// The default per client address, across user-ids: 20 failures in 15 minutes lock out
    /// for 15 minutes.
    pub const fn per_address() -> Self {
        Self {
            max_failures: 20,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_lockout: Duration::from_secs(15 * 60),
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

    /// How long the first lock-out lasts.
    pub fn lockout(&self) -> Duration {
        self.lockout
    }

    /// How long a lock-out lasts at most (equal to [`lockout`](Self::lockout) when fixed).
    pub fn max_lockout(&self) -> Duration {
        self.max_lockout
    }

    /// Whether renewed lock-outs grow.
    pub fn is_progressive(&self) -> bool {
        self.max_lockout > self.lockout
    }

    /// How long the lock-out that follows `strikes` earlier ones lasts:
    /// `lockout × 2^strikes`, at most [`max_lockout`](Self::max_lockout).
    pub fn lockout_after(&self, strikes: u32) -> Duration {
        let factor = 1u32.checked_shl(strikes.min(31)).unwrap_or(u32::MAX);
        self.lockout
            .checked_mul(factor)
            .map_or(self.max_lockout, |d| d.min(self.max_lockout))
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

/// What one set of failure counters is kept for.
///
/// Names never appear in a key: user-ids and client ids count by the SHA-256 of their bytes
/// (fixed-size whatever length is sent, and safe in a key of any store), and each kind has
/// its own prefix, so a Basic user and an OAuth client of one name never share a counter.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockoutKey {
    /// A Basic user-id, known or not, from any address.
    User([u8; 32]),
    /// A client address, across Basic user-ids: IPv4 as is, IPv6 by its /64 prefix.
    Address(IpAddr),
    /// A Basic user-id from one client address.
    UserAtAddress([u8; 32], IpAddr),
    /// An OAuth 2.0 client id, known or not, from one client address.
    ClientAtAddress([u8; 32], IpAddr),
    /// A client address, across OAuth 2.0 client ids.
    ClientAddress(IpAddr),
}

fn sha256(domain: &[u8], id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(id.as_bytes());
    h.finalize().into()
}

impl LockoutKey {
    /// The key of `user_id`, from any address.
    pub fn user(user_id: &str) -> Self {
        Self::User(sha256(b"", user_id))
    }

    /// The key of the client address `ip` (an IPv6 address counts by its /64, an IPv4-mapped
    /// one as the IPv4 address).
    pub fn address(ip: IpAddr) -> Self {
        Self::Address(address_key(ip))
    }

    /// The key of `user_id` from the client address `ip`.
    pub fn user_at(user_id: &str, ip: IpAddr) -> Self {
        Self::UserAtAddress(sha256(b"", user_id), address_key(ip))
    }

    /// The key of the OAuth 2.0 client `client_id` from the client address `ip`.
    pub fn client_at(client_id: &str, ip: IpAddr) -> Self {
        // Domain-separated from user-ids, though the prefix of the id already tells them apart.
        Self::ClientAtAddress(sha256(b"oauth2-client\0", client_id), address_key(ip))
    }

    /// The key of the client address `ip` at the OAuth 2.0 endpoints.
    pub fn client_address(ip: IpAddr) -> Self {
        Self::ClientAddress(address_key(ip))
    }

    /// A short, stable token for `id` in a log line where the id itself must not appear (an
    /// unknown user-id may be a password typed into the wrong field): `sha256:` and the
    /// first 8 hex digits of its SHA-256. Enough to correlate the events of one id, too
    /// short to stand for it.
    pub fn short_hash(id: &str) -> String {
        let hash = sha256(b"", id);
        let mut s = String::with_capacity(7 + 8);
        s.push_str("sha256:");
        s.push_str(&hex::encode(hash.get(..4).unwrap_or_default()));
        s
    }

    /// A printable id, distinct for distinct keys and free of spaces and control characters:
    /// `user:<hex>`, `addr:<address>`, `user:<hex>@<address>`, `oauth-client:<hex>@<address>`
    /// or `oauth-addr:<address>`. Stores that need a string key use this.
    pub fn id(&self) -> String {
        let mut s = String::with_capacity(13 + 64 + 1 + 39);
        match self {
            Self::User(hash) => {
                s.push_str("user:");
                s.push_str(&hex::encode(hash));
            }
            Self::Address(ip) => {
                s.push_str("addr:");
                s.push_str(&ip.to_string());
            }
            Self::UserAtAddress(hash, ip) => {
                s.push_str("user:");
                s.push_str(&hex::encode(hash));
                s.push('@');
                s.push_str(&ip.to_string());
            }
            Self::ClientAtAddress(hash, ip) => {
                s.push_str("oauth-client:");
                s.push_str(&hex::encode(hash));
                s.push('@');
                s.push_str(&ip.to_string());
            }
            Self::ClientAddress(ip) => {
                s.push_str("oauth-addr:");
                s.push_str(&ip.to_string());
            }
        }
        s
    }

    /// Which of the in-memory store's trackers counts this key.
    fn kind(&self) -> usize {
        match self {
            Self::User(_) => 0,
            Self::Address(_) => 1,
            Self::UserAtAddress(..) => 2,
            Self::ClientAtAddress(..) => 3,
            Self::ClientAddress(_) => 4,
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
/// ([`LockoutPolicy`]). apiauth-oauth2's authorization server counts failed client
/// authentication in the same way ([`LockoutKey::client_at`], [`LockoutKey::client_address`]). The default is [`MemoryLockoutStore`] (one process); a shared store
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

/// How many kinds of [`LockoutKey`] there are: the in-memory store bounds each on its own.
const KINDS: usize = 5;

/// The default [`LockoutStore`]: counters in this process's memory, bounded to a number of
/// keys of each kind (user-ids, addresses, (user-id, address) pairs, …). Behind several
/// instances each has its own budget; use a shared store there.
///
/// When every slot of a kind holds a lock-out or an attempt in flight, a new key of that
/// kind is not counted rather than everyone refused: refusing would let an attacker lock out
/// the world, and the other counters and the verifier's concurrency cap still hold.
pub struct MemoryLockoutStore {
    capacity: usize,
    trackers: [Tracker<LockoutKey>; KINDS],
}

impl fmt::Debug for MemoryLockoutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLockoutStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryLockoutStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryLockoutStore {
    /// Up to 100 000 keys of each kind.
    pub fn new() -> Self {
        Self::with_capacity(100_000)
    }

    /// Up to `capacity` keys of each kind (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            trackers: std::array::from_fn(|_| Tracker::new(capacity)),
        }
    }

    fn tracker(&self, key: &LockoutKey) -> &Tracker<LockoutKey> {
        // `kind` is below KINDS by construction; the first tracker is a harmless fallback.
        self.trackers.get(key.kind()).unwrap_or(&self.trackers[0])
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
        Ok(admission(self.tracker(key).admit(*key, policy, now)))
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
        Ok(self.tracker(key).fail(key, policy, now))
    }

    fn release(&self, key: &LockoutKey, attempt: AttemptId) {
        if attempt != TRACKED {
            return;
        }
        self.tracker(key).release(key);
    }

    async fn locked_out(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(self.tracker(key).locked_out(key, policy, now))
    }
}

#[derive(Debug)]
struct Counter {
    failures: u32,
    in_flight: u32,
    window_start: SystemTime,
    locked_until: Option<SystemTime>,
    /// Lock-outs of a progressive policy remembered until `strikes_until`.
    strikes: u32,
    strikes_until: SystemTime,
}

impl Counter {
    fn new(now: SystemTime) -> Self {
        Self {
            failures: 0,
            in_flight: 0,
            window_start: now,
            locked_until: None,
            strikes: 0,
            strikes_until: now,
        }
    }

    /// Brings the counter up to `now`: ends a lock-out, a window or strikes that have run
    /// out.
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
        if self.strikes > 0 && now >= self.strikes_until {
            self.strikes = 0;
        }
    }

    fn is_idle(&self) -> bool {
        self.failures == 0
            && self.in_flight == 0
            && self.locked_until.is_none()
            && self.strikes == 0
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
                // world, and the other trackers and the verifier's concurrency cap still hold.
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
            let lockout = policy.lockout_after(counter.strikes);
            counter.locked_until = Some(now + lockout);
            if policy.is_progressive() {
                // Remembered for the cap after this lock-out ends: renewed guessing within
                // that time meets a longer one.
                counter.strikes = counter.strikes.saturating_add(1);
                counter.strikes_until = now + lockout + policy.max_lockout();
            }
            return Some(lockout);
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
        assert_eq!(store.trackers[0].len(), 0);
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
    fn progressive_lockouts_double_up_to_the_cap() {
        let p = LockoutPolicy::new(1, Duration::from_secs(60), Duration::from_secs(60))
            .unwrap()
            .with_backoff_up_to(Duration::from_secs(3600))
            .unwrap();
        let secs: Vec<u64> = (0..9).map(|n| p.lockout_after(n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(p.lockout_after(u32::MAX), Duration::from_secs(3600));
        let fixed = LockoutPolicy::per_address();
        assert!(!fixed.is_progressive());
        assert_eq!(fixed.lockout_after(7), fixed.lockout());
        assert!(
            LockoutPolicy::new(1, Duration::from_secs(1), Duration::from_secs(10))
                .unwrap()
                .with_backoff_up_to(Duration::from_secs(9))
                .is_err()
        );
    }

    #[test]
    fn default_policies_lock_pairs_first_and_users_late() {
        let (pair, addr, user) = (
            LockoutPolicy::per_user_address(),
            LockoutPolicy::per_address(),
            LockoutPolicy::per_user(),
        );
        assert_eq!(
            (
                pair.max_failures(),
                addr.max_failures(),
                user.max_failures()
            ),
            (5, 20, 100)
        );
        assert!(user.is_progressive());
        assert_eq!(user.lockout(), Duration::from_secs(60));
        assert_eq!(user.max_lockout(), Duration::from_secs(3600));
    }

    #[test]
    fn renewed_lockouts_grow_and_strikes_are_forgotten_after_a_quiet_cap() {
        let t = Tracker::new(16);
        let p = LockoutPolicy::new(2, Duration::from_secs(600), Duration::from_secs(60))
            .unwrap()
            .with_backoff_up_to(Duration::from_secs(240))
            .unwrap();
        let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lock = |now: SystemTime| {
            assert_eq!(t.admit("k", &p, now), Ok(true));
            assert_eq!(t.fail(&"k", &p, now), None);
            assert_eq!(t.admit("k", &p, now), Ok(true));
            t.fail(&"k", &p, now).unwrap()
        };
        let mut seen = Vec::new();
        for _ in 0..4 {
            let d = lock(now);
            seen.push(d.as_secs());
            // Still locked a second before the end, free at the end.
            let before = now + d - Duration::from_secs(1);
            assert_eq!(
                t.admit("k", &p, before),
                Err(Refusal::LockedOut(Duration::from_secs(1)))
            );
            now += d;
        }
        assert_eq!(seen, [60, 120, 240, 240]);
        // Quiet for the cap after the last lock-out: the next one starts small again.
        now += Duration::from_secs(240);
        assert_eq!(lock(now), Duration::from_secs(60));
    }

    #[test]
    fn each_kind_of_key_has_its_own_bound() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let keys = [
            LockoutKey::user("a"),
            LockoutKey::address(ip),
            LockoutKey::user_at("a", ip),
            LockoutKey::client_at("a", ip),
            LockoutKey::client_address(ip),
        ];
        let kinds: std::collections::HashSet<usize> = keys.iter().map(LockoutKey::kind).collect();
        assert_eq!(kinds.len(), KINDS);
        let ids: std::collections::HashSet<String> = keys.iter().map(LockoutKey::id).collect();
        assert_eq!(ids.len(), KINDS);
        assert_eq!(keys[2].id(), format!("{}@192.0.2.1", keys[0].id()));
        assert!(keys[3].id().starts_with("oauth-client:"));
        assert_ne!(keys[3].id().get(13..77), keys[0].id().get(5..69));
        assert_eq!(keys[4].id(), "oauth-addr:192.0.2.1");
    }

    #[test]
    fn short_hashes_are_sha256_prefixes_and_never_the_id() {
        let h = LockoutKey::short_hash("hunter2-pasted-into-the-user-field");
        assert!(h.starts_with("sha256:") && h.len() == 15, "{h}");
        assert!(
            h[7..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(!h.contains("hunter2"));
        // SHA-256("abc") starts ba7816bf (FIPS 180-2, appendix B.1).
        assert_eq!(LockoutKey::short_hash("abc"), "sha256:ba7816bf");
    }

    #[test]
    fn policy_refuses_zeroes() {
        assert!(LockoutPolicy::new(0, Duration::from_secs(1), Duration::from_secs(1)).is_err());
        assert!(LockoutPolicy::new(1, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(LockoutPolicy::new(1, Duration::from_secs(1), Duration::ZERO).is_err());
    }
}
