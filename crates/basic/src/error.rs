//! The crate's errors: [`BasicConfigError`] at startup (a builder, hasher, checker or lock-out
//! policy refused its settings) and [`BasicError`] from the helper functions. On the request
//! path every failure is core's [`AuthError`](apiauth_core::AuthError).

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicConfigError {
    /// Argon2 refused the parameters (for example memory below 8 blocks per lane); the
    /// source says which.
    #[error("invalid argon2 parameters")]
    InvalidParams(#[source] argon2::Error),
    /// The parameters are below the OWASP minimum; use `dangerous_with_params` to insist.
    #[error(
        "argon2 parameters below the OWASP minimum (m >= 7168 KiB and m*t >= 35840 KiB, p >= 1)"
    )]
    WeakParams,
    /// A setting is out of range (a zero capacity, a zero failure limit, …).
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// The operating system could not supply randomness for the cache key or the dummy hash.
    #[error("the OS random number generator failed")]
    Randomness,
}

/// Why a helper call ([`verify_password`](crate::verify_password),
/// [`BasicCredentials::to_header_value`](crate::BasicCredentials::to_header_value)) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BasicError {
    /// A stored password hash is not a PHC string argon2 understands.
    #[error("the stored password hash is not a valid argon2 PHC string")]
    MalformedHash,
    /// The blocking task that ran argon2 did not complete (the runtime is shutting down).
    #[error("password verification did not complete")]
    VerificationAborted,
    /// Credentials that cannot be put into a Basic header as they are.
    #[error("cannot encode these credentials: {0}")]
    UnencodableCredentials(&'static str),
}
