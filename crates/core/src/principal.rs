//! The verified identity a method layer hands to the rest of the stack.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use http::Extensions;

use crate::error::Challenge;
use crate::scope::ScopeSet;

/// How a [`Principal`] proved who it is: a stable lowercase name.
///
/// Open: the suite's methods are associated constants ([`AuthMethod::API_KEY`],
/// [`AuthMethod::JWT`], …) and a method crate outside the suite names its own with
/// [`AuthMethod::custom`], with no new variant and no change here. The name is what audit
/// events, metrics labels and [`Principal::identity`] carry, so a method keeps it forever.
///
/// `Copy` and usable in `match` patterns: names are fixed when a method crate is written.
///
/// ```
/// use apiauth_core::AuthMethod;
///
/// const DPOP: AuthMethod = AuthMethod::custom("dpop");
/// assert_eq!(DPOP.as_str(), "dpop");
/// assert_eq!(AuthMethod::API_KEY.as_str(), "api_key");
/// match DPOP {
///     AuthMethod::JWT => unreachable!(),
///     DPOP => {}
///     _ => unreachable!(),
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthMethod(&'static str);

impl AuthMethod {
    /// An API key (`X-API-Key` or `Authorization: ApiKey`).
    pub const API_KEY: AuthMethod = AuthMethod("api_key");
    /// HTTP Basic (RFC 7617).
    pub const BASIC: AuthMethod = AuthMethod("basic");
    /// An opaque bearer token looked up in a token store (RFC 6750).
    pub const BEARER: AuthMethod = AuthMethod("bearer");
    /// A self-contained JWT bearer token (RFC 7519, RFC 9068).
    pub const JWT: AuthMethod = AuthMethod("jwt");
    /// A bearer token verified by OAuth 2.0 token introspection (RFC 7662).
    pub const INTROSPECTION: AuthMethod = AuthMethod("introspection");
    /// An HTTP Message Signature (RFC 9421).
    pub const HTTP_SIGNATURE: AuthMethod = AuthMethod("http_signature");
    /// A webhook signature (`t=…,v1=…` or `sha256=…` styles).
    pub const WEBHOOK: AuthMethod = AuthMethod("webhook");

    /// A method defined outside this suite, named `name` (lowercase, `_` between words, by
    /// convention: `dpop`, `mtls`). Pick a name no other method uses: two methods with one
    /// name share identities, quota buckets and metrics.
    pub const fn custom(name: &'static str) -> Self {
        AuthMethod(name)
    }

    /// Stable lowercase name, used in audit events, metrics labels and identities.
    pub const fn as_str(&self) -> &'static str {
        self.0
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
    challenge: OnceLock<Option<Arc<Challenge>>>,
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
                challenge: OnceLock::new(),
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
    /// let key = Principal::builder("acme", AuthMethod::API_KEY).build();
    /// let token = Principal::builder("acme", AuthMethod::JWT)
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

    /// The challenge of the scheme that authenticated this principal, as answers after
    /// authentication carry it: a 403 `insufficient_scope` sends it with RFC 6750 §3.1 error
    /// attributes (`Bearer`, `DPoP`, …). `None` for schemes that define no such answer (API
    /// keys, Basic, signatures), whose 403s carry no challenge.
    ///
    /// Set by [`AuthLayer`](crate::AuthLayer) from
    /// [`Authenticator::scope_challenge`](crate::Authenticator::scope_challenge), unless the
    /// method set one with [`PrincipalBuilder::challenge`].
    pub fn challenge(&self) -> Option<&Challenge> {
        self.inner.challenge.get().and_then(|c| c.as_deref())
    }

    /// Records the authenticating layer's challenge, unless one is set already.
    pub(crate) fn attach_challenge(&self, challenge: &Option<Arc<Challenge>>) {
        let _ = self.inner.challenge.get_or_init(|| challenge.clone());
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

    /// Sets the challenge later answers on this principal carry (see [`Principal::challenge`]),
    /// for principals made outside an [`AuthLayer`](crate::AuthLayer); a layer keeps it.
    pub fn challenge(self, challenge: Challenge) -> Self {
        let _ = self.inner.challenge.set(Some(Arc::new(challenge)));
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
            id(AuthMethod::API_KEY, None, "acme-crm-sync"),
            id(
                AuthMethod::JWT,
                Some("http://127.0.0.1:8080"),
                "acme-crm-sync"
            )
        );
        assert_ne!(
            id(AuthMethod::JWT, Some("https://a.example"), "u1"),
            id(AuthMethod::JWT, Some("https://b.example"), "u1")
        );
        assert_eq!(
            id(AuthMethod::JWT, Some("https://a.example"), "u1"),
            id(AuthMethod::JWT, Some("https://a.example"), "u1")
        );
    }

    #[test]
    fn identity_escapes_separators_so_no_two_sources_alias() {
        // Without escaping, issuer `a:b` + subject `c` and issuer `a` + subject `b:c` would
        // both read `jwt:a:b:c`.
        let x = id(AuthMethod::JWT, Some("a:b"), "c");
        let y = id(AuthMethod::JWT, Some("a"), "b:c");
        assert_ne!(x, y);
        assert_eq!(x, "jwt:a%3Ab:c");
        assert_eq!(y, "jwt:a:b:c");
        assert_eq!(id(AuthMethod::JWT, Some("50%"), "s"), "jwt:50%25:s");
        assert_eq!(
            id(AuthMethod::custom("x:y"), None, "s"),
            "x%3Ay::s",
            "a custom method name is escaped too"
        );
        // An empty issuer differs from none only in nothing: both are the empty string.
        assert_eq!(
            id(AuthMethod::JWT, Some(""), "s"),
            id(AuthMethod::JWT, None, "s")
        );
    }
}
