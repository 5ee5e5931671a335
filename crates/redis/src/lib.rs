//! # apiauth-redis
//!
//! The apiauth store traits on Redis, for when one app runs as many instances behind a load
//! balancer: revocations, replay nonces, keys, quotas and usage then hold across all of them.
//!
//! One [`RedisBackend`] (a reconnecting, multiplexed connection) hands out every store, and
//! [`Stores`] bundles them behind the traits, so an app moves from in-memory state to Redis by
//! changing one configuration value:
//!
//! ```
//! use apiauth_redis::{RedisBackend, Stores};
//! use std::time::{Duration, SystemTime};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Unset: in-memory stores, fine for one instance. Set: Redis, shared by all instances.
//! let stores = match std::env::var("APP_REDIS_URL") {
//!     Ok(url) => RedisBackend::builder(url).namespace("myapp").build()?.stores(),
//!     Err(_) => Stores::in_memory(),
//! };
//! // Hand `stores.revocations`, `stores.replay`, … to the method layers.
//! # if std::env::var("APP_REDIS_URL").is_err() {
//! stores.revocations.revoke("key_123", SystemTime::now() + Duration::from_secs(60)).await?;
//! assert!(stores.revocations.is_revoked("key_123").await?);
//! # }
//! # Ok(())
//! # }
//! ```
//!
//! The bundle plugs straight into the method and quota layers:
//!
//! ```
//! use apiauth_api_key::ApiKeys;
//! use apiauth_core::Auth;
//! use apiauth_quota::{QuotaLayer, QuotaPolicy};
//! use apiauth_redis::{RedisBackend, Stores};
//! use axum::{routing::get, Router};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let stores = match std::env::var("APP_REDIS_URL") {
//!     Ok(url) => RedisBackend::builder(url).namespace("myapp").build()?.stores(),
//!     Err(_) => Stores::in_memory(),
//! };
//! let keys = ApiKeys::new(stores.api_keys.clone());
//! let quota = QuotaLayer::builder()
//!     .default_plan(QuotaPolicy::per_second(10).burst(20))
//!     .limiter(stores.rate_limiter.clone())
//!     .usage_meter(stores.usage.clone())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/me", get(|Auth(p): Auth| async move { p.subject().to_owned() }))
//!     .layer(quota)
//!     .layer(keys.auth().layer()?);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! ## Stores
//!
//! | trait | Redis type | keys (under `<namespace>:`) | expiry |
//! | --- | --- | --- | --- |
//! | `RevocationList` | [`RedisRevocationList`] | `revoked:<id>` | the credential's own expiry |
//! | `ReplayStore` | [`RedisReplayStore`] | `nonce:<key>` (`SET NX PX`) | the nonce's TTL |
//! | `ApiKeyStore` (feature `api-key`; opaque tokens too) | `RedisApiKeyStore` | `apikey:<id>`, `apikey-index:all`, `apikey-owner:<o>`, `apikey-tenant:<t>` | end of the key plus a retention (30 days) |
//! | `RateLimiter` (feature `quota`) | `RedisRateLimiter` | `rate:<policy name length>:<policy>:<key>` (GCRA in Lua) | when the bucket is full again |
//! | `UsageMeter` (feature `quota`) | `RedisUsageMeter` | `usage:<identity>` (`HINCRBY`) | none, or an idle expiry |
//! | `DpopReplayStore` (feature `dpop`) | `RedisDpopReplayStore` | `dpop-jti:<sha256 of jkt and jti>` (`SET NX PX`) | the proof's acceptance window |
//! | `IntrospectionCache` (feature `introspection`) | `RedisIntrospectionCache` | `introspection:<sha256 of token>` | the verifier's TTL |
//! | `ClientRegistry` (feature `oauth2-server`) | `RedisClientRegistry` | `oauth-client:<client_id>` | none (removed explicitly) |
//! | `CredentialStore` (feature `basic`) | `RedisCredentialStore` | `basic-user:<user_id>`, `basic-generation:counter` | none (removed explicitly) |
//! | `LockoutStore` (feature `basic`) | `RedisLockoutStore` | `basic-fails:<k>` (`INCR`), `basic-lock:<k>`, `basic-inflight:<k>`; `<k>` is `user:<sha256 of user-id>` or `addr:<ip>` | the failure window, the lock-out, the attempt TTL |
//!
//! Ids longer than 128 bytes, or with anything but visible ASCII, appear in keys as `#` and
//! their SHA-256, so a client cannot make a key large.
//!
//! There is deliberately no Redis `HmacKeyStore`: HMAC verification needs the shared secret
//! itself, and this crate never stores a secret in clear. Keep HMAC secrets in the app's
//! configuration or secret manager; their replay nonces do go through [`RedisReplayStore`].
//!
//! ## Guarantees
//!
//! - Every key lives under `<namespace>:`; every entry that can expire carries a TTL in Redis
//!   (revocations until the credential's expiry, nonces via `SET NX PX`).
//! - Values never hold a secret in clear: records hold hashes, caches are keyed by hashes.
//! - No local cache: a revocation on one instance is seen by every other on its next request.
//! - HTTP Basic and OAuth 2.0 client-authentication failures count once for all instances
//!   (`Stores::lockouts`, for `BasicAuthBuilder::lockout_store` and
//!   `AuthorizationServerBuilder::lockout_store`): N instances give an attacker one budget.
//! - Every command is bounded by [`RedisBackendBuilder::command_timeout`]; Redis down or slow
//!   means [`StoreError::Unavailable`](apiauth_core::StoreError), which method layers answer
//!   with 503 and `Retry-After` (fail closed). The connection reconnects on its own, so service
//!   resumes when Redis does, without a restart.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "api-key")]
mod api_key;
mod backend;
#[cfg(feature = "basic")]
mod basic;
mod bundle;
#[cfg(feature = "oauth2-server")]
mod client_registry;
#[cfg(feature = "quota")]
mod credits;
#[cfg(feature = "dpop")]
mod dpop;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "basic")]
mod lockout;
#[cfg(feature = "quota")]
mod quota;
mod stores;

#[cfg(feature = "api-key")]
#[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
pub use api_key::{DEFAULT_API_KEY_RETENTION, RedisApiKeyStore};
pub use backend::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_NAMESPACE,
    DEFAULT_RECONNECT_MAX_DELAY, DEFAULT_RECONNECT_MIN_DELAY, DEFAULT_RECONNECT_RETRIES,
    LOG_TARGET, RedisBackend, RedisBackendBuilder, RedisBackendError,
};
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use basic::RedisCredentialStore;
pub use bundle::Stores;
#[cfg(feature = "oauth2-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "oauth2-server")))]
pub use client_registry::RedisClientRegistry;
#[cfg(feature = "quota")]
#[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
pub use credits::RedisCreditStore;
#[cfg(feature = "dpop")]
#[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
pub use dpop::RedisDpopReplayStore;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use introspection::RedisIntrospectionCache;
#[cfg(feature = "basic")]
#[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
pub use lockout::{DEFAULT_ATTEMPT_TTL, RedisLockoutStore};
#[cfg(feature = "quota")]
#[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
pub use quota::{RedisRateLimiter, RedisUsageMeter};
pub use stores::{RedisReplayStore, RedisRevocationList};
