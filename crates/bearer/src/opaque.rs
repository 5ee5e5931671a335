//! Opaque bearer tokens over the API key records.
//!
//! A personal access token or service token is the same thing as an API key (a prefixed,
//! checksummed random secret, stored as SHA-256, with owner, tenant, scopes, expiry, rotation
//! and revocation), sent another way (RFC 6750 `Authorization: Bearer`). So it shares the API
//! key crate's store, management handle and constant-time verification instead of a second
//! copy of them: a Redis `ApiKeyStore` serves both.

use apiauth_api_key::{ApiKeyAuthenticator, ApiKeyConfigError, ApiKeys};
use apiauth_core::{AuthError, AuthMethod, Principal};

use crate::TokenVerifier;

/// A [`TokenVerifier`] for opaque tokens managed by an [`ApiKeys`] handle.
///
/// ```
/// use std::sync::Arc;
/// use apiauth_api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
/// use apiauth_bearer::{Bearer, OpaqueTokens};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// // A separate prefix keeps tokens and API keys apart even in one store.
/// let tokens = ApiKeys::new(Arc::new(MemoryApiKeyStore::new())).prefix("pat_")?;
/// let layer = Bearer::new(OpaqueTokens::new(&tokens)?).realm("api").layer();
/// let created = tokens.create(NewKey::new("alice")).await?;
/// // Hand `created.key.expose_secret()` to alice once; she sends `Authorization: Bearer …`.
/// # Ok(()) }
/// ```
pub struct OpaqueTokens {
    auth: ApiKeyAuthenticator,
}

impl OpaqueTokens {
    /// Verifies tokens of `tokens`' prefix against its store.
    pub fn new(tokens: &ApiKeys) -> Result<Self, ApiKeyConfigError> {
        Ok(Self {
            auth: tokens.auth().build()?,
        })
    }
}

impl TokenVerifier for OpaqueTokens {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }

    async fn verify(
        &self,
        token: &str,
        _req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        self.auth.verify_secret(token, AuthMethod::BEARER).await
    }
}
