//! The verified identity a method layer hands to the rest of the stack.

use std::fmt;
use std::sync::{Arc, OnceLock};
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
    issuer: Option<Arc<str>>,
    identity: OnceLock<Box<str>>,
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
                issuer: None,
                identity: OnceLock::new(),
                tenant: None,
                credential_id: None,
                scopes: ScopeSet::empty(),
                expires_at: None,
                plan: None,
                attributes: Extensions::new(),
            },
        }
    }

    /// Who the caller is (user id, client id, key owner), as its credential source names it.
    ///
    /// A subject is unique only within its source: an API key owner and an OAuth client, or
    /// two token issuers, may use the same name. Key anything per caller on
    /// [`identity`](Self::identity) instead.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// How the caller authenticated.
    pub fn method(&self) -> AuthMethod {
        self.inner.method
    }

    /// Who vouched for the subject, for tokens: the JWT `iss` (RFC 7519 §4.1.1) or the
    /// introspection answer's `iss` (RFC 7662 §2.2). `None` for credentials this service
    /// holds itself (API keys, Basic passwords, signature keys).
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The caller's stable identity key: `{method}:{issuer}:{subject}`, with `%` and `:`
    /// percent-encoded in the method and issuer (the subject is last, so it needs no
    /// escaping), and an empty issuer when there is none. Two principals have the same
    /// identity exactly when they have the same method, issuer and subject, so the API key
    /// owner `acme` (`api_key::acme`) and the OAuth client `acme`
    /// (`jwt:https%3A//as.example:acme`) never share a quota bucket or usage record.
    ///
    /// Computed on first use and kept with the principal.
    ///
    /// ```
    /// use apiauth_core::{AuthMethod, Principal};
    ///
    /// let key = Principal::builder("acme", AuthMethod::ApiKey).build();
    /// let token = Principal::builder("acme", AuthMethod::Jwt)
    ///     .issuer("https://as.example")
    ///     .build();
    /// assert_eq!(key.identity(), "api_key::acme");
    /// assert_eq!(token.identity(), "jwt:https%3A//as.example:acme");
    /// ```
    pub fn identity(&self) -> &str {
        self.inner.identity.get_or_init(|| {
            let i = &*self.inner;
            let issuer = i.issuer.as_deref().unwrap_or("");
            let mut key =
                String::with_capacity(i.method.as_str().len() + issuer.len() + i.subject.len() + 2);
            push_escaped(&mut key, i.method.as_str());
            key.push(':');
            push_escaped(&mut key, issuer);
            key.push(':');
            key.push_str(&i.subject);
            key.into_boxed_str()
        })
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
            .field("issuer", &self.inner.issuer)
            .field("tenant", &self.inner.tenant)
            .field("credential_id", &self.inner.credential_id)
            .field("scopes", &self.inner.scopes)
            .field("expires_at", &self.inner.expires_at)
            .field("plan", &self.inner.plan)
            .finish_non_exhaustive()
    }
}

/// Appends `s` with `%` and `:` percent-encoded, so that the `:` separators of an identity
/// key are unambiguous.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
}

/// Builder for [`Principal`].
#[must_use]
pub struct PrincipalBuilder {
    inner: Inner,
}

impl PrincipalBuilder {
    /// Sets the issuer that vouched for the subject (see [`Principal::issuer`]).
    pub fn issuer(mut self, issuer: impl Into<Arc<str>>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(method: AuthMethod, issuer: Option<&str>, subject: &str) -> String {
        let mut b = Principal::builder(subject, method);
        if let Some(i) = issuer {
            b = b.issuer(i);
        }
        b.build().identity().to_owned()
    }

    #[test]
    fn identity_separates_methods_and_issuers() {
        // The same subject from two credential sources is two callers.
        assert_ne!(
            id(AuthMethod::ApiKey, None, "acme-crm-sync"),
            id(
                AuthMethod::Jwt,
                Some("http://127.0.0.1:8080"),
                "acme-crm-sync"
            )
        );
        assert_ne!(
            id(AuthMethod::Jwt, Some("https://a.example"), "u1"),
            id(AuthMethod::Jwt, Some("https://b.example"), "u1")
        );
        assert_eq!(
            id(AuthMethod::Jwt, Some("https://a.example"), "u1"),
            id(AuthMethod::Jwt, Some("https://a.example"), "u1")
        );
    }

    #[test]
    fn identity_escapes_separators_so_no_two_sources_alias() {
        // Without escaping, issuer `a:b` + subject `c` and issuer `a` + subject `b:c` would
        // both read `jwt:a:b:c`.
        let x = id(AuthMethod::Jwt, Some("a:b"), "c");
        let y = id(AuthMethod::Jwt, Some("a"), "b:c");
        assert_ne!(x, y);
        assert_eq!(x, "jwt:a%3Ab:c");
        assert_eq!(y, "jwt:a:b:c");
        assert_eq!(id(AuthMethod::Jwt, Some("50%"), "s"), "jwt:50%25:s");
        assert_eq!(
            id(AuthMethod::Custom("x:y"), None, "s"),
            "x%3Ay::s",
            "a custom method name is escaped too"
        );
        // An empty issuer differs from none only in nothing: both are the empty string.
        assert_eq!(
            id(AuthMethod::Jwt, Some(""), "s"),
            id(AuthMethod::Jwt, None, "s")
        );
    }
}
