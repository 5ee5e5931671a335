//! The DPoP proof replay store on Redis (apiauth-dpop).

use std::fmt;
use std::time::Duration;

use apiauth_core::store::StoreError;
use apiauth_dpop::DpopReplayStore;
use async_trait::async_trait;

use crate::backend::RedisBackend;

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
        crate::stores::set_once(&self.backend, "dpop-jti", "dpop_first_use", key, ttl).await
    }
}
