//! The quota layer: per-identity GCRA limits, RateLimit headers and usage metering.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::Duration;

use apiauth_core::{AuthError, Principal, audit};
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::Response;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

use crate::credits::Scope;
use crate::limiter::{Decision, MemoryRateLimiter, RateLimiter};
use crate::meter::{MemoryUsageMeter, MeterHandle, StatusClass, UsageMeter};
use crate::metric;
use crate::plan::Plans;
use crate::policy::QuotaPolicy;

/// `RateLimit-Limit`: the bucket size. The three-field form of
/// draft-ietf-httpapi-ratelimit-headers (drafts 00–06), the most widely understood one.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests still admissible now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: delta-seconds until the bucket is full again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The route label of requests no route template matched (router fallback): raw paths never
/// become labels or counters, so their number stays bounded.
pub const UNMATCHED_ROUTE: &str = "<unmatched>";

/// The key of anonymous requests whose client address is unknown (no
/// `ConnectInfo<SocketAddr>`): they share one bucket under the anonymous policy, so the
/// layer limits them rather than failing.
pub const UNKNOWN_CLIENT_KEY: &str = "client:unknown";

/// Longer identities are keyed by their SHA-256, so a key's size is bounded.
const MAX_KEY_ID_LEN: usize = 128;

/// Which identity of a [`Principal`] owns the bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyBy {
    /// The caller's [`Principal::identity`] (method, issuer and subject): every user, key
    /// owner or client of every credential source has its own bucket, so the API key owner
    /// `acme` and the OAuth client `acme` never share one.
    #[default]
    Identity,
    /// The principal's tenant: everybody acting for one organisation shares a bucket, across
    /// methods. Principals without a tenant fall back to their identity.
    Tenant,
}

/// A startup error of [`QuotaLayerBuilder::build`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaConfigError {
    /// A policy admits nothing: zero burst or zero replenish period.
    #[error("quota policy `{0}` has a zero burst or a zero rate")]
    InvalidPolicy(String),
    /// A plan or route-group name is empty.
    #[error("plan and route-group names must not be empty")]
    EmptyName,
    /// A route template is not a path (`/…`).
    #[error("route template `{0}` must start with `/`")]
    BadRoute(String),
    /// A route template belongs to two route groups.
    #[error("route template `{0}` is in more than one route group")]
    DuplicateRoute(String),
    /// The IPv6 prefix length is over 128.
    #[error("IPv6 prefix length {0} is over 128")]
    Ipv6Prefix(u8),
}

/// Routes that share their own quotas (for example expensive exports), overriding the
/// layer-wide plans for requests whose route template is one of them.
///
/// A request on a group's route uses the group's policy for its plan, else the group's
/// default, else the layer-wide policy; anonymous requests use the group's anonymous policy,
/// else the layer-wide one. Exactly one policy (one bucket) applies to a request.
#[derive(Clone, Debug)]
#[must_use]
pub struct RouteGroup {
    name: String,
    routes: Vec<String>,
    plans: Vec<(String, QuotaPolicy)>,
    default: Option<QuotaPolicy>,
    anonymous: Option<QuotaPolicy>,
}

impl RouteGroup {
    /// An empty group called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            routes: Vec::new(),
            plans: Vec::new(),
            default: None,
            anonymous: None,
        }
    }

    /// Adds a route template, exactly as given to `Router::route` (`/items/{id}`).
    pub fn route(mut self, template: impl Into<String>) -> Self {
        self.routes.push(template.into());
        self
    }

    /// The group's policy for principals on `plan`.
    pub fn plan(mut self, plan: impl Into<String>, policy: QuotaPolicy) -> Self {
        self.plans.push((plan.into(), policy));
        self
    }

    /// The group's policy for principals on a plan the group does not name.
    pub fn default_plan(mut self, policy: QuotaPolicy) -> Self {
        self.default = Some(policy);
        self
    }

    /// The group's policy for anonymous requests.
    pub fn anonymous(mut self, policy: QuotaPolicy) -> Self {
        self.anonymous = Some(policy);
        self
    }
}

/// Builder for [`QuotaLayer`]; see [`QuotaLayer::builder`] for the defaults.
#[must_use]
pub struct QuotaLayerBuilder {
    limiter: Option<Arc<dyn RateLimiter>>,
    meter: Option<Arc<dyn UsageMeter>>,
    plans: Vec<(String, QuotaPolicy)>,
    default_plan: QuotaPolicy,
    anonymous: QuotaPolicy,
    groups: Vec<RouteGroup>,
    key_by: KeyBy,
    ipv6_prefix: u8,
    sweep_interval: Duration,
    legacy_headers: bool,
    deployment: Option<Plans>,
}

impl QuotaLayerBuilder {
    /// Takes the rate limits from `plans`: each plan's [`rate`](crate::Plan::rate) becomes
    /// its policy (as [`plan`](Self::plan) would set it; a later `plan` call for the same
    /// name overrides it), and a principal's plan is the one [`Plans::resolve`] finds (its
    /// tenant's plan first, then the plan it carries), so every credential of a tenant gets
    /// the tenant's limits whatever its record says.
    ///
    /// The bucket follows the plan's [`Scope`]: under [`Scope::Tenant`] (the default) every
    /// credential of the tenant ([`Principal::tenant`], else its
    /// [`member`](Plans::member) assignment) shares one bucket; under [`Scope::Identity`]
    /// each identity has its own. Principals no plan resolves for are keyed by
    /// [`key_by`](Self::key_by) and get the [`default_plan`](Self::default_plan).
    ///
    /// ```
    /// use apiauth_quota::{CreditAllowance, Plan, Plans, QuotaLayer, QuotaPolicy, Scope};
    ///
    /// let plans = Plans::new()
    ///     .plan("free", Plan::new(QuotaPolicy::per_minute(20)).credits(CreditAllowance::per_month(100)))
    ///     .plan("lab", Plan::new(QuotaPolicy::per_second(5)).with_scope(Scope::Identity))
    ///     .tenant("initech", "free");
    /// let quota = QuotaLayer::builder().plans(plans.clone()).build().unwrap();
    /// # drop(quota);
    /// ```
    pub fn plans(mut self, plans: Plans) -> Self {
        let mut named: Vec<(String, QuotaPolicy)> = plans
            .iter()
            .map(|(name, plan)| (name.to_owned(), plan.rate().clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        // Before the explicit ones, so that `plan` overrides a plan's rate.
        named.append(&mut self.plans);
        self.plans = named;
        self.deployment = Some(plans);
        self
    }

    /// Also sends the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` fields
    /// of drafts 00–06, for older clients. Default: only `RateLimit-Policy` and `RateLimit`
    /// (see [`headers`](crate::headers)).
    pub fn legacy_headers(mut self) -> Self {
        self.legacy_headers = true;
        self
    }

    /// The policy for principals on `plan` (as [`Principal::plan`] tells it). Read on every
    /// request, so a principal whose plan changes gets the new plan's bucket on its next
    /// request, without a restart.
    pub fn plan(mut self, plan: impl Into<String>, policy: QuotaPolicy) -> Self {
        self.plans.push((plan.into(), policy));
        self
    }

    /// The policy for principals with no plan or a plan not configured. Default: 10 per
    /// second, burst 20.
    pub fn default_plan(mut self, policy: QuotaPolicy) -> Self {
        self.default_plan = policy;
        self
    }

    /// The policy for anonymous requests, keyed by client address. Default: 1 per second,
    /// burst 10.
    pub fn anonymous(mut self, policy: QuotaPolicy) -> Self {
        self.anonymous = policy;
        self
    }

    /// Adds a route group with its own policies.
    pub fn route_group(mut self, group: RouteGroup) -> Self {
        self.groups.push(group);
        self
    }

    /// Which identity owns a bucket. Default: [`KeyBy::Identity`].
    pub fn key_by(mut self, key_by: KeyBy) -> Self {
        self.key_by = key_by;
        self
    }

    /// How many leading bits of an IPv6 client address make one anonymous bucket. Default 64:
    /// one client usually holds a whole /64, so keying on full addresses would hand it 2^64
    /// buckets.
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = bits;
        self
    }

    /// The rate limiter. Default: a [`MemoryRateLimiter`] swept every
    /// [`sweep_interval`](Self::sweep_interval). A limiter given here is swept by its owner
    /// (see [`MemoryRateLimiter::spawn_sweeper`]).
    pub fn limiter(mut self, limiter: impl RateLimiter) -> Self {
        self.limiter = Some(Arc::new(limiter));
        self
    }

    /// How often the default in-memory limiter drops idle keys. Default: 60 s.
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// The usage meter. Default: a [`MemoryUsageMeter`].
    pub fn usage_meter(mut self, meter: impl UsageMeter) -> Self {
        self.meter = Some(Arc::new(meter));
        self
    }

    /// Turns usage metering off (metrics are still emitted).
    pub fn without_usage_meter(mut self) -> Self {
        self.meter = None;
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<QuotaLayer, QuotaConfigError> {
        if self.ipv6_prefix > 128 {
            return Err(QuotaConfigError::Ipv6Prefix(self.ipv6_prefix));
        }
        let mut policies = Policies::default();
        let mut add = |tier: Tier, group: Option<&str>, p: QuotaPolicy| {
            let name = match (&tier, group) {
                (Tier::Plan(plan), None) => format!("plan:{plan}"),
                (Tier::Default, None) => "default".to_owned(),
                (Tier::Anonymous, None) => "anonymous".to_owned(),
                (Tier::Plan(plan), Some(g)) => format!("group:{g}:plan:{plan}"),
                (Tier::Default, Some(g)) => format!("group:{g}:default"),
                (Tier::Anonymous, Some(g)) => format!("group:{g}:anonymous"),
            };
            if !p.is_valid() {
                return Err(QuotaConfigError::InvalidPolicy(name));
            }
            let p = p.named(name);
            let tiers = match group {
                None => &mut policies.global,
                Some(g) => policies.groups.entry(g.to_owned()).or_default(),
            };
            match tier {
                Tier::Plan(plan) => {
                    tiers.plans.insert(plan, p.clone());
                }
                Tier::Default => tiers.default = Some(p.clone()),
                Tier::Anonymous => tiers.anonymous = Some(p.clone()),
            }
            Ok(p)
        };
        let default_plan = add(Tier::Default, None, self.default_plan)?;
        let anonymous = add(Tier::Anonymous, None, self.anonymous)?;
        for (plan, p) in self.plans {
            if plan.is_empty() {
                return Err(QuotaConfigError::EmptyName);
            }
            add(Tier::Plan(plan), None, p)?;
        }
        let mut routes = HashMap::new();
        for g in self.groups {
            if g.name.is_empty() {
                return Err(QuotaConfigError::EmptyName);
            }
            for r in g.routes {
                if !r.starts_with('/') {
                    return Err(QuotaConfigError::BadRoute(r));
                }
                if routes.insert(r.clone(), g.name.clone()).is_some() {
                    return Err(QuotaConfigError::DuplicateRoute(r));
                }
            }
            for (plan, p) in g.plans {
                if plan.is_empty() {
                    return Err(QuotaConfigError::EmptyName);
                }
                add(Tier::Plan(plan), Some(&g.name), p)?;
            }
            if let Some(p) = g.default {
                add(Tier::Default, Some(&g.name), p)?;
            }
            if let Some(p) = g.anonymous {
                add(Tier::Anonymous, Some(&g.name), p)?;
            }
        }
        let (limiter, sweeper): (Arc<dyn RateLimiter>, _) = match self.limiter {
            Some(l) => (l, None),
            None => {
                let l = MemoryRateLimiter::new();
                (Arc::new(l.clone()), Some((l, self.sweep_interval)))
            }
        };
        Ok(QuotaLayer {
            shared: Arc::new(Shared {
                limiter,
                meter: self.meter,
                policies,
                default_plan,
                anonymous,
                routes,
                key_by: self.key_by,
                ipv6_prefix: self.ipv6_prefix,
                legacy_headers: self.legacy_headers,
                deployment: self.deployment,
                sweeper,
                sweeper_started: Once::new(),
            }),
        })
    }
}

/// The configured policies, layer-wide and per route group, looked up on every request by
/// borrowed names (no allocation on the request path).
#[derive(Default)]
struct Policies {
    global: Tiers,
    groups: HashMap<String, Tiers>,
}

#[derive(Default)]
struct Tiers {
    plans: HashMap<String, QuotaPolicy>,
    default: Option<QuotaPolicy>,
    anonymous: Option<QuotaPolicy>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Tier {
    Plan(String),
    Default,
    Anonymous,
}

/// A Tower layer that rate-limits per identity and meters usage.
///
/// Place it *inside* the authentication layers (they must run first to leave a
/// [`Principal`]) and apply it with `Router::layer`, so that the route template
/// ([`MatchedPath`]) is known:
///
/// ```
/// # use apiauth_quota::{QuotaLayer, QuotaPolicy};
/// # use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/items/{id}", get(|| async { "item" }))
///     .layer(QuotaLayer::builder().plan("pro", QuotaPolicy::per_second(100)).build().unwrap());
///     // .layer(AuthLayer::new(...))  ← authentication layers go after, i.e. outside
/// ```
///
/// Per request it:
/// 1. keys the request: under a plan of [`QuotaLayerBuilder::plans`], the tenant or the
///    identity as the plan's [`Scope`] says; other principals by identity or tenant
///    ([`KeyBy`]); anonymous requests
///    use the client address [`audit::client`] gives (resolved behind trusted proxies by
///    `apiauth_core::client_addr`, else the socket peer; IPv6 by /64), and without one share
///    the [`UNKNOWN_CLIENT_KEY`] bucket; it never fails;
/// 2. picks one [`QuotaPolicy`]: route group, then plan (the tenant's plan in
///    [`Plans`] first, then [`Principal::plan`]), then default (see [`RouteGroup`]);
/// 3. asks the [`RateLimiter`]: over quota is 429 (RFC 6585 §4) with `Retry-After`
///    (RFC 9110 §10.2.3) and a problem+json body; a limiter failure is 503 (fail closed);
/// 4. otherwise calls the inner service, adds `RateLimit-Limit`, `RateLimit-Remaining` and
///    `RateLimit-Reset` to its answer (they are on every answer, 429 or not), and counts it
///    in the [`UsageMeter`] for the principal, route template and status class.
#[derive(Clone)]
#[must_use]
pub struct QuotaLayer {
    shared: Arc<Shared>,
}

impl QuotaLayer {
    /// A builder with safe defaults: authenticated callers 10 per second (burst 20),
    /// anonymous callers 1 per second (burst 10) per address, keyed by identity, in-memory
    /// limiter swept every minute, in-memory usage meter.
    pub fn builder() -> QuotaLayerBuilder {
        QuotaLayerBuilder {
            limiter: None,
            meter: Some(Arc::new(MemoryUsageMeter::new())),
            plans: Vec::new(),
            default_plan: QuotaPolicy::per_second(10).burst(20),
            anonymous: QuotaPolicy::per_second(1).burst(10),
            groups: Vec::new(),
            key_by: KeyBy::Identity,
            ipv6_prefix: 64,
            sweep_interval: Duration::from_secs(60),
            legacy_headers: false,
            deployment: None,
        }
    }
}

impl fmt::Debug for QuotaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = std::iter::once(&self.shared.policies.global)
            .chain(self.shared.policies.groups.values())
            .flat_map(|t| t.plans.values().chain(&t.default).chain(&t.anonymous))
            .map(QuotaPolicy::name)
            .collect();
        names.sort_unstable();
        f.debug_struct("QuotaLayer")
            .field("policies", &names)
            .field("key_by", &self.shared.key_by)
            .finish_non_exhaustive()
    }
}

struct Shared {
    limiter: Arc<dyn RateLimiter>,
    meter: Option<Arc<dyn UsageMeter>>,
    policies: Policies,
    default_plan: QuotaPolicy,
    anonymous: QuotaPolicy,
    routes: HashMap<String, String>,
    key_by: KeyBy,
    ipv6_prefix: u8,
    legacy_headers: bool,
    deployment: Option<Plans>,
    sweeper: Option<(MemoryRateLimiter, Duration)>,
    sweeper_started: Once,
}

impl Shared {
    /// Starts the default limiter's sweeper on the first request, when a runtime is sure to
    /// be there.
    fn ensure_sweeper(&self) {
        if let Some((limiter, every)) = &self.sweeper {
            self.sweeper_started.call_once(|| {
                if tokio::runtime::Handle::try_current().is_ok() {
                    drop(limiter.spawn_sweeper(*every));
                }
            });
        }
    }

    /// The policy and bucket key of a request.
    ///
    /// The plan of a principal is the one the deployment's [`Plans`] resolve (tenant's plan
    /// first), else the plan it carries. Policy: anonymous requests take their route group's
    /// anonymous policy, else the layer's; principals take, in order, their plan in the
    /// route group, the group's default, their plan layer-wide, the layer's default. Key:
    /// under a resolved plan, its [`Scope`]; otherwise [`KeyBy`].
    fn policy_and_key(
        &self,
        route: Option<&str>,
        principal: Option<&Principal>,
        req: &Request<Body>,
    ) -> (&QuotaPolicy, String) {
        let resolved = match (&self.deployment, principal) {
            (Some(plans), Some(p)) => plans.resolve(p),
            _ => None,
        };
        let plan = resolved
            .as_ref()
            .map(|r| r.name)
            .or_else(|| principal.and_then(Principal::plan));
        let group = route
            .and_then(|r| self.routes.get(r))
            .and_then(|g| self.policies.groups.get(g));
        let global = &self.policies.global;
        let found = match principal {
            None => group.and_then(|g| g.anonymous.as_ref()),
            Some(_) => group
                .and_then(|g| plan.and_then(|n| g.plans.get(n)).or(g.default.as_ref()))
                .or_else(|| plan.and_then(|n| global.plans.get(n)))
                .or(global.default.as_ref()),
        };
        let policy = found.unwrap_or(match principal {
            None => &self.anonymous,
            Some(_) => &self.default_plan,
        });
        let key = match (principal, &resolved) {
            (Some(p), Some(r)) => match (r.plan.scope(), r.tenant) {
                (Scope::Tenant, Some(t)) => bounded_key("tenant:", t),
                _ => bounded_key("id:", p.identity()),
            },
            (Some(p), None) => match (self.key_by, p.tenant()) {
                (KeyBy::Tenant, Some(t)) => bounded_key("tenant:", t),
                _ => bounded_key("id:", p.identity()),
            },
            // Behind trusted proxies, the address `ClientAddrLayer` resolved.
            (None, _) => match audit::client(req) {
                Some(ip) => ip_key(ip, self.ipv6_prefix),
                None => UNKNOWN_CLIENT_KEY.to_owned(),
            },
        };
        (policy, key)
    }
}

/// The key of a principal's usage records: its [`Principal::identity`], hashed when long.
pub(crate) fn usage_key(p: &Principal) -> std::borrow::Cow<'_, str> {
    let id = p.identity();
    if id.len() <= MAX_KEY_ID_LEN {
        std::borrow::Cow::Borrowed(id)
    } else {
        std::borrow::Cow::Owned(bounded_key("", id))
    }
}

fn bounded_key(prefix: &str, id: &str) -> String {
    if id.len() <= MAX_KEY_ID_LEN {
        return format!("{prefix}{id}");
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut key = String::with_capacity(prefix.len() + 7 + 64);
    key.push_str(prefix);
    key.push_str("sha256:");
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// `ip:` and the address; IPv6 masked to `prefix` bits, IPv4-mapped IPv6 as IPv4.
fn ip_key(ip: IpAddr, prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let bits = u128::from(v6);
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                let net = std::net::Ipv6Addr::from(bits & mask);
                format!("ip:{net}/{prefix}")
            }
        },
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The rate policy as the first item of `RateLimit-Policy` and `RateLimit` (draft-10 §3
/// "RateLimit-Policy Field" and §4 "RateLimit Field": `q` the burst, `w` the time a full
/// bucket takes to refill, `r` the requests admissible now, `t` the seconds until the bucket
/// is full); with `legacy`, the three fields of drafts 00–06 as well; when denied,
/// `Retry-After` in delta-seconds (RFC 9110 §10.2.3), rounded up so a client that waits never
/// comes too soon.
fn set_ratelimit_headers(res: &mut Response, d: &Decision, policy: &QuotaPolicy, legacy: bool) {
    let window = ceil_secs(policy.replenish_period() * policy.burst_size()).max(1);
    let item = crate::headers::PolicyItem {
        name: policy.name().to_owned(),
        quota: u64::from(policy.burst_size()),
        window,
        remaining: u64::from(d.remaining()),
        reset: ceil_secs(d.reset()),
    };
    crate::headers::add_policy(res, item, true, true);
    let h = res.headers_mut();
    if legacy {
        set_legacy_headers(h, d);
    }
    if let Some(after) = d.retry_after()
        && !h.contains_key(RETRY_AFTER)
    {
        h.insert(RETRY_AFTER, HeaderValue::from(ceil_secs(after).max(1)));
    }
}

fn set_legacy_headers(h: &mut HeaderMap, d: &Decision) {
    h.insert(RATELIMIT_LIMIT, HeaderValue::from(d.limit()));
    h.insert(RATELIMIT_REMAINING, HeaderValue::from(d.remaining()));
    h.insert(RATELIMIT_RESET, HeaderValue::from(ceil_secs(d.reset())));
}

impl<S> Layer<S> for QuotaLayer {
    type Service = QuotaService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        QuotaService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`QuotaLayer`].
pub struct QuotaService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for QuotaService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The response future of [`QuotaService`].
pub type QuotaFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S> Service<Request<Body>> for QuotaService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = QuotaFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // Take the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            shared.ensure_sweeper();
            let principal = req.extensions().get::<Principal>().cloned();
            // A clone of `MatchedPath` shares its string: no copy per request.
            let matched_path = req.extensions().get::<MatchedPath>().cloned();
            let matched = matched_path.as_ref().map(MatchedPath::as_str);
            let route = matched.unwrap_or(UNMATCHED_ROUTE);
            let (policy, key) = shared.policy_and_key(matched, principal.as_ref(), &req);
            let policy = policy.clone();

            let decision = match shared.limiter.check(&key, &policy).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(error = %e, policy = policy.name(), "rate limiter failed");
                    metric::limiter_error(&policy);
                    return Ok(AuthError::from(e).render(req.extensions()));
                }
            };
            if !decision.is_allowed() {
                metric::rejected(&policy);
                let retry = decision.retry_after().unwrap_or(Duration::from_secs(1));
                let e = AuthError::too_many_requests(retry).with_reason("rate_limited");
                let mut res = e.render(req.extensions());
                // Set here, so a custom ErrorResponder cannot drop them: part of the contract.
                set_ratelimit_headers(&mut res, &decision, &policy, shared.legacy_headers);
                return Ok(res);
            }

            if let Some(meter) = &shared.meter {
                req.extensions_mut().insert(MeterHandle(meter.clone()));
            }
            // The fields are written below from every item: inner layers only add theirs.
            req.extensions_mut().insert(crate::headers::WrittenOutside);
            let mut res = inner.call(req).await?;
            set_ratelimit_headers(&mut res, &decision, &policy, shared.legacy_headers);

            // The handler answered: this request counts.
            let class = StatusClass::of(res.status());
            metric::usage(route, class, &policy);
            if let (Some(meter), Some(p)) = (&shared.meter, &principal)
                && let Err(e) = meter.record(&usage_key(p), route, class).await
            {
                // The handler already ran; replacing its answer would not undo it.
                tracing::warn!(error = %e, "usage meter failed");
                metric::usage_error();
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_keyed_by_prefix_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(ip_key(a, 64), ip_key(b, 64));
        assert_eq!(ip_key(a, 64), "ip:2001:db8:1:2::/64");
        assert_ne!(ip_key(a, 128), ip_key(b, 128));
        assert_eq!(ip_key(a, 0), "ip:::/0");
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ip_key(mapped, 64), "ip:10.1.2.3");
    }

    #[test]
    fn long_identities_are_hashed_to_a_bounded_key() {
        let long = "x".repeat(10_000);
        let k = bounded_key("subject:", &long);
        assert_eq!(k.len(), "subject:sha256:".len() + 64);
        assert_eq!(bounded_key("subject:", "alice"), "subject:alice");
    }

    #[test]
    fn invalid_configuration_is_a_startup_error() {
        let e = QuotaLayer::builder()
            .plan("free", QuotaPolicy::per_second(0))
            .build()
            .unwrap_err();
        assert_eq!(e, QuotaConfigError::InvalidPolicy("plan:free".into()));
        let e = QuotaLayer::builder()
            .route_group(RouteGroup::new("a").route("/x"))
            .route_group(RouteGroup::new("b").route("/x"))
            .build()
            .unwrap_err();
        assert_eq!(e, QuotaConfigError::DuplicateRoute("/x".into()));
        assert_eq!(
            QuotaLayer::builder().ipv6_prefix(129).build().unwrap_err(),
            QuotaConfigError::Ipv6Prefix(129)
        );
        assert_eq!(
            QuotaLayer::builder()
                .route_group(RouteGroup::new("a").route("x"))
                .build()
                .unwrap_err(),
            QuotaConfigError::BadRoute("x".into())
        );
    }
}
