//! HTTP Basic users in SQL: argon2 PHC strings, never passwords.

use std::fmt;

use apiauth_basic::{CredentialRecord, CredentialStore};
use apiauth_core::{ScopeSet, StoreError};
use async_trait::async_trait;
use sqlx::Row;

use crate::db::SqlDatabase;
use crate::error::corrupt;

/// [`CredentialStore`] on SQL: table `apiauth_basic_users`.
///
/// Every write takes a generation from one counter row in the same transaction, so
/// generations are unique across instances, and a removed and re-added user does not revive
/// cached verifications anywhere.
#[derive(Clone)]
pub struct SqlCredentialStore {
    db: SqlDatabase,
}

impl fmt::Debug for SqlCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlCredentialStore").finish_non_exhaustive()
    }
}

/// Takes the next generation; the first statement of a write transaction, so SQLite takes
/// its write lock before reading anything.
const NEXT_GENERATION: &str = "UPDATE apiauth_counters SET value = value + 1 \
    WHERE name = 'basic_generation' RETURNING value";

impl SqlCredentialStore {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// Adds or replaces `user_id` with `record` (its PHC string from
    /// `apiauth_basic::hash_password`), under a fresh generation.
    pub async fn insert(&self, user_id: &str, record: &CredentialRecord) -> Result<(), StoreError> {
        self.db
            .run("basic_insert", async {
                let mut tx = self.db.pool().begin().await?;
                let generation: i64 = sqlx::query_scalar(NEXT_GENERATION)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO apiauth_basic_users
                       (user_id, subject, password_hash, tenant, scopes, generation)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (user_id) DO UPDATE SET subject = excluded.subject,
                       password_hash = excluded.password_hash, tenant = excluded.tenant,
                       scopes = excluded.scopes, generation = excluded.generation",
                )
                .bind(user_id)
                .bind(record.subject())
                .bind(record.password_hash())
                .bind(record.tenant_id())
                .bind(record.granted_scopes().to_string())
                .bind(generation)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            })
            .await
    }

    /// Adds or replaces a user whose subject is its user-id.
    pub async fn insert_user(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.insert(user_id, &CredentialRecord::new(user_id, password_hash))
            .await
    }

    /// Replaces the PHC string of `user_id`; `false` if there is no such user.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.db
            .run("basic_set_hash", async {
                let mut tx = self.db.pool().begin().await?;
                let generation: i64 = sqlx::query_scalar(NEXT_GENERATION)
                    .fetch_one(&mut *tx)
                    .await?;
                let r = sqlx::query(
                    "UPDATE apiauth_basic_users SET password_hash = $1, generation = $2
                     WHERE user_id = $3",
                )
                .bind(password_hash)
                .bind(generation)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(r.rows_affected() == 1)
            })
            .await
    }

    /// Removes (revokes) `user_id`; `false` if there was no such user.
    pub async fn remove(&self, user_id: &str) -> Result<bool, StoreError> {
        self.db
            .run("basic_remove", async {
                let r = sqlx::query("DELETE FROM apiauth_basic_users WHERE user_id = $1")
                    .bind(user_id)
                    .execute(self.db.pool())
                    .await?;
                Ok(r.rows_affected() == 1)
            })
            .await
    }
}

#[async_trait]
impl CredentialStore for SqlCredentialStore {
    async fn get(&self, user_id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        const OP: &str = "basic_get";
        let row = self
            .db
            .run(OP, async {
                sqlx::query(
                    "SELECT subject, password_hash, tenant, scopes, generation
                     FROM apiauth_basic_users WHERE user_id = $1",
                )
                .bind(user_id)
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        let Some(row) = row else { return Ok(None) };
        let subject: String = row.try_get("subject").map_err(|_| corrupt(OP))?;
        let hash: String = row.try_get("password_hash").map_err(|_| corrupt(OP))?;
        let tenant: Option<String> = row.try_get("tenant").map_err(|_| corrupt(OP))?;
        let scopes: String = row.try_get("scopes").map_err(|_| corrupt(OP))?;
        let generation: i64 = row.try_get("generation").map_err(|_| corrupt(OP))?;
        let scopes = ScopeSet::parse(&scopes).map_err(|_| corrupt(OP))?;
        let generation = u64::try_from(generation).map_err(|_| corrupt(OP))?;
        let mut record = CredentialRecord::new(subject, hash)
            .scopes(scopes)
            .generation(generation);
        if let Some(t) = tenant {
            record = record.tenant(t);
        }
        Ok(Some(record))
    }
}
