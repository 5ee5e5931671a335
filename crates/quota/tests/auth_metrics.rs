//! Authentication outcomes counted from the audit events, alone in its binary: `tracing`
//! caches per-callsite interest, and parallel tests with their own subscribers can hide events.
//! Counters are read back with a small in-test recorder.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apiauth_quota::QuotaLayer;
use apiauth_quota::metric::AuthMetricsLayer;
use axum::body::Body;
use http::Request;
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tracing_subscriber::layer::SubscriberExt;

use common::{app, as_user, send};

struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

/// Counters by `name{label="value",…}` (labels sorted).
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<Cell>>>,
}

fn render(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl TestRecorder {
    fn get(&self, rendered: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(rendered)
            .map_or(0, |c| c.0.load(Ordering::SeqCst))
    }
    fn names(&self) -> Vec<String> {
        self.counters.lock().unwrap().keys().cloned().collect()
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let cell = self
            .counters
            .lock()
            .unwrap()
            .entry(render(key))
            .or_insert_with(|| Arc::new(Cell(AtomicU64::new(0))))
            .clone();
        Counter::from_arc(cell)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

// A current-thread runtime keeps every poll on this thread, where the local recorder and
// the default subscriber are installed.
#[tokio::test(flavor = "current_thread")]
async fn authentication_outcomes_are_counted_by_method_and_reason() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let subscriber = tracing_subscriber::registry().with(AuthMetricsLayer::new());
    let _sub = tracing::subscriber::set_default(subscriber);
    // Tests in this binary run in parallel with their own subscribers; tracing caches each
    // callsite's interest, so recompute it now that this one is installed.
    tracing::callsite::rebuild_interest_cache();

    let app = app(QuotaLayer::builder().build().unwrap(), Default::default());
    send(&app, as_user("/items/1", "alice", None)).await;
    send(&app, as_user("/items/2", "bob", None)).await;
    send(&app, as_user("/items/1", "mallory", None)).await;
    // Anonymous: no method ran, so no outcome; the extractor-less route just answers.
    send(&app, Request::get("/items/1").body(Body::empty()).unwrap()).await;

    assert_eq!(
        recorder
            .get(r#"apiauth_auth_outcomes_total{method="demo",outcome="accept",reason="none"}"#),
        2
    );
    assert_eq!(
        recorder.get(
            r#"apiauth_auth_outcomes_total{method="demo",outcome="reject",reason="unknown_user"}"#
        ),
        1
    );
    let outcomes: Vec<String> = recorder
        .names()
        .into_iter()
        .filter(|n| n.starts_with("apiauth_auth_outcomes_total"))
        .collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}
