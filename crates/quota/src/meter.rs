//! Usage metering: requests that reached a handler, per principal, route template and status
//! class.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use apiauth_core::{Auth, AuthError, StoreError};
use async_trait::async_trait;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{Request, StatusCode};
use serde::Serialize;

/// The class of a response status (RFC 9110 §15: the first digit).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum StatusClass {
    /// 1xx
    #[serde(rename = "1xx")]
    Informational,
    /// 2xx
    #[serde(rename = "2xx")]
    Success,
    /// 3xx
    #[serde(rename = "3xx")]
    Redirection,
    /// 4xx
    #[serde(rename = "4xx")]
    ClientError,
    /// 5xx
    #[serde(rename = "5xx")]
    ServerError,
}

impl StatusClass {
    /// Every class, in order.
    pub const ALL: [StatusClass; 5] = [
        Self::Informational,
        Self::Success,
        Self::Redirection,
        Self::ClientError,
        Self::ServerError,
    ];

    const fn index(self) -> usize {
        self as usize
    }

    /// The class of `status`.
    pub fn of(status: StatusCode) -> Self {
        match status.as_u16() {
            100..=199 => Self::Informational,
            200..=299 => Self::Success,
            300..=399 => Self::Redirection,
            400..=499 => Self::ClientError,
            // `StatusCode` only holds 100..=999; treat anything odd as a server error.
            _ => Self::ServerError,
        }
    }

    /// `"1xx"` … `"5xx"`, as used in metrics labels and the usage report.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Informational => "1xx",
            Self::Success => "2xx",
            Self::Redirection => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter of a caller's usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageCount {
    /// The route template (`/items/{id}`), never the raw path.
    pub route: String,
    /// The status class of the answers counted.
    pub status_class: StatusClass,
    /// How many.
    pub count: u64,
}

/// Counts requests that reached a handler.
///
/// Dyn-compatible, so a shared store with atomic increments can replace
/// [`MemoryUsageMeter`]. Implementations must be exact under concurrency: every `record` is
/// counted once.
#[async_trait]
pub trait UsageMeter: Send + Sync + 'static {
    /// Counts one request of the caller `identity` (its [`Principal::identity`], hashed when
    /// over 128 bytes) to `route` answered with a status of `class`.
    ///
    /// [`Principal::identity`]: apiauth_core::Principal::identity
    async fn record(
        &self,
        identity: &str,
        route: &str,
        class: StatusClass,
    ) -> Result<(), StoreError>;

    /// Every counter of `identity`, ordered by route then class.
    async fn usage(&self, identity: &str) -> Result<Vec<UsageCount>, StoreError>;
}

#[async_trait]
impl<T: UsageMeter + ?Sized> UsageMeter for Arc<T> {
    async fn record(
        &self,
        identity: &str,
        route: &str,
        class: StatusClass,
    ) -> Result<(), StoreError> {
        (**self).record(identity, route, class).await
    }

    async fn usage(&self, identity: &str) -> Result<Vec<UsageCount>, StoreError> {
        (**self).usage(identity).await
    }
}

/// Default cap of [`MemoryUsageMeter`]: distinct (identity, route, class) counters.
pub const DEFAULT_MAX_SERIES: usize = 1_000_000;

/// Per route template, one counter per status class (indexed by [`StatusClass::index`]).
type Series = HashMap<Arc<str>, [u64; 5]>;

/// In-memory [`UsageMeter`]: exact counters behind one mutex.
///
/// Bounded: past `max_series` distinct counters a *new* counter is refused with
/// [`StoreError::CapacityExceeded`] (existing ones keep counting). Routes are templates, so the
/// number of counters grows with principals, not with paths.
#[derive(Clone)]
pub struct MemoryUsageMeter {
    inner: Arc<Mutex<MeterState>>,
}

struct MeterState {
    by_identity: HashMap<Arc<str>, Series>,
    series: usize,
    max_series: usize,
}

impl Default for MemoryUsageMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryUsageMeter {
    /// An empty meter holding up to [`DEFAULT_MAX_SERIES`] counters.
    pub fn new() -> Self {
        Self::with_max_series(DEFAULT_MAX_SERIES)
    }

    /// An empty meter holding up to `max_series` counters.
    pub fn with_max_series(max_series: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(MeterState {
                by_identity: HashMap::new(),
                series: 0,
                max_series,
            })),
        }
    }

    /// The number of counters held.
    pub fn series(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).series
    }
}

impl fmt::Debug for MemoryUsageMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryUsageMeter")
            .field("series", &self.series())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl UsageMeter for MemoryUsageMeter {
    async fn record(
        &self,
        identity: &str,
        route: &str,
        class: StatusClass,
    ) -> Result<(), StoreError> {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *guard;
        let full = st.series >= st.max_series;
        let i = class.index();
        // Look up by borrowed keys first: the common case allocates nothing.
        let counters = match st.by_identity.get_mut(identity) {
            Some(series) => match series.get_mut(route) {
                Some(c) => c,
                None if full => return Err(StoreError::CapacityExceeded),
                None => series.entry(Arc::from(route)).or_insert([0; 5]),
            },
            None if full => return Err(StoreError::CapacityExceeded),
            None => st
                .by_identity
                .entry(Arc::from(identity))
                .or_default()
                .entry(Arc::from(route))
                .or_insert([0; 5]),
        };
        let new_series = counters[i] == 0;
        if new_series && full {
            return Err(StoreError::CapacityExceeded);
        }
        counters[i] = counters[i].saturating_add(1);
        if new_series {
            st.series += 1;
        }
        Ok(())
    }

    async fn usage(&self, identity: &str) -> Result<Vec<UsageCount>, StoreError> {
        let st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<UsageCount> = st
            .by_identity
            .get(identity)
            .map(|series| {
                series
                    .iter()
                    .flat_map(|(route, counters)| {
                        StatusClass::ALL
                            .into_iter()
                            .filter(|c| counters[c.index()] > 0)
                            .map(|c| UsageCount {
                                route: route.to_string(),
                                status_class: c,
                                count: counters[c.index()],
                            })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| (&a.route, a.status_class).cmp(&(&b.route, b.status_class)));
        Ok(out)
    }
}

/// The meter of the [`QuotaLayer`](crate::QuotaLayer) the request passed, for
/// [`own_usage`].
#[derive(Clone)]
pub(crate) struct MeterHandle(pub(crate) Arc<dyn UsageMeter>);

#[derive(Serialize)]
struct UsageReport<'a> {
    subject: &'a str,
    identity: &'a str,
    total: u64,
    usage: Vec<UsageCount>,
}

/// A handler answering the caller's own usage as JSON; mount it behind the
/// [`QuotaLayer`](crate::QuotaLayer):
///
/// ```json
/// {"subject":"alice","identity":"basic::alice","total":3,
///  "usage":[{"route":"/items/{id}","status_class":"2xx","count":3}]}
/// ```
///
/// The records are the verified principal's own ([`Principal::identity`](apiauth_core::Principal::identity)), so nobody can read another's usage,
/// not even a caller of another credential source with the same subject. Anonymous
/// callers get the usual 401; a store failure is a 503.
pub async fn own_usage(Auth(principal): Auth, req: Request<Body>) -> Response {
    let Some(MeterHandle(meter)) = req.extensions().get::<MeterHandle>().cloned() else {
        // Mounted outside the quota layer: a deployment error, so fail closed.
        tracing::error!("own_usage is not behind a QuotaLayer with a usage meter");
        return AuthError::unavailable("usage_meter_missing").render(req.extensions());
    };
    match meter.usage(&crate::layer::usage_key(&principal)).await {
        Ok(usage) => {
            let total = usage.iter().fold(0u64, |t, u| t.saturating_add(u.count));
            let report = UsageReport {
                subject: principal.subject(),
                identity: principal.identity(),
                total,
                usage,
            };
            axum::Json(report).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "usage query failed");
            AuthError::from(e).render(req.extensions())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_per_route_and_class_and_refuses_new_series_when_full() {
        let m = MemoryUsageMeter::with_max_series(2);
        m.record("a", "/x", StatusClass::Success).await.unwrap();
        m.record("a", "/x", StatusClass::Success).await.unwrap();
        m.record("a", "/x", StatusClass::ClientError).await.unwrap();
        assert!(matches!(
            m.record("b", "/x", StatusClass::Success).await,
            Err(StoreError::CapacityExceeded)
        ));
        // Existing counters keep counting when full.
        m.record("a", "/x", StatusClass::Success).await.unwrap();
        let u = m.usage("a").await.unwrap();
        assert_eq!(
            u.iter()
                .map(|c| (c.status_class, c.count))
                .collect::<Vec<_>>(),
            vec![(StatusClass::Success, 3), (StatusClass::ClientError, 1)]
        );
        assert!(m.usage("b").await.unwrap().is_empty());
    }

    #[test]
    fn status_classes() {
        assert_eq!(
            StatusClass::of(StatusCode::CONTINUE),
            StatusClass::Informational
        );
        assert_eq!(StatusClass::of(StatusCode::NO_CONTENT).as_str(), "2xx");
        assert_eq!(
            StatusClass::of(StatusCode::TOO_MANY_REQUESTS).as_str(),
            "4xx"
        );
        assert_eq!(StatusClass::of(StatusCode::BAD_GATEWAY).as_str(), "5xx");
    }
}
