//! # apiauth
//!
//! API authentication for axum and Tower: one layer per method, extractors for scopes,
//! per-identity quotas, and a Redis backend so many instances act as one.
//!
//! This facade re-exports [`apiauth_core`] at its root and each method crate under a module,
//! one cargo feature each. The defaults are `api-key` and `jwt`; `full` turns on everything, and
//! each feature builds alone, pulling in only the crates it names:
//!
//! | feature | module | what |
//! |---|---|---|
//! | `api-key` | [`api_key`] | prefixed, checksummed API keys, SHA-256 at rest |
//! | `basic` | [`basic`] | HTTP Basic (RFC 7617) over argon2id |
//! | `bearer` | [`bearer`] | RFC 6750 transport, `TokenVerifier`, opaque tokens |
//! | `jwt` | [`jwt`] | JWT verification: static keys, JWKS, OIDC discovery |
//! | `oauth2` | [`oauth2`] | RFC 7662 introspection: the resource-server half |
//! | `oauth2-server` | [`oauth2`] | a client-credentials authorization server (RFC 6749 §4.4, 7009, 8414) |
//! | `dpop` | [`dpop`] | DPoP (RFC 9449) sender-constrained tokens, RFC 7638 thumbprints |
//! | `mtls` | [`mtls`] | Certificate-bound tokens (RFC 8705 mutual TLS), `Client-Cert` (RFC 9440) from trusted proxies; with `oauth2-server`, `tls_client_auth` |
//! | `hmac` | [`hmac`] | RFC 9421 HTTP Message Signatures, RFC 9530 digests, webhooks |
//! | `quota` | [`quota`] | per-identity rate limits, usage metering, metrics |
//! | `redis` | [`redis`] | Redis implementations of every store |
//! | `sql` | [`sql`] | SQLite and PostgreSQL record stores, signing keys sealed at rest |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use apiauth_core::*;

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use apiauth_api_key as api_key;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use apiauth_basic as basic;
#[cfg(feature = "bearer")]
#[cfg_attr(docsrs, doc(cfg(feature = "bearer")))]
pub use apiauth_bearer as bearer;
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub use apiauth_dpop as dpop;
#[cfg(feature = "hmac")]
#[cfg_attr(docsrs, doc(cfg(feature = "hmac")))]
pub use apiauth_hmac as hmac;
#[cfg(feature = "jwt")]
#[cfg_attr(docsrs, doc(cfg(feature = "jwt")))]
pub use apiauth_jwt as jwt;
#[cfg(feature = "mtls")]
#[cfg_attr(docsrs, doc(cfg(feature = "mtls")))]
pub use apiauth_mtls as mtls;
#[cfg(any(feature = "oauth2", feature = "oauth2-server"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "oauth2", feature = "oauth2-server"))))]
pub use apiauth_oauth2 as oauth2;
#[cfg(feature = "quota")]
#[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
pub use apiauth_quota as quota;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use apiauth_redis as redis;
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use apiauth_sql as sql;

#[cfg(doctest)]
mod readme;
