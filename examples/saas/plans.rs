//! Plans, credits and the billing history of the example (issue 18).
//!
//! | plan | rate limit | credits |
//! | --- | --- | --- |
//! | `free` | burst 20, 20 per minute | 100 per UTC month |
//! | `pro` | burst 200, 100 per second | 100,000 per UTC month |
//!
//! Both limits are per tenant and come from these [`Plans`]: the quota layer
//! (`QuotaLayerBuilder::plans`, app.rs) takes each plan's rate limit, the credits layer its
//! allowance. Tenant `acme` is on `pro`: its pro API key, its OAuth client and its HMAC
//! partner share one rate bucket and draw on one balance. Tenant `initech` is on `free` (the free API key). Costs are declared with the
//! routes in app.rs ([`COST_COMPANY`] …); only 2xx answers are charged. The operator (the
//! Basic user `operator`, scope `credits:admin`) reads and changes balances and exports the
//! history; tenant administrators cannot grant themselves credits.

use std::sync::Arc;

use apiauth::quota::{
    CreditAllowance, CreditStore, Credits, Plan, Plans, QuotaPolicy, UsageHistory, UsageRow,
};
use apiauth::{Auth, Scope, Scoped, scope};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::openapi::{self, Forbidden, TooManyRequests, Unauthorized, Unavailable};
use crate::problem::{ApiJson, Problem};

scope!(pub CreditsAdmin = "credits:admin");

/// The tenant on `pro`: the demo tenant.
pub const PRO_TENANT: &str = "acme";
/// The tenant on `free`: the free API key's.
pub const FREE_TENANT: &str = "initech";
/// `GET /v1/companies/{domain}`.
pub const COST_COMPANY: u64 = 1;
/// `POST /v1/contacts/search`.
pub const COST_SEARCH: u64 = 2;
/// `POST /v1/enrichments`.
pub const COST_ENRICHMENT: u64 = 5;
/// `GET /v1/usage`.
pub const COST_USAGE: u64 = 0;

/// The example's plans; `credits` are the `--credits PLAN=N` overrides of monthly allowances.
pub fn plans(credits: &[(String, u64)]) -> Plans {
    let mut plans = Plans::new()
        .plan(
            "free",
            Plan::new(QuotaPolicy::per_minute(20).burst(20))
                .credits(CreditAllowance::per_month(100)),
        )
        .plan(
            "pro",
            Plan::new(QuotaPolicy::per_second(100).burst(200))
                .credits(CreditAllowance::per_month(100_000)),
        )
        .tenant(PRO_TENANT, "pro")
        // Access tokens name their client's tenant (the `tenant` claim): no member list.
        .tenant(FREE_TENANT, "free");
    for (plan, n) in credits {
        plans = plans.set_allowance(plan, *n);
    }
    plans
}

/// The shared credit state over the balances and billing history [`crate::stores`] picks:
/// balances in Redis with `--redis-url` (every instance draws on the same ones), else in the
/// database (the default SQLite file, or `--database-url`), else (`--in-memory`) in this
/// process; the history in the database when there is one, else in this process.
pub fn credits(
    plans: Plans,
    store: Arc<dyn CreditStore>,
    history: Arc<dyn UsageHistory>,
) -> Credits {
    Credits::builder_shared(store)
        .plans(plans)
        .history(history)
        .build()
}

/// `--credits PLAN=N`.
pub fn parse_credits(s: &str) -> Result<(String, u64), String> {
    let (plan, n) = s.split_once('=').ok_or("expected PLAN=N")?;
    let n: u64 = n.parse().map_err(|_| "N must be a whole number")?;
    if plan.is_empty() {
        return Err("PLAN must be named".into());
    }
    Ok((plan.to_owned(), n))
}

/// A tenant's balance.
#[derive(Serialize, ToSchema)]
pub struct CreditBalance {
    #[schema(example = "pro")]
    pub plan: String,
    /// Credits left this period.
    pub remaining: u64,
    /// Credits at the start of each period.
    pub allowance: u64,
    /// `month` or `day`.
    #[schema(example = "month")]
    pub period: String,
    /// When the balance refills (RFC 3339, UTC).
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub refills_at: String,
    pub seconds_until_refill: u64,
}

impl From<apiauth::quota::Balance> for CreditBalance {
    fn from(b: apiauth::quota::Balance) -> Self {
        Self {
            plan: b.plan,
            remaining: b.remaining,
            allowance: b.allowance,
            period: b.period.to_owned(),
            refills_at: b.refills_at,
            seconds_until_refill: b.seconds_until_refill,
        }
    }
}

/// A change of balance: exactly one of `add` (a top-up) and `set`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditChange {
    pub add: Option<u64>,
    pub set: Option<u64>,
}

fn problem(status: StatusCode, detail: &str) -> Response {
    Problem::new(status, detail).into_response()
}

fn store_down(e: &apiauth::quota::CreditStoreError) -> Response {
    tracing::warn!(error = %e, "credit store failed");
    let mut res = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "The credit store is unavailable.",
    );
    res.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(1));
    res
}

fn no_such_tenant() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "No such tenant, or its plan has no credits.",
    )
}

/// Read a tenant's credit balance (operator).
#[utoipa::path(
    get,
    path = "/admin/tenants/{tenant}/credits",
    tag = "admin",
    params(("tenant" = String, Path, description = "The tenant")),
    responses(
        (status = 200, description = "The balance", body = CreditBalance),
        Unauthorized,
        Forbidden,
        (status = 404, description = "No such tenant, or its plan has no credits", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [CreditsAdmin::NAME]))
)]
pub async fn read_credits(
    _: Scoped<CreditsAdmin>,
    Extension(credits): Extension<Credits>,
    Path(tenant): Path<String>,
) -> Response {
    match credits.tenant_balance(&tenant).await {
        Ok(Some(b)) => Json(CreditBalance::from(b)).into_response(),
        Ok(None) => no_such_tenant(),
        Err(e) => store_down(&e),
    }
}

/// Top up (`{"add": N}`) or set (`{"set": N}`) a tenant's balance for this period (operator).
#[utoipa::path(
    post,
    path = "/admin/tenants/{tenant}/credits",
    tag = "admin",
    params(("tenant" = String, Path, description = "The tenant")),
    request_body = CreditChange,
    responses(
        (status = 200, description = "The new balance", body = CreditBalance),
        openapi::BadRequest,
        Unauthorized,
        Forbidden,
        (status = 404, description = "No such tenant, or its plan has no credits", body = Problem, content_type = "application/problem+json"),
        openapi::PayloadTooLarge,
        openapi::UnsupportedMediaType,
        (status = 422, description = "Not exactly one of `add` and `set`", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [CreditsAdmin::NAME]))
)]
pub async fn change_credits(
    _: Scoped<CreditsAdmin>,
    Extension(credits): Extension<Credits>,
    Path(tenant): Path<String>,
    ApiJson(change): ApiJson<CreditChange>,
) -> Response {
    let result = match (change.add, change.set) {
        (Some(n), None) => credits.add_to_tenant(&tenant, n).await,
        (None, Some(n)) => credits.set_tenant(&tenant, n).await,
        _ => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Give exactly one of `add` and `set`.",
            );
        }
    };
    match result {
        Ok(Some(b)) => Json(CreditBalance::from(b)).into_response(),
        Ok(None) => no_such_tenant(),
        Err(e) => store_down(&e),
    }
}

/// The export's query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only this tenant's rows.
    pub tenant: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// One row of the billing history.
#[derive(Serialize, ToSchema)]
pub struct UsageHistoryRow {
    #[schema(example = "2026-12-03")]
    pub day: String,
    pub tenant: String,
    pub identity: String,
    #[schema(example = "/v1/companies/{domain}")]
    pub route: String,
    pub requests_2xx: u64,
    pub requests_4xx: u64,
    pub requests_5xx: u64,
    pub requests_other: u64,
    pub credits: u64,
}

impl From<UsageRow> for UsageHistoryRow {
    fn from(r: UsageRow) -> Self {
        Self {
            day: r.day,
            tenant: r.tenant,
            identity: r.identity,
            route: r.route,
            requests_2xx: r.requests_2xx,
            requests_4xx: r.requests_4xx,
            requests_5xx: r.requests_5xx,
            requests_other: r.requests_other,
            credits: r.credits,
        }
    }
}

/// The export as JSON.
#[derive(Serialize, ToSchema)]
pub struct UsageExport {
    pub rows: Vec<UsageHistoryRow>,
}

/// Export the billing history: per tenant, identity, route and UTC day (operator).
#[utoipa::path(
    get,
    path = "/admin/usage/export",
    tag = "admin",
    params(ExportQuery),
    responses(
        (status = 200, description = "The rows as JSON; with `format=csv`, the same rows as `text/csv` (header line first)", body = UsageExport),
        Unauthorized,
        Forbidden,
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [CreditsAdmin::NAME]))
)]
pub async fn usage_export(
    _: Scoped<CreditsAdmin>,
    Extension(credits): Extension<Credits>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let Some(history) = credits.history() else {
        return Json(UsageExport { rows: Vec::new() }).into_response();
    };
    let rows = match history.export(q.tenant.as_deref()).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "usage history failed");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The usage history is unavailable.",
            );
        }
    };
    if q.format.as_deref() == Some("csv") {
        return (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            apiauth::quota::to_csv(&rows),
        )
            .into_response();
    }
    Json(UsageExport {
        rows: rows.into_iter().map(UsageHistoryRow::from).collect(),
    })
    .into_response()
}

/// `own_usage`'s report with the caller's credit balance and refill time added.
pub async fn usage_with_balance(auth: Auth, req: Request) -> Response {
    let credits = req.extensions().get::<Credits>().cloned();
    let principal = auth.0.clone();
    let res = apiauth::quota::own_usage(auth, req).await;
    if !res.status().is_success() {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "Usage report too large.");
    };
    let Ok(mut report) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let balance = match &credits {
        Some(c) => match c.balance(&principal).await {
            Ok(b) => b.map(CreditBalance::from),
            Err(e) => return store_down(&e),
        },
        None => None,
    };
    if let Some(map) = report.as_object_mut() {
        map.insert(
            "tenant".into(),
            credits
                .as_ref()
                .and_then(|c| c.plans().tenant_of(&principal).map(str::to_owned))
                .into(),
        );
        map.insert(
            "credits".into(),
            serde_json::to_value(balance).unwrap_or(Value::Null),
        );
    }
    let mut res = Json(report).into_response();
    for (k, v) in &parts.headers {
        if k != header::CONTENT_LENGTH && k != header::CONTENT_TYPE {
            res.headers_mut().insert(k.clone(), v.clone());
        }
    }
    res
}
