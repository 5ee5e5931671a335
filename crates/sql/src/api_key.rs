//! API key records in SQL: the SHA-256 digest of each key, never the key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use apiauth_api_key::{ApiKeyRecord, ApiKeyStore, KeyChange, KeyFilter};
use apiauth_core::token::SecretHash;
use apiauth_core::{ScopeSet, StoreError};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::SqlDatabase;
use crate::error::corrupt;
use crate::time::{from_opt_secs, from_secs, opt_secs, secs};

/// A change retried this often against concurrent writers before it is a 503.
const MAX_UPDATE_ATTEMPTS: usize = 64;

const COLUMNS: &str = "id, hash, owner, tenant, scopes, plan, created_at, expires_at, \
    revoked_at, last_used_at, rotated_to, rotated_from, grace_until, version";

/// [`ApiKeyStore`] on SQL: table `apiauth_api_keys`, one row per key.
///
/// - **At rest**: the 32-byte SHA-256 digest of the key and public facts; nothing that can
///   be turned back into a key.
/// - **Changes** ([`KeyChange`]) are applied with [`ApiKeyRecord::apply`], the function every
///   store shares, as a compare-and-set on a `version` column: of two instances revoking and
///   rotating one key at once, both changes land and a key is rotated once.
/// - **Last-used times** arrive in batches (the `ApiKeys` handle queues them and flushes one
///   batch per interval), written in one transaction that only ever moves a time forward and
///   never conflicts with a change.
#[derive(Clone)]
pub struct SqlApiKeyStore {
    db: SqlDatabase,
}

impl fmt::Debug for SqlApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlApiKeyStore").finish_non_exhaustive()
    }
}

fn opt_str(s: &Option<Arc<str>>) -> Option<String> {
    s.as_deref().map(str::to_owned)
}

fn from_row(row: &AnyRow) -> Result<(ApiKeyRecord, i64), StoreError> {
    const OP: &str = "api_key_read";
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(|_| corrupt(OP));
    let get_os = |c: &str| {
        row.try_get::<Option<String>, _>(c)
            .map(|o| o.map(Arc::from))
            .map_err(|_| corrupt(OP))
    };
    let get_ot = |c: &str| {
        row.try_get::<Option<i64>, _>(c)
            .map_err(|_| corrupt(OP))
            .and_then(|v| from_opt_secs(OP, v))
    };
    let hash: Vec<u8> = row.try_get("hash").map_err(|_| corrupt(OP))?;
    let hash = <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| corrupt(OP))?;
    let scopes = ScopeSet::parse(&get_s("scopes")?).map_err(|_| corrupt(OP))?;
    let created: i64 = row.try_get("created_at").map_err(|_| corrupt(OP))?;
    let version: i64 = row.try_get("version").map_err(|_| corrupt(OP))?;
    let record = ApiKeyRecord {
        id: get_s("id")?.into(),
        hash: SecretHash::from_bytes(hash),
        owner: get_s("owner")?.into(),
        tenant: get_os("tenant")?,
        scopes,
        plan: get_os("plan")?,
        created_at: from_secs(OP, created)?,
        expires_at: get_ot("expires_at")?,
        revoked_at: get_ot("revoked_at")?,
        last_used_at: get_ot("last_used_at")?,
        rotated_to: get_os("rotated_to")?,
        rotated_from: get_os("rotated_from")?,
        grace_until: get_ot("grace_until")?,
    };
    Ok((record, version))
}

impl SqlApiKeyStore {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    async fn get_versioned(&self, id: &str) -> Result<Option<(ApiKeyRecord, i64)>, StoreError> {
        let row = self
            .db
            .run("api_key_get", async {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apiauth_api_keys WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        row.as_ref().map(from_row).transpose()
    }
}

/// The fields a [`KeyChange`] may touch; last-used is not among them.
fn changed_fields(r: &ApiKeyRecord) -> [Option<i64>; 3] {
    [
        opt_secs(r.expires_at),
        opt_secs(r.revoked_at),
        opt_secs(r.grace_until),
    ]
}

#[async_trait]
impl ApiKeyStore for SqlApiKeyStore {
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.get_versioned(id).await?.map(|(r, _)| r))
    }

    async fn insert(&self, r: ApiKeyRecord) -> Result<bool, StoreError> {
        self.db
            .run("api_key_insert", async {
                let done = sqlx::query(&format!(
                    "INSERT INTO apiauth_api_keys ({COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0)
                     ON CONFLICT (id) DO NOTHING"
                ))
                .bind(r.id.to_string())
                .bind(r.hash.as_bytes().to_vec())
                .bind(r.owner.to_string())
                .bind(opt_str(&r.tenant))
                .bind(r.scopes.to_string())
                .bind(opt_str(&r.plan))
                .bind(secs(r.created_at))
                .bind(opt_secs(r.expires_at))
                .bind(opt_secs(r.revoked_at))
                .bind(opt_secs(r.last_used_at))
                .bind(opt_str(&r.rotated_to))
                .bind(opt_str(&r.rotated_from))
                .bind(opt_secs(r.grace_until))
                .execute(self.db.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            })
            .await
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .run("api_key_list", async {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apiauth_api_keys
                     WHERE ($1 IS NULL OR owner = $1) AND ($2 IS NULL OR tenant = $2)
                     ORDER BY created_at, id LIMIT $3"
                ))
                .bind(opt_str(&filter.owner))
                .bind(opt_str(&filter.tenant))
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
            })
            .await?;
        rows.iter().map(|r| from_row(r).map(|(r, _)| r)).collect()
    }

    async fn update(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some((mut record, version)) = self.get_versioned(id).await? else {
                return Ok(None);
            };
            let before = (changed_fields(&record), record.rotated_to.clone());
            record.apply(change);
            if (changed_fields(&record), record.rotated_to.clone()) == before {
                return Ok(Some(record)); // nothing to write (an earlier revocation stands…)
            }
            let [expires, revoked, grace] = changed_fields(&record);
            let won = self
                .db
                .run("api_key_update", async {
                    let r = sqlx::query(
                        "UPDATE apiauth_api_keys
                         SET expires_at = $1, revoked_at = $2, grace_until = $3,
                             rotated_to = $4, version = version + 1
                         WHERE id = $5 AND version = $6",
                    )
                    .bind(expires)
                    .bind(revoked)
                    .bind(grace)
                    .bind(opt_str(&record.rotated_to))
                    .bind(id)
                    .bind(version)
                    .execute(self.db.pool())
                    .await?;
                    Ok(r.rows_affected() == 1)
                })
                .await?;
            if won {
                return Ok(Some(record));
            }
            // Another writer changed the row since we read it: apply to the new version.
            tokio::task::yield_now().await;
        }
        Err(StoreError::Unavailable(
            "sql: api_key_update contended".into(),
        ))
    }

    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError> {
        // The latest time per key, in id order so that concurrent batches lock rows in one
        // order and cannot deadlock.
        let mut latest: BTreeMap<&str, SystemTime> = BTreeMap::new();
        for (id, at) in batch {
            let e = latest.entry(&**id).or_insert(*at);
            *e = (*e).max(*at);
        }
        if latest.is_empty() {
            return Ok(());
        }
        self.db
            .run("api_key_last_used", async {
                let mut tx = self.db.pool().begin().await?;
                for (id, at) in &latest {
                    sqlx::query(
                        "UPDATE apiauth_api_keys SET last_used_at = $1
                         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                    )
                    .bind(secs(*at))
                    .bind(*id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            })
            .await
    }
}
