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
    #[error("discovery at {url:?} failed")]
    Discovery {
        /// The metadata URL.
        url: String,
        /// What went wrong.
        #[source]
        reason: FetchError,
    },
    /// The JWKS could not be fetched, or holds no usable key.
    #[error("JWKS at {url:?} failed")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What went wrong.
        #[source]
        reason: FetchError,
    },
    /// The HTTP client could not be created.
    #[error("HTTP client could not be built")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why fetching a discovery document or a JWK Set failed, the source of
/// [`JwtConfigError::Discovery`] and [`JwtConfigError::Jwks`] (and the `reason` logged when a
/// refresh fails).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The request could not be sent or was not answered in time; the source is the HTTP
    /// client's error with the URL left out.
    #[error("request failed")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A redirect led away from the configured URL (keys come only from that URL).
    #[error("redirected to another URL")]
    Redirected,
    /// An answer other than 200.
    #[error("status {0}")]
    Status(u16),
    /// The body exceeded the size limit.
    #[error("response too large")]
    TooLarge,
    /// The body broke off; the source is the HTTP client's error with the URL left out.
    #[error("reading the body failed")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The body is not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// The discovery document names another issuer (OIDC Discovery §4.3, RFC 8414 §3.3).
    #[error("the document's issuer does not match")]
    IssuerMismatch,
    /// The discovery document has no `jwks_uri`.
    #[error("no jwks_uri")]
    NoJwksUri,
    /// The JWK Set has no `keys` array (RFC 7517 §5).
    #[error("no \"keys\" array")]
    NoKeys,
    /// The JWK Set holds more keys than the verifier accepts.
    #[error("more than {0} keys")]
    TooManyKeys(usize),
    /// No key of the set can verify signatures.
    #[error("no usable signature key ({0} skipped)")]
    NoUsableKey(usize),
}
