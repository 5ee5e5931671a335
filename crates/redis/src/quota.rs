//! [`RateLimiter`] and [`UsageMeter`] on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apiauth_core::store::StoreError;
use apiauth_quota::{Decision, QuotaPolicy, RateLimiter, StatusClass, UsageCount, UsageMeter};
use async_trait::async_trait;
use redis::Script;

use crate::backend::{LOG_TARGET, RedisBackend, ttl_ms};

/// GCRA (the algorithm of the in-memory limiter), atomically on the server, on the server's
/// clock so that instances with skewed clocks still share one bucket.
///
/// State: the theoretical arrival time (TAT) in microseconds. With emission interval `T` and
/// tolerance `tau = T * (burst - 1)`: a request at `now` is admitted iff `now >= TAT - tau`,
/// and then `TAT = max(TAT, now) + T`. The key expires when the bucket would be full again,
/// since a missing key and a full bucket are the same state.
///
/// KEYS: bucket. ARGV: T in µs, burst. Returns {1, remaining, 0} or {0, 0, wait µs}.
const GCRA_LUA: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tau = t * (burst - 1)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local earliest = tat - tau
if now < earliest then
  return {0, 0, earliest - now}
end
local nxt = tat + t
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX',
  string.format('%d', math.ceil((nxt - now) / 1000)))
local remaining = math.floor(math.min(now + tau + t - nxt, tau + t) / t)
return {1, remaining, 0}
";

/// [`RateLimiter`] on Redis: one GCRA bucket per policy name and key, shared by every
/// instance, updated by one Lua script (EVALSHA) so concurrent requests cannot both take the
/// last cell. Decisions carry the same fields, computed the same way, as the in-memory
/// limiter's, so `RateLimit-*` and `Retry-After` headers do not depend on the backend.
///
/// When Redis cannot answer, `check` fails (503, closed) unless
/// [`dangerous_fail_open`](Self::dangerous_fail_open) was chosen.
#[derive(Clone)]
pub struct RedisRateLimiter {
    backend: RedisBackend,
    script: Arc<Script>,
    fail_open: bool,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("namespace", &self.backend.namespace())
            .field("fail_open", &self.fail_open)
            .finish()
    }
}

impl RedisRateLimiter {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            script: Arc::new(Script::new(GCRA_LUA)),
            fail_open: false,
        }
    }

    /// Admits requests when Redis cannot answer, instead of failing them with 503. Rate limits
    /// then stop protecting the service for as long as Redis is away; authentication checks
    /// (revocation, replay, key lookup) still fail closed.
    #[must_use]
    pub fn dangerous_fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn mul(period: Duration, n: u32) -> Duration {
    period.checked_mul(n).unwrap_or(Duration::MAX)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, policy: &QuotaPolicy) -> Result<Decision, StoreError> {
        // Clamp an invalid policy to the tightest valid one rather than divide by zero; layers
        // refuse invalid policies at startup anyway. Periods are kept to whole microseconds,
        // the resolution of Redis `TIME`.
        let limit = policy.burst_size().max(1);
        // A whole bucket (`burst * T`) is capped at 2^50 µs (about 35 years) so that every
        // number the script handles stays exact in Lua's doubles.
        let period_us = micros(policy.replenish_period()).clamp(1, (1u64 << 50) / u64::from(limit));
        let period = Duration::from_micros(period_us);
        // The policy name is length-prefixed so that no (name, key) pair can pose as another.
        let policy_name = policy.name();
        let id = format!("{}:{policy_name}:{key}", policy_name.len());
        let mut inv = self.script.key(self.backend.key("rate", &id));
        inv.arg(period_us).arg(limit);
        match self
            .backend
            .eval::<(i64, i64, i64)>("rate_check", &inv)
            .await
        {
            Ok((1, remaining, _)) => {
                let remaining = u32::try_from(remaining.max(0)).unwrap_or(0).min(limit);
                // As the in-memory limiter: full again once the used cells are regained.
                Ok(Decision::allow(
                    limit,
                    remaining,
                    mul(period, limit - remaining),
                ))
            }
            Ok((_, _, wait_us)) => {
                let wait = Duration::from_micros(u64::try_from(wait_us.max(1)).unwrap_or(1));
                let reset = wait.saturating_add(mul(period, limit - 1));
                Ok(Decision::deny(limit, wait, reset))
            }
            Err(e) if self.fail_open => {
                tracing::warn!(target: LOG_TARGET, error = %e, "rate limiter failing open");
                Ok(Decision::allow(limit, 0, period))
            }
            Err(e) => Err(e),
        }
    }
}

/// Increments one usage counter and refreshes the caller's idle expiry, if any.
/// KEYS: the caller's hash. ARGV: field, ttl ms (0: none).
const RECORD_LUA: &str = r"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
";

/// [`UsageMeter`] on Redis: one hash per caller (`<ns>:usage:<identity>`, see `Principal::identity`), one field per
/// status class and route template, counted with `HINCRBY`, so every instance's requests add
/// up exactly.
#[derive(Clone)]
pub struct RedisUsageMeter {
    backend: RedisBackend,
    script: Arc<Script>,
    idle_expiry: Option<Duration>,
}

impl fmt::Debug for RedisUsageMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUsageMeter")
            .field("namespace", &self.backend.namespace())
            .field("idle_expiry", &self.idle_expiry)
            .finish()
    }
}

impl RedisUsageMeter {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            script: Arc::new(Script::new(RECORD_LUA)),
            idle_expiry: None,
        }
    }

    /// Drops a caller's counters after `idle` without a request. Default: kept until removed,
    /// like the in-memory meter's.
    #[must_use]
    pub fn idle_expiry(mut self, idle: Duration) -> Self {
        self.idle_expiry = Some(idle);
        self
    }
}

/// `<class> <route>`: the class is a fixed three characters, so the split is unambiguous.
fn field(route: &str, class: StatusClass) -> String {
    format!("{} {route}", class.as_str())
}

fn parse_field(f: &str) -> Option<(String, StatusClass)> {
    let (class, route) = f.split_once(' ')?;
    let class = StatusClass::ALL.into_iter().find(|c| c.as_str() == class)?;
    Some((route.to_owned(), class))
}

#[async_trait]
impl UsageMeter for RedisUsageMeter {
    async fn record(
        &self,
        identity: &str,
        route: &str,
        class: StatusClass,
    ) -> Result<(), StoreError> {
        let mut inv = self.script.key(self.backend.key("usage", identity));
        inv.arg(field(route, class))
            .arg(self.idle_expiry.map_or(0, ttl_ms));
        let _: i64 = self.backend.eval("usage_record", &inv).await?;
        Ok(())
    }

    async fn usage(&self, identity: &str) -> Result<Vec<UsageCount>, StoreError> {
        let all: Vec<(String, u64)> = self
            .backend
            .query(
                "usage_read",
                redis::cmd("HGETALL").arg(self.backend.key("usage", identity)),
            )
            .await?;
        let mut out: Vec<UsageCount> = all
            .into_iter()
            .filter_map(|(f, count)| {
                let (route, status_class) = parse_field(&f)?;
                Some(UsageCount {
                    route,
                    status_class,
                    count,
                })
            })
            .filter(|u| u.count > 0)
            .collect();
        out.sort_by(|a, b| (&a.route, a.status_class).cmp(&(&b.route, b.status_class)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_fields_round_trip_whatever_the_route() {
        for route in ["/items/{id}", "/a b/c", "", "/2xx /x"] {
            for class in StatusClass::ALL {
                assert_eq!(
                    parse_field(&field(route, class)),
                    Some((route.to_owned(), class))
                );
            }
        }
        assert_eq!(parse_field("9xx /x"), None);
    }
}
