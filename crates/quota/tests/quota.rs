//! Rate limiting through a real axum `Router`, behind a real authentication layer.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiauth_core::StoreError;
use apiauth_quota::clock::FakeRelativeClock;
use apiauth_quota::{
    Decision, KeyBy, MemoryRateLimiter, QuotaLayer, QuotaPolicy, RateLimiter, RouteGroup,
};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{RateFields, Seen, anonymous_from, app, as_user, send};

fn limiter() -> (MemoryRateLimiter<FakeRelativeClock>, FakeRelativeClock) {
    let clock = FakeRelativeClock::default();
    (MemoryRateLimiter::with_clock(clock.clone()), clock)
}

/// A router whose default plan is `policy`, on a fake clock.
fn router(policy: QuotaPolicy) -> (Router, FakeRelativeClock) {
    let (l, clock) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .default_plan(policy)
        .limiter(l)
        .build()
        .unwrap();
    (app(quota, Default::default()), clock)
}

fn addr(a: u8, b: u8, c: u8, d: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), 40000)
}

#[tokio::test]
async fn two_identities_do_not_share_a_bucket() {
    let (app, _) = router(QuotaPolicy::per_minute(2));
    for _ in 0..2 {
        assert_eq!(
            send(&app, as_user("/items/1", "alice", None)).await.status,
            200
        );
    }
    assert_eq!(
        send(&app, as_user("/items/1", "alice", None)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let bob = send(&app, as_user("/items/1", "bob", None)).await;
    assert_eq!(bob.status, 200);
    assert_eq!(bob.rate().1, 1, "bob's bucket is untouched by alice");
}

#[tokio::test]
async fn burst_then_429_with_ratelimit_headers_retry_after_and_problem_body() {
    let hits = Arc::new(AtomicUsize::new(0));
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .default_plan(QuotaPolicy::per_second(1).burst(3))
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, hits.clone());
    // GCRA: each request used is regained one period (1 s) later, so the bucket is full
    // again `limit - remaining` seconds on.
    for expected in [(3, 2, 1), (3, 1, 2), (3, 0, 3)] {
        let a = send(&app, as_user("/items/1", "alice", None)).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.rate(), expected);
        assert!(a.headers.get("retry-after").is_none());
    }
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.rate(), (3, 0, 3));
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    assert_eq!(a.headers.get_all("ratelimit-limit").iter().count(), 1);
    let p = a.json();
    assert_eq!(p["status"], 429);
    assert_eq!(p["title"], "Too Many Requests");
    assert!(!a.body.contains("alice"), "the key must not be echoed");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "the 429 never reached the handler"
    );
}

#[tokio::test]
async fn bucket_refills_over_time_on_the_controllable_clock() {
    let (app, clock) = router(QuotaPolicy::per_second(1).burst(2));
    for _ in 0..2 {
        send(&app, as_user("/items/1", "alice", None)).await;
    }
    assert_eq!(
        send(&app, as_user("/items/1", "alice", None)).await.status,
        429
    );
    clock.advance(Duration::from_millis(999));
    assert_eq!(
        send(&app, as_user("/items/1", "alice", None)).await.status,
        429
    );
    clock.advance(Duration::from_millis(1));
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!((a.status, a.rate().1), (StatusCode::OK, 0));
    clock.advance(Duration::from_secs(10));
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!(
        a.rate(),
        (2, 1, 1),
        "a long idle refills to the burst, no more"
    );
}

#[tokio::test]
async fn plan_tiers_have_their_own_limits_and_a_plan_change_applies_on_the_next_request() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .plan("free", QuotaPolicy::per_minute(2))
        .plan("pro", QuotaPolicy::per_minute(100).burst(5))
        .default_plan(QuotaPolicy::per_minute(1))
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let free = send(&app, as_user("/items/1", "alice", Some("free"))).await;
    assert_eq!(free.rate().0, 2);
    send(&app, as_user("/items/1", "alice", Some("free"))).await;
    assert_eq!(
        send(&app, as_user("/items/1", "alice", Some("free")))
            .await
            .status,
        429
    );
    // Upgraded: the principal now says `pro`; no restart, no reconfiguration.
    let pro = send(&app, as_user("/items/1", "alice", Some("pro"))).await;
    assert_eq!(pro.status, 200);
    assert_eq!(pro.rate().0, 5);
    // A plan nobody configured, or none at all, gets the default plan.
    let odd = send(&app, as_user("/items/1", "carol", Some("platinum"))).await;
    assert_eq!(odd.rate(), (1, 0, 60));
    assert_eq!(
        send(&app, as_user("/items/1", "dave", None)).await.rate().0,
        1
    );
}

#[tokio::test]
async fn route_group_has_its_own_quota_and_bucket() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .plan("free", QuotaPolicy::per_minute(10))
        .route_group(
            RouteGroup::new("export")
                .route("/export")
                .plan("free", QuotaPolicy::per_hour(1)),
        )
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let a = send(&app, as_user("/export", "alice", Some("free"))).await;
    assert_eq!((a.status, a.rate().0), (StatusCode::OK, 1));
    let a = send(&app, as_user("/export", "alice", Some("free"))).await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), Some("3600"));
    // Other routes keep the plan's bucket.
    let a = send(&app, as_user("/items/9", "alice", Some("free"))).await;
    assert_eq!(a.rate(), (10, 9, 6));
    // A plan the group does not name falls back to the layer-wide policy.
    let b = send(&app, as_user("/export", "bob", Some("pro"))).await;
    assert_eq!(b.status, 200);
}

/// Which policy a request gets: its plan in the route group, then the group's default, then its
/// plan layer-wide, then the layer's default; anonymous requests take the group's anonymous
/// policy, else the layer's.
#[tokio::test]
async fn route_group_policies_take_precedence_in_a_fixed_order() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .plan("free", QuotaPolicy::per_minute(10))
        .default_plan(QuotaPolicy::per_minute(20))
        .anonymous(QuotaPolicy::per_minute(30))
        .route_group(
            RouteGroup::new("export")
                .route("/export")
                .plan("pro", QuotaPolicy::per_minute(2))
                .default_plan(QuotaPolicy::per_minute(3))
                .anonymous(QuotaPolicy::per_minute(4)),
        )
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let limit = |a: Seen| (a.status, a.rate().0);
    let anon = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    // In the group: the group's plan, else the group's default (before the layer's plan).
    assert_eq!(
        limit(send(&app, as_user("/export", "p", Some("pro"))).await),
        (StatusCode::OK, 2)
    );
    assert_eq!(
        limit(send(&app, as_user("/export", "f", Some("free"))).await),
        (StatusCode::OK, 3)
    );
    assert_eq!(
        limit(send(&app, as_user("/export", "n", None)).await),
        (StatusCode::OK, 3)
    );
    assert_eq!(
        limit(send(&app, anon("/export")).await),
        (StatusCode::OK, 4)
    );
    // Elsewhere: the layer's plan, else its default; the group's plans do not leak out.
    assert_eq!(
        limit(send(&app, as_user("/items/1", "f", Some("free"))).await),
        (StatusCode::OK, 10)
    );
    assert_eq!(
        limit(send(&app, as_user("/items/1", "p", Some("pro"))).await),
        (StatusCode::OK, 20)
    );
    assert_eq!(
        limit(send(&app, anon("/items/1")).await),
        (StatusCode::OK, 30)
    );
}

#[tokio::test]
async fn tenant_keying_shares_one_bucket_per_tenant() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .default_plan(QuotaPolicy::per_minute(2))
        .key_by(KeyBy::Tenant)
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let in_tenant = |user: &str, tenant: &str| {
        Request::get("/items/1")
            .header("x-user", user)
            .header("x-tenant", tenant)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, in_tenant("alice", "acme")).await.status, 200);
    assert_eq!(send(&app, in_tenant("bob", "acme")).await.status, 200);
    assert_eq!(send(&app, in_tenant("carol", "acme")).await.status, 429);
    assert_eq!(send(&app, in_tenant("alice", "globex")).await.status, 200);
    // No tenant: the subject owns the bucket.
    assert_eq!(
        send(&app, as_user("/items/1", "alice", None)).await.status,
        200
    );
}

#[tokio::test]
async fn anonymous_requests_are_limited_per_client_address() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .anonymous(QuotaPolicy::per_minute(2))
        .limiter(l)
        .build()
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let app = app(quota, hits.clone());
    let a = addr(192, 0, 2, 1);
    for _ in 0..2 {
        assert_eq!(send(&app, anonymous_from("/items/1", a)).await.status, 200);
    }
    let r = send(&app, anonymous_from("/items/1", a)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.rate().0, 2);
    assert_eq!(
        send(&app, anonymous_from("/items/1", addr(192, 0, 2, 2)))
            .await
            .status,
        200
    );
    // One IPv6 /64 is one client.
    let v6 = |s: &str| SocketAddr::new(s.parse().unwrap(), 1);
    for _ in 0..2 {
        send(&app, anonymous_from("/items/1", v6("2001:db8:5:6::1"))).await;
    }
    assert_eq!(
        send(&app, anonymous_from("/items/1", v6("2001:db8:5:6:ffff::2")))
            .await
            .status,
        429
    );
    // Authenticated callers are not limited by the anonymous bucket of their address.
    let mut req = as_user("/items/1", "alice", None);
    req.extensions_mut().insert(axum::extract::ConnectInfo(a));
    assert_eq!(send(&app, req).await.status, 200);
    assert_eq!(hits.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn anonymous_without_a_client_address_shares_the_fallback_bucket_never_500() {
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .anonymous(QuotaPolicy::per_minute(2))
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let bare = || Request::get("/items/1").body(Body::empty()).unwrap();
    assert_eq!(send(&app, bare()).await.status, 200);
    assert_eq!(send(&app, bare()).await.status, 200);
    let r = send(&app, bare()).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.rate(), (2, 0, 60));
}

/// Records the keys it is asked about, then defers to a memory limiter.
#[derive(Clone, Default)]
struct Recording {
    keys: Arc<Mutex<Vec<String>>>,
    inner: MemoryRateLimiter,
}

#[async_trait]
impl RateLimiter for Recording {
    async fn check(&self, key: &str, policy: &QuotaPolicy) -> Result<Decision, StoreError> {
        self.keys.lock().unwrap().push(key.to_owned());
        self.inner.check(key, policy).await
    }
}

async fn raw_get(server: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    (status, text.to_ascii_lowercase())
}

#[tokio::test]
async fn anonymous_over_real_http_is_keyed_by_the_peer_address() {
    let limiter = Recording::default();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .anonymous(QuotaPolicy::per_minute(2))
        .limiter(limiter.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let (s1, h1) = raw_get(server, "/items/1").await;
    let (s2, _) = raw_get(server, "/items/2").await;
    let (s3, h3) = raw_get(server, "/items/3").await;
    task.abort();
    assert_eq!((s1, s2, s3), (200, 200, 429));
    assert!(h1.contains("ratelimit-remaining: 1\r\n"), "{h1}");
    assert!(h3.contains("retry-after: 30\r\n"), "{h3}");
    assert!(h3.contains("ratelimit-remaining: 0\r\n"), "{h3}");
    let keys = limiter.keys.lock().unwrap().clone();
    assert_eq!(keys, vec!["ip:127.0.0.1"; 3]);
}

/// A limiter whose backend is down.
struct Down;

#[async_trait]
impl RateLimiter for Down {
    async fn check(&self, _: &str, _: &QuotaPolicy) -> Result<Decision, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn limiter_failure_fails_closed_with_503_and_never_reaches_the_handler() {
    let hits = Arc::new(AtomicUsize::new(0));
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .limiter(Down)
        .build()
        .unwrap();
    let app = app(quota, hits.clone());
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.json()["status"], 503);
    assert!(!a.body.contains("connection refused"));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn rejected_credentials_never_reach_the_quota_layer() {
    let limiter = Recording::default();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .limiter(limiter.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let a = send(&app, as_user("/items/1", "mallory", None)).await;
    assert_eq!(a.status, 401);
    assert!(a.headers.get("ratelimit-limit").is_none());
    assert!(limiter.keys.lock().unwrap().is_empty());
}

#[tokio::test]
async fn key_state_stays_bounded_under_100k_distinct_anonymous_addresses() {
    const CAP: usize = 1_000;
    let clock = FakeRelativeClock::default();
    let l = MemoryRateLimiter::with_clock(clock.clone()).with_capacity(CAP);
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .anonymous(QuotaPolicy::per_second(1))
        .default_plan(QuotaPolicy::per_second(1))
        .limiter(l.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    let nth = |i: u32| {
        let [_, b, c, d] = i.to_be_bytes();
        addr(10, b, c, d)
    };

    // A flood of 100k distinct addresses, while time passes: idle keys make room.
    let mut max_len = 0;
    let mut refused = 0;
    for i in 0..100_000u32 {
        if i % 500 == 0 {
            clock.advance(Duration::from_secs(1));
        }
        match send(&app, anonymous_from("/items/1", nth(i))).await.status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            s => panic!("unexpected {s}"),
        }
        max_len = max_len.max(l.len());
    }
    assert!(max_len <= CAP, "{max_len} keys held");
    assert_eq!(refused, 0, "keys idle for a refill period are dropped");

    // Time stops: the table fills with live keys and new addresses are refused (503, fail
    // closed), never admitted unlimited and never a reason to grow.
    clock.advance(Duration::from_secs(5));
    let mut statuses = std::collections::BTreeMap::new();
    for i in 200_000..203_000u32 {
        let s = send(&app, anonymous_from("/items/1", nth(i))).await.status;
        *statuses.entry(s.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&(CAP as i32)));
    assert_eq!(statuses.get(&503), Some(&2_000));
    assert!(l.len() <= CAP);
    // Known addresses keep their bucket; authenticated callers have a policy of their own.
    assert_eq!(
        send(&app, anonymous_from("/items/1", nth(200_000)))
            .await
            .status,
        429
    );
    assert_eq!(
        send(&app, as_user("/items/1", "alice", None)).await.status,
        200
    );
    // Once the buckets refill, the next new address gets in.
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        send(&app, anonymous_from("/items/1", nth(300_000)))
            .await
            .status,
        200
    );
    assert!(l.len() <= 2, "{} keys after the sweep", l.len());
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_dropped_by_the_scheduled_sweeper() {
    let (l, clock) = limiter();
    let _sweeper = l.spawn_sweeper(Duration::from_secs(30));
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .default_plan(QuotaPolicy::per_second(1).burst(5))
        .limiter(l.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    // Each user empties its bucket: five requests, regained one a second.
    for i in 0..100 {
        for _ in 0..5 {
            send(&app, as_user("/items/1", &format!("user{i}"), None)).await;
        }
    }
    assert_eq!(l.len(), 100);
    clock.advance(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(l.len(), 100, "buckets not yet full: still needed");
    clock.advance(Duration::from_secs(2));
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        l.len(),
        0,
        "refilled buckets are indistinguishable from new ones"
    );
    let a: Seen = send(&app, as_user("/items/1", "user0", None)).await;
    assert_eq!(a.rate().1, 4, "a dropped key starts with a full bucket");
}

#[tokio::test]
async fn a_custom_error_responder_still_gets_the_ratelimit_fields_on_429() {
    use apiauth_core::{AuthError, ErrorResponder};
    use axum::response::IntoResponse;
    let (l, _) = limiter();
    let quota = QuotaLayer::builder()
        .legacy_headers()
        .default_plan(QuotaPolicy::per_minute(1))
        .limiter(l)
        .build()
        .unwrap();
    let app = app(quota, Default::default()).layer(axum::Extension(ErrorResponder::new(
        |e: &AuthError| (e.status(), "slow down").into_response(),
    )));
    send(&app, as_user("/items/1", "alice", None)).await;
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!((a.status.as_u16(), a.body.as_str()), (429, "slow down"));
    assert_eq!(a.rate(), (1, 0, 60));
    assert_eq!(a.header("retry-after"), Some("60"));
}
