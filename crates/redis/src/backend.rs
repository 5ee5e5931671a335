//! The connection, its configuration, and the helpers every store uses: key naming,
//! per-command timeouts and the mapping of every failure to [`StoreError::Unavailable`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::store::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Cmd, FromRedisValue, RedisError, ScriptInvocation};
use sha2::{Digest, Sha256};

use crate::stores::{RedisReplayStore, RedisRevocationList};

/// The `tracing` target of this crate's operational events (Redis failures).
pub const LOG_TARGET: &str = "apiauth::redis";

/// Namespace used when none is configured.
pub const DEFAULT_NAMESPACE: &str = "apiauth";
/// Longest wait for one command, reconnection included, before the store answers
/// [`StoreError::Unavailable`] (a 503 on the request path).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for one TCP connect attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// First delay between reconnect attempts; it doubles up to [`DEFAULT_RECONNECT_MAX_DELAY`].
pub const DEFAULT_RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Largest delay between reconnect attempts, so recovery is noticed within about this long.
pub const DEFAULT_RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);
/// Reconnect attempts per round; the next command after a failed round starts a new one.
pub const DEFAULT_RECONNECT_RETRIES: usize = 6;

const MAX_NAMESPACE_LEN: usize = 64;
/// Ids up to this length are kept readable in keys; longer ones are hashed, so every key is
/// bounded whatever a client sent.
const MAX_RAW_ID_LEN: usize = 128;
/// TTLs are capped at about 100 years: Redis refuses expiry times that overflow its clock.
const MAX_TTL_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A configuration or startup error of [`RedisBackend`]. Never echoes the URL, which may hold
/// a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisBackendError {
    /// The URL is not a `redis://`, `rediss://` or `unix://` URL the client understands.
    #[error("the Redis URL is not valid")]
    InvalidUrl,
    /// The namespace is empty, longer than 64 bytes, or holds anything but ASCII letters,
    /// digits, `-`, `_` and `.`.
    #[error("the namespace must be 1 to 64 of [A-Za-z0-9._-]")]
    InvalidNamespace,
    /// A timeout or delay was zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The backend was built outside a Tokio runtime.
    #[error("the Redis backend must be built inside a Tokio runtime")]
    NoRuntime,
    /// The connection manager refused the configuration.
    #[error("the Redis connection manager could not be set up ({0})")]
    Setup(String),
}

/// Builder for [`RedisBackend`]. Defaults: namespace `apiauth`, 500 ms per command, 1 s per
/// connect attempt, reconnect backoff from 50 ms to 1 s.
#[must_use]
pub struct RedisBackendBuilder {
    url: String,
    namespace: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    reconnect_min_delay: Duration,
    reconnect_max_delay: Duration,
    reconnect_retries: usize,
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("RedisBackendBuilder")
            .field("url", &"[redacted]")
            .field("namespace", &self.namespace)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_min_delay", &self.reconnect_min_delay)
            .field("reconnect_max_delay", &self.reconnect_max_delay)
            .field("reconnect_retries", &self.reconnect_retries)
            .finish()
    }
}

impl RedisBackendBuilder {
    /// Prefix of every key this backend writes (`<namespace>:<store>:<id>`), so several apps or
    /// environments can share one Redis: 1 to 64 of ASCII letters, digits, `-`, `_` and `.`
    /// (`myapp.prod`). Instances that must agree use the same namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Longest wait for one store operation, reconnection included. Past it the operation
    /// fails with [`StoreError::Unavailable`]: guarded requests get 503, never a pass.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Longest wait for one TCP connect attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Backoff between reconnect attempts: starts at `min`, doubles, never exceeds `max`.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min_delay = min;
        self.reconnect_max_delay = max.max(min);
        self
    }

    /// Reconnect attempts per round. After a failed round the next command starts another,
    /// so the service recovers without a restart whatever this is.
    pub fn reconnect_retries(mut self, retries: usize) -> Self {
        self.reconnect_retries = retries;
        self
    }

    /// Builds the backend without connecting: the first command connects, so an app starts
    /// (and answers 503 on guarded routes) while Redis is still down. Must be called inside a
    /// Tokio runtime. Use [`RedisBackend::ping`] for a readiness check.
    pub fn build(self) -> Result<RedisBackend, RedisBackendError> {
        let ns = &self.namespace;
        // No `:`, so that no namespace can pose as another one plus a store name.
        let ns_ok = !ns.is_empty()
            && ns.len() <= MAX_NAMESPACE_LEN
            && ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ns_ok {
            return Err(RedisBackendError::InvalidNamespace);
        }
        for (name, d) in [
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("reconnect_backoff", self.reconnect_min_delay),
        ] {
            if d.is_zero() {
                return Err(RedisBackendError::ZeroDuration(name));
            }
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisBackendError::NoRuntime);
        }
        let client = Client::open(self.url.as_str()).map_err(|_| RedisBackendError::InvalidUrl)?;
        let addr = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_min_delay(self.reconnect_min_delay)
            .set_max_delay(self.reconnect_max_delay)
            .set_number_of_retries(self.reconnect_retries);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| RedisBackendError::Setup(e.category().to_owned()))?;
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                conn,
                namespace: self.namespace.into(),
                timeout: self.command_timeout,
                addr,
            }),
        })
    }
}

/// One Redis connection (multiplexed, reconnecting) that hands out every store.
///
/// Cheap to clone; all stores from one backend share its connection. Keys are
/// `<namespace>:<store>:<id>`; ids longer than 128 bytes, or holding anything but visible
/// ASCII, are replaced by `#` and their SHA-256 so keys stay bounded.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    namespace: Box<str>,
    timeout: Duration,
    addr: String,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("addr", &self.inner.addr)
            .field("namespace", &self.inner.namespace)
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Starts a builder for the server at `url` (`redis://[:password@]host[:port][/db]`,
    /// `rediss://…` needs a TLS feature of the `redis` crate).
    pub fn builder(url: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder {
            url: url.into(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            reconnect_min_delay: DEFAULT_RECONNECT_MIN_DELAY,
            reconnect_max_delay: DEFAULT_RECONNECT_MAX_DELAY,
            reconnect_retries: DEFAULT_RECONNECT_RETRIES,
        }
    }

    /// The key prefix.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// Whether Redis answers within the command timeout: for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.query("ping", &redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "redis: unexpected PING answer".into(),
            ))
        }
    }

    /// The revocation list, shared by every instance using this Redis and namespace.
    pub fn revocation_list(&self) -> RedisRevocationList {
        RedisRevocationList::new(self.clone())
    }

    /// The replay (single-use nonce) store, shared by every instance.
    pub fn replay_store(&self) -> RedisReplayStore {
        RedisReplayStore::new(self.clone())
    }

    /// The API key store (opaque bearer tokens reuse it).
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn api_key_store(&self) -> crate::RedisApiKeyStore {
        crate::RedisApiKeyStore::new(self.clone())
    }

    /// The DPoP proof replay store (RFC 9449 §11.1), shared by every instance.
    #[cfg(feature = "dpop")]
    #[cfg_attr(docsrs, doc(cfg(feature = "dpop")))]
    pub fn dpop_replay_store(&self) -> crate::RedisDpopReplayStore {
        crate::RedisDpopReplayStore::new(self.clone())
    }

    /// The GCRA rate limiter, one bucket per policy and key across every instance.
    #[cfg(feature = "quota")]
    #[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
    pub fn rate_limiter(&self) -> crate::RedisRateLimiter {
        crate::RedisRateLimiter::new(self.clone())
    }

    /// The usage meter, exact across every instance.
    #[cfg(feature = "quota")]
    #[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
    pub fn usage_meter(&self) -> crate::RedisUsageMeter {
        crate::RedisUsageMeter::new(self.clone())
    }

    /// The OAuth 2.0 introspection cache, keyed by token hashes.
    #[cfg(feature = "introspection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
    pub fn introspection_cache(&self) -> crate::RedisIntrospectionCache {
        crate::RedisIntrospectionCache::new(self.clone())
    }

    /// The OAuth 2.0 client registry of the authorization server.
    #[cfg(feature = "oauth2-server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oauth2-server")))]
    pub fn client_registry(&self) -> crate::RedisClientRegistry {
        crate::RedisClientRegistry::new(self.clone())
    }

    /// The HTTP Basic credential store (argon2 PHC strings, shared generations).
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn credential_store(&self) -> crate::RedisCredentialStore {
        crate::RedisCredentialStore::new(self.clone())
    }

    /// The HTTP Basic lock-out counters (failures per user-id and per client address),
    /// shared by every instance.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn lockout_store(&self) -> crate::RedisLockoutStore {
        crate::RedisLockoutStore::new(self.clone())
    }

    /// `<namespace>:<store>:<id>`, with long or binary-looking ids hashed.
    pub(crate) fn key(&self, store: &str, id: &str) -> String {
        let mut key = String::with_capacity(self.inner.namespace.len() + store.len() + 2 + 65);
        key.push_str(&self.inner.namespace);
        key.push(':');
        key.push_str(store);
        key.push(':');
        // `#` never starts a raw id, so a raw id can never equal a hashed one.
        let raw = id.len() <= MAX_RAW_ID_LEN
            && !id.starts_with('#')
            && id.bytes().all(|b| b.is_ascii_graphic());
        if raw {
            key.push_str(id);
        } else {
            key.push('#');
            key.push_str(&hex::encode(Sha256::digest(id.as_bytes())));
        }
        key
    }

    /// Runs one command under the command timeout.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        self.bounded(op, async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs a pipeline (one round trip) under the command timeout.
    #[cfg_attr(
        not(any(feature = "api-key", feature = "oauth2-server")),
        allow(dead_code)
    )]
    pub(crate) async fn pipe<T: FromRedisValue>(
        &self,
        op: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        self.bounded(op, async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs a Lua script (EVALSHA, loading it on first use) under the command timeout.
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut conn = self.inner.conn.clone();
        self.bounded(op, async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                // The category only: server messages may quote arguments.
                tracing::warn!(target: LOG_TARGET, op, error = e.category(), "redis command failed");
                Err(StoreError::Unavailable(format!("redis: {}", e.category())))
            }
            Err(_) => {
                tracing::warn!(target: LOG_TARGET, op, "redis command timed out");
                Err(StoreError::Unavailable("redis: timed out".into()))
            }
        }
    }
}

/// Milliseconds from now until `until`, rounded up, at least 1 and at most about 100 years;
/// `None` when `until` is not in the future.
pub(crate) fn ttl_ms_until(until: SystemTime, now: SystemTime) -> Option<u64> {
    let d = until.duration_since(now).ok().filter(|d| !d.is_zero())?;
    Some(ttl_ms(d))
}

/// A duration as a Redis `PX` argument: rounded up, at least 1 ms, capped.
pub(crate) fn ttl_ms(d: Duration) -> u64 {
    let ms = d
        .as_millis()
        .saturating_add(u128::from(!d.subsec_nanos().is_multiple_of(1_000_000)));
    u64::try_from(ms).unwrap_or(u64::MAX).clamp(1, MAX_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_namespaced_and_bounded_and_never_collide_with_hashed_ids() {
        let b = RedisBackend::builder("redis://127.0.0.1:1/")
            .namespace("app1")
            .build()
            .unwrap();
        assert_eq!(b.key("rev", "jti-1"), "app1:rev:jti-1");
        let long = "x".repeat(10_000);
        let k = b.key("rev", &long);
        assert!(k.starts_with("app1:rev:#") && k.len() == "app1:rev:#".len() + 64);
        // A raw id that looks like a hashed one is hashed too, so the two cannot meet.
        assert_ne!(b.key("rev", &k["app1:rev:".len()..]), k);
        assert!(b.key("rev", "a b").starts_with("app1:rev:#"));
    }

    #[tokio::test]
    async fn bad_configuration_is_refused_without_echoing_the_url() {
        let e = RedisBackend::builder("redis://:hunter2@[::1")
            .build()
            .unwrap_err();
        assert_eq!(e, RedisBackendError::InvalidUrl);
        assert!(!format!("{e} {e:?}").contains("hunter2"));
        for ns in ["", "has space", "app:revoked", "{tag}", &"n".repeat(65)] {
            let e = RedisBackend::builder("redis://127.0.0.1/")
                .namespace(ns)
                .build()
                .unwrap_err();
            assert_eq!(e, RedisBackendError::InvalidNamespace);
        }
        let e = RedisBackend::builder("redis://127.0.0.1/")
            .command_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(e, RedisBackendError::ZeroDuration("command_timeout"));
        let b = RedisBackend::builder("redis://:hunter2@127.0.0.1:6379/");
        assert!(!format!("{b:?}").contains("hunter2"));
        assert!(!format!("{:?}", b.build().unwrap()).contains("hunter2"));
    }

    #[test]
    fn building_outside_a_runtime_is_an_error_not_a_panic() {
        let e = RedisBackend::builder("redis://127.0.0.1/")
            .build()
            .unwrap_err();
        assert_eq!(e, RedisBackendError::NoRuntime);
    }

    #[test]
    fn ttls_round_up_and_are_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(ttl_ms_until(now, now), None);
        assert_eq!(ttl_ms_until(now - Duration::from_secs(1), now), None);
        assert_eq!(ttl_ms_until(now + Duration::from_nanos(1), now), Some(1));
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }
}
