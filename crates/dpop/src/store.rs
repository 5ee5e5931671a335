//! The replay store: each proof's `jti` is accepted once within the window (RFC 9449 §4.3
//! step 11, §11.1).

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::SharedClock;
use apiauth_core::store::{MemoryReplayStore, ReplayStore, StoreError};
use async_trait::async_trait;

/// Proofs already used, remembered for as long as they could still be accepted.
///
/// Keys are fixed-length digests of the proof key's thumbprint and the `jti` (43 base64url
/// characters), so a client can neither make a key large nor spend another key's `jti`.
/// Share one store across every instance behind a load balancer (`apiauth-redis`'s
/// `RedisDpopReplayStore`, feature `dpop`), or a proof replayed on another instance passes.
#[async_trait]
pub trait DpopReplayStore: Send + Sync + 'static {
    /// Records `key` for `ttl` if it is not already live. `true`: first use. `false`: a
    /// replay. Atomic: of any number of concurrent calls with one key, one gets `true`.
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}

#[async_trait]
impl<T: DpopReplayStore + ?Sized> DpopReplayStore for Arc<T> {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        (**self).first_use(key, ttl).await
    }
}

/// In-memory [`DpopReplayStore`] for one instance: core's bounded expiring set (expired
/// entries dropped; when full of live entries it fails closed with
/// [`StoreError::CapacityExceeded`], a 503).
#[derive(Clone, Default)]
pub struct MemoryDpopReplayStore(MemoryReplayStore);

impl MemoryDpopReplayStore {
    /// An empty store on the system clock, holding up to core's default capacity.
    pub fn new() -> Self {
        Self(MemoryReplayStore::new())
    }

    /// An empty store on `clock` holding at most `capacity` live proofs.
    pub fn with_capacity(capacity: usize, clock: SharedClock) -> Self {
        Self(MemoryReplayStore::with_capacity(capacity, clock))
    }

    /// Number of proofs remembered, live or not yet dropped.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for MemoryDpopReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryDpopReplayStore")
            .field("len", &self.len())
            .finish()
    }
}

#[async_trait]
impl DpopReplayStore for MemoryDpopReplayStore {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.0.insert_if_absent(key, ttl).await
    }
}
