//! [`CreditStore`] on Redis: one hash per balance (`<ns>:credits:<key>`, fields `p` the period
//! index and `b` the balance), every operation one Lua script run (EVALSHA), so reservations
//! from any number of instances are exact.

use std::fmt;
use std::sync::Arc;

use apiauth_quota::{CreditStore, CreditStoreError, Reservation};
use async_trait::async_trait;
use redis::Script;

use crate::RedisBackend;

/// KEYS: the balance hash. ARGV: op (reserve/refund/read/set/add), period, allowance, amount.
/// A hash whose period differs from ARGV[2] is refilled to the allowance first; a refund into a
/// period that has rolled over is dropped. Returns {ok (1/0), balance}.
const CREDITS_LUA: &str = r"
local op, period = ARGV[1], ARGV[2]
local allowance, amount = tonumber(ARGV[3]), tonumber(ARGV[4])
local p = redis.call('HGET', KEYS[1], 'p')
local b = tonumber(redis.call('HGET', KEYS[1], 'b'))
if p ~= period or b == nil then
  if op == 'refund' then return {1, allowance} end
  b = allowance
end
local ok = 1
if op == 'reserve' then
  if b >= amount then b = b - amount else ok = 0 end
elseif op == 'refund' or op == 'add' then
  b = b + amount
elseif op == 'set' then
  b = amount
end
redis.call('HSET', KEYS[1], 'p', period, 'b', b)
return {ok, b}
";

/// [`CreditStore`] shared by every instance through Redis; Redis down fails the request
/// closed (503) in the quota layer.
#[derive(Clone)]
pub struct RedisCreditStore {
    backend: RedisBackend,
    script: Arc<Script>,
}

impl fmt::Debug for RedisCreditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCreditStore")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

impl RedisCreditStore {
    /// Credits under `backend`'s namespace.
    #[must_use]
    pub fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            script: Arc::new(Script::new(CREDITS_LUA)),
        }
    }

    async fn run(
        &self,
        op: &str,
        key: &str,
        period: u64,
        allowance: u64,
        amount: u64,
    ) -> Result<(bool, u64), CreditStoreError> {
        // Lua numbers are doubles: amounts are kept below 2^53 so arithmetic stays exact.
        const MAX: u64 = 1 << 52;
        let mut inv = self.script.key(self.backend.key("credits", key));
        inv.arg(op)
            .arg(period)
            .arg(allowance.min(MAX))
            .arg(amount.min(MAX));
        let (ok, b) = self
            .backend
            .eval::<(i64, i64)>("credits", &inv)
            .await
            .map_err(|e| CreditStoreError(e.to_string()))?;
        Ok((ok == 1, u64::try_from(b).unwrap_or(0)))
    }
}

#[async_trait]
impl CreditStore for RedisCreditStore {
    async fn reserve(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<Reservation, CreditStoreError> {
        let (ok, remaining) = self.run("reserve", key, period, allowance, cost).await?;
        Ok(if ok {
            Reservation::Reserved { remaining }
        } else {
            Reservation::Exhausted { remaining }
        })
    }
    async fn refund(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<(), CreditStoreError> {
        self.run("refund", key, period, allowance, cost)
            .await
            .map(|_| ())
    }
    async fn read(&self, key: &str, period: u64, allowance: u64) -> Result<u64, CreditStoreError> {
        self.run("read", key, period, allowance, 0)
            .await
            .map(|r| r.1)
    }
    async fn set(&self, key: &str, period: u64, amount: u64) -> Result<(), CreditStoreError> {
        self.run("set", key, period, amount, amount)
            .await
            .map(|_| ())
    }
    async fn add(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        amount: u64,
    ) -> Result<u64, CreditStoreError> {
        self.run("add", key, period, allowance, amount)
            .await
            .map(|r| r.1)
    }
}
