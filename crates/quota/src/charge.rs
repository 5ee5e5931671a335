//! The credits layer: a route's cost is reserved before its handler runs and refunded when
//! the answer is not billable.
//!
//! [`Credits`] holds what every route shares (the [`CreditStore`], the [`Plans`], the clock,
//! which answers are billable, the usage history); [`Credits::cost`] makes the
//! [`CreditsLayer`] of one route, declared next to it like its scopes:
//!
//! ```
//! use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
//! use apiauth_quota::{CreditAllowance, Credits, MemoryCreditStore, Plan, Plans, QuotaPolicy};
//! use axum::{body::Body, routing::{get, post}, Router};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! struct Demo;
//! impl Authenticator for Demo {
//!     type Credential = ();
//!     fn method(&self) -> AuthMethod { AuthMethod::custom("demo") }
//!     fn challenge(&self) -> Challenge { Challenge::new("Demo") }
//!     fn extract(&self, _: &Request<Body>) -> Result<Option<()>, AuthError> { Ok(Some(())) }
//!     async fn verify(&self, _: (), _: &mut Request<Body>) -> Result<Principal, AuthError> {
//!         Ok(Principal::builder("bot", self.method()).tenant("acme").build())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let plans = Plans::new()
//!     .plan("free", Plan::new(QuotaPolicy::per_minute(20)).credits(CreditAllowance::per_month(10)))
//!     .tenant("acme", "free");
//! let credits = Credits::builder(MemoryCreditStore::new()).plans(plans).build();
//! let app: Router = Router::new()
//!     .route("/lookup", get(|| async { "found" }).route_layer(credits.layer()))  // costs 1
//!     .route("/enrich", post(|| async { "done" }).route_layer(credits.cost(5)))
//!     .layer(AuthLayer::new(Demo));
//! let res = app.oneshot(Request::post("/enrich").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(credits.tenant_balance("acme").await.unwrap().unwrap().remaining, 5);
//! # }
//! ```
//!
//! # Rules
//! 1. Anonymous requests and principals whose plan has no credit allowance pass uncharged.
//! 2. The cost is *reserved* atomically in the store before the handler runs; a balance
//!    smaller than the cost is answered 429 (`application/problem+json`, type
//!    [`CREDITS_EXHAUSTED`]) with `Retry-After` until the refill, and the handler never runs.
//! 3. The reservation is *refunded* when the answer is not billable (default: anything but
//!    2xx), when the inner service fails, and when the request future is dropped before it
//!    completes (client gone, timeout, handler panic): a guard gives the reservation back on
//!    drop. Each request refunds exactly what it reserved, into the period it reserved
//!    from, so concurrent requests that fail after reserving cannot give back more than was
//!    taken, and the balance never goes below zero.
//! 4. Every answer of a charged route carries the credit policy in `RateLimit-Policy` and
//!    `RateLimit` (see [`headers`](crate::headers)).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apiauth_core::clock::{SharedClock, SystemClock, unix_seconds};
use apiauth_core::{AuthError, Principal};
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, StatusCode};
use tower::{Layer, Service};

use crate::credits::{
    CreditAllowance, CreditStore, CreditStoreError, RefillPeriod, Reservation, rfc3339,
};
use crate::headers::{PolicyItem, add_policy};
use crate::history::{UsageEvent, UsageHistory};
use crate::layer::{UNMATCHED_ROUTE, usage_key};
use crate::meter::StatusClass;
use crate::metric;
use crate::plan::{Plans, tenant_key};

/// The problem type (RFC 9457 §3.1.1) of the 429 answered when a balance is exhausted.
pub const CREDITS_EXHAUSTED: &str = "urn:apiauth:problem:credits-exhausted";

type Billable = Arc<dyn Fn(StatusCode) -> bool + Send + Sync>;

struct Inner {
    store: Arc<dyn CreditStore>,
    plans: Plans,
    clock: SharedClock,
    billable: Billable,
    history: Option<Arc<dyn UsageHistory>>,
}

/// What every charged route shares: the plans, the balance store and the billing history;
/// each route declares its cost with [`Credits::cost`].
#[derive(Clone)]
pub struct Credits {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Credits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credits")
            .field("plans", &self.inner.plans)
            .finish_non_exhaustive()
    }
}

/// Builder for [`Credits`].
#[must_use]
pub struct CreditsBuilder {
    store: Arc<dyn CreditStore>,
    plans: Plans,
    clock: SharedClock,
    billable: Billable,
    history: Option<Arc<dyn UsageHistory>>,
}

impl CreditsBuilder {
    /// The plans and who is on which.
    pub fn plans(mut self, plans: Plans) -> Self {
        self.plans = plans;
        self
    }

    /// The clock that places a request in its refill period. Default: the system clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Which answers are charged. Default: 2xx only.
    pub fn billable(mut self, f: impl Fn(StatusCode) -> bool + Send + Sync + 'static) -> Self {
        self.billable = Arc::new(f);
        self
    }

    /// Records every answered request of a principal in `history`.
    pub fn history(mut self, history: Arc<dyn UsageHistory>) -> Self {
        self.history = Some(history);
        self
    }

    /// Builds the shared state.
    pub fn build(self) -> Credits {
        Credits {
            inner: Arc::new(Inner {
                store: self.store,
                plans: self.plans,
                clock: self.clock,
                billable: self.billable,
                history: self.history,
            }),
        }
    }
}

/// A balance as the store holds it now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    /// The plan's name.
    pub plan: String,
    /// Credits left in the current period.
    pub remaining: u64,
    /// Credits at the start of each period.
    pub allowance: u64,
    /// `day` or `month`.
    pub period: &'static str,
    /// When the balance refills (RFC 3339, UTC).
    pub refills_at: String,
    /// Seconds until then.
    pub seconds_until_refill: u64,
}

impl Credits {
    /// Starts a builder over `store`, with no plans, the system clock and 2xx billable.
    pub fn builder(store: impl CreditStore) -> CreditsBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// [`builder`](Self::builder) over a shared store.
    pub fn builder_shared(store: Arc<dyn CreditStore>) -> CreditsBuilder {
        CreditsBuilder {
            store,
            plans: Plans::new(),
            clock: Arc::new(SystemClock),
            billable: Arc::new(|s: StatusCode| s.is_success()),
            history: None,
        }
    }

    /// The layer of a route costing `cost` credits (0: free, still recorded in the history).
    #[must_use]
    pub fn cost(&self, cost: u64) -> CreditsLayer {
        CreditsLayer {
            credits: self.clone(),
            cost,
        }
    }

    /// The layer of a route of the default cost, 1 credit.
    #[must_use]
    pub fn layer(&self) -> CreditsLayer {
        self.cost(crate::Cost::default().0)
    }

    /// The plans.
    pub fn plans(&self) -> &Plans {
        &self.inner.plans
    }

    /// The usage history, if one was given.
    pub fn history(&self) -> Option<&Arc<dyn UsageHistory>> {
        self.inner.history.as_ref()
    }

    fn now(&self) -> u64 {
        unix_seconds(self.inner.clock.now())
    }

    async fn balance_at(
        &self,
        key: &str,
        plan: &str,
        allowance: CreditAllowance,
    ) -> Result<Balance, CreditStoreError> {
        let now = self.now();
        let (period, next) = allowance.period.locate(now);
        let remaining = self.inner.store.read(key, period, allowance.amount).await?;
        Ok(balance(plan, remaining, allowance, now, next))
    }

    /// The balance `principal` draws on, or `None` when its plan has no credits.
    pub async fn balance(
        &self,
        principal: &Principal,
    ) -> Result<Option<Balance>, CreditStoreError> {
        let Some(r) = self.inner.plans.resolve(principal) else {
            return Ok(None);
        };
        let Some(a) = r.plan.allowance() else {
            return Ok(None);
        };
        Ok(Some(self.balance_at(&r.key(principal), r.name, a).await?))
    }

    fn tenant_plan(&self, tenant: &str) -> Option<(String, CreditAllowance)> {
        let (name, plan) = self.inner.plans.plan_of_tenant(tenant)?;
        Some((name.to_owned(), plan.allowance()?))
    }

    /// The shared balance of `tenant`, or `None` when its plan has no credits.
    pub async fn tenant_balance(&self, tenant: &str) -> Result<Option<Balance>, CreditStoreError> {
        let Some((plan, a)) = self.tenant_plan(tenant) else {
            return Ok(None);
        };
        Ok(Some(self.balance_at(&tenant_key(tenant), &plan, a).await?))
    }

    /// Adds `amount` credits to `tenant`'s current period (a top-up); `None` when its plan
    /// has no credits.
    pub async fn add_to_tenant(
        &self,
        tenant: &str,
        amount: u64,
    ) -> Result<Option<Balance>, CreditStoreError> {
        let Some((plan, a)) = self.tenant_plan(tenant) else {
            return Ok(None);
        };
        let now = self.now();
        let (period, next) = a.period.locate(now);
        let remaining = self
            .inner
            .store
            .add(&tenant_key(tenant), period, a.amount, amount)
            .await?;
        Ok(Some(balance(&plan, remaining, a, now, next)))
    }

    /// Sets `tenant`'s balance for the current period; `None` when its plan has no credits.
    pub async fn set_tenant(
        &self,
        tenant: &str,
        amount: u64,
    ) -> Result<Option<Balance>, CreditStoreError> {
        let Some((plan, a)) = self.tenant_plan(tenant) else {
            return Ok(None);
        };
        let now = self.now();
        let (period, next) = a.period.locate(now);
        self.inner
            .store
            .set(&tenant_key(tenant), period, amount)
            .await?;
        Ok(Some(balance(&plan, amount, a, now, next)))
    }
}

fn balance(plan: &str, remaining: u64, a: CreditAllowance, now: u64, next: u64) -> Balance {
    Balance {
        plan: plan.to_owned(),
        remaining,
        allowance: a.amount,
        period: match a.period {
            RefillPeriod::Day => "day",
            RefillPeriod::Month => "month",
        },
        refills_at: rfc3339(next),
        seconds_until_refill: next.saturating_sub(now).max(1),
    }
}

/// The layer of one route; made by [`Credits::cost`].
#[derive(Clone, Debug)]
pub struct CreditsLayer {
    credits: Credits,
    cost: u64,
}

impl<S> Layer<S> for CreditsLayer {
    type Service = CreditsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CreditsService {
            inner,
            credits: self.credits.clone(),
            cost: self.cost,
        }
    }
}

/// The service made by [`CreditsLayer`].
#[derive(Clone, Debug)]
pub struct CreditsService<S> {
    inner: S,
    credits: Credits,
    cost: u64,
}

/// The response future of [`CreditsService`].
pub type CreditsFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

/// A reservation not yet settled: dropped armed, it refunds (Rule 3).
struct Pending {
    store: Arc<dyn CreditStore>,
    key: String,
    period: u64,
    allowance: u64,
    cost: u64,
    armed: bool,
}

impl Pending {
    async fn refund(mut self) {
        self.armed = false;
        if let Err(e) = self
            .store
            .refund(&self.key, self.period, self.allowance, self.cost)
            .await
        {
            tracing::warn!(error = %e, "credit refund failed");
            metric::credit_error();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.armed || self.cost == 0 {
            return;
        }
        // The request was dropped (or panicked) between reserve and settle: give it back
        // on the runtime, since a destructor cannot await.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            let (key, period, allowance, cost) = (
                std::mem::take(&mut self.key),
                self.period,
                self.allowance,
                self.cost,
            );
            rt.spawn(async move {
                if let Err(e) = store.refund(&key, period, allowance, cost).await {
                    tracing::warn!(error = %e, "credit refund failed");
                    metric::credit_error();
                }
            });
        }
    }
}

struct Charge<'a> {
    key: String,
    plan: &'a str,
    allowance: CreditAllowance,
}

impl<S> Service<Request<Body>> for CreditsService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CreditsFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let credits = self.credits.clone();
        let cost = self.cost;
        Box::pin(async move {
            // Rule 1: anonymous requests pass.
            let Some(principal) = req.extensions().get::<Principal>().cloned() else {
                return inner.call(req).await;
            };
            let shared = &credits.inner;
            // Borrowed for the whole request: no copy of the route, tenant or plan name.
            let matched = req.extensions().get::<MatchedPath>().cloned();
            let route = matched
                .as_ref()
                .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            let write_fields = req
                .extensions()
                .get::<crate::headers::WrittenOutside>()
                .is_none();
            let tenant = shared.plans.tenant_of(&principal);
            let mut charge = shared.plans.resolve(&principal).and_then(|r| {
                Some(Charge {
                    key: r.key(&principal),
                    plan: r.name,
                    allowance: r.plan.allowance()?,
                })
            });
            let now = credits.now();
            let mut pending = None;
            let mut state = None;
            if let Some(c) = &mut charge {
                let (period, next) = c.allowance.period.locate(now);
                let window = next.saturating_sub(c.allowance.period.start(now));
                let remaining = if cost == 0 {
                    shared.store.read(&c.key, period, c.allowance.amount).await
                } else {
                    // Rule 2: reserve before the handler.
                    let reserved = shared
                        .store
                        .reserve(&c.key, period, c.allowance.amount, cost)
                        .await;
                    match reserved {
                        Ok(Reservation::Reserved { remaining }) => {
                            pending = Some(Pending {
                                store: Arc::clone(&shared.store),
                                key: std::mem::take(&mut c.key),
                                period,
                                allowance: c.allowance.amount,
                                cost,
                                armed: true,
                            });
                            Ok(remaining)
                        }
                        Ok(Reservation::Exhausted { remaining }) => {
                            metric::credits_exhausted(c.plan);
                            let item = item(c, window, remaining, next - now);
                            return Ok(exhausted(item, remaining, cost, next, now, write_fields));
                        }
                        Err(e) => Err(e),
                    }
                };
                match remaining {
                    Ok(r) => state = Some((r, period, next, window)),
                    Err(e) => {
                        tracing::warn!(error = %e, "credit store failed");
                        metric::credit_error();
                        return Ok(AuthError::unavailable("credit_store").render(req.extensions()));
                    }
                }
            }

            // An inner error drops `pending`, which refunds (Rule 3).
            let mut res = inner.call(req).await?;
            let billable = (shared.billable)(res.status());
            let mut charged = 0;
            if let Some(p) = pending {
                if billable {
                    let mut p = p;
                    p.armed = false;
                    charged = cost;
                } else {
                    p.refund().await;
                    if let Some(s) = &mut state {
                        s.0 = s.0.saturating_add(cost);
                    }
                }
            }
            if let (Some(c), Some((remaining, _, next, window))) = (&charge, state) {
                add_policy(
                    &mut res,
                    item(c, window, remaining, next - now),
                    false,
                    write_fields,
                );
                metric::credits_charged(route, c.plan, charged);
            }
            if let Some(h) = &shared.history {
                let event = UsageEvent {
                    day: now / 86_400,
                    tenant: tenant.unwrap_or(""),
                    identity: &usage_key(&principal),
                    route,
                    class: StatusClass::of(res.status()),
                    credits: charged,
                };
                if let Err(e) = h.record(event).await {
                    tracing::warn!(error = %e, "usage history failed");
                    metric::usage_error();
                }
            }
            Ok(res)
        })
    }
}

fn item(c: &Charge<'_>, window: u64, remaining: u64, reset: u64) -> PolicyItem {
    PolicyItem {
        name: format!("credits:{}", c.plan),
        quota: c.allowance.amount,
        window,
        remaining,
        reset,
    }
}

/// Rule 2: 429, problem+json, `Retry-After` until the refill.
fn exhausted(
    item: PolicyItem,
    remaining: u64,
    cost: u64,
    next: u64,
    now: u64,
    write_fields: bool,
) -> Response {
    let retry = next.saturating_sub(now).max(1);
    let body = serde_json::json!({
        "type": CREDITS_EXHAUSTED,
        "title": "Credits exhausted",
        "status": 429,
        "detail": format!(
            "This request costs {cost} credits and {remaining} are left; the balance refills at {}.",
            rfc3339(next)
        ),
        "balance": remaining,
        "cost": cost,
        "refills_at": rfc3339(next),
    });
    let mut res = (
        StatusCode::TOO_MANY_REQUESTS,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body.to_string(),
    )
        .into_response();
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry));
    add_policy(&mut res, item, false, write_fields);
    res
}
