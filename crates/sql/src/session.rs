//! Browser sessions in SQL (schema version 4): for a web front end such as the example's
//! portal. The session id is kept only as its SHA-256, so reading the table yields no id a
//! browser could present; the rest is opaque text the caller serialises.

use std::fmt;
use std::time::SystemTime;

use apiauth_core::StoreError;
use sha2::{Digest, Sha256};

use crate::db::SqlDatabase;
use crate::time::{from_secs, secs};

/// One stored session. `data` is the caller's (JSON, say); `expires_at` is when the row may
/// be deleted whatever the caller decides about idle time.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The caller's session data, opaque to the store.
    pub data: String,
    /// When the session began (sign-in).
    pub created_at: SystemTime,
    /// The last request of the session.
    pub last_seen: SystemTime,
    /// Past it the row is not served and may be purged.
    pub expires_at: SystemTime,
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `data` may hold a CSRF token.
        f.debug_struct("StoredSession")
            .field("created_at", &self.created_at)
            .field("last_seen", &self.last_seen)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Sessions keyed by the SHA-256 of their id. Rows past `expires_at` are never returned and
/// are deleted by [`purge_expired`](Self::purge_expired).
#[derive(Clone)]
pub struct SqlSessionStore {
    db: SqlDatabase,
}

impl fmt::Debug for SqlSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSessionStore").finish_non_exhaustive()
    }
}

fn id_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

impl SqlSessionStore {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// The live session with id `id`, if any.
    pub async fn load(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        let now = secs(self.db.clock().now());
        let row: Option<(String, i64, i64, i64)> = self
            .db
            .run("session_load", async {
                sqlx::query_as(
                    "SELECT data, created_at, last_seen, expires_at FROM apiauth_sessions
                     WHERE id_hash = $1 AND expires_at > $2",
                )
                .bind(id_hash(id))
                .bind(now)
                .fetch_optional(self.db.pool())
                .await
            })
            .await?;
        let op = "session_load";
        row.map(|(data, c, l, e)| {
            Ok(StoredSession {
                data,
                created_at: from_secs(op, c)?,
                last_seen: from_secs(op, l)?,
                expires_at: from_secs(op, e)?,
            })
        })
        .transpose()
    }

    /// Inserts or replaces session `id`.
    pub async fn save(&self, id: &str, s: &StoredSession) -> Result<(), StoreError> {
        self.db
            .run("session_save", async {
                sqlx::query(
                    "INSERT INTO apiauth_sessions (id_hash, data, created_at, last_seen, expires_at)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data,
                       last_seen = excluded.last_seen, expires_at = excluded.expires_at",
                )
                .bind(id_hash(id))
                .bind(&s.data)
                .bind(secs(s.created_at))
                .bind(secs(s.last_seen))
                .bind(secs(s.expires_at))
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await
    }

    /// Deletes session `id` (sign-out); deleting a missing one is no error.
    pub async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .run("session_delete", async {
                sqlx::query("DELETE FROM apiauth_sessions WHERE id_hash = $1")
                    .bind(id_hash(id))
                    .execute(self.db.pool())
                    .await?;
                Ok(())
            })
            .await
    }

    /// Deletes the sessions past their expiry; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = secs(self.db.clock().now());
        self.db
            .run("session_purge", async {
                let r = sqlx::query("DELETE FROM apiauth_sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(self.db.pool())
                    .await?;
                Ok(r.rows_affected())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sessions_are_saved_loaded_renewed_and_deleted_on_sqlite() {
        let db = SqlDatabase::builder("sqlite::memory:")
            .connect()
            .await
            .unwrap();
        let store = db.session_store();
        let now = SystemTime::now();
        let s = StoredSession {
            data: r#"{"user":"acme-portal"}"#.into(),
            created_at: now,
            last_seen: now,
            expires_at: now + Duration::from_secs(3600),
        };
        store.save("a".repeat(64).as_str(), &s).await.unwrap();
        let got = store.load(&"a".repeat(64)).await.unwrap().unwrap();
        assert_eq!(got.data, s.data);
        assert!(store.load(&"b".repeat(64)).await.unwrap().is_none());
        // At rest the id is only its hash.
        let ids: Vec<Vec<u8>> = sqlx::query_scalar("SELECT id_hash FROM apiauth_sessions")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(ids, vec![id_hash(&"a".repeat(64))]);
        store.delete(&"a".repeat(64)).await.unwrap();
        assert!(store.load(&"a".repeat(64)).await.unwrap().is_none());
        // An expired row is not served, and is purged.
        let old = StoredSession {
            expires_at: now - Duration::from_secs(1),
            ..s
        };
        store.save("c", &old).await.unwrap();
        assert!(store.load("c").await.unwrap().is_none());
        assert_eq!(store.purge_expired().await.unwrap(), 1);
    }
}
