//! The crate's one error type, for configuration and the helper functions. On the request
//! path every failure is core's [`AuthError`](apiauth_core::AuthError).

/// Why a configuration or a helper call of this crate failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicError {
    /// Argon2 refused the parameters (for example memory below 8 blocks per lane).
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(String),
    /// The parameters are below the OWASP minimum; use `dangerous_with_params` to insist.
    #[error(
        "argon2 parameters below the OWASP minimum (m >= 7168 KiB and m*t >= 35840 KiB, p >= 1)"
    )]
    WeakParams,
    /// A setting is out of range (a zero capacity, a zero failure limit, …).
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// A stored password hash is not a PHC string argon2 understands.
    #[error("the stored password hash is not a valid argon2 PHC string")]
    MalformedHash,
    /// The blocking task that ran argon2 did not complete (the runtime is shutting down).
    #[error("password verification did not complete")]
    VerificationAborted,
    /// The operating system could not supply randomness for the cache key or the dummy hash.
    #[error("the OS random number generator failed")]
    Randomness,
    /// Credentials that cannot be put into a Basic header as they are.
    #[error("cannot encode these credentials: {0}")]
    UnencodableCredentials(&'static str),
}
