//! The DPoP proof replay store on Redis (apiauth-dpop).

use std::fmt;
use std::time::Duration;

use apiauth_core::store::StoreError;
use apiauth_dpop::DpopReplayStore;
use async_trait::async_trait;

use crate::backend::{RedisBackend, ttl_ms};

/// [`DpopReplayStore`] on Redis: one atomic `SET <ns>:dpop-jti:<key> 1 NX PX <ttl>` per
/// proof, so a proof replayed on any instance sharing this Redis is refused, and of any
/// number of instances racing on one proof exactly one accepts it.
#[derive(Clone)]
pub struct RedisDpopReplayStore {
    backend: RedisBackend,
}

impl RedisDpopReplayStore {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }
}

impl fmt::Debug for RedisDpopReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisDpopReplayStore")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

#[async_trait]
impl DpopReplayStore for RedisDpopReplayStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.backend.key("dpop-jti", key);
        let set: Option<String> = self
            .backend
            .query(
                "dpop_first_use",
                redis::cmd("SET")
                    .arg(key)
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms(ttl)),
            )
            .await?;
        // `OK` when set; nil when the proof was already used (a replay).
        Ok(set.is_some())
    }
}
