//! Authentication outcomes counted from the audit events, alone in its binary: `tracing`
//! caches per-callsite interest, and parallel tests with their own subscribers can hide events.
//! Counters are read back with a small in-test recorder.

mod common;

use common::recorder::TestRecorder;

use apiauth_quota::QuotaLayer;
use apiauth_quota::metric::AuthMetricsLayer;
use axum::body::Body;
use http::Request;
use tracing_subscriber::layer::SubscriberExt;

use common::{app, as_user, send};

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
