//! The startup error type. Request-time failures are core's `AuthError`.

use jsonwebtoken::Algorithm;

/// Why a [`JwtVerifier`](crate::JwtVerifier) could not be built.
///
/// Only startup returns this: a configuration mistake or an issuer that cannot be reached
/// when the service starts. Per-request failures are `apiauth_core::AuthError` (401 or 503).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// No issuer was configured.
    #[error("no issuer configured")]
    NoIssuer,
    /// Two issuers share one `iss` value.
    #[error("issuer {0:?} configured twice")]
    DuplicateIssuer(String),
    /// An issuer has no key source (static keys, JWKS URL or discovery).
    #[error("issuer {0:?} has no keys, JWKS URL or discovery")]
    NoKeySource(String),
    /// An issuer names no audience and did not opt out with `dangerous_accept_any_audience`.
    #[error("issuer {0:?} has no audience; RFC 9068 §4 requires checking `aud`")]
    NoAudience(String),
    /// A key could not be read.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A key's allowlist names an algorithm of another family or curve.
    #[error("algorithm {algorithm:?} does not fit key {kid:?}")]
    AlgorithmNotForKey {
        /// The algorithm.
        algorithm: Algorithm,
        /// The key id, if the key has one.
        kid: Option<String>,
    },
    /// A URL is malformed, or plain `http` to a host other than loopback without
    /// `dangerous_allow_http`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A setting is out of its safe range.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// The discovery document could not be fetched or is not valid.
    #[error("discovery at {url:?} failed: {reason}")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The JWKS could not be fetched, or holds no usable key.
    #[error("JWKS at {url:?} failed: {reason}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be created.
    #[error("HTTP client could not be built")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
}
