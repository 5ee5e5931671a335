//! Counters exported through the `metrics` crate, read back with a small in-test recorder.

mod common;

use common::recorder::TestRecorder;

use apiauth_quota::metric::{self};
use apiauth_quota::{QuotaLayer, QuotaPolicy};

use common::{app, as_user, send};

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
