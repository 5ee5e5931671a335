//! Usage history for billing: per tenant and identity, route template and UTC day, the
//! requests by status class and the credits charged.

use std::collections::BTreeMap;
use std::sync::Mutex;

use apiauth_core::StoreError;
use async_trait::async_trait;
use serde::Serialize;

use crate::meter::StatusClass;

/// One row of the history: one tenant, identity, route and UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// The tenant, or empty for principals without one.
    pub tenant: String,
    /// The principal's identity ([`Principal::identity`](apiauth_core::Principal::identity)).
    pub identity: String,
    /// The route template (`/v1/companies/{domain}`), never a raw path.
    pub route: String,
    /// Requests answered 2xx.
    pub requests_2xx: u64,
    /// Requests answered 4xx.
    pub requests_4xx: u64,
    /// Requests answered 5xx.
    pub requests_5xx: u64,
    /// Requests answered 1xx or 3xx.
    pub requests_other: u64,
    /// Credits charged (billable answers only).
    pub credits: u64,
}

impl UsageRow {
    /// The CSV header line matching [`to_csv_line`](Self::to_csv_line).
    pub const CSV_HEADER: &'static str =
        "day,tenant,identity,route,requests_2xx,requests_4xx,requests_5xx,requests_other,credits";

    /// The row as one CSV line (RFC 4180 quoting where a field needs it).
    #[must_use]
    pub fn to_csv_line(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_owned()
            }
        }
        format!(
            "{},{},{},{},{},{},{},{},{}",
            self.day,
            field(&self.tenant),
            field(&self.identity),
            field(&self.route),
            self.requests_2xx,
            self.requests_4xx,
            self.requests_5xx,
            self.requests_other,
            self.credits
        )
    }
}

/// Rows as a CSV document with its header line.
#[must_use]
pub fn to_csv(rows: &[UsageRow]) -> String {
    let mut out = String::from(UsageRow::CSV_HEADER);
    out.push_str("\r\n");
    for r in rows {
        out.push_str(&r.to_csv_line());
        out.push_str("\r\n");
    }
    out
}

/// What one answered request adds to the history.
#[derive(Debug, Clone, Copy)]
pub struct UsageEvent<'a> {
    /// Days since the Unix epoch (UTC).
    pub day: u64,
    /// The tenant ("" for none).
    pub tenant: &'a str,
    /// The principal's identity.
    pub identity: &'a str,
    /// The route template.
    pub route: &'a str,
    /// The answer's class.
    pub class: StatusClass,
    /// Credits charged.
    pub credits: u64,
}

/// Where the history lives.
#[async_trait]
pub trait UsageHistory: Send + Sync + 'static {
    /// Adds one answered request.
    async fn record(&self, event: UsageEvent<'_>) -> Result<(), StoreError>;
    /// The rows of `tenant` (every tenant when `None`), ordered by day, tenant, identity and
    /// route.
    async fn export(&self, tenant: Option<&str>) -> Result<Vec<UsageRow>, StoreError>;
}

type RowKey = (u64, String, String, String);

/// An in-memory [`UsageHistory`], capped at a number of rows (new rows past it are dropped
/// and counted in the log: keys come from verified principals and route templates, so the
/// cap is reached only by a deployment with very many identities).
#[derive(Debug)]
pub struct MemoryUsageHistory {
    rows: Mutex<BTreeMap<RowKey, [u64; 5]>>,
    max_rows: usize,
}

impl Default for MemoryUsageHistory {
    fn default() -> Self {
        Self::with_max_rows(100_000)
    }
}

impl MemoryUsageHistory {
    /// A history of at most 100,000 rows.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A history of at most `max_rows` rows.
    #[must_use]
    pub fn with_max_rows(max_rows: usize) -> Self {
        Self {
            rows: Mutex::new(BTreeMap::new()),
            max_rows,
        }
    }
}

/// `YYYY-MM-DD` of `day` days since the epoch.
#[must_use]
pub fn day_string(day: u64) -> String {
    let (y, m, d) = crate::credits::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[async_trait]
impl UsageHistory for MemoryUsageHistory {
    async fn record(&self, e: UsageEvent<'_>) -> Result<(), StoreError> {
        let mut rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (
            e.day,
            e.tenant.to_owned(),
            e.identity.to_owned(),
            e.route.to_owned(),
        );
        let full = rows.len() >= self.max_rows;
        let Some(counts) = (match rows.get_mut(&key) {
            Some(c) => Some(c),
            None if full => None,
            None => Some(rows.entry(key).or_default()),
        }) else {
            tracing::warn!("usage history is full; a new row was dropped");
            return Ok(());
        };
        let slot = match e.class {
            StatusClass::Success => 0,
            StatusClass::ClientError => 1,
            StatusClass::ServerError => 2,
            _ => 3,
        };
        counts[slot] += 1;
        counts[4] = counts[4].saturating_add(e.credits);
        Ok(())
    }

    async fn export(&self, tenant: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(rows
            .iter()
            .filter(|((_, t, _, _), _)| tenant.is_none_or(|want| want == t))
            .map(|((day, t, id, route), c)| UsageRow {
                day: day_string(*day),
                tenant: t.clone(),
                identity: id.clone(),
                route: route.clone(),
                requests_2xx: c[0],
                requests_4xx: c[1],
                requests_5xx: c[2],
                requests_other: c[3],
                credits: c[4],
            })
            .collect())
    }
}
