//! Failure counters per user-id and per client address, with lock-out.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

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
pub(crate) enum Refusal {
    /// Locked out for this long still.
    LockedOut(Duration),
    /// Enough attempts are already under way to reach the limit if they fail.
    AttemptsInFlight,
}

/// Counts failures per key in bounded memory.
pub(crate) struct Tracker<K> {
    policy: LockoutPolicy,
    capacity: usize,
    counters: Mutex<HashMap<K, Counter>>,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    pub(crate) fn new(policy: LockoutPolicy, capacity: usize) -> Self {
        Self {
            policy,
            capacity,
            counters: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    /// Admits one attempt or refuses it. An admitted attempt is counted as in flight until its
    /// [`Reservation`] is settled or dropped, so concurrent guesses cannot overshoot the limit.
    pub(crate) fn admit(&self, key: K, now: SystemTime) -> Result<Reservation<'_, K>, Refusal> {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if !counters.contains_key(&key) && counters.len() >= self.capacity {
            self.make_room(&mut counters, now);
            if counters.len() >= self.capacity {
                // Every slot holds a lock-out or an attempt in flight. Not counting this key
                // is the lesser evil: refusing everyone would let an attacker lock out the
                // world, and the other tracker and the verifier's concurrency cap still hold.
                return Ok(Reservation {
                    tracker: self,
                    key: None,
                });
            }
        }
        let counter = counters
            .entry(key.clone())
            .or_insert_with(|| Counter::new(now));
        counter.refresh(now, &self.policy);
        if let Some(until) = counter.locked_until {
            let left = until.duration_since(now).unwrap_or(Duration::ZERO);
            return Err(Refusal::LockedOut(left));
        }
        if counter.failures.saturating_add(counter.in_flight) >= self.policy.max_failures {
            return Err(Refusal::AttemptsInFlight);
        }
        counter.in_flight += 1;
        Ok(Reservation {
            tracker: self,
            key: Some(key),
        })
    }

    /// Drops counters that hold nothing any more; if none, one that is neither locked nor in
    /// flight (the one with the oldest window).
    fn make_room(&self, counters: &mut HashMap<K, Counter>, now: SystemTime) {
        for c in counters.values_mut() {
            c.refresh(now, &self.policy);
        }
        counters.retain(|_, c| !c.is_idle());
        if counters.len() < self.capacity {
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

    #[cfg(test)]
    fn len(&self) -> usize {
        self.counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// One admitted attempt. Dropping it (success, a store outage, a client that went away)
/// takes it off the in-flight count without counting a failure.
pub(crate) struct Reservation<'a, K: Hash + Eq + Clone> {
    tracker: &'a Tracker<K>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Reservation<'_, K> {
    /// Records a failure. `Some(lockout)` if this failure started a lock-out.
    pub(crate) fn fail(mut self, now: SystemTime) -> Option<Duration> {
        let key = self.key.take()?;
        let policy = &self.tracker.policy;
        let mut counters = self
            .tracker
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let counter = counters.get_mut(&key)?;
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
}

impl<K: Hash + Eq + Clone> Drop for Reservation<'_, K> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut counters = self
            .tracker
            .counters
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(counter) = counters.get_mut(&key) {
            counter.in_flight = counter.in_flight.saturating_sub(1);
            if counter.is_idle() {
                counters.remove(&key);
            }
        }
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
        let t = Tracker::new(policy(), 16);
        let now = SystemTime::now();
        let a = t.admit("k", now).unwrap();
        let b = t.admit("k", now).unwrap();
        let c = t.admit("k", now).unwrap();
        assert_eq!(t.admit("k", now).err(), Some(Refusal::AttemptsInFlight));
        assert_eq!(a.fail(now), None);
        drop(b); // a success or an abandoned attempt: no failure counted
        assert_eq!(c.fail(now), None);
        let d = t.admit("k", now).unwrap();
        assert_eq!(d.fail(now), Some(Duration::from_secs(30)));
        assert_eq!(
            t.admit("k", now).err(),
            Some(Refusal::LockedOut(Duration::from_secs(30)))
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let t = Tracker::new(policy(), 100);
        let now = SystemTime::now();
        for i in 0..10_000u32 {
            if let Ok(r) = t.admit(i, now) {
                r.fail(now);
            }
            assert!(t.len() <= 100);
        }
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
