//! The crate's errors: [`HttpSigConfigError`] for what is found at startup (a bad secret, a
//! bad option or component), [`SignError`] for a request a client could not sign.
//! Request-path failures on the server are core's `AuthError`.

/// A configuration error: a secret, an option or a component that cannot be used. Found
/// when a verifier, signer or component is built, never on the request path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSigConfigError {
    /// A secret is shorter than the minimum (RFC 2104 §3: at least the hash output, 32 bytes).
    #[error("HMAC secret must be at least {min} bytes")]
    SecretTooShort {
        /// The minimum length in bytes.
        min: usize,
    },
    /// A component name or parameter is not valid (not printable ASCII, listed twice).
    #[error("invalid component: {0:?}")]
    InvalidComponent(String),
    /// A signature parameter (label, key id, tag, nonce) is not a valid structured value.
    #[error("invalid signature parameter: {0:?}")]
    InvalidParameter(String),
    /// A required setting is missing.
    #[error("missing setting: {0}")]
    Missing(&'static str),
}

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signer's configuration refused this signature (for example its nonce).
    #[error("signer configuration")]
    Config(#[from] HttpSigConfigError),
    /// The request lacks what a covered component needs (a field, the authority…).
    #[error("cannot sign: the request has no {0}")]
    CannotSign(&'static str),
    /// The signer's clock is before 1970.
    #[error("the signer's clock is before the Unix epoch")]
    Clock(#[source] std::time::SystemTimeError),
    /// A header the signer writes is not a valid header value.
    #[error("a signature header is not a valid header value")]
    HeaderValue(#[from] http::header::InvalidHeaderValue),
    /// The request's URL is not a valid `http::Uri`.
    #[cfg(feature = "reqwest")]
    #[error("the request URL is not a valid URI")]
    Url(#[source] http::uri::InvalidUri),
    /// The request body is a stream, so its digest cannot be computed before sending.
    #[error("cannot sign a streaming body; buffer it first")]
    StreamingBody,
}
