//! Secrets stay out of logs, and unknown client ids cost what wrong secrets cost.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiauth_core::ScopeSet;
use apiauth_oauth2::{AuthorizationServer, MemoryClientRegistry};
use apiauth_testkit::LogCapture;
use common::{AUDIENCE, As};

// One thread: the server tasks run where the subscriber is installed.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_or_token_reaches_a_log_line() {
    let captured = LogCapture::start();

    let a = As::start().await;
    let token = a.token(&a.worker, None).await;
    let post = |form: Vec<(&'static str, String)>, path: &'static str| {
        let req = a.http.post(a.url(path)).form(&form);
        async move { req.send().await.unwrap().status() }
    };
    // A wrong secret, a secret pasted as the client id, introspection and revocation.
    let wrong_secret = format!("{}x", a.worker.secret);
    let s = post(
        vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", "worker".into()),
            ("client_secret", wrong_secret.clone()),
        ],
        "/oauth/token",
    )
    .await;
    assert_eq!(s, 401);
    let s = post(
        vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", a.other.secret.clone()),
            ("client_secret", a.worker.secret.clone()),
        ],
        "/oauth/token",
    )
    .await;
    assert_eq!(s, 401);
    let s = post(
        vec![
            ("token", token.clone()),
            ("client_id", "rs".into()),
            ("client_secret", a.rs.secret.clone()),
        ],
        "/oauth/introspect",
    )
    .await;
    assert_eq!(s, 200);
    let s = post(
        vec![
            ("token", token.clone()),
            ("client_id", "worker".into()),
            ("client_secret", a.worker.secret.clone()),
        ],
        "/oauth/revoke",
    )
    .await;
    assert_eq!(s, 200);

    let logs = captured.text();
    // The events were captured at all...
    assert!(logs.contains("wrong_client_secret"), "{logs}");
    assert!(logs.contains("unknown_client"), "{logs}");
    assert!(
        logs.contains("outcome=\"issue\"") || logs.contains("outcome=issue"),
        "{logs}"
    );
    // ...and none holds a secret or the token.
    for secret in [
        &a.worker.secret,
        &a.other.secret,
        &a.rs.secret,
        &wrong_secret,
        &token,
    ] {
        assert!(!logs.contains(secret.as_str()), "a secret reached the log");
    }
    // Nor does the token's signature alone.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// With production argon2id costs, an unknown client id runs the same argon2 check as a wrong
/// secret (against a dummy hash). Compares medians of interleaved samples; the margin is wide
/// (half) because skipping the check would make unknown ids tens of times faster.
#[tokio::test]
async fn unknown_client_ids_cost_what_wrong_secrets_cost() {
    let clients = MemoryClientRegistry::new(); // OWASP argon2id parameters
    clients.register("worker", ScopeSet::parse("a").unwrap());
    let (listener, addr) = common::listener().await;
    let base = format!("http://{addr}");
    let server = AuthorizationServer::builder(base.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .build()
        .unwrap();
    common::serve_on(listener, server.router()).await;
    let http = reqwest::Client::new();
    let attempt = |id: &'static str| {
        let req = http.post(format!("{base}/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", "ocs_wrong"),
        ]);
        async move {
            let started = Instant::now();
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401);
            started.elapsed()
        }
    };
    // Warm up the connection and the blocking pool.
    attempt("worker").await;
    attempt("nobody").await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..9 {
        known.push(attempt("worker").await);
        unknown.push(attempt("nobody").await);
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 2 > known,
        "unknown ids answered much faster: {unknown:?} vs {known:?}"
    );
}

/// Secret checks are bounded: past the limit a request waits briefly, then gets 503 with
/// `Retry-After` instead of queuing more argon2 runs; permits come back afterwards.
#[tokio::test]
async fn secret_checks_are_bounded_and_saturation_is_503() {
    let clients = MemoryClientRegistry::new(); // OWASP costs: each check takes a while
    let secret = clients.register("worker", ScopeSet::parse("a").unwrap());
    let (listener, addr) = common::listener().await;
    let base = format!("http://{addr}");
    let server = AuthorizationServer::builder(base.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .max_concurrent_secret_checks(1)
        .secret_check_queue_timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    common::serve_on(listener, server.router()).await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let req = http.post(format!("{base}/oauth/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "worker"),
            ("client_secret", "ocs_wrong"),
        ]);
        tasks.push(tokio::spawn(async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let retry = res.headers().contains_key("retry-after");
            let body: serde_json::Value = res.json().await.unwrap();
            (status, retry, body)
        }));
    }
    let mut saturated = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            401 => assert_eq!(body["error"], "invalid_client"),
            503 => {
                saturated += 1;
                assert!(retry);
                assert_eq!(body["error"], "temporarily_unavailable");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(saturated > 0, "eight concurrent checks through one permit");
    // Permits are returned: a correct request succeeds once the burst is over.
    let res = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "worker"),
            ("client_secret", secret.expose_secret()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
