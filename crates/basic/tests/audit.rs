//! Audit events for failures and lock-outs, and no secret in them. Logs are captured with
//! `apiauth_testkit::LogCapture`.

mod common;

use std::time::Duration;

use apiauth_basic::{BasicAuth, LockoutPolicy, MemoryCredentialStore};
use apiauth_testkit::LogCapture;
use common::{app_from, cheap, me};
use http::StatusCode;

fn policy(max: u32, lockout_secs: u64) -> LockoutPolicy {
    LockoutPolicy::new(
        max,
        Duration::from_secs(600),
        Duration::from_secs(lockout_secs),
    )
    .unwrap()
}

fn alice() -> MemoryCredentialStore {
    let s = MemoryCredentialStore::new();
    s.insert_user("alice", cheap().hash("correct horse"));
    s
}

#[tokio::test]
async fn failures_and_lockouts_are_audited_without_the_password() {
    let logs = LogCapture::start();

    let r = app_from(
        BasicAuth::builder(alice())
            .password_hasher(cheap())
            .user_lockout(policy(2, 60))
            .layer()
            .unwrap(),
        "192.0.2.9:4444",
    );
    assert_eq!(
        me(&r, "alice", "Wr0ngPassw0rd-1").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&r, "alice", "Wr0ngPassw0rd-2").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me(&r, "alice", "correct horse").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        me(&r, "ghost", "Wr0ngPassw0rd-3").await.status,
        StatusCode::UNAUTHORIZED
    );

    let out = logs.text();
    let audit: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("apiauth::audit"))
        .collect();
    let failures = audit
        .iter()
        .filter(|l| l.contains("reason=\"wrong_password\"") && l.contains("subject=\"alice\""))
        .count();
    assert_eq!(failures, 2, "{out}");
    // An unknown user-id may be a pasted password: only its short hash reaches the log.
    let ghost = apiauth_basic::LockoutKey::short_hash("ghost");
    assert!(ghost.starts_with("sha256:"));
    assert!(
        audit.iter().any(|l| l.contains("WARN")
            && l.contains("reason=\"unknown_user\"")
            && l.contains(&format!("subject=\"{ghost}\""))),
        "{out}"
    );
    assert!(
        !out.contains("ghost"),
        "the unknown user-id was logged:\n{out}"
    );
    let lockouts: Vec<_> = audit
        .iter()
        .filter(|l| l.contains("outcome=\"lockout\""))
        .collect();
    assert_eq!(lockouts.len(), 1, "{out}");
    assert!(lockouts[0].contains("subject=\"alice\"") && lockouts[0].contains("lockout_secs=60"));
    assert!(lockouts[0].contains("client=192.0.2.9"), "{out}");
    assert!(
        audit
            .iter()
            .any(|l| l.contains("reason=\"user_locked_out\"") && l.contains("status=429")),
        "{out}"
    );
    for secret in ["Wr0ngPassw0rd", "correct horse", "YWxpY2U6"] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
}
