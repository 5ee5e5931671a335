//! Credits over real HTTP on loopback: the monthly refill on a manual clock, refunds of
//! answers that are not billable (and of handlers that panic), exactness under concurrency,
//! and the RateLimit fields parsed back with `sfv`.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_core::AuthLayer;
use apiauth_core::clock::ManualClock;
use apiauth_quota::{
    CREDITS_EXHAUSTED, CreditAllowance, Credits, MemoryCreditStore, MemoryUsageHistory, Plan,
    Plans, QuotaLayer, QuotaPolicy, UsageHistory,
};
use axum::Router;
use axum::routing::{get, post};
use common::Demo;
use http::StatusCode;
use serde_json::Value;

/// 2026-12-31T23:00:00Z: one hour before the January refill.
const NEW_YEARS_EVE: u64 = 1_798_758_000;

fn plans(credits: u64) -> Plans {
    Plans::new()
        .plan(
            "free",
            Plan::new(QuotaPolicy::per_minute(600).burst(600))
                .credits(CreditAllowance::per_month(credits)),
        )
        .tenant("acme", "free")
}

fn app(credits: &Credits) -> Router {
    Router::new()
        .route(
            "/lookup",
            get(|| async { "found" }).route_layer(credits.layer()),
        )
        .route(
            "/enrich",
            post(|| async { "done" }).route_layer(credits.cost(5)),
        )
        .route(
            "/free",
            get(|| async { "free" }).route_layer(credits.cost(0)),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such thing") }).route_layer(credits.cost(3)),
        )
        .route(
            "/fails",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") })
                .route_layer(credits.cost(3)),
        )
        .route(
            "/slow-fail",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                (StatusCode::BAD_GATEWAY, "upstream down")
            })
            .route_layer(credits.layer()),
        )
        .route(
            "/panics",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("handler bug");
                }
                "never"
            })
            .route_layer(credits.cost(4)),
        )
}

async fn serve(app: Router) -> SocketAddr {
    let app = app.layer(AuthLayer::new(Demo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    async fn call(&self, method: &str, path: &str) -> reqwest::Result<reqwest::Response> {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.http
            .request(m, format!("{}{path}", self.base))
            .header("x-user", "alice")
            .header("x-tenant", "acme")
            .send()
            .await
    }
}

async fn balance(credits: &Credits) -> u64 {
    credits
        .tenant_balance("acme")
        .await
        .unwrap()
        .unwrap()
        .remaining
}

#[tokio::test]
async fn exhausted_balance_is_429_until_the_first_of_next_month_utc_then_refills() {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NEW_YEARS_EVE));
    let credits = Credits::builder(MemoryCreditStore::new())
        .plans(plans(7))
        .clock(Arc::new(clock.clone()))
        .build();
    let c = Client::new(serve(app(&credits)).await);

    assert_eq!(c.call("POST", "/enrich").await.unwrap().status(), 200);
    assert_eq!(c.call("GET", "/lookup").await.unwrap().status(), 200);
    assert_eq!(c.call("GET", "/lookup").await.unwrap().status(), 200);
    assert_eq!(balance(&credits).await, 0);

    let res = c.call("GET", "/lookup").await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // One hour to 2027-01-01T00:00:00Z.
    assert_eq!(res.headers()["retry-after"], "3600");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], CREDITS_EXHAUSTED);
    assert_eq!(body["title"], "Credits exhausted");
    assert_eq!(body["status"], 429);
    assert_eq!(body["refills_at"], "2027-01-01T00:00:00Z");
    assert_eq!(body["balance"], 0);
    // A free route still answers with an empty balance.
    assert_eq!(c.call("GET", "/free").await.unwrap().status(), 200);

    clock.advance(Duration::from_secs(3600));
    let res = c.call("GET", "/lookup").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "found");
    assert_eq!(balance(&credits).await, 6);
    let b = credits.tenant_balance("acme").await.unwrap().unwrap();
    assert_eq!(b.refills_at, "2027-02-01T00:00:00Z");
}

#[tokio::test]
async fn answers_that_are_not_2xx_are_refunded_and_only_2xx_is_charged() {
    let history = Arc::new(MemoryUsageHistory::new());
    let credits = Credits::builder(MemoryCreditStore::new())
        .plans(plans(10))
        .history(history.clone())
        .build();
    let c = Client::new(serve(app(&credits)).await);
    assert_eq!(c.call("GET", "/missing").await.unwrap().status(), 404);
    assert_eq!(c.call("GET", "/fails").await.unwrap().status(), 500);
    assert_eq!(balance(&credits).await, 10);
    let res = c.call("POST", "/enrich").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(balance(&credits).await, 5);
    // The refund shows in the answer's own RateLimit field.
    let res = c.call("GET", "/missing").await.unwrap();
    assert!(
        res.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .contains("\"credits:free\";r=5;"),
        "{:?}",
        res.headers()
    );

    // A handler that panics drops its reservation: the guard refunds it.
    assert!(c.call("GET", "/panics").await.is_err());
    for _ in 0..100 {
        if balance(&credits).await == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(balance(&credits).await, 5);

    let rows = history.export(Some("acme")).await.unwrap();
    let enrich = rows.iter().find(|r| r.route == "/enrich").unwrap();
    assert_eq!((enrich.requests_2xx, enrich.credits), (1, 5));
    let missing = rows.iter().find(|r| r.route == "/missing").unwrap();
    assert_eq!((missing.requests_4xx, missing.credits), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_against_fifty_credits_admit_exactly_fifty() {
    let credits = Credits::builder(MemoryCreditStore::new())
        .plans(plans(50))
        .build();
    let c = Arc::new(Client::new(serve(app(&credits)).await));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.call("GET", "/lookup").await.unwrap().status() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 429, "{status}");
        ok += usize::from(status == 200);
    }
    assert_eq!(ok, 50);
    assert_eq!(balance(&credits).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_that_reserve_among_concurrent_requests_neither_mint_nor_lose_credits() {
    let credits = Credits::builder(MemoryCreditStore::new())
        .plans(plans(50))
        .build();
    let c = Arc::new(Client::new(serve(app(&credits)).await));
    // Failures hold their reservation until they answer, so a request arriving meanwhile may
    // be refused while a credit is still to come back: how many succeed depends on timing,
    // but every credit is either spent by a 2xx or still in the balance.
    let tasks: Vec<_> = (0..260)
        .map(|i| {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let path = if i % 13 == 0 { "/slow-fail" } else { "/lookup" };
                (path, c.call("GET", path).await.unwrap().status())
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        let (path, status) = t.await.unwrap();
        if path == "/lookup" && status == 200 {
            ok += 1;
        }
        assert_ne!(status, 500);
    }
    assert!(ok <= 50, "{ok} admitted against 50 credits");
    assert_eq!(ok + balance(&credits).await as usize, 50);
}

#[tokio::test]
async fn rate_and_credits_are_two_policies_in_the_structured_ratelimit_fields() {
    let credits = Credits::builder(MemoryCreditStore::new())
        .plans(plans(100))
        .build();
    let quota = QuotaLayer::builder()
        .plan("free", QuotaPolicy::per_minute(20).burst(20))
        .build()
        .unwrap();
    let app = app(&credits).layer(quota);
    let c = Client::new(serve(app).await);
    let now = SystemTime::now();
    let res = c
        .http
        .post(format!("{}/enrich", c.base))
        .header("x-user", "alice")
        .header("x-tenant", "acme")
        .header("x-plan", "free")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The old trio is opt-in only.
    assert!(res.headers().get("ratelimit-limit").is_none());

    let policy: sfv::List = sfv::Parser::new(res.headers()["ratelimit-policy"].as_bytes())
        .parse()
        .unwrap();
    let state: sfv::List = sfv::Parser::new(res.headers()["ratelimit"].as_bytes())
        .parse()
        .unwrap();
    let items = |l: &sfv::List| -> Vec<(String, Vec<(String, i64)>)> {
        l.iter()
            .map(|e| match e {
                sfv::ListEntry::Item(i) => (
                    i.bare_item.as_string().unwrap().as_str().to_owned(),
                    i.params
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), i64::from(v.as_integer().unwrap())))
                        .collect(),
                ),
                sfv::ListEntry::InnerList(_) => panic!("inner list"),
            })
            .collect()
    };
    let policy = items(&policy);
    let state = items(&state);
    assert_eq!(
        policy[0],
        ("plan:free".into(), vec![("q".into(), 20), ("w".into(), 60)])
    );
    assert_eq!(policy[1].0, "credits:free");
    assert_eq!(policy[1].1[0], ("q".into(), 100));
    // The window is the calendar month: 28 to 31 days.
    assert!(
        (28 * 86_400..=31 * 86_400).contains(&policy[1].1[1].1),
        "{policy:?}"
    );
    assert_eq!(state[0].0, "plan:free");
    assert_eq!(state[0].1[0], ("r".into(), 19));
    assert_eq!(state[1].0, "credits:free");
    assert_eq!(state[1].1[0], ("r".into(), 95));
    let until = credits
        .tenant_balance("acme")
        .await
        .unwrap()
        .unwrap()
        .seconds_until_refill;
    let t = u64::try_from(state[1].1[1].1).unwrap();
    assert!(t.abs_diff(until) <= 2, "t={t} refill in {until} ({now:?})");
}
