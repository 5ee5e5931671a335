//! [`LockoutStore`] on Redis: one failure budget (HTTP Basic, OAuth 2.0 client
//! authentication) for every instance.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use apiauth_basic::{Admission, AttemptId, LockoutKey, LockoutPolicy, LockoutStore};
use apiauth_core::store::StoreError;
use async_trait::async_trait;
use redis::Script;

use crate::backend::{RedisBackend, ttl_ms};

/// How long an admitted attempt holds an in-flight slot at most when its instance never
/// settles it (a crash, a lost release): longer than a verification takes, queue included.
pub const DEFAULT_ATTEMPT_TTL: Duration = Duration::from_secs(30);

/// Admits one attempt. KEYS: failures, lock, in-flight set. ARGV: max failures, attempt
/// member, attempt TTL ms. Returns {0, 0} (admitted), {1, ms left} (locked out) or {2, 0}
/// (enough attempts in flight to reach the limit).
///
/// In-flight attempts are members of a sorted set scored by their expiry on the server's
/// clock, so an attempt whose instance died stops counting by itself.
const ADMIT_LUA: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return {1, left} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', now))
local failures = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local busy = redis.call('ZCARD', KEYS[3])
if failures + busy >= tonumber(ARGV[1]) then return {2, 0} end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], string.format('%d', now + ttl), ARGV[2])
redis.call('PEXPIRE', KEYS[3], ttl)
return {0, 0}
";

/// Settles an attempt as a failure. KEYS: failures, lock, in-flight set, strikes. ARGV:
/// attempt member, max failures, window ms, first lock-out ms, longest lock-out ms. Returns
/// the length in ms of the lock-out this failure started, else 0.
///
/// The window runs from the first failure (`PEXPIRE` when the counter is created); reaching
/// the limit sets the lock key with the lock-out as its TTL and drops the counter, so the
/// count starts afresh once the lock-out ends, as in memory. A progressive policy (longest >
/// first) doubles the lock-out per strike, capped; the strikes key outlives each lock-out by
/// the cap, so strikes are forgotten after a quiet cap, as in memory.
const FAIL_LUA: &str = r"
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if n >= tonumber(ARGV[2]) then
  local lock = tonumber(ARGV[4])
  local cap = tonumber(ARGV[5])
  if cap > lock then
    local strikes = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
    local i = 0
    while i < strikes and lock < cap do
      lock = lock * 2
      i = i + 1
    end
    if lock > cap then lock = cap end
    redis.call('SET', KEYS[4], string.format('%d', strikes + 1), 'PX', string.format('%d', lock + cap))
  end
  redis.call('SET', KEYS[2], '1', 'PX', string.format('%d', lock))
  redis.call('DEL', KEYS[1])
  return lock
end
return 0
";

/// [`LockoutStore`] on Redis: HTTP Basic failure counters shared by every instance, so that
/// N instances give an attacker one failure budget, not N.
///
/// Per [`LockoutKey`] (`<id>` is [`LockoutKey::id`]: `user:<hex SHA-256 of the user-id>`,
/// `addr:<address>`, `user:<hex>@<address>`, `oauth-client:<hex>@<address>` or
/// `oauth-addr:<address>`, so no user-id or client id can shape a key):
///
/// | key | type | TTL |
/// | --- | --- | --- |
/// | `<ns>:basic-fails:<id>` | counter (`INCR`) | the policy's window, from the first failure |
/// | `<ns>:basic-lock:<id>` | marker | the lock-out; its `PTTL` is the `Retry-After` |
/// | `<ns>:basic-inflight:<id>` | sorted set of attempts under way | the attempt TTL |
/// | `<ns>:basic-strikes:<id>` | lock-outs so far (progressive policies only) | each lock-out plus the longest |
///
/// Admission and failure are each one Lua script, atomic on the server, so instances racing
/// on one user cannot overshoot the limit. Times are the server's (key TTLs and `TIME`), not
/// the instances' clocks. A release is a `ZREM`: awaited after a success, sent in the
/// background otherwise (an outage, a client gone); if it is lost, the attempt stops counting
/// after [`attempt_ttl`](Self::attempt_ttl).
///
/// When Redis cannot answer within the backend's command timeout, `admit` and
/// `record_failure` fail and [`BasicAuth`](apiauth_basic::BasicAuth) answers 503 with
/// `Retry-After`: never a pass, never a 401, and no failure is counted for the outage.
#[derive(Clone)]
pub struct RedisLockoutStore {
    backend: RedisBackend,
    scripts: Arc<(Script, Script)>,
    attempt_ttl: Duration,
    /// Random per store, so attempt members of different instances never meet.
    instance: u64,
    next_attempt: Arc<AtomicU64>,
}

impl fmt::Debug for RedisLockoutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLockoutStore")
            .field("namespace", &self.backend.namespace())
            .field("attempt_ttl", &self.attempt_ttl)
            .finish_non_exhaustive()
    }
}

impl RedisLockoutStore {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            scripts: Arc::new((Script::new(ADMIT_LUA), Script::new(FAIL_LUA))),
            attempt_ttl: DEFAULT_ATTEMPT_TTL,
            // Randomly keyed SipHash of nothing: a random number without another dependency.
            instance: RandomState::new().hash_one(std::process::id()),
            next_attempt: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Longest time an admitted attempt counts as in flight when it is never settled.
    /// Default [`DEFAULT_ATTEMPT_TTL`] (30 s); keep it above the verification queue timeout
    /// plus an argon2 run. Zero is raised to 1 ms.
    #[must_use]
    pub fn attempt_ttl(mut self, ttl: Duration) -> Self {
        self.attempt_ttl = ttl;
        self
    }

    fn keys(&self, key: &LockoutKey) -> [String; 4] {
        let id = key.id();
        [
            self.backend.key("basic-fails", &id),
            self.backend.key("basic-lock", &id),
            self.backend.key("basic-inflight", &id),
            self.backend.key("basic-strikes", &id),
        ]
    }

    fn member(&self, attempt: AttemptId) -> String {
        format!("{:016x}-{}", self.instance, attempt.get())
    }
}

#[async_trait]
impl LockoutStore for RedisLockoutStore {
    async fn admit(
        &self,
        key: &LockoutKey,
        policy: &LockoutPolicy,
        _now: SystemTime,
    ) -> Result<Admission, StoreError> {
        let attempt = AttemptId::new(self.next_attempt.fetch_add(1, Ordering::Relaxed));
        let [fails, lock, inflight, _] = self.keys(key);
        let mut inv = self.scripts.0.key(fails);
        inv.key(lock)
            .key(inflight)
            .arg(policy.max_failures())
            .arg(self.member(attempt))
            .arg(ttl_ms(self.attempt_ttl));
        let answer = self.backend.eval("lockout_admit", &inv).await;
        let (verdict, left_ms): (i64, i64) = match answer {
            Ok(v) => v,
            Err(e) => {
                // A timed-out script may still run once Redis is back (it is queued on the
                // connection). Queue its release behind it, so a stall leaves no attempt in
                // flight to refuse the next ones with 429.
                self.release(key, attempt);
                return Err(e);
            }
        };
        Ok(match verdict {
            0 => Admission::Admitted(attempt),
            1 => Admission::LockedOut(Duration::from_millis(
                u64::try_from(left_ms).unwrap_or(1).max(1),
            )),
            _ => Admission::AttemptsInFlight,
        })
    }

    async fn record_failure(
        &self,
        key: &LockoutKey,
        attempt: AttemptId,
        policy: &LockoutPolicy,
        _now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        let [fails, lock, inflight, strikes] = self.keys(key);
        let mut inv = self.scripts.1.key(fails);
        inv.key(lock)
            .key(inflight)
            .key(strikes)
            .arg(self.member(attempt))
            .arg(policy.max_failures())
            .arg(ttl_ms(policy.window()))
            .arg(ttl_ms(policy.lockout()))
            .arg(ttl_ms(policy.max_lockout()));
        let locked_ms: i64 = self.backend.eval("lockout_fail", &inv).await?;
        Ok(u64::try_from(locked_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    async fn locked_out(
        &self,
        key: &LockoutKey,
        _policy: &LockoutPolicy,
        _now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        // One round trip: the lock key's remaining TTL (-2 absent, -1 never set by us).
        let [_, lock, _, _] = self.keys(key);
        let left: i64 = self
            .backend
            .query("lockout_check", redis::cmd("PTTL").arg(lock))
            .await?;
        Ok(u64::try_from(left)
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis))
    }

    async fn release_now(&self, key: &LockoutKey, attempt: AttemptId) {
        // Bounded by the command timeout; a failure is logged by the backend, and the
        // attempt then expires on its own.
        let [_, _, inflight, _] = self.keys(key);
        let _: Result<i64, _> = self
            .backend
            .query(
                "lockout_release",
                redis::cmd("ZREM").arg(inflight).arg(self.member(attempt)),
            )
            .await;
    }

    fn release(&self, key: &LockoutKey, attempt: AttemptId) {
        // Called from `Drop`: send the ZREM in the background. Outside a runtime, or if it is
        // lost, the attempt stops counting once its TTL has passed.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let [_, _, inflight, _] = self.keys(key);
        let member = self.member(attempt);
        let backend = self.backend.clone();
        runtime.spawn(async move {
            // Bounded by the command timeout; a failure is logged by the backend.
            let _: Result<i64, _> = backend
                .query(
                    "lockout_release",
                    redis::cmd("ZREM").arg(inflight).arg(member),
                )
                .await;
        });
    }
}
