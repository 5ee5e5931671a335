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
}

impl Stores {
    /// Bounded in-memory stores: state is local to this process.
    pub fn in_memory() -> Self {
        Self {
            revocations: Arc::new(MemoryRevocationList::new()),
            replay: Arc::new(MemoryReplayStore::new()),
            #[cfg(feature = "api-key")]
            api_keys: Arc::new(apiauth_api_key::MemoryApiKeyStore::new()),
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
        }
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
