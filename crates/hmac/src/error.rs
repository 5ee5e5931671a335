//! The crate's one error type for configuration and client-side signing. Request-path failures
//! on the server are core's `AuthError`.

/// A configuration or signing error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HmacError {
    /// A secret is shorter than the minimum (RFC 2104 §3: at least the hash output, 32 bytes).
    #[error("HMAC secret must be at least {min} bytes")]
    SecretTooShort {
        /// The minimum length in bytes.
        min: usize,
    },
    /// A component name or parameter is not valid (not a field name, not printable ASCII).
    #[error("invalid component: {0:?}")]
    InvalidComponent(String),
    /// A signature parameter (label, key id, tag, nonce) is not a valid structured value.
    #[error("invalid signature parameter: {0:?}")]
    InvalidParameter(String),
    /// A header name given in configuration is not valid.
    #[error("invalid header name: {0:?}")]
    InvalidHeaderName(String),
    /// A required setting is missing.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// The request to sign lacks what a covered component needs (a field, the authority…).
    #[error("cannot sign: {0}")]
    CannotSign(&'static str),
    /// The request body is a stream, so its digest cannot be computed before sending.
    #[error("cannot sign a streaming body; buffer it first")]
    StreamingBody,
}
