//! Quota policies: how many requests a bucket holds and how fast it refills.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A GCRA quota: a bucket of `burst` requests that regains one request every `period`.
///
/// Built with [`per_second`](Self::per_second), [`per_minute`](Self::per_minute),
/// [`per_hour`](Self::per_hour) or [`with_period`](Self::with_period), then
/// [`burst`](Self::burst). [`QuotaLayer`](crate::QuotaLayer) gives each policy it holds a
/// [`name`](Self::name) (`plan:pro`, `group:export:anonymous`, …) that keeps its buckets apart
/// from every other policy's, in memory and in a shared store alike.
///
/// ```
/// use apiauth_quota::QuotaPolicy;
/// use std::time::Duration;
///
/// // 10 requests a second on average, bursts of up to 50.
/// let p = QuotaPolicy::per_second(10).burst(50);
/// assert_eq!(p.burst_size(), 50);
/// assert_eq!(p.replenish_period(), Duration::from_millis(100));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct QuotaPolicy {
    name: Arc<str>,
    burst: u32,
    period: Duration,
}

impl QuotaPolicy {
    fn per_window(n: u32, window: Duration) -> Self {
        Self {
            name: Arc::from(""),
            burst: n,
            // `n == 0` yields a zero period, which `QuotaLayer::build` rejects.
            period: window.checked_div(n).unwrap_or(Duration::ZERO),
        }
    }

    /// `n` requests per second, with a burst of `n`.
    #[must_use]
    pub fn per_second(n: u32) -> Self {
        Self::per_window(n, Duration::from_secs(1))
    }

    /// `n` requests per minute, with a burst of `n`.
    #[must_use]
    pub fn per_minute(n: u32) -> Self {
        Self::per_window(n, Duration::from_secs(60))
    }

    /// `n` requests per hour, with a burst of `n`.
    #[must_use]
    pub fn per_hour(n: u32) -> Self {
        Self::per_window(n, Duration::from_secs(3600))
    }

    /// One request regained every `period`, with a burst of 1.
    #[must_use]
    pub fn with_period(period: Duration) -> Self {
        Self {
            name: Arc::from(""),
            burst: 1,
            period,
        }
    }

    /// Sets how many requests the bucket holds when full.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Sets the bucket namespace. [`QuotaLayer`](crate::QuotaLayer) names the policies it
    /// holds itself; this is for driving a [`RateLimiter`](crate::RateLimiter) directly.
    #[must_use]
    pub fn named(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The bucket namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as a shared string, for metric labels without a copy.
    pub(crate) fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// How many requests a full bucket holds (the `RateLimit-Limit`).
    pub fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The time to regain one request.
    pub fn replenish_period(&self) -> Duration {
        self.period
    }

    /// Whether the policy can admit anything: a burst of at least one and a non-zero period.
    pub fn is_valid(&self) -> bool {
        self.burst > 0 && !self.period.is_zero()
    }
}

impl fmt::Debug for QuotaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuotaPolicy")
            .field("name", &self.name)
            .field("burst", &self.burst)
            .field("period", &self.period)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_rates_are_invalid_not_a_panic() {
        assert!(!QuotaPolicy::per_second(0).is_valid());
        assert!(!QuotaPolicy::per_minute(5).burst(0).is_valid());
        assert!(!QuotaPolicy::with_period(Duration::ZERO).is_valid());
        assert!(QuotaPolicy::per_hour(1).is_valid());
    }
}
