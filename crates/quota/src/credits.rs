//! Credits: a balance per tenant (or identity) that each billable answer draws on and that
//! refills at the start of each UTC calendar day or month (issue 18).
//!
//! A request *reserves* its route's [`Cost`] before the handler runs and the reservation is
//! *refunded* when the answer is not billable (by default: anything but 2xx). Concurrent
//! requests each reserve on their own, atomically in the [`CreditStore`], so two requests
//! cannot both spend the last credit; a request that fails after reserving gives back exactly
//! what it reserved, into the period it reserved from (a refund into a period that has already
//! rolled over is dropped: the new period starts full).
//!
//! ```
//! use apiauth_quota::{CreditStore, MemoryCreditStore, Reservation};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemoryCreditStore::new();
//! let period = 20_000; // the period's start, as days or months since the epoch
//! assert_eq!(store.reserve("tenant:acme", period, 10, 4).await.unwrap(), Reservation::Reserved { remaining: 6 });
//! assert_eq!(store.reserve("tenant:acme", period, 10, 7).await.unwrap(), Reservation::Exhausted { remaining: 6 });
//! store.refund("tenant:acme", period, 10, 4).await.unwrap();
//! assert_eq!(store.read("tenant:acme", period, 10).await.unwrap(), 10);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

/// How often a credit allowance refills, aligned to the UTC calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefillPeriod {
    /// At 00:00 UTC every day.
    Day,
    /// At 00:00 UTC on the first of every month.
    Month,
}

impl RefillPeriod {
    /// The index of the period containing `unix_secs` (days or months since 1970-01) and the
    /// Unix time at which the next period starts.
    #[must_use]
    pub fn locate(self, unix_secs: u64) -> (u64, u64) {
        let day = unix_secs / 86_400;
        match self {
            Self::Day => (day, (day + 1) * 86_400),
            Self::Month => {
                let (y, m, _) = civil_from_days(day);
                let index = (y - 1970) * 12 + (m - 1);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (index, days_from_civil(ny, nm) * 86_400)
            }
        }
    }

    /// The Unix time at which the period containing `unix_secs` started.
    #[must_use]
    pub fn start(self, unix_secs: u64) -> u64 {
        let day = unix_secs / 86_400;
        match self {
            Self::Day => day * 86_400,
            Self::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m) * 86_400
            }
        }
    }
}

/// `unix_secs` as an RFC 3339 UTC timestamp (`2027-01-01T00:00:00Z`).
#[must_use]
pub fn rfc3339(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(unix_secs / 86_400);
    let s = unix_secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

// Howard Hinnant's civil-calendar algorithms, restricted to dates from 1970 on (u64 only).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: u64, m: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5; // day 1 of the month
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A plan's credit allowance: `amount` credits each [`RefillPeriod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreditAllowance {
    /// Credits at the start of each period.
    pub amount: u64,
    /// When the balance refills.
    pub period: RefillPeriod,
}

impl CreditAllowance {
    /// `amount` credits per UTC calendar month.
    #[must_use]
    pub fn per_month(amount: u64) -> Self {
        Self {
            amount,
            period: RefillPeriod::Month,
        }
    }

    /// `amount` credits per UTC day.
    #[must_use]
    pub fn per_day(amount: u64) -> Self {
        Self {
            amount,
            period: RefillPeriod::Day,
        }
    }

    /// Seconds from `now` until the next refill (at least 1, for `Retry-After`).
    #[must_use]
    pub fn seconds_until_refill(&self, now: SystemTime) -> u64 {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let (_, next) = self.period.locate(secs);
        next.saturating_sub(secs).max(1)
    }
}

/// Whose balance and rate limit a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Every credential of a tenant shares one balance (the default).
    #[default]
    Tenant,
    /// Each identity (principal subject) has its own.
    Identity,
}

/// The credit cost of a route, declared next to it with
/// [`Credits::cost`](crate::Credits::cost) (`.route_layer(credits.cost(5))`); the default
/// cost ([`Credits::layer`](crate::Credits::layer)) is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cost(pub u64);

impl Cost {
    /// A cost of `n` credits (0: the route is free).
    #[must_use]
    pub fn new(n: u64) -> Self {
        Self(n)
    }
}

impl Default for Cost {
    fn default() -> Self {
        Self(1)
    }
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The cost was taken; `remaining` credits are left in the period.
    Reserved {
        /// Balance after the reservation.
        remaining: u64,
    },
    /// The balance was smaller than the cost; nothing was taken.
    Exhausted {
        /// Balance left (smaller than the cost).
        remaining: u64,
    },
}

/// A credit store failed (unreachable, bad answer); the request path fails closed with 503.
#[derive(Debug, thiserror::Error)]
#[error("credit store unavailable: {0}")]
pub struct CreditStoreError(pub String);

/// Where balances live. Every operation is atomic per key: `reserve` checks and takes in one
/// step. `period` is the index from [`RefillPeriod::locate`]; a key whose stored period differs
/// starts the new period at `allowance` (the refill), so no job runs at midnight.
#[async_trait]
pub trait CreditStore: Send + Sync + 'static {
    /// Take `cost` credits if the balance holds them.
    async fn reserve(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<Reservation, CreditStoreError>;
    /// Give back `cost` credits reserved in `period` (dropped if the period has rolled over).
    async fn refund(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<(), CreditStoreError>;
    /// The balance left in `period`.
    async fn read(&self, key: &str, period: u64, allowance: u64) -> Result<u64, CreditStoreError>;
    /// Set the balance for `period` to `amount`.
    async fn set(&self, key: &str, period: u64, amount: u64) -> Result<(), CreditStoreError>;
    /// Add `amount` to the balance of `period` (saturating); returns the new balance.
    async fn add(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        amount: u64,
    ) -> Result<u64, CreditStoreError>;
}

/// An in-memory [`CreditStore`]: one mutex-guarded map (each operation holds it for a few
/// instructions). Keys are tenants or subjects of verified principals, never raw client input.
#[derive(Debug, Default)]
pub struct MemoryCreditStore {
    balances: Mutex<HashMap<String, (u64, u64)>>,
}

impl MemoryCreditStore {
    /// An empty store: every key starts each period at its allowance.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, key: &str, period: u64, allowance: u64, f: impl FnOnce(&mut u64) -> T) -> T {
        // A poisoned lock still holds consistent integers: every update is one assignment.
        let mut map = self
            .balances
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A known key is found by its borrowed name: no allocation per request.
        if let Some(entry) = map.get_mut(key) {
            if entry.0 != period {
                *entry = (period, allowance);
            }
            return f(&mut entry.1);
        }
        let entry = map.entry(key.to_owned()).or_insert((period, allowance));
        f(&mut entry.1)
    }
}

#[async_trait]
impl CreditStore for MemoryCreditStore {
    async fn reserve(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<Reservation, CreditStoreError> {
        Ok(self.with(key, period, allowance, |b| {
            if *b >= cost {
                *b -= cost;
                Reservation::Reserved { remaining: *b }
            } else {
                Reservation::Exhausted { remaining: *b }
            }
        }))
    }

    async fn refund(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<(), CreditStoreError> {
        self.with(key, period, allowance, |b| *b = b.saturating_add(cost));
        Ok(())
    }

    async fn read(&self, key: &str, period: u64, allowance: u64) -> Result<u64, CreditStoreError> {
        Ok(self.with(key, period, allowance, |b| *b))
    }

    async fn set(&self, key: &str, period: u64, amount: u64) -> Result<(), CreditStoreError> {
        self.with(key, period, amount, |b| *b = amount);
        Ok(())
    }

    async fn add(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        amount: u64,
    ) -> Result<u64, CreditStoreError> {
        Ok(self.with(key, period, allowance, |b| {
            *b = b.saturating_add(amount);
            *b
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn month_periods_follow_the_utc_calendar() {
        // 2026-12-03T15:00:00Z → index (2026-1970)*12 + 11, next refill 2027-01-01T00:00:00Z.
        let (idx, next) = RefillPeriod::Month.locate(1_796_310_000);
        assert_eq!(idx, 56 * 12 + 11);
        assert_eq!(next, 1_798_761_600);
        // 2024-02-29 (leap day) → refill 2024-03-01T00:00:00Z.
        assert_eq!(RefillPeriod::Month.locate(1_709_164_800).1, 1_709_251_200);
        assert_eq!(RefillPeriod::Day.locate(86_399), (0, 86_400));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reservations_against_fifty_credits_admit_exactly_fifty() {
        let store = Arc::new(MemoryCreditStore::new());
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let s = Arc::clone(&store);
                tokio::spawn(async move { s.reserve("tenant:t", 7, 50, 1).await.unwrap() })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Reservation::Reserved { .. }) {
                ok += 1;
            }
        }
        assert_eq!(ok, 50);
        assert_eq!(store.read("tenant:t", 7, 50).await.unwrap(), 0);
        // The next period starts full.
        assert_eq!(store.read("tenant:t", 8, 50).await.unwrap(), 50);
    }
}
