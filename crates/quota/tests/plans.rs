//! Plans drive the rate limit, over real HTTP on loopback: a plan's rate is the policy of
//! every credential its tenant holds, whatever plan a credential carries itself; under
//! `Scope::Tenant` the credentials of a tenant share one bucket, under `Scope::Identity`
//! each has its own; a member assignment puts a credential without a tenant in its tenant's
//! bucket.

mod common;

use std::net::SocketAddr;

use apiauth_core::{AuthLayer, AuthMethod};
use apiauth_quota::{Plan, Plans, QuotaLayer, QuotaPolicy, Scope};
use axum::Router;
use axum::routing::get;
use common::Demo;

fn plans() -> Plans {
    Plans::new()
        // Per tenant (the default).
        .plan("team", Plan::new(QuotaPolicy::per_minute(3).burst(3)))
        // Per identity.
        .plan(
            "lab",
            Plan::new(QuotaPolicy::per_minute(2).burst(2)).with_scope(Scope::Identity),
        )
        .plan("free", Plan::new(QuotaPolicy::per_minute(1).burst(1)))
        .tenant("acme", "team")
        .tenant("globex", "lab")
        .member(AuthMethod::custom("demo"), "crm", "acme")
}

async fn serve(quota: QuotaLayer) -> SocketAddr {
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(quota)
        .layer(AuthLayer::new(Demo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// GET as `user` (of `tenant`, carrying `plan`): the status and `RateLimit-Policy`.
async fn get_as(
    addr: SocketAddr,
    user: &str,
    tenant: Option<&str>,
    plan: Option<&str>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .get(format!("http://{addr}/items/1"))
        .header("x-user", user);
    if let Some(t) = tenant {
        req = req.header("x-tenant", t);
    }
    if let Some(p) = plan {
        req = req.header("x-plan", p);
    }
    let res = req.send().await.unwrap();
    let policy = res
        .headers()
        .get("ratelimit-policy")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), policy)
}

#[tokio::test]
async fn two_credentials_of_a_tenant_on_a_per_tenant_plan_share_one_bucket() {
    let addr = serve(QuotaLayer::builder().plans(plans()).build().unwrap()).await;
    for _ in 0..3 {
        let (status, policy) = get_as(addr, "alice", Some("acme"), None).await;
        assert_eq!(status, 200);
        assert_eq!(policy, r#""plan:team";q=3;w=60"#);
    }
    // Another credential of acme, carrying a plan of its own: the tenant's plan and bucket.
    let (status, policy) = get_as(addr, "bob", Some("acme"), Some("free")).await;
    assert_eq!((status, policy.as_str()), (429, r#""plan:team";q=3;w=60"#));
    // A credential without a tenant, assigned to acme as a member: the same bucket.
    assert_eq!(get_as(addr, "crm", None, None).await.0, 429);
    // Another tenant's credential is not affected.
    assert_eq!(get_as(addr, "carol", Some("globex"), None).await.0, 200);
}

#[tokio::test]
async fn credentials_of_a_tenant_on_a_per_identity_plan_have_their_own_buckets() {
    let addr = serve(QuotaLayer::builder().plans(plans()).build().unwrap()).await;
    for _ in 0..2 {
        let (status, policy) = get_as(addr, "alice", Some("globex"), None).await;
        assert_eq!((status, policy.as_str()), (200, r#""plan:lab";q=2;w=60"#));
    }
    assert_eq!(get_as(addr, "alice", Some("globex"), None).await.0, 429);
    // Same tenant, another identity: a full bucket of its own.
    for _ in 0..2 {
        assert_eq!(get_as(addr, "bob", Some("globex"), None).await.0, 200);
    }
    assert_eq!(get_as(addr, "bob", Some("globex"), None).await.0, 429);
}

#[tokio::test]
async fn a_plan_call_overrides_the_rate_of_a_plan_and_unresolved_principals_get_the_default() {
    let quota = QuotaLayer::builder()
        .plans(plans())
        .plan("team", QuotaPolicy::per_minute(5).burst(5))
        .default_plan(QuotaPolicy::per_minute(7).burst(7))
        .build()
        .unwrap();
    let addr = serve(quota).await;
    let (_, policy) = get_as(addr, "alice", Some("acme"), None).await;
    assert_eq!(policy, r#""plan:team";q=5;w=60"#);
    // No tenant plan, but the principal's own plan is known: that plan.
    let (_, policy) = get_as(addr, "dave", Some("nobody"), Some("free")).await;
    assert_eq!(policy, r#""plan:free";q=1;w=60"#);
    // Neither: the default.
    let (_, policy) = get_as(addr, "erin", None, None).await;
    assert_eq!(policy, r#""default";q=7;w=60"#);
}
