//! Usage metering through a real axum `Router`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apiauth_core::StoreError;
use apiauth_quota::{
    MemoryUsageMeter, QuotaLayer, QuotaPolicy, StatusClass, UsageCount, UsageMeter,
};
use async_trait::async_trait;
use axum::body::Body;
use http::Request;
use serde_json::json;

use common::{app, as_user, send};

fn count(route: &str, class: StatusClass, n: u64) -> UsageCount {
    UsageCount {
        route: route.to_owned(),
        status_class: class,
        count: n,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_are_exact_after_10k_concurrent_requests() {
    let meter = MemoryUsageMeter::new();
    let quota = QuotaLayer::builder()
        .default_plan(QuotaPolicy::per_second(1_000_000))
        .usage_meter(meter.clone())
        .build()
        .unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let app = app(quota, hits.clone());
    let users = ["u0", "u1", "u2", "u3"];
    let mut tasks = Vec::with_capacity(10_000);
    for i in 0..10_000usize {
        let app = app.clone();
        let user = users[i % 4];
        // Raw paths differ; the template is what is counted.
        let path = if i % 5 == 0 {
            format!("/missing/{i}")
        } else {
            format!("/items/{i}")
        };
        tasks.push(tokio::spawn(async move {
            send(&app, as_user(&path, user, None)).await.status.as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap() == 200);
    }
    assert_eq!(ok, 8_000);
    assert_eq!(hits.load(Ordering::SeqCst), 8_000);
    for user in users {
        // Each user sent 2,500 requests; every fifth of them went to /missing.
        assert_eq!(
            meter.usage(&format!("demo::{user}")).await.unwrap(),
            vec![
                count("/items/{id}", StatusClass::Success, 2_000),
                count("/missing/{id}", StatusClass::ClientError, 500),
            ],
            "{user}"
        );
    }
    assert_eq!(meter.series(), 8);
}

#[tokio::test]
async fn only_requests_that_reached_the_handler_are_counted() {
    let meter = MemoryUsageMeter::new();
    let quota = QuotaLayer::builder()
        .default_plan(QuotaPolicy::per_minute(2))
        .usage_meter(meter.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    for _ in 0..5 {
        send(&app, as_user("/items/1", "alice", None)).await;
    }
    // Refused credentials stop at the auth layer; nothing is counted for anybody.
    assert_eq!(
        send(&app, as_user("/items/1", "mallory", None))
            .await
            .status,
        401
    );
    assert_eq!(
        meter.usage("demo::alice").await.unwrap(),
        vec![count("/items/{id}", StatusClass::Success, 2)],
        "the three 429s were not counted"
    );
    assert!(meter.usage("demo::mallory").await.unwrap().is_empty());
}

#[tokio::test]
async fn unmatched_paths_are_counted_under_one_label_not_the_raw_path() {
    let meter = MemoryUsageMeter::new();
    let quota = QuotaLayer::builder()
        .usage_meter(meter.clone())
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    for i in 0..3 {
        let a = send(&app, as_user(&format!("/nowhere/{i}"), "alice", None)).await;
        assert_eq!(a.status, 404);
        // The fallback passes through the layer too, so it carries the fields.
        assert!(a.headers.contains_key("ratelimit-policy"));
    }
    assert_eq!(
        meter.usage("demo::alice").await.unwrap(),
        vec![count("<unmatched>", StatusClass::ClientError, 3)]
    );
}

#[tokio::test]
async fn a_principal_reads_its_own_usage_and_nobody_elses() {
    let quota = QuotaLayer::builder().build().unwrap();
    let app = app(quota, Default::default());
    for i in 0..3 {
        send(&app, as_user(&format!("/items/{i}"), "alice", None)).await;
    }
    send(&app, as_user("/missing/1", "alice", None)).await;
    send(&app, as_user("/export", "bob", None)).await;

    let a = send(&app, as_user("/usage", "alice", None)).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json(),
        json!({
            "subject": "alice",
            "identity": "demo::alice",
            "total": 4,
            "usage": [
                {"route": "/items/{id}", "status_class": "2xx", "count": 3},
                {"route": "/missing/{id}", "status_class": "4xx", "count": 1},
            ]
        })
    );
    let b = send(&app, as_user("/usage", "bob", None)).await;
    assert_eq!(b.json()["total"], 1);
    assert!(!b.body.contains("/items"), "{}", b.body);
    // The earlier query itself was counted, after it answered.
    let a = send(&app, as_user("/usage", "alice", None)).await;
    assert_eq!(a.json()["total"], 5);

    let anon = send(&app, Request::get("/usage").body(Body::empty()).unwrap()).await;
    assert_eq!(anon.status, 401);
    assert_eq!(anon.header("www-authenticate"), Some("Demo"));
}

/// A meter whose backend is down.
struct Down;

#[async_trait]
impl UsageMeter for Down {
    async fn record(&self, _: &str, _: &str, _: StatusClass) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
    async fn usage(&self, _: &str) -> Result<Vec<UsageCount>, StoreError> {
        Err(StoreError::Unavailable("timeout".into()))
    }
}

#[tokio::test]
async fn meter_failure_keeps_the_handlers_answer_but_the_usage_query_fails_closed() {
    let quota = QuotaLayer::builder().usage_meter(Down).build().unwrap();
    let app = app(quota, Default::default());
    let a = send(&app, as_user("/items/1", "alice", None)).await;
    assert_eq!((a.status.as_u16(), a.body.as_str()), (200, "item"));
    let q = send(&app, as_user("/usage", "alice", None)).await;
    assert_eq!(q.status, 503);
    assert_eq!(q.header("retry-after"), Some("1"));
    assert!(!q.body.contains("timeout"));
}

#[tokio::test]
async fn usage_query_outside_a_metering_layer_is_503_not_500() {
    let quota = QuotaLayer::builder().without_usage_meter().build().unwrap();
    let app = app(quota, Default::default());
    let q = send(&app, as_user("/usage", "alice", None)).await;
    assert_eq!(q.status, 503);
    assert_eq!(q.json()["status"], 503);
}
