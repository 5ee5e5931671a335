//! Argon2 stays off the async runtime: other requests keep being served while it runs.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use apiauth_basic::{BasicAuth, LockoutPolicy, MemoryCredentialStore, PasswordHasher};
use common::{app, basic, me};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn relaxed() -> LockoutPolicy {
    LockoutPolicy::new(100_000, Duration::from_secs(600), Duration::from_secs(1)).unwrap()
}

/// On a single-threaded runtime, a task that wakes every 5 ms keeps ticking while a request
/// runs the default (OWASP, ~100 ms) argon2: it would be frozen if argon2 ran on that thread.
#[tokio::test(flavor = "current_thread")]
async fn argon2_runs_off_the_async_runtime_threads() {
    let hasher = PasswordHasher::default();
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", hasher.hash("correct horse"));
    let auth = BasicAuth::builder(store)
        .password_hasher(hasher)
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());

    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::task::yield_now().await;
    let before = ticks.load(Ordering::SeqCst);
    let started = Instant::now();
    let a = me(&r, "alice", "wrong").await;
    let took = started.elapsed();
    let during = ticks.load(Ordering::SeqCst) - before;
    ticker.abort();

    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(auth.stats().password_verifications, 1);
    // ~100 ms of argon2 leaves room for ~20 ticks; a blocked thread allows at most one.
    assert!(
        took >= Duration::from_millis(20),
        "argon2 took only {took:?}"
    );
    assert!(
        during >= 3,
        "only {during} ticks in {took:?}: the runtime thread was blocked"
    );
}

/// One request over a fresh connection; returns the status code.
async fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let head = String::from_utf8_lossy(&out);
    head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_wrong_passwords_do_not_starve_healthz() {
    // ~25 ms per argon2 run, a few at a time: the batch takes about a second or more.
    let hasher = PasswordHasher::dangerous_with_params(8192, 2, 1).unwrap();
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", hasher.hash("correct horse"));
    let auth = BasicAuth::builder(store)
        .password_hasher(hasher)
        // This test is about load, not lock-outs: let every guess reach argon2.
        .user_lockout(relaxed())
        .user_address_lockout(relaxed())
        .address_lockout(relaxed())
        .verification_queue_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service =
        app(auth.clone().into_layer()).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move { axum::serve(listener, service).await });

    let batch_started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let wrong = basic("alice", "not the password");
    let batch: Vec<_> = (0..100)
        .map(|_| {
            let (wrong, done) = (wrong.clone(), done.clone());
            tokio::spawn(async move {
                let status = get(addr, "/me", Some(&wrong)).await;
                done.fetch_add(1, Ordering::SeqCst);
                status
            })
        })
        .collect();

    // Wait until argon2 is busy, then probe /healthz a few times while the batch runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while auth.stats().password_verifications < 2 {
        assert!(Instant::now() < deadline, "the batch never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        assert_eq!(get(addr, "/healthz", None).await, 200);
        worst = worst.max(t.elapsed());
    }
    let done_when_probed = done.load(Ordering::SeqCst);

    let mut statuses = Vec::new();
    for t in batch {
        statuses.push(t.await.unwrap());
    }
    let batch_took = batch_started.elapsed();
    server.abort();

    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    assert_eq!(auth.stats().password_verifications, 100);
    assert!(
        done_when_probed < 100,
        "the probes finished only after the batch ({batch_took:?})"
    );
    // Generous: the slowest probe must take well under a quarter of the batch.
    assert!(
        worst * 4 < batch_took,
        "/healthz took up to {worst:?} while the argon2 batch took {batch_took:?}"
    );
}
