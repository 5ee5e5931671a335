//! [`IntrospectionCache`] on Redis.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use apiauth_core::store::StoreError;
use apiauth_oauth2::{IntrospectionCache, IntrospectionResponse, TokenKey};
use async_trait::async_trait;

use crate::backend::{RedisBackend, ttl_ms};

/// [`IntrospectionCache`] on Redis: `<ns>:introspection:<sha256 of the token>` holds the
/// answer as JSON with a TTL of the verifier's choosing. Keys are token hashes and answers
/// never include the token, so nothing stored can be presented as a credential.
#[derive(Clone)]
pub struct RedisIntrospectionCache {
    backend: RedisBackend,
}

impl RedisIntrospectionCache {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn key(&self, key: &TokenKey) -> String {
        self.backend.key("introspection", &key.to_hex())
    }
}

impl fmt::Debug for RedisIntrospectionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIntrospectionCache")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

#[async_trait]
impl IntrospectionCache for RedisIntrospectionCache {
    async fn get(&self, key: &TokenKey) -> Result<Option<Arc<IntrospectionResponse>>, StoreError> {
        let json: Option<String> = self
            .backend
            .query("introspection_get", redis::cmd("GET").arg(self.key(key)))
            .await?;
        // An entry we cannot read is a miss: the verifier then asks the authorization server,
        // which is always a correct answer.
        Ok(json.and_then(|j| serde_json::from_str(&j).ok().map(Arc::new)))
    }

    async fn put(
        &self,
        key: &TokenKey,
        answer: &Arc<IntrospectionResponse>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        if ttl.is_zero() {
            return Ok(()); // nothing to keep
        }
        let json = serde_json::to_string(&**answer)
            .map_err(|_| StoreError::Unavailable("redis: answer not serialisable".into()))?;
        let _: () = self
            .backend
            .query(
                "introspection_put",
                redis::cmd("SET")
                    .arg(self.key(key))
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms(ttl)),
            )
            .await?;
        Ok(())
    }
}
