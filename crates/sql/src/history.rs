//! The billing history in SQL (issue 18): per UTC day, tenant, identity and route template,
//! the requests by status class and the credits charged, written in batches like the usage
//! counters (usage.rs).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiauth_core::StoreError;
use apiauth_quota::{StatusClass, UsageEvent, UsageHistory, UsageRow, day_string};
use async_trait::async_trait;
use sqlx::Row;

use crate::db::SqlDatabase;
use crate::error::{LOG_TARGET, corrupt};
use crate::usage::{DEFAULT_MAX_PENDING_SERIES, DEFAULT_USAGE_FLUSH_INTERVAL};

/// (UTC day number, tenant, identity, route)
type Key = (i64, Arc<str>, Arc<str>, Arc<str>);
/// requests 2xx, 4xx, 5xx, other; credits
type Counts = [u64; 5];

/// [`UsageHistory`] on SQL: table `apiauth_usage_history` (schema version 6), one row per
/// UTC day, tenant, identity and route template.
///
/// A request costs no database write: its counts gather in memory and are added to their
/// rows in one transaction per flush, [`DEFAULT_USAGE_FLUSH_INTERVAL`] after the first
/// unwritten event (`ON CONFLICT … DO UPDATE SET n = n + excluded.n`: exact under concurrency
/// and across instances). A failed flush keeps its counts for the next one; past
/// [`DEFAULT_MAX_PENDING_SERIES`] unwritten rows a *new* row is refused
/// ([`StoreError::CapacityExceeded`]; the layer logs it and counts it in
/// `apiauth_usage_errors_total`). What a process has not written when it dies is lost (at
/// most one interval): call [`flush`](Self::flush) on shutdown. [`export`](UsageHistory::export)
/// flushes first, so an export shows every request this instance answered.
#[derive(Clone)]
pub struct SqlUsageHistory {
    inner: Arc<Inner>,
}

struct Inner {
    db: SqlDatabase,
    pending: Mutex<HashMap<Key, Counts>>,
    flush_after: Duration,
    max_pending: usize,
}

impl fmt::Debug for SqlUsageHistory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlUsageHistory")
            .field("flush_after", &self.inner.flush_after)
            .finish_non_exhaustive()
    }
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqlUsageHistory {
    pub(crate) fn new(db: SqlDatabase) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                pending: Mutex::new(HashMap::new()),
                flush_after: DEFAULT_USAGE_FLUSH_INTERVAL,
                max_pending: DEFAULT_MAX_PENDING_SERIES,
            }),
        }
    }

    /// Writes events after `interval` instead of [`DEFAULT_USAGE_FLUSH_INTERVAL`].
    #[must_use]
    pub fn flush_interval(self, interval: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: self.inner.db.clone(),
                pending: Mutex::new(HashMap::new()),
                flush_after: interval,
                max_pending: self.inner.max_pending,
            }),
        }
    }

    /// Writes every pending row now, in one transaction.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Counts>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut *self.lock());
        if batch.is_empty() {
            return Ok(());
        }
        // Key order, so that concurrent flushes lock rows in one order and cannot deadlock.
        let sorted: BTreeMap<&Key, &Counts> = batch.iter().collect();
        let written = self
            .db
            .run("usage_history_flush", async {
                let mut tx = self.db.pool().begin().await?;
                for ((day, tenant, identity, route), c) in &sorted {
                    sqlx::query(
                        "INSERT INTO apiauth_usage_history (day, tenant, identity, route,
                           requests_2xx, requests_4xx, requests_5xx, requests_other, credits)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (day, tenant, identity, route) DO UPDATE SET
                           requests_2xx = apiauth_usage_history.requests_2xx + excluded.requests_2xx,
                           requests_4xx = apiauth_usage_history.requests_4xx + excluded.requests_4xx,
                           requests_5xx = apiauth_usage_history.requests_5xx + excluded.requests_5xx,
                           requests_other = apiauth_usage_history.requests_other + excluded.requests_other,
                           credits = apiauth_usage_history.credits + excluded.credits",
                    )
                    .bind(*day)
                    .bind(&**tenant)
                    .bind(&**identity)
                    .bind(&**route)
                    .bind(int(c[0]))
                    .bind(int(c[1]))
                    .bind(int(c[2]))
                    .bind(int(c[3]))
                    .bind(int(c[4]))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            })
            .await;
        if written.is_err() {
            // Keep the counts for the next flush rather than lose them.
            let mut pending = self.lock();
            for (k, c) in batch {
                let e = pending.entry(k).or_default();
                for (a, b) in e.iter_mut().zip(c) {
                    *a = a.saturating_add(b);
                }
            }
        }
        written
    }
}

fn slot(class: StatusClass) -> usize {
    match class {
        StatusClass::Success => 0,
        StatusClass::ClientError => 1,
        StatusClass::ServerError => 2,
        _ => 3,
    }
}

#[async_trait]
impl UsageHistory for SqlUsageHistory {
    async fn record(&self, e: UsageEvent<'_>) -> Result<(), StoreError> {
        let day = int(e.day);
        let first = {
            let mut pending = self.inner.lock();
            let first = pending.is_empty();
            let full = pending.len() >= self.inner.max_pending;
            // Borrowed lookup first would need a custom key type; rows are few per flush.
            let key: Key = (
                day,
                Arc::from(e.tenant),
                Arc::from(e.identity),
                Arc::from(e.route),
            );
            let counts = match pending.get_mut(&key) {
                Some(c) => c,
                None if full => return Err(StoreError::CapacityExceeded),
                None => pending.entry(key).or_default(),
            };
            let i = slot(e.class);
            counts[i] = counts[i].saturating_add(1);
            counts[4] = counts[4].saturating_add(e.credits);
            first
        };
        if first && let Ok(rt) = tokio::runtime::Handle::try_current() {
            let inner = Arc::clone(&self.inner);
            rt.spawn(async move {
                tokio::time::sleep(inner.flush_after).await;
                if let Err(e) = inner.flush().await {
                    tracing::warn!(target: LOG_TARGET, error = %e, "could not write the usage history");
                    // The rows stay pending; the next record or export writes them.
                }
            });
        }
        Ok(())
    }

    async fn export(&self, tenant: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        const OP: &str = "usage_history_export";
        self.inner.flush().await?;
        let db = &self.inner.db;
        const COLUMNS: &str = "SELECT day, tenant, identity, route, requests_2xx, requests_4xx,
             requests_5xx, requests_other, credits FROM apiauth_usage_history";
        let rows = db
            .run(OP, async {
                match tenant {
                    Some(t) => {
                        sqlx::query(&format!(
                            "{COLUMNS} WHERE tenant = $1 ORDER BY day, tenant, identity, route"
                        ))
                        .bind(t)
                        .fetch_all(db.pool())
                        .await
                    }
                    None => {
                        sqlx::query(&format!("{COLUMNS} ORDER BY day, tenant, identity, route"))
                            .fetch_all(db.pool())
                            .await
                    }
                }
            })
            .await?;
        let count = |row: &sqlx::any::AnyRow, name: &str| -> Result<u64, StoreError> {
            let v: i64 = row.try_get(name).map_err(|_| corrupt(OP))?;
            u64::try_from(v).map_err(|_| corrupt(OP))
        };
        rows.iter()
            .map(|row| {
                let text = |name: &str| -> Result<String, StoreError> {
                    row.try_get(name).map_err(|_| corrupt(OP))
                };
                Ok(UsageRow {
                    day: day_string(count(row, "day")?),
                    tenant: text("tenant")?,
                    identity: text("identity")?,
                    route: text("route")?,
                    requests_2xx: count(row, "requests_2xx")?,
                    requests_4xx: count(row, "requests_4xx")?,
                    requests_5xx: count(row, "requests_5xx")?,
                    requests_other: count(row, "requests_other")?,
                    credits: count(row, "credits")?,
                })
            })
            .collect()
    }
}
