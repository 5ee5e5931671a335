//! [`ClientRegistry`] on Redis.

use std::fmt;

use apiauth_basic::PasswordHasher;
use apiauth_core::ScopeSet;
use apiauth_core::store::StoreError;
use apiauth_core::token::{SecretString, TokenFormat};
use apiauth_oauth2::{CLIENT_SECRET_PREFIX, ClientRegistry, RegisteredClient};
use async_trait::async_trait;

use crate::backend::RedisBackend;

/// [`ClientRegistry`] on Redis: one hash per client (`<ns>:oauth-client:<client_id>`) with the
/// argon2id PHC string of its secret (never the secret), its scopes and its permissions.
/// Clients do not expire; [`remove`](Self::remove) them. No local cache: a suspension is seen
/// by every instance on the next token request.
#[derive(Clone)]
pub struct RedisClientRegistry {
    backend: RedisBackend,
}

impl fmt::Debug for RedisClientRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClientRegistry")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl RedisClientRegistry {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self { backend }
    }

    fn key(&self, client_id: &str) -> String {
        self.backend.key("oauth-client", client_id)
    }

    /// Inserts or replaces a client record whose hash was made elsewhere.
    pub async fn insert(&self, client: &RegisteredClient) -> Result<(), StoreError> {
        let key = self.key(client.client_id());
        let mut pipe = redis::pipe();
        // One transaction, so no reader sees half of an old and half of a new record.
        pipe.atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .cmd("HSET")
            .arg(&key)
            .arg("id")
            .arg(client.client_id())
            .arg("hash")
            .arg(client.secret_hash())
            .arg("scopes")
            .arg(client.allowed_scopes().to_string())
            .arg("token")
            .arg(flag(client.may_request_tokens()))
            .arg("introspect")
            .arg(flag(client.may_introspect()))
            .arg("suspended")
            .arg(flag(client.is_suspended()));
        if let Some(tenant) = client.tenant_id() {
            pipe.arg("tenant").arg(tenant);
        }
        // RFC 8705 §2: a certificate client's registration (its secret hash is empty).
        #[cfg(feature = "mtls")]
        if let Some((parameter, value)) = client.tls_auth().map(|t| t.registration()) {
            pipe.arg("tls_parameter")
                .arg(parameter)
                .arg("tls_value")
                .arg(value);
        }
        pipe.ignore();
        let () = self.backend.pipe("oauth_client_insert", &pipe).await?;
        Ok(())
    }

    /// Registers (or replaces) a token-requesting client with a fresh random secret and
    /// returns that secret: the only time it is visible. The argon2id hash runs on the
    /// blocking pool.
    pub async fn register(
        &self,
        client_id: &str,
        allowed_scopes: ScopeSet,
        hasher: &PasswordHasher,
    ) -> Result<SecretString, StoreError> {
        let (secret, hash) = new_secret(hasher).await?;
        self.insert(&RegisteredClient::new(client_id, hash, allowed_scopes))
            .await?;
        Ok(secret)
    }

    /// Registers (or replaces) a resource server that may only introspect, and returns its
    /// fresh secret.
    pub async fn register_resource_server(
        &self,
        client_id: &str,
        hasher: &PasswordHasher,
    ) -> Result<SecretString, StoreError> {
        let (secret, hash) = new_secret(hasher).await?;
        let client = RegisteredClient::new(client_id, hash, ScopeSet::empty())
            .without_token_grant()
            .allow_introspection();
        self.insert(&client).await?;
        Ok(secret)
    }

    /// Suspends or reinstates a client; `false` if there is no such client.
    pub async fn set_suspended(
        &self,
        client_id: &str,
        suspended: bool,
    ) -> Result<bool, StoreError> {
        // HSET XX semantics by hand: only an existing record is touched.
        let script = redis::Script::new(
            r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
              redis.call('HSET', KEYS[1], 'suspended', ARGV[1]) return 1",
        );
        let mut inv = script.key(self.key(client_id));
        inv.arg(flag(suspended));
        let done: i64 = self.backend.eval("oauth_client_suspend", &inv).await?;
        Ok(done == 1)
    }

    /// Removes a client; `false` if there was none.
    pub async fn remove(&self, client_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self
            .backend
            .query(
                "oauth_client_remove",
                redis::cmd("DEL").arg(self.key(client_id)),
            )
            .await?;
        Ok(n > 0)
    }
}

async fn new_secret(hasher: &PasswordHasher) -> Result<(SecretString, String), StoreError> {
    let format = TokenFormat::new(CLIENT_SECRET_PREFIX)
        .map_err(|_| StoreError::Unavailable("client secret prefix refused".into()))?;
    let generated = format.generate();
    let hasher = hasher.clone();
    let secret = generated.token.clone();
    // Tens of milliseconds of argon2: keep it off the async workers.
    let hash = tokio::task::spawn_blocking(move || hasher.hash(secret.expose_secret()))
        .await
        .map_err(|_| StoreError::Unavailable("password hashing task failed".into()))?;
    Ok((generated.token, hash))
}

#[async_trait]
impl ClientRegistry for RedisClientRegistry {
    async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        let fields: Vec<Option<String>> = self
            .backend
            .query(
                "oauth_client_find",
                redis::cmd("HMGET").arg(self.key(client_id)).arg(&[
                    "id",
                    "hash",
                    "scopes",
                    "token",
                    "introspect",
                    "suspended",
                    "tenant",
                    "tls_parameter",
                    "tls_value",
                ]),
            )
            .await?;
        let corrupt = || StoreError::Unavailable("redis: unreadable client record".into());
        let [
            id,
            hash,
            scopes,
            token,
            introspect,
            suspended,
            tenant,
            tls_parameter,
            tls_value,
        ] = <[Option<String>; 9]>::try_from(fields).map_err(|_| corrupt())?;
        let (Some(id), Some(hash)) = (id, hash) else {
            return Ok(None);
        };
        // Hashed ids could in theory collide; the stored id settles it.
        if id != client_id {
            return Ok(None);
        }
        let scopes = ScopeSet::parse(scopes.as_deref().unwrap_or("")).map_err(|_| corrupt())?;
        let is = |f: &Option<String>| f.as_deref() == Some("1");
        #[cfg(feature = "mtls")]
        let client = match tls_parameter.zip(tls_value) {
            Some((parameter, value)) => RegisteredClient::tls_client_auth(
                id,
                apiauth_oauth2::TlsClientAuth::from_registration(&parameter, &value)
                    .ok_or_else(corrupt)?,
                scopes,
            ),
            None => RegisteredClient::new(id, hash, scopes),
        };
        // Without the feature a certificate client has no usable credential: its empty
        // secret hash never verifies a secret.
        #[cfg(not(feature = "mtls"))]
        let client = {
            let _ = (tls_parameter, tls_value);
            RegisteredClient::new(id, hash, scopes)
        };
        let mut client = client.suspended(is(&suspended));
        if !is(&token) {
            client = client.without_token_grant();
        }
        if is(&introspect) {
            client = client.allow_introspection();
        }
        if let Some(tenant) = tenant {
            client = client.tenant(tenant);
        }
        Ok(Some(client))
    }
}
