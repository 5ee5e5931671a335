//! Where the verifier finds the secrets of a `keyid`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use apiauth_core::{ScopeSet, StoreError};
use async_trait::async_trait;

use crate::secret::RotatingSecret;

/// The owner and secrets of one key id: who signs with it, for which tenant, with which
/// scopes, and the secrets accepted (several during a rotation, each with its window).
#[derive(Clone)]
pub struct HmacKey {
    pub(crate) subject: Arc<str>,
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) scopes: ScopeSet,
    /// Shared, so that handing a key out of a store (once per request) copies no secrets.
    pub(crate) secrets: Arc<[RotatingSecret]>,
}

impl HmacKey {
    /// A key owned by `subject`, with no secrets yet.
    pub fn new(subject: impl Into<Arc<str>>) -> Self {
        Self {
            subject: subject.into(),
            tenant: None,
            scopes: ScopeSet::empty(),
            secrets: Arc::from([]),
        }
    }

    /// Sets the tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the scopes granted to requests signed with this key.
    #[must_use]
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Adds an accepted secret.
    #[must_use]
    pub fn secret(mut self, secret: impl Into<RotatingSecret>) -> Self {
        let mut all = self.secrets.to_vec();
        all.push(secret.into());
        self.secrets = all.into();
        self
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The secrets.
    pub fn secrets(&self) -> &[RotatingSecret] {
        &self.secrets
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("subject", &self.subject)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Looks up the key of a `keyid` (RFC 9421 §2.3). Async and dyn-compatible so a networked
/// store can stand in; an error is a 503, never a pass.
#[async_trait]
pub trait HmacKeyStore: Send + Sync + 'static {
    /// The key of `key_id`, or `None` if there is no such key.
    async fn key(&self, key_id: &str) -> Result<Option<HmacKey>, StoreError>;
}

#[async_trait]
impl<S: HmacKeyStore + ?Sized> HmacKeyStore for Arc<S> {
    async fn key(&self, key_id: &str) -> Result<Option<HmacKey>, StoreError> {
        (**self).key(key_id).await
    }
}

/// An in-memory [`HmacKeyStore`]. Cheap to clone; clones share the keys.
#[derive(Clone, Default)]
pub struct MemoryHmacKeyStore {
    keys: Arc<RwLock<HashMap<String, HmacKey>>>,
}

impl MemoryHmacKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces the key of `key_id`.
    pub fn insert(&self, key_id: impl Into<String>, key: HmacKey) {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key_id.into(), key);
    }

    /// Removes a key id; requests signed with it fail from now on.
    pub fn remove(&self, key_id: &str) -> Option<HmacKey> {
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key_id)
    }
}

impl fmt::Debug for MemoryHmacKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.keys.read().map(|k| k.len()).unwrap_or(0);
        f.debug_struct("MemoryHmacKeyStore")
            .field("keys", &n)
            .finish()
    }
}

#[async_trait]
impl HmacKeyStore for MemoryHmacKeyStore {
    async fn key(&self, key_id: &str) -> Result<Option<HmacKey>, StoreError> {
        Ok(self
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key_id)
            .cloned())
    }
}
