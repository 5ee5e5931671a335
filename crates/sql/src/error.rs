//! Startup and management errors of the SQL stores, and the one mapping of driver errors onto
//! the request path's [`StoreError`].

use apiauth_core::StoreError;

/// `tracing` target of the crate's warnings (a failed or slow statement).
pub const LOG_TARGET: &str = "apiauth::sql";

/// What can go wrong opening the database, migrating it, or managing signing keys.
///
/// Request-path failures are [`StoreError`]s instead (503, never 401). No variant carries a
/// secret: not the database password, not a key, not a key-encryption key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The URL names no supported database (`sqlite:` or `postgres://`).
    #[error("unsupported database URL scheme (expected sqlite: or postgres://)")]
    UnsupportedUrl,
    /// The database could not be reached or opened.
    #[error("could not connect to the {dialect} database")]
    Connect {
        /// `SQLite` or `PostgreSQL`.
        dialect: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; its transaction was rolled back.
    #[error("schema migration to version {version} failed")]
    Migrate {
        /// The version being applied.
        version: i64,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The schema is newer than this build knows: an older binary must not write to it.
    #[error("database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The key-encryption key is not 32 bytes of hex or base64.
    #[error("the key-encryption key must be 32 bytes, as 64 hex digits or base64")]
    KekFormat,
    /// The stored records were encrypted under another key-encryption key.
    #[error(
        "the key-encryption key does not match the one this database's signing keys were \
         encrypted with (wrong key, or a different database)"
    )]
    WrongKek,
    /// A signing key is not a P-256 private key.
    #[error("signing key is not a P-256 private key in DER (PKCS#8 or RFC 5915)")]
    InvalidSigningKey,
    /// A cryptographic operation failed (random generation, sealing).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A driver error on the request path: logged here (the driver's message names no bound
/// value), answered as [`StoreError::Unavailable`] with only the operation's name.
pub(crate) fn unavailable(op: &'static str, e: &sqlx::Error) -> StoreError {
    tracing::warn!(target: LOG_TARGET, op, error = %e, "sql statement failed");
    StoreError::Unavailable(format!("sql: {op} failed"))
}

/// A row the store cannot read back (a negative time, an unparsable scope list).
pub(crate) fn corrupt(op: &'static str) -> StoreError {
    tracing::warn!(target: LOG_TARGET, op, "unreadable row");
    StoreError::Unavailable(format!("sql: {op}: unreadable row"))
}
