//! # apiauth-quota
//!
//! Per-identity rate limiting, usage metering and metrics for apiauth.
//!
//! [`QuotaLayer`] sits *inside* the authentication layers and limits each verified
//! [`Principal`](apiauth_core::Principal) (by subject or tenant) with the GCRA policy of its
//! plan, anonymous callers by client address. Every answer carries `RateLimit-Policy` and
//! `RateLimit` ([`headers`], draft-ietf-httpapi-ratelimit-headers; the older
//! `RateLimit-Limit/-Remaining/-Reset` trio with [`QuotaLayerBuilder::legacy_headers`]);
//! over quota it is 429 with `Retry-After` and a problem+json body.
//!
//! Credits ([`Credits`], [`CreditsLayer`]): [`Plans`] give tenants a monthly or daily
//! balance, each route declares its [`Cost`], and billable answers draw on the balance. Requests that reach a handler are counted per principal, route template
//! and status class in a [`UsageMeter`], which callers read with [`own_usage`]. Counters go
//! out through the `metrics` crate ([`metric`]).
//!
//! The limiter and the meter are traits ([`RateLimiter`], [`UsageMeter`]) so a shared store
//! can replace the in-memory ones ([`MemoryRateLimiter`] on `governor`, [`MemoryUsageMeter`])
//! when several instances serve one API.
//!
//! ```
//! use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
//! use apiauth_quota::{own_usage, QuotaLayer, QuotaPolicy, RouteGroup};
//! use axum::{body::Body, routing::get, Router};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! /// A toy method: `X-User: <name>` (real methods verify a credential).
//! struct Demo;
//! impl Authenticator for Demo {
//!     type Credential = String;
//!     fn method(&self) -> AuthMethod { AuthMethod::custom("demo") }
//!     fn challenge(&self) -> Challenge { Challenge::new("Demo") }
//!     fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
//!         Ok(req.headers().get("x-user").and_then(|v| v.to_str().ok()).map(str::to_owned))
//!     }
//!     async fn verify(&self, user: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
//!         Ok(Principal::builder(user, self.method()).plan("free").build())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let quota = QuotaLayer::builder()
//!     .plan("free", QuotaPolicy::per_minute(60).burst(10))
//!     .plan("pro", QuotaPolicy::per_second(50).burst(200))
//!     .anonymous(QuotaPolicy::per_minute(30))
//!     .route_group(RouteGroup::new("export").route("/export").plan("free", QuotaPolicy::per_hour(5)))
//!     .build()
//!     .expect("valid quota configuration");
//!
//! let app: Router = Router::new()
//!     .route("/items/{id}", get(|| async { "item" }))
//!     .route("/export", get(|| async { "csv" }))
//!     .route("/usage", get(own_usage))
//!     .layer(quota)                  // inside: sees the Principal and the route template
//!     .layer(AuthLayer::new(Demo));  // outside: authenticates first
//!
//! let res = app
//!     .oneshot(Request::get("/items/7").header("x-user", "alice").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(res.status(), 200);
//! assert_eq!(res.headers()["ratelimit-policy"], r#""plan:free";q=10;w=10"#);
//! assert_eq!(res.headers()["ratelimit"], r#""plan:free";r=9;t=1"#);
//! # }
//! ```
//!
//! Sweeping: the default in-memory limiter drops idle keys every minute (see
//! [`QuotaLayerBuilder::sweep_interval`]) and caps the keys of each policy; a limiter you pass
//! yourself is swept with [`MemoryRateLimiter::spawn_sweeper`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod charge;
mod credits;
pub mod headers;
mod history;
mod layer;
mod limiter;
mod meter;
pub mod metric;
mod plan;
mod policy;

pub use charge::{
    Balance, CREDITS_EXHAUSTED, Credits, CreditsBuilder, CreditsFuture, CreditsLayer,
    CreditsService,
};
pub use credits::{
    Cost, CreditAllowance, CreditStore, CreditStoreError, MemoryCreditStore, RefillPeriod,
    Reservation, Scope, rfc3339,
};
/// `governor`'s clocks, for [`MemoryRateLimiter::with_clock`] (a `FakeRelativeClock` in tests).
pub use governor::clock;
pub use history::{MemoryUsageHistory, UsageEvent, UsageHistory, UsageRow, day_string, to_csv};
pub use layer::{
    KeyBy, QuotaConfigError, QuotaFuture, QuotaLayer, QuotaLayerBuilder, QuotaService,
    RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET, RouteGroup, UNKNOWN_CLIENT_KEY,
    UNMATCHED_ROUTE,
};
pub use limiter::{DEFAULT_KEYS_PER_POLICY, Decision, MemoryRateLimiter, RateLimiter};
pub use meter::{
    DEFAULT_MAX_SERIES, MemoryUsageMeter, StatusClass, UsageCount, UsageMeter, own_usage,
};
pub use metric::AuthMetricsLayer;
pub use plan::{Plan, Plans, Resolved, tenant_key};
pub use policy::QuotaPolicy;
