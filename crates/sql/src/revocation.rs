//! The revocation list in SQL: one row per revoked id (by its SHA-256), until the
//! credential's own end.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use apiauth_core::{RevocationList, StoreError};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::db::SqlDatabase;
use crate::time::{millis, millis_ceil};

/// Every this many revocations, rows whose end has passed are deleted.
const PURGE_EVERY: u32 = 256;

/// [`RevocationList`] on SQL. Ids of any length are keyed by their SHA-256; a later revoke
/// only ever lengthens an earlier one (in one `INSERT … ON CONFLICT` statement, atomic on the
/// server). Rows past their end are ignored at once and deleted from time to time
/// ([`purge_expired`](Self::purge_expired)).
///
/// No local cache: each check is one indexed lookup, so a revocation is seen by every
/// instance on its next request. [`CachedRevocationList`](crate::CachedRevocationList) is the
/// warm path in front of it.
#[derive(Clone)]
pub struct SqlRevocationList {
    db: SqlDatabase,
    revokes: std::sync::Arc<AtomicU32>,
}

impl fmt::Debug for SqlRevocationList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRevocationList").finish_non_exhaustive()
    }
}

fn id_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The key of `id` in caches and change notifications: its SHA-256 in lower-case hex (what
/// PostgreSQL's `encode(id_hash, 'hex')` gives).
pub(crate) fn id_hash_hex(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl SqlRevocationList {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self {
            db,
            revokes: Default::default(),
        }
    }

    /// Deletes the rows whose end has passed; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = millis(self.db.clock().now());
        self.db
            .run("revocation_purge", async {
                let r = sqlx::query("DELETE FROM apiauth_revocations WHERE until_ms <= $1")
                    .bind(now)
                    .execute(self.db.pool())
                    .await?;
                Ok(r.rows_affected())
            })
            .await
    }
}

#[async_trait]
impl RevocationList for SqlRevocationList {
    async fn revoke(&self, id: &str, until: SystemTime) -> Result<(), StoreError> {
        let now = self.db.clock().now();
        if until <= now {
            return Ok(()); // already expired: nothing to remember
        }
        let until = millis_ceil(until);
        self.db
            .run("revoke", async {
                sqlx::query(
                    "INSERT INTO apiauth_revocations (id_hash, until_ms) VALUES ($1, $2)
                     ON CONFLICT (id_hash) DO UPDATE SET until_ms = CASE
                       WHEN excluded.until_ms > apiauth_revocations.until_ms
                       THEN excluded.until_ms ELSE apiauth_revocations.until_ms END",
                )
                .bind(id_hash(id))
                .bind(until)
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await?;
        if self.revokes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
            // Housekeeping: a failure here costs nothing but space.
            let _ = self.purge_expired().await;
        }
        Ok(())
    }

    async fn is_revoked(&self, id: &str) -> Result<bool, StoreError> {
        let now = millis(self.db.clock().now());
        self.db
            .run("is_revoked", async {
                let row: Option<i64> = sqlx::query_scalar(
                    "SELECT until_ms FROM apiauth_revocations WHERE id_hash = $1 AND until_ms > $2",
                )
                .bind(id_hash(id))
                .bind(now)
                .fetch_optional(self.db.pool())
                .await?;
                Ok(row.is_some())
            })
            .await
    }
}
