//! # apiauth-basic
//!
//! HTTP Basic authentication (RFC 7617) as an apiauth method layer, for admin consoles,
//! legacy integrations and OAuth 2.0 client authentication (RFC 6749 §2.3.1).
//!
//! - strict parsing: `Basic` in any case, canonical base64, a `:` after the user-id, UTF-8
//!   (announced as `charset="UTF-8"`), no control characters; anything malformed is 400;
//! - passwords at rest only as argon2id PHC strings ([`hash_password`]), checked on tokio's
//!   blocking pool with bounded concurrency, never on the async runtime's threads;
//! - unknown users are checked against a dummy hash, so they cost what a wrong password costs;
//! - successful checks are cached for a short time under an HMAC of the credentials, and a
//!   changed or removed user ends its cache entries at once (the record's generation);
//! - failures are counted per (user-id, client address) with a low limit, per client
//!   address, and per user-id with a high limit and progressive back-off, so guesses from
//!   one address lock out that address only; past a limit, 429 with `Retry-After` and no
//!   argon2 run. A cached verification still passes through the per-user lock. Each failure
//!   and each lock-out is an audit event; an unknown user-id is logged only as
//!   [`LockoutKey::short_hash`]. The
//!   counters live in a [`LockoutStore`]: [`MemoryLockoutStore`] for one process by default,
//!   or a shared one ([`BasicAuthBuilder::lockout_store`]; apiauth-redis has
//!   `RedisLockoutStore`) so that instances behind a load balancer share one failure budget.
//!   A lock-out store that cannot answer means 503 with `Retry-After`, never a pass.
//!
//! ```
//! use apiauth_basic::{BasicAuth, MemoryCredentialStore, PasswordHasher};
//! use apiauth_core::Auth;
//! use axum::{routing::get, Router};
//!
//! # fn main() -> Result<(), apiauth_basic::BasicConfigError> {
//! let hasher = PasswordHasher::default(); // argon2id, m=19456 KiB, t=2, p=1
//! let users = MemoryCredentialStore::new();
//! users.insert_user("Aladdin", hasher.hash("open sesame"));
//!
//! let basic = BasicAuth::builder(users)
//!     .realm("admin")
//!     .password_hasher(hasher)
//!     .layer()?;
//!
//! let app: Router = Router::new()
//!     .route("/admin", get(|Auth(p): Auth| async move { format!("hello {}", p.subject()) }))
//!     .layer(basic);
//! // Serve with `app.into_make_service_with_connect_info::<std::net::SocketAddr>()` so the
//! // per-address lock-out sees client addresses.
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth;
mod cache;
mod error;
mod lockout;
mod parse;
mod password;
mod store;

pub use auth::{BasicAuth, BasicAuthBuilder, BasicStats, PresentedCredentials};
pub use error::{BasicConfigError, BasicError};
pub use lockout::{
    Admission, AttemptId, LockoutKey, LockoutPolicy, LockoutStore, MemoryLockoutStore,
};
pub use parse::{
    BasicCredentials, CredentialEncoding, decode_credentials, parse_authorization,
    parse_authorization_with,
};
pub use password::{PasswordChecker, PasswordHasher, hash_password, verify_password};
pub use store::{CredentialRecord, CredentialStore, MemoryCredentialStore};
