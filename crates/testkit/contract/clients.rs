//! `ClientRegistry`: insert, find, suspend, replace whole, remove.

use apiauth_core::ScopeSet;
use apiauth_oauth2::{ClientRegistry, MemoryClientRegistry, RegisteredClient};

/// The management side differs per implementation; the contract drives it through this.
#[async_trait::async_trait]
pub trait Manage: Send + Sync {
    async fn insert(&self, c: RegisteredClient);
    async fn suspend(&self, id: &str, s: bool) -> bool;
    async fn remove(&self, id: &str) -> bool;
}

pub fn same(a: &RegisteredClient, b: &RegisteredClient) -> bool {
    a.client_id() == b.client_id()
        && a.secret_hash() == b.secret_hash()
        && a.allowed_scopes() == b.allowed_scopes()
        && a.tenant_id() == b.tenant_id()
        && a.may_request_tokens() == b.may_request_tokens()
        && a.may_introspect() == b.may_introspect()
        && a.is_suspended() == b.is_suspended()
}

pub async fn client_registry_contract<R: ClientRegistry + Manage>(r: R) {
    assert!(r.find("billing").await.unwrap().is_none());
    let billing = RegisteredClient::new(
        "billing",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        ScopeSet::parse("invoices:read invoices:write").unwrap(),
    )
    .tenant("acme");
    let rs = RegisteredClient::new("resource", "$argon2id$x", ScopeSet::empty())
        .without_token_grant()
        .allow_introspection();
    r.insert(billing.clone()).await;
    r.insert(rs.clone()).await;
    assert!(same(&r.find("billing").await.unwrap().unwrap(), &billing));
    assert_eq!(
        r.find("billing").await.unwrap().unwrap().tenant_id(),
        Some("acme")
    );
    assert_eq!(r.find("resource").await.unwrap().unwrap().tenant_id(), None);
    assert!(same(&r.find("resource").await.unwrap().unwrap(), &rs));

    assert!(r.suspend("billing", true).await);
    assert!(r.find("billing").await.unwrap().unwrap().is_suspended());
    assert!(!r.suspend("nobody", true).await);
    assert!(
        r.find("nobody").await.unwrap().is_none(),
        "suspending creates nothing"
    );
    assert!(r.suspend("billing", false).await);
    assert!(!r.find("billing").await.unwrap().unwrap().is_suspended());

    // Replacing a record replaces every field.
    let narrowed = RegisteredClient::new("billing", "$argon2id$new", ScopeSet::empty());
    r.insert(narrowed.clone()).await;
    assert!(same(&r.find("billing").await.unwrap().unwrap(), &narrowed));

    assert!(r.remove("billing").await);
    assert!(!r.remove("billing").await);
    assert!(r.find("billing").await.unwrap().is_none());
}

#[async_trait::async_trait]
impl Manage for MemoryClientRegistry {
    async fn insert(&self, c: RegisteredClient) {
        MemoryClientRegistry::insert(self, c)
    }
    async fn suspend(&self, id: &str, s: bool) -> bool {
        self.set_suspended(id, s)
    }
    async fn remove(&self, id: &str) -> bool {
        MemoryClientRegistry::remove(self, id)
    }
}
