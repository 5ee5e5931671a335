//! Usage counters in SQL: per caller, route template, status class and UTC day, written in
//! batches.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiauth_core::StoreError;
use apiauth_quota::{StatusClass, UsageCount, UsageMeter};
use async_trait::async_trait;
use sqlx::Row;

use crate::db::SqlDatabase;
use crate::error::{LOG_TARGET, corrupt};

/// Default delay between the first unwritten count and its write.
pub const DEFAULT_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default cap on distinct counters waiting to be written.
pub const DEFAULT_MAX_PENDING_SERIES: usize = 100_000;

const DAY: i64 = 86_400;

/// (identity, route, status class index, UTC day start)
type Key = (Arc<str>, Arc<str>, i64, i64);

/// [`UsageMeter`] on SQL: table `apiauth_usage`, one row per caller, route template, status
/// class and UTC day (a daily rollup; [`usage`](UsageMeter::usage) sums the days).
///
/// A request costs no database write: counts gather in memory and are added to their rows in
/// one transaction per flush, [`DEFAULT_USAGE_FLUSH_INTERVAL`] after the first unwritten count
/// (`ON CONFLICT … DO UPDATE SET count = count + excluded.count`, exact under concurrency and
/// across instances). A flush that fails keeps its counts for the next one. What a process
/// has not written when it dies is lost: at most one interval of its counts; call
/// [`flush`](Self::flush) on shutdown. `usage` flushes first, so a caller always sees its own
/// requests on the instance that served them, and other instances' within one interval.
#[derive(Clone)]
pub struct SqlUsageMeter {
    inner: Arc<Inner>,
}

struct Inner {
    db: SqlDatabase,
    pending: Mutex<HashMap<Key, u64>>,
    flush_after: Duration,
    max_pending: usize,
}

impl fmt::Debug for SqlUsageMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlUsageMeter")
            .field("flush_after", &self.inner.flush_after)
            .finish_non_exhaustive()
    }
}

fn class_index(c: StatusClass) -> i64 {
    StatusClass::ALL
        .iter()
        .position(|x| *x == c)
        .map_or(4, |i| i as i64)
}

impl SqlUsageMeter {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self::with_flush(db, DEFAULT_USAGE_FLUSH_INTERVAL, DEFAULT_MAX_PENDING_SERIES)
    }

    fn with_flush(db: SqlDatabase, flush_after: Duration, max_pending: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                pending: Mutex::new(HashMap::new()),
                flush_after,
                max_pending,
            }),
        }
    }

    /// Writes counts after `interval` instead of [`DEFAULT_USAGE_FLUSH_INTERVAL`].
    #[must_use]
    pub fn flush_interval(self, interval: Duration) -> Self {
        let db = self.inner.db.clone();
        Self::with_flush(db, interval, self.inner.max_pending)
    }

    /// Writes every pending count now, in one transaction.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

impl Inner {
    async fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *self.lock());
        if batch.is_empty() {
            return Ok(());
        }
        // Key order, so that concurrent flushes lock rows in one order and cannot deadlock.
        let sorted: BTreeMap<&Key, &u64> = batch.iter().collect();
        let written = self
            .db
            .run("usage_flush", async {
                let mut tx = self.db.pool().begin().await?;
                for ((identity, route, class, day), n) in &sorted {
                    sqlx::query(
                        "INSERT INTO apiauth_usage (identity, route, status_class, day, count)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (identity, route, status_class, day)
                         DO UPDATE SET count = apiauth_usage.count + excluded.count",
                    )
                    .bind(&**identity)
                    .bind(&**route)
                    .bind(*class)
                    .bind(*day)
                    .bind(i64::try_from(**n).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            })
            .await;
        if written.is_err() {
            // Keep the counts for the next flush rather than lose them.
            let mut pending = self.lock();
            for (k, n) in batch {
                let e = pending.entry(k).or_insert(0);
                *e = e.saturating_add(n);
            }
        }
        written
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl UsageMeter for SqlUsageMeter {
    async fn record(
        &self,
        identity: &str,
        route: &str,
        class: StatusClass,
    ) -> Result<(), StoreError> {
        let now = crate::time::secs(self.inner.db.clock().now());
        let key: Key = (
            Arc::from(identity),
            Arc::from(route),
            class_index(class),
            now - now.rem_euclid(DAY),
        );
        let first = {
            let mut pending = self.inner.lock();
            let first = pending.is_empty();
            let full = pending.len() >= self.inner.max_pending;
            match pending.get_mut(&key) {
                Some(n) => *n = n.saturating_add(1),
                None if full => {
                    return Err(StoreError::CapacityExceeded);
                }
                None => {
                    pending.insert(key, 1);
                }
            }
            first
        };
        if first && let Ok(rt) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            rt.spawn(async move {
                tokio::time::sleep(inner.flush_after).await;
                if let Err(e) = inner.flush().await {
                    tracing::warn!(target: LOG_TARGET, error = %e, "could not write usage counts");
                    // The counts stay pending; the next record or usage query writes them.
                }
            });
        }
        Ok(())
    }

    async fn usage(&self, identity: &str) -> Result<Vec<UsageCount>, StoreError> {
        const OP: &str = "usage_query";
        self.inner.flush().await?;
        let db = &self.inner.db;
        let rows = db
            .run(OP, async {
                sqlx::query(
                    "SELECT route, status_class, count FROM apiauth_usage WHERE identity = $1",
                )
                .bind(identity)
                .fetch_all(db.pool())
                .await
            })
            .await?;
        let mut sums: BTreeMap<(String, StatusClass), u64> = BTreeMap::new();
        for row in rows {
            let route: String = row.try_get("route").map_err(|_| corrupt(OP))?;
            let class: i64 = row.try_get("status_class").map_err(|_| corrupt(OP))?;
            let count: i64 = row.try_get("count").map_err(|_| corrupt(OP))?;
            let class = usize::try_from(class)
                .ok()
                .and_then(|i| StatusClass::ALL.get(i).copied())
                .ok_or_else(|| corrupt(OP))?;
            let count = u64::try_from(count).map_err(|_| corrupt(OP))?;
            let e = sums.entry((route, class)).or_insert(0);
            *e = e.saturating_add(count);
        }
        Ok(sums
            .into_iter()
            .map(|((route, status_class), count)| UsageCount {
                route,
                status_class,
                count,
            })
            .collect())
    }
}
