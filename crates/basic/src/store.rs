//! Where users and their password hashes live.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use apiauth_core::{ScopeSet, StoreError};
use async_trait::async_trait;

/// One user as the store knows it: never a password, only its argon2 PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    subject: Arc<str>,
    password_hash: Arc<str>,
    tenant: Option<Arc<str>>,
    scopes: ScopeSet,
    generation: u64,
}

impl CredentialRecord {
    /// A record for `subject` with the PHC string `password_hash` (from
    /// [`hash_password`](crate::hash_password)), no tenant, no scopes, generation 0.
    pub fn new(subject: impl Into<Arc<str>>, password_hash: impl Into<Arc<str>>) -> Self {
        Self {
            subject: subject.into(),
            password_hash: password_hash.into(),
            tenant: None,
            scopes: ScopeSet::empty(),
            generation: 0,
        }
    }

    /// Sets the tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the granted scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the generation. A store must give a record a new generation whenever its password
    /// hash, scopes or tenant change, so cached verifications of the old record stop counting.
    #[must_use]
    pub fn generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The principal's subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The argon2 PHC string.
    pub fn password_hash(&self) -> &str {
        &self.password_hash
    }

    /// The tenant, if any.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The scopes granted.
    pub fn granted_scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// The generation (see [`CredentialRecord::generation`]).
    pub fn current_generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The PHC string is not the password, but it is what an offline attack starts from.
        f.debug_struct("CredentialRecord")
            .field("subject", &self.subject)
            .field("password_hash", &"[redacted]")
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .field("generation", &self.generation)
            .finish()
    }
}

/// Looks users up by user-id. Dyn-compatible: use it as `Arc<dyn CredentialStore>`.
///
/// A failing lookup is a [`StoreError`], which the layer answers with 503: it never lets a
/// request through and never calls it a wrong password.
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    /// The record for `user_id`, or `None` if there is no such user (or it was revoked).
    async fn get(&self, user_id: &str) -> Result<Option<CredentialRecord>, StoreError>;
}

#[async_trait]
impl<T: CredentialStore + ?Sized> CredentialStore for Arc<T> {
    async fn get(&self, user_id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        (**self).get(user_id).await
    }
}

/// An in-memory [`CredentialStore`]. Cheap to clone; clones share the users.
///
/// Every write gives the record a generation never used before in this store, so a removed
/// and re-added user does not revive cached verifications.
#[derive(Clone, Default)]
pub struct MemoryCredentialStore {
    users: Arc<RwLock<HashMap<String, CredentialRecord>>>,
    next_generation: Arc<AtomicU64>,
}

impl fmt::Debug for MemoryCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCredentialStore")
            .field("users", &self.len())
            .finish()
    }
}

impl MemoryCredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds or replaces `user_id` with `record`, under a fresh generation.
    pub fn insert(&self, user_id: impl Into<String>, record: CredentialRecord) {
        let record = record.generation(self.fresh_generation());
        self.users
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user_id.into(), record);
    }

    /// Adds or replaces a user whose subject is its user-id, with the PHC string
    /// `password_hash`.
    pub fn insert_user(&self, user_id: &str, password_hash: impl Into<Arc<str>>) {
        self.insert(user_id, CredentialRecord::new(user_id, password_hash));
    }

    /// Replaces the password hash of `user_id`. `false` if there is no such user.
    pub fn set_password_hash(&self, user_id: &str, password_hash: impl Into<Arc<str>>) -> bool {
        let generation = self.fresh_generation();
        let mut users = self.users.write().unwrap_or_else(|p| p.into_inner());
        match users.get_mut(user_id) {
            Some(record) => {
                record.password_hash = password_hash.into();
                record.generation = generation;
                true
            }
            None => false,
        }
    }

    /// Removes (revokes) `user_id`. `false` if there was no such user.
    pub fn remove(&self, user_id: &str) -> bool {
        self.users
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user_id)
            .is_some()
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether the store holds no user.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentialStore {
    async fn get(&self, user_id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        Ok(self
            .users
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user_id)
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_write_gets_a_new_generation() {
        let s = MemoryCredentialStore::new();
        s.insert_user("u", "$argon2id$a");
        let g1 = s.get("u").await.unwrap().unwrap().current_generation();
        assert!(s.set_password_hash("u", "$argon2id$b"));
        let g2 = s.get("u").await.unwrap().unwrap().current_generation();
        assert!(s.remove("u"));
        assert!(s.get("u").await.unwrap().is_none());
        s.insert_user("u", "$argon2id$a");
        let g3 = s.get("u").await.unwrap().unwrap().current_generation();
        assert!(g1 < g2 && g2 < g3);
        assert!(!s.set_password_hash("nobody", "x"));
    }

    #[test]
    fn debug_hides_the_hash() {
        let r = CredentialRecord::new("u", "$argon2id$v=19$secretish");
        assert!(!format!("{r:?}").contains("secretish"));
    }

    #[test]
    fn store_is_dyn_compatible() {
        let s: Arc<dyn CredentialStore> = Arc::new(MemoryCredentialStore::new());
        let _also: Arc<dyn CredentialStore> = Arc::new(s);
    }
}
