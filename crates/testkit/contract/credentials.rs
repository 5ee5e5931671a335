//! `CredentialStore`: records round-trip; every write gets a generation never used before.

use apiauth_basic::{CredentialRecord, CredentialStore, MemoryCredentialStore};
use apiauth_core::ScopeSet;

#[async_trait::async_trait]
pub trait Manage: Send + Sync {
    async fn insert(&self, id: &str, r: CredentialRecord);
    async fn set_hash(&self, id: &str, phc: &str) -> bool;
    async fn remove(&self, id: &str) -> bool;
}

pub async fn credential_store_contract<S: CredentialStore + Manage>(s: S) {
    assert!(s.get("alice").await.unwrap().is_none());
    let rec = CredentialRecord::new("user-1", "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA")
        .tenant("acme")
        .scopes(ScopeSet::parse("a b").unwrap());
    s.insert("alice", rec.clone()).await;
    let got = s.get("alice").await.unwrap().unwrap();
    assert_eq!(got.subject(), "user-1");
    assert_eq!(got.password_hash(), rec.password_hash());
    assert_eq!(got.tenant_id(), Some("acme"));
    assert_eq!(got.granted_scopes(), rec.granted_scopes());
    let mut seen = vec![got.current_generation()];

    // Every write gets a generation never used before, even after remove and re-add.
    assert!(s.set_hash("alice", "$argon2id$new").await);
    let got = s.get("alice").await.unwrap().unwrap();
    assert_eq!(got.password_hash(), "$argon2id$new");
    seen.push(got.current_generation());
    assert!(!s.set_hash("bob", "$argon2id$x").await);
    assert!(
        s.get("bob").await.unwrap().is_none(),
        "no record is created"
    );
    assert!(s.remove("alice").await);
    assert!(!s.remove("alice").await);
    assert!(s.get("alice").await.unwrap().is_none());
    s.insert("alice", rec.clone()).await;
    let got = s.get("alice").await.unwrap().unwrap();
    assert_eq!(got.tenant_id(), Some("acme"));
    seen.push(got.current_generation());
    s.insert("alice", CredentialRecord::new("user-1", "$argon2id$y"))
        .await;
    let got = s.get("alice").await.unwrap().unwrap();
    assert_eq!(
        got.tenant_id(),
        None,
        "a replaced record keeps nothing of the old one"
    );
    seen.push(got.current_generation());
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
}

#[async_trait::async_trait]
impl Manage for MemoryCredentialStore {
    async fn insert(&self, id: &str, r: CredentialRecord) {
        MemoryCredentialStore::insert(self, id, r)
    }
    async fn set_hash(&self, id: &str, phc: &str) -> bool {
        self.set_password_hash(id, phc)
    }
    async fn remove(&self, id: &str) -> bool {
        MemoryCredentialStore::remove(self, id)
    }
}
