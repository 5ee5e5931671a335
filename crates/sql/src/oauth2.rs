//! OAuth 2.0 clients in SQL: argon2id hashes of their secrets, never the secrets.

use std::fmt;

use apiauth_basic::PasswordHasher;
use apiauth_core::token::{SecretString, TokenFormat};
use apiauth_core::{ScopeSet, StoreError};
use apiauth_oauth2::{CLIENT_SECRET_PREFIX, ClientRegistry, RegisteredClient};
use async_trait::async_trait;
use sqlx::Row;

use crate::db::SqlDatabase;
use crate::error::corrupt;

/// [`ClientRegistry`] on SQL: table `apiauth_oauth_clients`, one row per client, written
/// whole in one statement (no reader sees half of an old and half of a new record).
#[derive(Clone)]
pub struct SqlClientRegistry {
    db: SqlDatabase,
}

impl fmt::Debug for SqlClientRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlClientRegistry").finish_non_exhaustive()
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

impl SqlClientRegistry {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// Inserts or replaces a client record whose hash was made elsewhere.
    pub async fn insert(&self, c: &RegisteredClient) -> Result<(), StoreError> {
        #[cfg(feature = "mtls")]
        let tls = c.tls_auth().map(|t| t.registration());
        #[cfg(not(feature = "mtls"))]
        let tls: Option<(&str, String)> = None;
        self.db
            .run("oauth_client_insert", async {
                sqlx::query(
                    "INSERT INTO apiauth_oauth_clients (client_id, secret_hash, scopes,
                       may_request_tokens, may_introspect, suspended, tenant,
                       tls_auth_parameter, tls_auth_value)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                       scopes = excluded.scopes,
                       may_request_tokens = excluded.may_request_tokens,
                       may_introspect = excluded.may_introspect,
                       suspended = excluded.suspended,
                       tenant = excluded.tenant,
                       tls_auth_parameter = excluded.tls_auth_parameter,
                       tls_auth_value = excluded.tls_auth_value",
                )
                .bind(c.client_id())
                .bind(c.secret_hash())
                .bind(c.allowed_scopes().to_string())
                .bind(flag(c.may_request_tokens()))
                .bind(flag(c.may_introspect()))
                .bind(flag(c.is_suspended()))
                .bind(c.tenant_id())
                .bind(tls.as_ref().map(|t| t.0))
                .bind(tls.as_ref().map(|t| t.1.as_str()))
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await
    }

    /// Registers (or replaces) a token-requesting client with a fresh random secret and
    /// returns that secret: the only time it is visible. argon2id runs on the blocking pool.
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
        self.db
            .run("oauth_client_suspend", async {
                let r = sqlx::query(
                    "UPDATE apiauth_oauth_clients SET suspended = $1 WHERE client_id = $2",
                )
                .bind(flag(suspended))
                .bind(client_id)
                .execute(self.db.pool())
                .await?;
                Ok(r.rows_affected() == 1)
            })
            .await
    }

    /// Removes a client; `false` if there was none.
    pub async fn remove(&self, client_id: &str) -> Result<bool, StoreError> {
        self.db
            .run("oauth_client_remove", async {
                let r = sqlx::query("DELETE FROM apiauth_oauth_clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(self.db.pool())
                    .await?;
                Ok(r.rows_affected() == 1)
            })
            .await
    }
}

async fn new_secret(hasher: &PasswordHasher) -> Result<(SecretString, String), StoreError> {
    // Prefixed and checksummed so that secret scanners recognise a leaked one.
    let format = TokenFormat::new(CLIENT_SECRET_PREFIX)
        .map_err(|_| StoreError::Unavailable("client secret prefix refused".into()))?;
    let generated = format.generate();
    let hasher = hasher.clone();
    let secret = generated.token.clone();
    let hash = tokio::task::spawn_blocking(move || hasher.hash(secret.expose_secret()))
        .await
        .map_err(|_| StoreError::Unavailable("password hashing task failed".into()))?;
    Ok((generated.token, hash))
}

#[async_trait]
impl ClientRegistry for SqlClientRegistry {
    async fn find(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        const OP: &str = "oauth_client_find";
        let row = self
            .db
            .run(OP, async {
                sqlx::query(
                    "SELECT client_id, secret_hash, scopes, may_request_tokens, may_introspect,
                       suspended, tenant, tls_auth_parameter, tls_auth_value
                     FROM apiauth_oauth_clients WHERE client_id = $1",
                )
                .bind(client_id)
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let s = |c: &str| row.try_get::<String, _>(c).map_err(|_| corrupt(OP));
        let is = |c: &str| {
            row.try_get::<i64, _>(c)
                .map(|v| v != 0)
                .map_err(|_| corrupt(OP))
        };
        let scopes = ScopeSet::parse(&s("scopes")?).map_err(|_| corrupt(OP))?;
        let opt = |c: &str| row.try_get::<Option<String>, _>(c).map_err(|_| corrupt(OP));
        let tls = opt("tls_auth_parameter")?.zip(opt("tls_auth_value")?);
        #[cfg(feature = "mtls")]
        let client = match tls {
            // RFC 8705 §2: a certificate client (its stored secret hash is empty).
            Some((parameter, value)) => RegisteredClient::tls_client_auth(
                s("client_id")?,
                apiauth_oauth2::TlsClientAuth::from_registration(&parameter, &value)
                    .ok_or_else(|| corrupt(OP))?,
                scopes,
            ),
            None => RegisteredClient::new(s("client_id")?, s("secret_hash")?, scopes),
        };
        // Without the feature a certificate client has no usable credential: its empty
        // secret hash never verifies a secret.
        #[cfg(not(feature = "mtls"))]
        let client = {
            let _ = tls;
            RegisteredClient::new(s("client_id")?, s("secret_hash")?, scopes)
        };
        let mut client = client.suspended(is("suspended")?);
        if !is("may_request_tokens")? {
            client = client.without_token_grant();
        }
        if is("may_introspect")? {
            client = client.allow_introspection();
        }
        if let Some(tenant) = row
            .try_get::<Option<String>, _>("tenant")
            .map_err(|_| corrupt(OP))?
        {
            client = client.tenant(tenant);
        }
        Ok(Some(client))
    }
}
