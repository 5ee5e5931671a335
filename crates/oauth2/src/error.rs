//! The startup error of this crate.

/// A configuration that cannot be built. Request-path failures are core's
/// [`AuthError`](apiauth_core::AuthError) instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuth2ConfigError {
    /// A URL that does not parse, or that has a query or fragment where none is allowed.
    #[error("invalid URL for {what}: {reason}")]
    InvalidUrl {
        /// Which setting.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A plain `http` URL where `https` is required (RFC 6749 §1.6, RFC 8414 §2). Opt in with
    /// the matching `dangerous_*` method for loopback tests only.
    #[error("{what} must use https")]
    InsecureUrl {
        /// Which setting.
        what: &'static str,
    },
    /// A required setting was not given.
    #[error("missing setting: {0}")]
    Missing(&'static str),
    /// Settings that contradict each other or are out of range.
    #[error("invalid setting: {0}")]
    Invalid(&'static str),
    /// The HTTP client could not be built.
    #[error("HTTP client could not be built")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Generating or loading a signing key failed.
    #[error("signing key: {reason}")]
    Key {
        /// What failed.
        reason: &'static str,
        /// The key library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl OAuth2ConfigError {
    /// A signing-key failure caused by `source` (none of which holds key material).
    #[cfg(feature = "server")]
    pub(crate) fn key(
        reason: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Key {
            reason,
            source: Box::new(source),
        }
    }
}
