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

    // RFC 8705 §2: certificate registrations come back as registered (the crate including
    // this contract names the feature that stores them).
    #[cfg(feature = "mtls")]
    {
        use apiauth_oauth2::TlsClientAuth;
        let registrations = [
            TlsClientAuth::subject_dn("CN=client-a, O=Example Corp,C=SE").unwrap(),
            TlsClientAuth::SanDns("client.example".into()),
            TlsClientAuth::SanUri("spiffe://example/client".into()),
            TlsClientAuth::SanIp("2001:db8::7".parse().unwrap()),
            TlsClientAuth::SanEmail("ops@example.com".into()),
            TlsClientAuth::SelfSigned("A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0".into()),
        ];
        for auth in registrations {
            let c =
                RegisteredClient::tls_client_auth("cert-client", auth.clone(), ScopeSet::empty())
                    .tenant("acme");
            r.insert(c.clone()).await;
            let found = r.find("cert-client").await.unwrap().unwrap();
            assert!(same(&found, &c));
            assert_eq!(found.tls_auth(), Some(&auth));
            if let TlsClientAuth::SubjectDn(dn) = &auth {
                assert_eq!(
                    found.tls_auth().map(|a| a.registration().1),
                    Some(dn.as_str().to_owned())
                );
            }
        }
        assert!(r.remove("cert-client").await);
        let plain = r.find("billing").await.unwrap().unwrap();
        assert!(plain.tls_auth().is_none());
    }

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
