//! The core store traits on Redis: revocations and single-use nonces.

use std::fmt;
use std::time::{Duration, SystemTime};

use apiauth_core::store::{ReplayStore, RevocationList, StoreError};
use async_trait::async_trait;
use redis::Script;

use crate::backend::{RedisBackend, ttl_ms, ttl_ms_until};

/// Sets a revocation marker with a TTL, only ever lengthening an existing one, so a later
/// revoke with an earlier expiry cannot shorten an earlier revoke. Atomic on the server.
const REVOKE_LUA: &str = r"
local ttl = tonumber(ARGV[1])
local cur = redis.call('PTTL', KEYS[1])
if cur == -1 then return 0 end
if cur < ttl then redis.call('SET', KEYS[1], '1', 'PX', ttl) end
return 1
";

/// [`RevocationList`] on Redis. Each revoked id is a key `<ns>:revoked:<id>` whose TTL runs
/// until the credential's own expiry, so Redis forgets it exactly when it no longer matters.
///
/// No local cache: every check asks Redis, so a revocation on one instance is seen by every
/// other on its next request.
#[derive(Clone)]
pub struct RedisRevocationList {
    backend: RedisBackend,
    script: std::sync::Arc<Script>,
}

impl RedisRevocationList {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            script: std::sync::Arc::new(Script::new(REVOKE_LUA)),
        }
    }
}

impl fmt::Debug for RedisRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocationList")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, id: &str, until: SystemTime) -> Result<(), StoreError> {
        let Some(ttl) = ttl_ms_until(until, SystemTime::now()) else {
            return Ok(()); // already expired: nothing to remember
        };
        let key = self.backend.key("revoked", id);
        let mut inv = self.script.key(key);
        inv.arg(ttl);
        let _: i64 = self.backend.eval("revoke", &inv).await?;
        Ok(())
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let key = self.backend.key("revoked", id);
        let n: i64 = self
            .backend
            .query("is_revoked", redis::cmd("EXISTS").arg(key))
            .await?;
        Ok(n > 0)
    }
}

/// [`ReplayStore`] on Redis: one atomic `SET <ns>:nonce:<key> 1 NX PX <ttl>` per use, so of
/// any number of instances racing on one nonce exactly one wins.
#[derive(Clone)]
pub struct RedisReplayStore {
    backend: RedisBackend,
}

impl RedisReplayStore {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

impl fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

#[async_trait]
impl ReplayStore for RedisReplayStore {
    async fn insert_if_absent(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        set_once(&self.backend, "nonce", "insert_nonce", key, ttl).await
    }
}

/// `SET <ns>:<store>:<id> 1 NX PX <ttl>`: `true` when this call set it, `false` when it was
/// already live (a replay). Of any number of instances racing on one id exactly one wins.
pub(crate) async fn set_once(
    backend: &RedisBackend,
    store: &str,
    op: &'static str,
    id: &str,
    ttl: Duration,
) -> Result<bool, StoreError> {
    let key = backend.key(store, id);
    let set: Option<String> = backend
        .query(
            op,
            redis::cmd("SET")
                .arg(key)
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms(ttl)),
        )
        .await?;
    // `OK` when set; nil when the id was already live.
    Ok(set.is_some())
}
