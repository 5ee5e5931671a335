//! Redis down or frozen: guarded requests answer 503 with `Retry-After` (never a pass), and
//! service comes back by itself when Redis does, without rebuilding anything.

mod common;

use std::time::{Duration, Instant};

use common::TestRedis;
use common::app::{Seen, get_with_token, instance};

/// Short, so an outage is noticed quickly; generous next to a healthy loopback round trip.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How long recovery may take at most before the test calls it broken.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(30);

fn assert_unavailable(seen: &Seen, token: &str) {
    assert_eq!(seen.status, 503, "body: {}", seen.body);
    let after = seen.retry_after().expect("Retry-After in whole seconds");
    assert!(after >= 1);
    // Nothing about the credential or the backend leaks to the client.
    assert!(!seen.body.contains(token) && !seen.body.to_lowercase().contains("redis"));
}

async fn until_ok(app: &axum::Router, token_for: impl Fn(u32) -> String) -> u32 {
    let start = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        let seen = get_with_token(app, &token_for(i)).await;
        match seen.status.as_u16() {
            200 => return i,
            503 => {}
            other => panic!("during recovery got {other}: {}", seen.body),
        }
        assert!(start.elapsed() < RECOVERY_DEADLINE, "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_test_answers_503_then_recovers_when_restarted() {
    let mut redis = TestRedis::own();
    let stores = redis.backend(TIMEOUT).stores();
    let app = instance(stores.revocations.clone(), stores.replay.clone());

    assert_eq!(get_with_token(&app, "jti.t1").await.status, 200);
    assert_eq!(get_with_token(&app, "once.before").await.status, 200);

    redis.kill();
    // Both kinds of guard fail closed, repeatedly, while Redis is away.
    for i in 0..3 {
        assert_unavailable(&get_with_token(&app, "jti.t1").await, "jti.t1");
        let once = format!("once.down-{i}");
        assert_unavailable(&get_with_token(&app, &once).await, &once);
    }

    redis.restart();
    // The same router and backend recover: nothing is rebuilt.
    until_ok(&app, |_| "jti.t1".to_owned()).await;
    until_ok(&app, |i| format!("once.after-{i}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_past_the_timeout_answers_503_then_recovers_when_thawed() {
    let redis = TestRedis::own();
    let stores = redis.backend(TIMEOUT).stores();
    let app = instance(stores.revocations.clone(), stores.replay.clone());
    assert_eq!(get_with_token(&app, "jti.t1").await.status, 200);

    redis.freeze();
    let start = Instant::now();
    assert_unavailable(&get_with_token(&app, "jti.t1").await, "jti.t1");
    // Bounded by the command timeout, not by the frozen server (loose bound: noisy machine).
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_unavailable(&get_with_token(&app, "once.frozen").await, "once.frozen");

    redis.thaw();
    until_ok(&app, |_| "jti.t1".to_owned()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_started_while_redis_is_down_answers_503_then_serves_once_it_is_up() {
    let mut redis = TestRedis::own();
    redis.kill();
    // Building the backend does not connect, so the app starts anyway.
    let stores = redis.backend(TIMEOUT).stores();
    let app = instance(stores.revocations.clone(), stores.replay.clone());
    assert_unavailable(&get_with_token(&app, "jti.t1").await, "jti.t1");

    redis.restart();
    until_ok(&app, |_| "jti.t1".to_owned()).await;
}

#[cfg(feature = "quota")]
mod quota {
    use super::*;
    use apiauth_quota::{QuotaLayer, QuotaPolicy};
    use apiauth_redis::RedisRateLimiter;
    use axum::routing::get;
    use tower::ServiceExt;

    fn limited(limiter: RedisRateLimiter) -> axum::Router {
        let quota = QuotaLayer::builder()
            .anonymous(QuotaPolicy::per_hour(100).burst(50))
            .limiter(limiter)
            .without_usage_meter()
            .build()
            .unwrap();
        axum::Router::new()
            .route("/public", get(|| async { "ok" }))
            .layer(quota)
    }

    async fn status(app: &axum::Router) -> u16 {
        let req = http::Request::get("/public")
            .body(axum::body::Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limiter_fails_closed_by_default_and_open_only_when_configured() {
        let mut redis = TestRedis::own();
        let backend = redis.backend(TIMEOUT);
        let closed = limited(backend.rate_limiter());
        let open = limited(backend.rate_limiter().dangerous_fail_open());
        assert_eq!(status(&closed).await, 200);
        assert_eq!(status(&open).await, 200);

        redis.kill();
        assert_eq!(status(&closed).await, 503);
        assert_eq!(status(&open).await, 200);

        redis.restart();
        let start = Instant::now();
        while status(&closed).await != 200 {
            assert!(start.elapsed() < RECOVERY_DEADLINE, "no recovery");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
