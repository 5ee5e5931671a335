//! Every store behind its trait, from memory or from Redis: the one switch an app flips.

use std::fmt;
use std::sync::Arc;

use apiauth_core::store::{MemoryReplayStore, MemoryRevocationList, ReplayStore, RevocationList};

use crate::backend::RedisBackend;

/// The shared-state stores of an app, each behind its trait.
///
/// Build it with [`Stores::in_memory`] for a single instance or [`RedisBackend::stores`] for
/// many; the rest of the app does not change.
#[derive(Clone)]
#[non_exhaustive]
pub struct Stores {
    /// Revoked credential ids.
    pub revocations: Arc<dyn RevocationList>,
    /// Single-use nonces.
    pub replay: Arc<dyn ReplayStore>,
    /// API key records (opaque bearer tokens reuse them).
    #[cfg(feature = "api-key")]
    pub api_keys: Arc<dyn apiauth_api_key::ApiKeyStore>,
    /// OAuth 2.0 introspection answers, keyed by token hashes.
    #[cfg(feature = "introspection")]
    pub introspection_cache: Arc<dyn apiauth_oauth2::IntrospectionCache>,
    /// GCRA rate limiter, for `QuotaLayerBuilder::limiter`.
    #[cfg(feature = "quota")]
    pub rate_limiter: Arc<dyn apiauth_quota::RateLimiter>,
    /// Request counters per subject, route and status class.
    #[cfg(feature = "quota")]
    pub usage: Arc<dyn apiauth_quota::UsageMeter>,
    /// Failure counters and lock-outs, for `BasicAuthBuilder::lockout_store` and
    /// `AuthorizationServerBuilder::lockout_store` (their keys never meet).
    #[cfg(feature = "basic")]
    pub lockouts: Arc<dyn apiauth_basic::LockoutStore>,
    /// DPoP proofs already used, for `DpopVerifierBuilder::replay_store`.
    #[cfg(feature = "dpop")]
    pub dpop_replay: Arc<dyn apiauth_dpop::DpopReplayStore>,
}

impl Stores {
    /// Bounded in-memory stores: state is local to this process. Inside a Tokio runtime the
    /// rate limiter's idle keys are swept every minute; outside one it still stays bounded
    /// (a full table is swept on demand).
    pub fn in_memory() -> Self {
        Self {
            revocations: Arc::new(MemoryRevocationList::new()),
            replay: Arc::new(MemoryReplayStore::new()),
            #[cfg(feature = "api-key")]
            api_keys: Arc::new(apiauth_api_key::MemoryApiKeyStore::new()),
            #[cfg(feature = "introspection")]
            introspection_cache: Arc::new(apiauth_oauth2::MemoryIntrospectionCache::new()),
            #[cfg(feature = "quota")]
            rate_limiter: memory_rate_limiter(),
            #[cfg(feature = "quota")]
            usage: Arc::new(apiauth_quota::MemoryUsageMeter::new()),
            #[cfg(feature = "basic")]
            lockouts: Arc::new(apiauth_basic::MemoryLockoutStore::new()),
            #[cfg(feature = "dpop")]
            dpop_replay: Arc::new(apiauth_dpop::MemoryDpopReplayStore::new()),
        }
    }
}

impl RedisBackend {
    /// Every store on this backend, behind its trait.
    pub fn stores(&self) -> Stores {
        Stores {
            revocations: Arc::new(self.revocation_list()),
            replay: Arc::new(self.replay_store()),
            #[cfg(feature = "api-key")]
            api_keys: Arc::new(self.api_key_store()),
            #[cfg(feature = "introspection")]
            introspection_cache: Arc::new(self.introspection_cache()),
            #[cfg(feature = "quota")]
            rate_limiter: Arc::new(self.rate_limiter()),
            #[cfg(feature = "quota")]
            usage: Arc::new(self.usage_meter()),
            #[cfg(feature = "basic")]
            lockouts: Arc::new(self.lockout_store()),
            #[cfg(feature = "dpop")]
            dpop_replay: Arc::new(self.dpop_replay_store()),
        }
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

#[cfg(feature = "quota")]
fn memory_rate_limiter() -> Arc<dyn apiauth_quota::RateLimiter> {
    let limiter = apiauth_quota::MemoryRateLimiter::new();
    if tokio::runtime::Handle::try_current().is_ok() {
        // The task ends by itself when the limiter is dropped.
        drop(limiter.spawn_sweeper(std::time::Duration::from_secs(60)));
    }
    Arc::new(limiter)
}
