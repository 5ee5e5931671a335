//! # apiauth-sql
//!
//! The apiauth record stores on a SQL database: **SQLite** as the embedded default (a file,
//! nothing to install) and **PostgreSQL** for production, through one code path (sqlx's
//! `any` driver; the few differences live in [`Dialect`]).
//!
//! One [`SqlDatabase`] (a pool, migrated at startup) hands out every store:
//!
//! | trait | type | table | at rest |
//! | --- | --- | --- | --- |
//! | `ApiKeyStore` | [`SqlApiKeyStore`] | `apiauth_api_keys` | SHA-256 of each key |
//! | `RevocationList` | [`SqlRevocationList`] | `apiauth_revocations` | SHA-256 of each id, until its end |
//! | `CredentialStore` | [`SqlCredentialStore`] | `apiauth_basic_users` | argon2 PHC strings |
//! | `ClientRegistry` | [`SqlClientRegistry`] | `apiauth_oauth_clients` | argon2id of each secret |
//! | `UsageMeter` | [`SqlUsageMeter`] | `apiauth_usage` | counts per day, written in batches |
//! | signing keys | [`SqlSigningKeyStore`] | `apiauth_signing_keys` | AES-256-GCM under the operator's KEK |
//! | `CreditStore` | [`SqlCreditStore`] | `apiauth_credits` | balances of record, conditional updates |
//! | `UsageHistory` | [`SqlUsageHistory`] | `apiauth_usage_history` | billing rows per day, written in batches |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use apiauth_api_key::{ApiKeys, NewKey};
//! use apiauth_sql::SqlDatabase;
//! # let dir = std::env::temp_dir().join(format!("apiauth-sql-lib-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let url = format!("sqlite:{}", dir.join("app.db").display());
//! let db = SqlDatabase::builder(url).connect().await?; // migrates
//! let keys = ApiKeys::new(Arc::new(db.api_key_store()));
//! let created = keys.create(NewKey::new("alice")).await?;
//! // After a restart the same database still knows the key; it holds only its digest.
//! # let _ = created;
//! # drop(db); std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! ## The warm path
//!
//! [`SqlDatabase::cached_api_key_store`] and [`SqlDatabase::cached_revocation_list`] put a
//! bounded in-memory cache in front of the two stores a request reads: a known key costs no
//! round trip. On PostgreSQL every change is pushed to every instance by `LISTEN/NOTIFY`
//! (triggers, schema version 2), with [`DEFAULT_CACHE_TTL`] as the fallback bound; on SQLite
//! changes made in the process drop its entries at once. Details in the `cache` module docs
//! of [`CachedApiKeyStore`].
//!
//! ## Features
//!
//! Each store follows the method crate it implements: `api-key`, `basic`, `oauth2-server`,
//! `quota` (all on by default). The revocation list and signing keys need none.
//!
//! ## Guarantees
//!
//! - Secrets at rest only as hashes (API keys, client secrets, passwords) or sealed (signing
//!   keys); statements only with bound parameters.
//! - Every operation is bounded by [`SqlDatabaseBuilder::command_timeout`]; the database
//!   down or frozen is [`StoreError::Unavailable`](apiauth_core::StoreError), which the
//!   layers answer with 503 and `Retry-After` (fail closed, never 401). The pool reconnects
//!   by itself: service resumes when the database does.
//! - Migrations are embedded, versioned in `apiauth_schema`, each in one locked transaction:
//!   running them twice, or from two instances at once, is a no-op.
//! - SQLite runs in WAL mode with a busy timeout, so readers never wait for the writer.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "api-key")]
mod api_key;
#[cfg(feature = "basic")]
mod basic;
mod cache;
#[cfg(feature = "quota")]
mod credits;
mod db;
mod error;
#[cfg(feature = "quota")]
mod history;
mod migrate;
#[cfg(feature = "oauth2-server")]
mod oauth2;
mod revocation;
mod session;
mod signing;
mod time;
#[cfg(feature = "quota")]
mod usage;

/// The driver, for an app's own tables in the same database ([`SqlDatabase::pool`]).
pub use sqlx;

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_key::SqlApiKeyStore;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use basic::SqlCredentialStore;
#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use cache::CachedApiKeyStore;
pub use cache::{CachedRevocationList, DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL};
#[cfg(feature = "quota")]
#[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
pub use credits::SqlCreditStore;
pub use db::{
    DEFAULT_BUSY_TIMEOUT, DEFAULT_COMMAND_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Dialect, SqlDatabase,
    SqlDatabaseBuilder,
};
pub use error::{LOG_TARGET, SqlError};
#[cfg(feature = "quota")]
pub use history::SqlUsageHistory;
pub use migrate::SCHEMA_VERSION;
#[cfg(feature = "oauth2-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth2-server")))]
pub use oauth2::SqlClientRegistry;
pub use revocation::SqlRevocationList;
pub use session::{SqlSessionStore, StoredSession};
pub use signing::{KeyEncryptionKey, SigningKeyInfo, SqlSigningKeyStore, StoredSigningKey};
#[cfg(feature = "quota")]
#[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
pub use usage::{DEFAULT_MAX_PENDING_SERIES, DEFAULT_USAGE_FLUSH_INTERVAL, SqlUsageMeter};
