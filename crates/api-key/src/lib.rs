//! # apiauth-api-key
//!
//! API key authentication for axum and Tower, built on `apiauth-core`'s layer contract.
//!
//! - **Format**: `<prefix><12-char id><30-char secret><6-char checksum>`, base62, about 178
//!   random bits from the OS CSPRNG. The prefix (`sk_live_`, `sk_test_`) lets secret scanners
//!   find leaked keys; the CRC32 checksum refuses mistyped or made-up keys before any store
//!   lookup; the id finds the record without scanning.
//! - **At rest**: only the SHA-256 digest of the key, compared in constant time. The key is
//!   shown once, by [`ApiKeys::create`].
//! - **Where**: `X-API-Key` and `Authorization: ApiKey <key>` (both configurable). A key in the
//!   query string is refused with 400 unless a route opts in with
//!   [`ApiKeyAuth::dangerous_allow_query_key`].
//! - **Rejections**: unknown, revoked, expired, rotated-out, malformed and bad-checksum keys
//!   all get the same 401 body after the same hashing work; the audit event says which.
//! - **Management**: [`ApiKeys`] creates, lists (without secrets), revokes, rotates with a
//!   grace period and sets expiry, over any [`ApiKeyStore`]; [`MemoryApiKeyStore`] is a
//!   sharded, read-mostly in-memory one. Last-used times are written in batches.
//!
//! ```
//! use std::sync::Arc;
//! use apiauth_api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
//! use apiauth_core::{scope, ScopeSet, Scoped};
//! use axum::{body::Body, routing::get, Router};
//! use tower::ServiceExt;
//!
//! scope!(pub ReportsRead = "reports:read");
//!
//! async fn reports(Scoped(p, ..): Scoped<ReportsRead>) -> String {
//!     format!("reports of {}", p.tenant().unwrap_or("nobody"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()));
//! let app: Router = Router::new()
//!     .route("/reports", get(reports))
//!     .layer(keys.auth().realm("api").layer()?);
//!
//! let created = keys
//!     .create(NewKey::new("alice").tenant("acme").scopes(ScopeSet::parse("reports:read")?))
//!     .await?;
//! let req = http::Request::get("/reports")
//!     .header("x-api-key", created.key.expose_secret())
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(req).await?.status(), 200);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod error;
mod last_used;
mod manage;
mod record;
mod store;

pub use auth::{API_KEY_ERROR_CODES, ApiKeyAuth, ApiKeyAuthenticator, PresentedKey};
pub use error::{ApiKeyConfigError, ApiKeyError};
pub use manage::{ApiKeys, CreatedKey, DEFAULT_PREFIX, NewKey};
pub use record::{ApiKeyRecord, KeyChange, KeyStatus, KeySummary};
pub use store::{ApiKeyStore, DEFAULT_CAPACITY, KeyFilter, MemoryApiKeyStore};
