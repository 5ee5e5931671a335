//! The crate's errors: [`ApiKeyConfigError`] at startup (a builder refused its settings) and
//! [`ApiKeyError`] from key management ([`ApiKeys`](crate::ApiKeys)).
//!
//! On the request path the layer answers with core's `AuthError` instead.

use apiauth_core::StoreError;
use apiauth_core::token::InvalidPrefix;

use crate::record::KeyStatus;

/// A configuration error: [`ApiKeyAuth::build`](crate::ApiKeyAuth::build) or
/// [`ApiKeys::prefix`](crate::ApiKeys::prefix) refused a setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyConfigError {
    /// The key prefix breaks the format's rules.
    #[error(transparent)]
    InvalidPrefix(#[from] InvalidPrefix),
    /// The `Authorization` scheme is not an RFC 7235 §2.1 token.
    #[error("invalid Authorization scheme name for API keys")]
    InvalidScheme,
    /// The realm contains characters that cannot be sent in a challenge.
    #[error("realm must be printable ASCII")]
    InvalidRealm,
    /// The query parameter name is empty or would need percent-encoding.
    #[error("query parameter name must be non-empty unreserved ASCII")]
    InvalidQueryParameter,
    /// Neither a header nor an `Authorization` scheme is configured.
    #[error("API keys must be read from a header or the Authorization field")]
    NoKeySource,
}

/// A key management error, from [`ApiKeys`](crate::ApiKeys).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// An expiry or grace period is too far in the future to represent.
    #[error("expiry out of range")]
    InvalidExpiry,
    /// No key with that id.
    #[error("no such API key")]
    NotFound,
    /// The key cannot be rotated in its current status.
    #[error("API key is {} and cannot be rotated", .0.reason())]
    NotActive(KeyStatus),
    /// Every freshly generated id was already taken (practically impossible: suspect the
    /// random number generator or the store).
    #[error("could not allocate an unused key id")]
    IdCollision,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
