//! `UsageMeter`: exact counts per caller, route template and status class, under concurrency.

use std::sync::Arc;

use apiauth_quota::{StatusClass, UsageCount, UsageMeter};

pub async fn usage_meter_contract(meter: Arc<dyn UsageMeter>) {
    assert!(meter.usage("nobody").await.unwrap().is_empty());
    meter
        .record("alice", "/items/{id}", StatusClass::Success)
        .await
        .unwrap();
    meter
        .record("alice", "/items/{id}", StatusClass::Success)
        .await
        .unwrap();
    meter
        .record("alice", "/items/{id}", StatusClass::ClientError)
        .await
        .unwrap();
    meter
        .record("alice", "/export", StatusClass::ServerError)
        .await
        .unwrap();
    meter
        .record("bob", "/export", StatusClass::Success)
        .await
        .unwrap();
    let count = |route: &str, status_class, count| UsageCount {
        route: route.to_owned(),
        status_class,
        count,
    };
    assert_eq!(
        meter.usage("alice").await.unwrap(),
        [
            count("/export", StatusClass::ServerError, 1),
            count("/items/{id}", StatusClass::Success, 2),
            count("/items/{id}", StatusClass::ClientError, 1),
        ]
    );
    assert_eq!(
        meter.usage("bob").await.unwrap(),
        [count("/export", StatusClass::Success, 1)]
    );

    let mut tasks = Vec::new();
    for _ in 0..500 {
        let m = meter.clone();
        tasks.push(tokio::spawn(async move {
            m.record("carol", "/x", StatusClass::Success).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(meter.usage("carol").await.unwrap()[0].count, 500);
}
