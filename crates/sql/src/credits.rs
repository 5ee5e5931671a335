//! Credit balances in SQL: the balance of record, one row per key (tenant or identity) with
//! the refill period it belongs to (issue 18).
//!
//! Every operation is a single conditional statement, atomic on the server, so any number of
//! instances on one database never spend a credit twice:
//!
//! - a row is created at the allowance (`INSERT … ON CONFLICT DO NOTHING`), and refilled when
//!   a request of a later period arrives (`UPDATE … WHERE period < $p`): no job runs at
//!   midnight;
//! - a reservation is `UPDATE … SET balance = balance - cost WHERE … AND balance >= cost`:
//!   it takes the cost or nothing;
//! - a refund adds back only into the period it was reserved from (`WHERE period = $p`).

use std::fmt;

use apiauth_quota::{CreditStore, CreditStoreError, Reservation};
use async_trait::async_trait;

use crate::db::SqlDatabase;

/// Amounts are kept far below `i64::MAX`, so `balance + amount` cannot overflow a BIGINT.
const MAX: u64 = 1 << 60;

fn int(v: u64) -> i64 {
    i64::try_from(v.min(MAX)).unwrap_or(i64::MAX)
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// [`CreditStore`] on SQL (table `apiauth_credits`, schema version 3).
#[derive(Clone)]
pub struct SqlCreditStore {
    db: SqlDatabase,
}

impl fmt::Debug for SqlCreditStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlCreditStore").finish_non_exhaustive()
    }
}

fn err(e: apiauth_core::StoreError) -> CreditStoreError {
    CreditStoreError(e.to_string())
}

impl SqlCreditStore {
    /// Balances on `db` (migrated by [`SqlDatabaseBuilder::connect`](crate::SqlDatabaseBuilder::connect)).
    #[must_use]
    pub fn new(db: SqlDatabase) -> Self {
        Self { db }
    }

    /// Creates the row at `allowance`, or refills it if its period is older than `period`.
    async fn ensure(&self, key: &str, period: u64, allowance: u64) -> Result<(), CreditStoreError> {
        self.db
            .run("credits_ensure", async {
                sqlx::query(
                    "INSERT INTO apiauth_credits (credit_key, period, balance) VALUES ($1, $2, $3)
                     ON CONFLICT (credit_key) DO NOTHING",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(allowance))
                .execute(self.db.pool())
                .await?;
                sqlx::query(
                    "UPDATE apiauth_credits SET period = $2, balance = $3
                     WHERE credit_key = $1 AND period < $2",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(allowance))
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn balance(&self, key: &str, period: u64) -> Result<u64, CreditStoreError> {
        self.db
            .run("credits_read", async {
                let b: Option<i64> = sqlx::query_scalar(
                    "SELECT balance FROM apiauth_credits WHERE credit_key = $1 AND period = $2",
                )
                .bind(key)
                .bind(int(period))
                .fetch_optional(self.db.pool())
                .await?;
                Ok(b.map_or(0, uint))
            })
            .await
            .map_err(err)
    }
}

#[async_trait]
impl CreditStore for SqlCreditStore {
    async fn reserve(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        cost: u64,
    ) -> Result<Reservation, CreditStoreError> {
        self.ensure(key, period, allowance).await?;
        let left: Option<i64> = self
            .db
            .run("credits_reserve", async {
                sqlx::query_scalar(
                    "UPDATE apiauth_credits SET balance = balance - $3
                     WHERE credit_key = $1 AND period = $2 AND balance >= $3
                     RETURNING balance",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(cost))
                .fetch_optional(self.db.pool())
                .await
            })
            .await
            .map_err(err)?;
        Ok(match left {
            Some(b) => Reservation::Reserved { remaining: uint(b) },
            None => Reservation::Exhausted {
                remaining: self.balance(key, period).await?,
            },
        })
    }

    async fn refund(
        &self,
        key: &str,
        period: u64,
        _allowance: u64,
        cost: u64,
    ) -> Result<(), CreditStoreError> {
        // Only into the period it was reserved from: a new period starts full.
        self.db
            .run("credits_refund", async {
                sqlx::query(
                    "UPDATE apiauth_credits SET balance = balance + $3
                     WHERE credit_key = $1 AND period = $2",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(cost))
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn read(&self, key: &str, period: u64, allowance: u64) -> Result<u64, CreditStoreError> {
        self.ensure(key, period, allowance).await?;
        self.balance(key, period).await
    }

    async fn set(&self, key: &str, period: u64, amount: u64) -> Result<(), CreditStoreError> {
        self.db
            .run("credits_set", async {
                sqlx::query(
                    "INSERT INTO apiauth_credits (credit_key, period, balance) VALUES ($1, $2, $3)
                     ON CONFLICT (credit_key) DO UPDATE
                     SET period = excluded.period, balance = excluded.balance",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(amount))
                .execute(self.db.pool())
                .await?;
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn add(
        &self,
        key: &str,
        period: u64,
        allowance: u64,
        amount: u64,
    ) -> Result<u64, CreditStoreError> {
        self.ensure(key, period, allowance).await?;
        let b: Option<i64> = self
            .db
            .run("credits_add", async {
                sqlx::query_scalar(
                    "UPDATE apiauth_credits SET balance = CASE
                       WHEN balance + $3 > $4 THEN $4 ELSE balance + $3 END
                     WHERE credit_key = $1 AND period = $2
                     RETURNING balance",
                )
                .bind(key)
                .bind(int(period))
                .bind(int(amount))
                .bind(int(MAX))
                .fetch_optional(self.db.pool())
                .await
            })
            .await
            .map_err(err)?;
        Ok(b.map_or(0, uint))
    }
}
