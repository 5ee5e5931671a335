//! Registered OAuth 2.0 clients: argon2id hashes of their secrets and what they may do.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use apiauth_basic::PasswordHasher;
use apiauth_core::token::{SecretString, TokenFormat};
use apiauth_core::{ScopeSet, StoreError};
use async_trait::async_trait;

/// One registered client, as a [`ClientRegistry`] stores it.
#[derive(Clone)]
pub struct RegisteredClient {
    client_id: Arc<str>,
    secret_hash: Arc<str>,
    allowed_scopes: ScopeSet,
    tenant: Option<Arc<str>>,
    may_request_tokens: bool,
    may_introspect: bool,
    suspended: bool,
    /// RFC 8705 §2: the client authenticates with a certificate, not a secret.
    #[cfg(feature = "mtls")]
    tls: Option<Arc<TlsClientAuth>>,
}

/// How a client registered for mutual-TLS authentication is recognised by its certificate
/// (RFC 8705 §2.1.2 for `tls_client_auth`, §2.2 for `self_signed_tls_client_auth`). Exactly
/// one per client.
#[cfg(feature = "mtls")]
#[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsClientAuth {
    /// `tls_client_auth_subject_dn`: the subject DN (an RFC 4514 string, compared as a DN).
    SubjectDn(apiauth_mtls::x509::DistinguishedName),
    /// `tls_client_auth_san_dns`: a dNSName subjectAltName (compared case-insensitively).
    SanDns(String),
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier subjectAltName (exactly).
    SanUri(String),
    /// `tls_client_auth_san_ip`: an iPAddress subjectAltName.
    SanIp(std::net::IpAddr),
    /// `tls_client_auth_san_email`: an rfc822Name subjectAltName (exactly).
    SanEmail(String),
    /// `self_signed_tls_client_auth` (§2.2): the registered certificate, by its `x5t#S256`
    /// thumbprint (the client's JWKS reduced to the one certificate it uses).
    SelfSigned(String),
}

#[cfg(feature = "mtls")]
impl TlsClientAuth {
    /// `tls_client_auth_subject_dn` from its RFC 4514 string.
    pub fn subject_dn(dn: &str) -> Result<Self, apiauth_mtls::x509::BadDistinguishedName> {
        apiauth_mtls::x509::DistinguishedName::parse(dn).map(Self::SubjectDn)
    }

    /// The registration as a store keeps it: the client metadata parameter that names it
    /// (RFC 8705 §2.1.2) and its value. `self_signed_tls_client_auth` (§2.2) is kept as the
    /// certificate's thumbprint under `x5t#S256`.
    pub fn registration(&self) -> (&'static str, String) {
        match self {
            Self::SubjectDn(dn) => ("tls_client_auth_subject_dn", dn.as_str().to_owned()),
            Self::SanDns(v) => ("tls_client_auth_san_dns", v.clone()),
            Self::SanUri(v) => ("tls_client_auth_san_uri", v.clone()),
            Self::SanIp(ip) => ("tls_client_auth_san_ip", ip.to_string()),
            Self::SanEmail(v) => ("tls_client_auth_san_email", v.clone()),
            Self::SelfSigned(x5t) => ("x5t#S256", x5t.clone()),
        }
    }

    /// Reads back what [`registration`](Self::registration) wrote; `None` for anything else.
    pub fn from_registration(parameter: &str, value: &str) -> Option<Self> {
        Some(match parameter {
            "tls_client_auth_subject_dn" => Self::subject_dn(value).ok()?,
            "tls_client_auth_san_dns" => Self::SanDns(value.to_owned()),
            "tls_client_auth_san_uri" => Self::SanUri(value.to_owned()),
            "tls_client_auth_san_ip" => Self::SanIp(value.parse().ok()?),
            "tls_client_auth_san_email" => Self::SanEmail(value.to_owned()),
            "x5t#S256" => Self::SelfSigned(value.to_owned()),
            _ => return None,
        })
    }

    /// The token endpoint auth method name (RFC 8705 §2.1.1, §2.2.1).
    pub fn method_name(&self) -> &'static str {
        match self {
            Self::SelfSigned(_) => "self_signed_tls_client_auth",
            _ => "tls_client_auth",
        }
    }

    /// Whether `cert` is the certificate this client registered (§2.1.2, §2.2). The chain
    /// was verified by the TLS layer for `tls_client_auth`; a self-signed certificate is
    /// matched by its thumbprint alone.
    pub fn matches(&self, cert: &apiauth_mtls::ClientCertificate) -> bool {
        if let Self::SelfSigned(x5t) = self {
            return apiauth_core::token::ct_eq(x5t.as_bytes(), cert.x5t_s256().as_bytes());
        }
        let Ok(names) = cert.names() else {
            return false;
        };
        match self {
            Self::SubjectDn(dn) => names.subject == *dn,
            Self::SanDns(d) => names.dns.iter().any(|n| n.eq_ignore_ascii_case(d)),
            Self::SanUri(u) => names.uris.iter().any(|n| n == u),
            Self::SanIp(ip) => names.ips.contains(ip),
            Self::SanEmail(e) => names.emails.iter().any(|n| n == e),
            Self::SelfSigned(_) => false,
        }
    }
}

impl RegisteredClient {
    /// A client that may obtain tokens for `allowed_scopes` with the client-credentials grant.
    /// `secret_hash` is an argon2 PHC string (`apiauth_basic::hash_password`), never the
    /// secret itself.
    pub fn new(
        client_id: impl Into<Arc<str>>,
        secret_hash: impl Into<Arc<str>>,
        allowed_scopes: ScopeSet,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            secret_hash: secret_hash.into(),
            allowed_scopes,
            tenant: None,
            may_request_tokens: true,
            may_introspect: false,
            suspended: false,
            #[cfg(feature = "mtls")]
            tls: None,
        }
    }

    /// The tenant (customer account) the client belongs to. Its access tokens carry it in
    /// the `tenant` claim and introspection answers in a `tenant` member (RFC 7662 §2.2
    /// allows extension members), so that quotas, credits and tenant-scoped admin routes see
    /// whose client called; a resource server reads it with `JwtVerifierBuilder::tenant_claim`.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// A client that authenticates with its TLS client certificate (RFC 8705 §2), never a
    /// secret, and may obtain tokens for `allowed_scopes`.
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn tls_client_auth(
        client_id: impl Into<Arc<str>>,
        auth: TlsClientAuth,
        allowed_scopes: ScopeSet,
    ) -> Self {
        let mut c = Self::new(client_id, "", allowed_scopes);
        c.tls = Some(Arc::new(auth));
        c
    }

    /// How the client authenticates with a certificate, if it does (RFC 8705 §2).
    #[cfg(feature = "mtls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
    pub fn tls_auth(&self) -> Option<&TlsClientAuth> {
        self.tls.as_deref()
    }

    /// Also allows the client to call the introspection endpoint (RFC 7662 §4: only
    /// authorized protected resources may).
    #[must_use]
    pub fn allow_introspection(mut self) -> Self {
        self.may_introspect = true;
        self
    }

    /// Forbids the client-credentials grant, for a resource server that only introspects.
    /// Its token requests get `unauthorized_client` (RFC 6749 §5.2).
    #[must_use]
    pub fn without_token_grant(mut self) -> Self {
        self.may_request_tokens = false;
        self
    }

    /// Marks the client's grant as revoked: it still authenticates, but token requests get
    /// `invalid_grant` (RFC 6749 §5.2) until it is reinstated.
    #[must_use]
    pub fn suspended(mut self, suspended: bool) -> Self {
        self.suspended = suspended;
        self
    }

    /// The client identifier.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The argon2 PHC string of the secret.
    pub fn secret_hash(&self) -> &str {
        &self.secret_hash
    }

    /// The scopes the client may request.
    pub fn allowed_scopes(&self) -> &ScopeSet {
        &self.allowed_scopes
    }

    /// The tenant the client belongs to, if any.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// Whether the client may use the client-credentials grant.
    pub fn may_request_tokens(&self) -> bool {
        self.may_request_tokens
    }

    /// Whether the client may call the introspection endpoint.
    pub fn may_introspect(&self) -> bool {
        self.may_introspect
    }

    /// Whether the client's grant is suspended.
    pub fn is_suspended(&self) -> bool {
        self.suspended
    }
}

impl fmt::Debug for RegisteredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredClient")
            .field("client_id", &self.client_id)
            .field("allowed_scopes", &self.allowed_scopes)
            .field("tenant", &self.tenant)
            .field("may_request_tokens", &self.may_request_tokens)
            .field("may_introspect", &self.may_introspect)
            .field("suspended", &self.suspended)
            .finish_non_exhaustive()
    }
}

/// Where the authorization server looks clients up. Async and dyn-compatible so that a shared
/// store can replace [`MemoryClientRegistry`].
#[async_trait]
pub trait ClientRegistry: Send + Sync + 'static {
    /// The client registered as `client_id`, if any.
    async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError>;
}

/// In-memory [`ClientRegistry`].
///
/// ```
/// use apiauth_core::ScopeSet;
/// use apiauth_oauth2::MemoryClientRegistry;
///
/// let clients = MemoryClientRegistry::new();
/// let secret = clients.register("billing-worker", ScopeSet::parse("invoices:read").unwrap());
/// // Hand `secret.expose_secret()` to the client once; only its argon2id hash is kept.
/// # let _ = secret;
/// ```
#[derive(Clone)]
pub struct MemoryClientRegistry {
    clients: Arc<RwLock<HashMap<Arc<str>, RegisteredClient>>>,
    hasher: PasswordHasher,
}

impl Default for MemoryClientRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryClientRegistry {
    /// An empty registry hashing with the default (OWASP) argon2id parameters.
    pub fn new() -> Self {
        Self::with_hasher(PasswordHasher::default())
    }

    /// An empty registry hashing with `hasher` (cheap parameters in tests).
    pub fn with_hasher(hasher: PasswordHasher) -> Self {
        Self {
            clients: Arc::default(),
            hasher,
        }
    }

    /// Registers (or replaces) a token-requesting client with a fresh random secret and
    /// returns that secret: the only time it is visible. Hashing takes tens of milliseconds;
    /// call this at startup or from a blocking task.
    pub fn register(&self, client_id: &str, allowed_scopes: ScopeSet) -> SecretString {
        let (secret, hash) = self.new_secret();
        self.insert(RegisteredClient::new(client_id, hash, allowed_scopes));
        secret
    }

    /// Registers (or replaces) a resource server that may only introspect, and returns its
    /// fresh secret.
    pub fn register_resource_server(&self, client_id: &str) -> SecretString {
        let (secret, hash) = self.new_secret();
        self.insert(
            RegisteredClient::new(client_id, hash, ScopeSet::empty())
                .without_token_grant()
                .allow_introspection(),
        );
        secret
    }

    /// Inserts (or replaces) a client record whose hash was made elsewhere.
    pub fn insert(&self, client: RegisteredClient) {
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(client.client_id.clone(), client);
    }

    /// Suspends or reinstates a client; `false` if there is no such client.
    pub fn set_suspended(&self, client_id: &str, suspended: bool) -> bool {
        let mut map = self.clients.write().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(client_id) {
            Some(c) => {
                c.suspended = suspended;
                true
            }
            None => false,
        }
    }

    /// Removes a client; `false` if there was none.
    pub fn remove(&self, client_id: &str) -> bool {
        self.clients
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(client_id)
            .is_some()
    }

    fn new_secret(&self) -> (SecretString, String) {
        // Prefixed and checksummed so that secret scanners recognise a leaked one.
        let generated = client_secret_format().generate();
        let hash = self.hasher.hash(generated.token.expose_secret());
        (generated.token, hash)
    }
}

fn client_secret_format() -> TokenFormat {
    #[allow(clippy::expect_used)]
    TokenFormat::new(CLIENT_SECRET_PREFIX).expect("the constant prefix is valid")
}

/// Prefix of generated client secrets.
pub const CLIENT_SECRET_PREFIX: &str = "ocs_";

impl fmt::Debug for MemoryClientRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clients.read().unwrap_or_else(|p| p.into_inner()).len();
        f.debug_struct("MemoryClientRegistry")
            .field("clients", &n)
            .field("hasher", &self.hasher)
            .finish()
    }
}

#[async_trait]
impl ClientRegistry for MemoryClientRegistry {
    async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        Ok(self
            .clients
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(client_id)
            .cloned())
    }
}
