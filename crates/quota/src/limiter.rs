//! The rate-limiter trait and its in-memory GCRA implementation on `governor`.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use apiauth_core::StoreError;
use async_trait::async_trait;
use governor::Quota;
use governor::clock::{Clock as GovClock, MonotonicClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};

use crate::policy::QuotaPolicy;

/// The answer of a [`RateLimiter`] for one request.
///
/// Every implementation must fill it the same way, so that the response headers do not depend
/// on the backend:
///
/// - `limit`: the policy's burst size;
/// - `remaining`: requests still admissible right now after this one (0 when denied);
/// - `reset`: time until the bucket is full again: when allowed,
///   `(limit - remaining) × period` (exact to within one period, never short); when denied,
///   `retry_after + (limit - 1) × period`;
/// - `retry_after`: when denied, time until one request would be admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    limit: u32,
    remaining: u32,
    reset: Duration,
    retry_after: Option<Duration>,
}

impl Decision {
    /// The request may proceed.
    pub fn allow(limit: u32, remaining: u32, reset: Duration) -> Self {
        Self {
            allowed: true,
            limit,
            remaining: remaining.min(limit),
            reset,
            retry_after: None,
        }
    }

    /// The request is over quota; one request will be admitted after `retry_after`.
    pub fn deny(limit: u32, retry_after: Duration, reset: Duration) -> Self {
        Self {
            allowed: false,
            limit,
            remaining: 0,
            reset: reset.max(retry_after),
            retry_after: Some(retry_after),
        }
    }

    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The burst size of the policy.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Requests still admissible now.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Time until the bucket is full again.
    pub fn reset(&self) -> Duration {
        self.reset
    }

    /// When denied, time until one request would be admitted.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

/// Decides whether the caller identified by `key` may make one more request under `policy`.
///
/// Dyn-compatible, so a shared-store implementation (one bucket per key across every
/// instance) can stand in for [`MemoryRateLimiter`]. Buckets of different policies must be
/// kept apart: the policy's [`name`](QuotaPolicy::name) is the namespace.
///
/// A backend that cannot answer returns [`StoreError`]; the layer then fails closed with 503.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Takes one request from the bucket of `key` under `policy`, if there is one to take.
    async fn check(&self, key: &str, policy: &QuotaPolicy) -> Result<Decision, StoreError>;
}

#[async_trait]
impl<T: RateLimiter + ?Sized> RateLimiter for Arc<T> {
    async fn check(&self, key: &str, policy: &QuotaPolicy) -> Result<Decision, StoreError> {
        (**self).check(key, policy).await
    }
}

/// Default cap on live keys per policy in [`MemoryRateLimiter`]: about 10 MB per policy.
pub const DEFAULT_KEYS_PER_POLICY: usize = 100_000;

/// A `governor` state store we keep a second handle on, to ask "is this key known?".
struct SharedStore(Arc<DashMapStateStore<String>>);

impl StateStore for SharedStore {
    type Key = String;
    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<String> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }
    fn shrink_to_fit(&self) {
        ShrinkableKeyedStateStore::shrink_to_fit(&*self.0);
    }
    fn len(&self) -> usize {
        ShrinkableKeyedStateStore::len(&*self.0)
    }
    fn is_empty(&self) -> bool {
        ShrinkableKeyedStateStore::is_empty(&*self.0)
    }
}

type Gcra<C> = governor::RateLimiter<String, SharedStore, C, StateInformationMiddleware>;

/// One policy's keyed limiter.
struct Bucket<C: GovClock> {
    gcra: Gcra<C>,
    store: Arc<DashMapStateStore<String>>,
    limit: u32,
    period: Duration,
    /// Limiter-clock nanoseconds of the last sweep forced by a full table.
    last_forced_sweep: AtomicU64,
}

impl<C: GovClock> Bucket<C> {
    fn sweep(&self) {
        self.gcra.retain_recent();
        self.gcra.shrink_to_fit();
    }

    fn now_nanos(&self, origin: C::Instant) -> u64 {
        self.gcra.clock().now().duration_since(origin).as_u64()
    }
}

/// In-memory [`RateLimiter`]: one `governor` keyed GCRA limiter per policy.
///
/// Bounded: keys whose bucket has refilled are dropped by [`sweep`](Self::sweep), which
/// [`spawn_sweeper`](Self::spawn_sweeper) runs on a schedule; and each policy holds at most
/// `capacity` keys (approximately: requests racing on new keys may overshoot by the number in
/// flight). When a policy's table is full of live keys even after a sweep, a *new* key gets
/// [`StoreError::CapacityExceeded`] (503, fail closed) while known keys carry on. Because
/// anonymous callers have a policy of their own, a flood of addresses cannot crowd out
/// authenticated callers.
///
/// Generic over `governor`'s clock so tests can drive time with
/// [`FakeRelativeClock`](governor::clock::FakeRelativeClock).
pub struct MemoryRateLimiter<C: GovClock = MonotonicClock> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: GovClock> {
    clock: C,
    origin: C::Instant,
    capacity: usize,
    buckets: RwLock<HashMap<QuotaPolicy, Arc<Bucket<C>>>>,
}

impl<C: GovClock> Clone for MemoryRateLimiter<C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl Default for MemoryRateLimiter<MonotonicClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRateLimiter<MonotonicClock> {
    /// A limiter on the monotonic clock holding [`DEFAULT_KEYS_PER_POLICY`] keys per policy.
    pub fn new() -> Self {
        Self::with_clock(MonotonicClock)
    }
}

impl<C> MemoryRateLimiter<C>
where
    C: GovClock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    /// A limiter on `clock`.
    pub fn with_clock(clock: C) -> Self {
        let origin = clock.now();
        Self {
            inner: Arc::new(Inner {
                clock,
                origin,
                capacity: DEFAULT_KEYS_PER_POLICY,
                buckets: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Caps the live keys per policy (at least 1). Call it when building the limiter: it
    /// starts from empty state, apart from clones made before.
    #[must_use]
    pub fn with_capacity(self, capacity: usize) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                clock: inner.clock.clone(),
                origin: inner.origin,
                capacity: capacity.max(1),
                buckets: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// Number of keys held across every policy, live or not yet swept.
    pub fn len(&self) -> usize {
        self.buckets().iter().map(|b| b.gcra.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every key whose bucket has refilled (its state is the same as a fresh key's) and
    /// releases the memory.
    pub fn sweep(&self) {
        for b in self.buckets() {
            b.sweep();
        }
    }

    /// Runs [`sweep`](Self::sweep) every `every` on the Tokio runtime. The task ends by itself
    /// once the limiter is dropped.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner<C>> = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                MemoryRateLimiter { inner }.sweep();
            }
        })
    }

    fn buckets(&self) -> Vec<Arc<Bucket<C>>> {
        self.inner
            .buckets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn bucket(&self, policy: &QuotaPolicy) -> Arc<Bucket<C>> {
        if let Some(b) = self
            .inner
            .buckets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(policy)
        {
            return b.clone();
        }
        let mut map = self
            .inner
            .buckets
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(policy.clone())
            .or_insert_with(|| Arc::new(new_bucket(policy, self.inner.clock.clone())))
            .clone()
    }
}

/// `governor`'s quota for a policy; an invalid policy is clamped to the tightest valid one
/// rather than panicking (the layer refuses invalid policies at startup anyway).
fn new_bucket<C: GovClock>(policy: &QuotaPolicy, clock: C) -> Bucket<C> {
    let period = policy.replenish_period().max(Duration::from_nanos(1));
    let burst = NonZeroU32::MIN.saturating_add(policy.burst_size().saturating_sub(1));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_hour(NonZeroU32::MIN))
        .allow_burst(burst);
    let store = Arc::new(DashMapStateStore::<String>::default());
    let gcra: Gcra<C> = governor::RateLimiter::<
        String,
        SharedStore,
        C,
        governor::middleware::NoOpMiddleware<C::Instant>,
    >::new(quota, SharedStore(store.clone()), clock)
    .with_middleware::<StateInformationMiddleware>();
    Bucket {
        gcra,
        store,
        limit: burst.get(),
        period,
        last_forced_sweep: AtomicU64::new(0),
    }
}

fn mul(period: Duration, n: u32) -> Duration {
    period.checked_mul(n).unwrap_or(Duration::MAX)
}

#[async_trait]
impl<C> RateLimiter for MemoryRateLimiter<C>
where
    C: GovClock + Clone + Send + Sync + 'static,
    C::Instant: Send + Sync,
{
    async fn check(&self, key: &str, policy: &QuotaPolicy) -> Result<Decision, StoreError> {
        let b = self.bucket(policy);
        let key = key.to_owned();
        // A known key needs no room; `len` visits every shard, so it is asked only for new keys.
        if !b.store.contains_key(&key) && b.gcra.len() >= self.inner.capacity {
            // Full: sweep, but at most once per replenish period (capped at 1 s) so a flood of
            // new keys cannot turn every request into a full-table scan.
            let now = b.now_nanos(self.inner.origin);
            let gap = b.period.min(Duration::from_secs(1)).as_nanos();
            let last = b.last_forced_sweep.load(Ordering::Relaxed);
            if u128::from(now.saturating_sub(last)) >= gap
                && b.last_forced_sweep
                    .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                b.sweep();
            }
            if b.gcra.len() >= self.inner.capacity {
                return Err(StoreError::CapacityExceeded);
            }
        }
        let decision = match b.gcra.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                // The bucket is full again once the `limit - remaining` used cells have been
                // regained; this bound is exact to within one period, and never short.
                Decision::allow(
                    b.limit,
                    remaining,
                    mul(b.period, b.limit.saturating_sub(remaining)),
                )
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(b.gcra.clock().now());
                // Denied: the next cell comes after `wait`, the other `limit - 1` one period
                // apart after that.
                let reset = wait.saturating_add(mul(b.period, b.limit.saturating_sub(1)));
                Decision::deny(b.limit, wait, reset)
            }
        };
        Ok(decision)
    }
}

impl<C: GovClock> fmt::Debug for MemoryRateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn policy() -> QuotaPolicy {
        QuotaPolicy::per_second(1).burst(3).named("t")
    }

    #[tokio::test]
    async fn burst_then_deny_then_refill() {
        let clock = FakeRelativeClock::default();
        let l = MemoryRateLimiter::with_clock(clock.clone());
        let p = policy();
        for left in [2, 1, 0] {
            let d = l.check("a", &p).await.unwrap();
            assert!(d.is_allowed());
            assert_eq!(d.remaining(), left);
            assert_eq!(d.limit(), 3);
        }
        let d = l.check("a", &p).await.unwrap();
        assert!(!d.is_allowed());
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(d.reset(), Duration::from_secs(3));
        clock.advance(Duration::from_secs(1));
        assert!(l.check("a", &p).await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn policies_with_the_same_key_do_not_share_a_bucket() {
        let l = MemoryRateLimiter::with_clock(FakeRelativeClock::default());
        let a = QuotaPolicy::per_second(1).named("a");
        let b = QuotaPolicy::per_second(1).named("b");
        assert!(l.check("k", &a).await.unwrap().is_allowed());
        assert!(!l.check("k", &a).await.unwrap().is_allowed());
        assert!(l.check("k", &b).await.unwrap().is_allowed());
    }

    #[tokio::test]
    async fn invalid_policy_is_clamped_not_a_panic() {
        let l = MemoryRateLimiter::with_clock(FakeRelativeClock::default());
        let p = QuotaPolicy::per_second(0).burst(0);
        assert!(l.check("k", &p).await.unwrap().is_allowed());
        assert!(!l.check("k", &p).await.unwrap().is_allowed());
    }
}
