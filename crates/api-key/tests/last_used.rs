//! Last-used times reach the store in batches, not with a write per request.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiauth_api_key::{ApiKeys, NewKey};
use apiauth_core::clock::{Clock, ManualClock};
use common::*;
use http::StatusCode;

#[tokio::test]
async fn many_requests_make_one_batched_write_per_resolution_period() {
    let store = Instrumented::default();
    let clock = ManualClock::starting_now();
    let keys = ApiKeys::new(Arc::new(store.clone()))
        .prefix(PREFIX)
        .unwrap()
        .clock(Arc::new(clock.clone()));
    let a = keys.create(NewKey::new("a")).await.unwrap();
    let b = keys.create(NewKey::new("b")).await.unwrap();
    // A flush interval longer than the test: only the explicit flush below writes.
    let layer = keys
        .auth()
        .last_used_resolution(Duration::from_secs(60))
        .last_used_flush_interval(Duration::from_secs(3600))
        .layer()
        .unwrap();
    let app = routes().layer(layer.clone());
    for i in 0..20 {
        let k = if i % 4 == 0 { &b.key } else { &a.key };
        let seen = send(&app, get_with("/me", &[("x-api-key", k.expose_secret())])).await;
        assert_eq!(seen.status, StatusCode::OK);
        clock.advance(Duration::from_millis(100));
    }
    let last_a = clock.now() - Duration::from_millis(100);
    assert!(store.last_used_calls.lock().unwrap().is_empty());
    layer.authenticator().flush_last_used().await.unwrap();
    {
        let calls = store.last_used_calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "one write for 20 requests");
        assert_eq!(calls[0].len(), 2);
        let a_time = calls[0]
            .iter()
            .find(|(id, _)| *id == a.summary.id)
            .unwrap()
            .1;
        assert_eq!(a_time, last_a, "the latest use is kept");
    }
    let seen_a = keys.get(&a.summary.id).await.unwrap().unwrap();
    assert!(seen_a.last_used_at.is_some());

    // Within the resolution period the stored time is fresh enough: nothing is queued.
    for _ in 0..10 {
        send(
            &app,
            get_with("/me", &[("x-api-key", a.key.expose_secret())]),
        )
        .await;
    }
    layer.authenticator().flush_last_used().await.unwrap();
    assert_eq!(store.last_used_calls.lock().unwrap().len(), 1);

    // After it, the next use is recorded again.
    clock.advance(Duration::from_secs(61));
    send(
        &app,
        get_with("/me", &[("x-api-key", a.key.expose_secret())]),
    )
    .await;
    layer.authenticator().flush_last_used().await.unwrap();
    let calls = store.last_used_calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1], vec![(a.summary.id.clone(), clock.now())]);
}

#[tokio::test]
async fn queued_times_are_flushed_in_the_background() {
    let f = Fixture::new();
    let created = f.keys.create(NewKey::new("alice")).await.unwrap();
    let app = routes().layer(
        f.auth()
            .last_used_flush_interval(Duration::from_millis(10))
            .layer()
            .unwrap(),
    );
    let seen = send(
        &app,
        get_with("/me", &[("x-api-key", created.key.expose_secret())]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::OK);
    // Generous deadline: a loaded machine may run the flush late, but it must run.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = f.keys.get(&created.summary.id).await.unwrap().unwrap();
        if s.last_used_at == Some(f.clock.now()) {
            break;
        }
        assert!(Instant::now() < deadline, "last-used time never written");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn rejected_requests_record_no_use() {
    let store = Instrumented::default();
    let keys = ApiKeys::new(Arc::new(store.clone()))
        .prefix(PREFIX)
        .unwrap();
    let created = keys.create(NewKey::new("a")).await.unwrap();
    keys.revoke(&created.summary.id).await.unwrap();
    let layer = keys.auth().layer().unwrap();
    let app = routes().layer(layer.clone());
    let seen = send(
        &app,
        get_with("/me", &[("x-api-key", created.key.expose_secret())]),
    )
    .await;
    assert_eq!(seen.status, StatusCode::UNAUTHORIZED);
    layer.authenticator().flush_last_used().await.unwrap();
    assert!(store.last_used_calls.lock().unwrap().is_empty());
}
