//! Counters exported through the `metrics` crate, read back with a small in-test recorder.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use apiauth_quota::metric::{self};
use apiauth_quota::{QuotaLayer, QuotaPolicy};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

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
async fn rate_limit_rejections_and_usage_are_exported() {
    let recorder = TestRecorder::default();
    let _guard = metrics::set_default_local_recorder(&recorder);
    metric::describe();
    let quota = QuotaLayer::builder()
        .plan("free", QuotaPolicy::per_minute(2))
        .build()
        .unwrap();
    let app = app(quota, Default::default());
    for _ in 0..3 {
        send(&app, as_user("/items/1", "alice", Some("free"))).await;
    }
    send(&app, as_user("/missing/7", "bob", None)).await;

    assert_eq!(
        recorder.get(r#"apiauth_ratelimit_rejected_total{policy="plan:free"}"#),
        1
    );
    assert_eq!(
        recorder.get(
            r#"apiauth_usage_requests_total{policy="plan:free",route="/items/{id}",status_class="2xx"}"#
        ),
        2
    );
    assert_eq!(
        recorder.get(
            r#"apiauth_usage_requests_total{policy="default",route="/missing/{id}",status_class="4xx"}"#
        ),
        1
    );
    // No label carries a subject.
    assert!(
        recorder
            .names()
            .iter()
            .all(|n| !n.contains("alice") && !n.contains("bob")),
        "{:?}",
        recorder.names()
    );
}
