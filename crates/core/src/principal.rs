//! The verified identity a method layer hands to the rest of the stack.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use http::Extensions;

use crate::scope::ScopeSet;

/// How a [`Principal`] proved who it is.
///
/// The string form (see [`AuthMethod::as_str`]) is what audit events and metrics carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// An API key (`X-API-Key` or `Authorization: ApiKey`).
    ApiKey,
    /// HTTP Basic (RFC 7617).
    Basic,
    /// An opaque bearer token looked up in a token store (RFC 6750).
    Bearer,
    /// A self-contained JWT bearer token (RFC 7519, RFC 9068).
    Jwt,
    /// A bearer token verified by OAuth 2.0 token introspection (RFC 7662).
    Introspection,
    /// An HTTP Message Signature (RFC 9421).
    HttpSignature,
    /// A webhook signature (`t=…,v1=…` or `sha256=…` styles).
    Webhook,
    /// A method defined outside this suite.
    Custom(&'static str),
}

impl AuthMethod {
    /// Stable lowercase name, used in audit events and metrics labels.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Basic => "basic",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Introspection => "introspection",
            AuthMethod::HttpSignature => "http_signature",
            AuthMethod::Webhook => "webhook",
            AuthMethod::Custom(name) => name,
        }
    }

    /// Whether the method travels as an RFC 6750 bearer token, so that a 403 may carry a
    /// `Bearer error="insufficient_scope"` challenge (RFC 6750 §3.1).
    pub const fn is_bearer(&self) -> bool {
        matches!(
            self,
            AuthMethod::Bearer | AuthMethod::Jwt | AuthMethod::Introspection
        )
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified caller: who it is, how it proved it, and what it may do.
///
/// Cheap to clone (one `Arc`). Built by method layers with [`Principal::builder`] and read by
/// handlers through the [`Auth`](crate::Auth) and [`Scoped`](crate::Scoped) extractors.
#[derive(Clone)]
pub struct Principal {
    inner: Arc<Inner>,
}

struct Inner {
    subject: Arc<str>,
    method: AuthMethod,
    tenant: Option<Arc<str>>,
    credential_id: Option<Arc<str>>,
    scopes: ScopeSet,
    expires_at: Option<SystemTime>,
    plan: Option<Arc<str>>,
    attributes: Extensions,
}

impl Principal {
    /// Starts a principal for `subject`, authenticated by `method`.
    pub fn builder(subject: impl Into<Arc<str>>, method: AuthMethod) -> PrincipalBuilder {
        PrincipalBuilder {
            inner: Inner {
                subject: subject.into(),
                method,
                tenant: None,
                credential_id: None,
                scopes: ScopeSet::empty(),
                expires_at: None,
                plan: None,
                attributes: Extensions::new(),
            },
        }
    }

    /// Who the caller is (user id, client id, key owner).
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// How the caller authenticated.
    pub fn method(&self) -> AuthMethod {
        self.inner.method
    }

    /// The tenant (organisation, account) the caller acts for, if the method knows one.
    pub fn tenant(&self) -> Option<&str> {
        self.inner.tenant.as_deref()
    }

    /// The public identifier of the credential used: API key id, JWT `jti` or `kid`, signature
    /// `keyid`. Never the secret itself.
    pub fn credential_id(&self) -> Option<&str> {
        self.inner.credential_id.as_deref()
    }

    /// The scopes granted to this credential.
    pub fn scopes(&self) -> &ScopeSet {
        &self.inner.scopes
    }

    /// When the credential stops being valid, if it expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner.expires_at
    }

    /// The billing plan or tier (`free`, `pro`, …) used by quotas, if known.
    pub fn plan(&self) -> Option<&str> {
        self.inner.plan.as_deref()
    }

    /// A typed attribute attached by the method layer (claims, roles, …).
    pub fn attribute<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.inner.attributes.get::<T>()
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only public facts: a principal never holds a secret.
        f.debug_struct("Principal")
            .field("subject", &self.inner.subject)
            .field("method", &self.inner.method)
            .field("tenant", &self.inner.tenant)
            .field("credential_id", &self.inner.credential_id)
            .field("scopes", &self.inner.scopes)
            .field("expires_at", &self.inner.expires_at)
            .field("plan", &self.inner.plan)
            .finish_non_exhaustive()
    }
}

/// Builder for [`Principal`].
#[must_use]
pub struct PrincipalBuilder {
    inner: Inner,
}

impl PrincipalBuilder {
    /// Sets the tenant.
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.inner.tenant = Some(tenant.into());
        self
    }

    /// Sets the public credential identifier.
    pub fn credential_id(mut self, id: impl Into<Arc<str>>) -> Self {
        self.inner.credential_id = Some(id.into());
        self
    }

    /// Sets the granted scopes.
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.inner.scopes = scopes;
        self
    }

    /// Sets the expiry of the credential.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.inner.expires_at = Some(at);
        self
    }

    /// Sets the plan tier.
    pub fn plan(mut self, plan: impl Into<Arc<str>>) -> Self {
        self.inner.plan = Some(plan.into());
        self
    }

    /// Attaches a typed attribute, replacing any earlier one of the same type.
    pub fn attribute<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.inner.attributes.insert(value);
        self
    }

    /// Finishes the principal.
    pub fn build(self) -> Principal {
        Principal {
            inner: Arc::new(self.inner),
        }
    }
}
