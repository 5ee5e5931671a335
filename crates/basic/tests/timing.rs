//! Unknown users cost what a wrong password costs. Alone in its binary so that no sibling test
//! competes for the two cores while samples are taken.

mod common;

use std::time::{Duration, Instant};

use apiauth_basic::{BasicAuth, LockoutPolicy, MemoryCredentialStore, PasswordHasher};
use common::{app, me};
use http::StatusCode;

fn relaxed() -> LockoutPolicy {
    LockoutPolicy::new(100_000, Duration::from_secs(600), Duration::from_secs(1)).unwrap()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[tokio::test]
async fn unknown_user_costs_the_same_time_as_a_wrong_password() {
    // Costly enough (~10 ms) that skipping argon2 for unknown users would show ~100x.
    let hasher = PasswordHasher::dangerous_with_params(4096, 2, 1).unwrap();
    let store = MemoryCredentialStore::new();
    store.insert_user("alice", hasher.hash("correct horse"));
    let auth = BasicAuth::builder(store)
        .password_hasher(hasher)
        .user_lockout(relaxed())
        .address_lockout(relaxed())
        .build()
        .unwrap();
    let r = app(auth.clone().into_layer());
    // Warm up (allocator, blocking-pool threads).
    me(&r, "alice", "warm").await;
    me(&r, "mallory", "warm").await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..31 {
        // Interleave, alternating which goes first, so machine noise hits both alike.
        for which in if i % 2 == 0 { [0, 1] } else { [1, 0] } {
            let user = if which == 0 { "mallory" } else { "alice" };
            let t = Instant::now();
            let a = me(&r, user, &format!("guess{i}")).await;
            let took = t.elapsed();
            assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            if which == 0 {
                unknown.push(took)
            } else {
                wrong.push(took)
            }
        }
    }
    let (u, w) = (median(&mut unknown), median(&mut wrong));
    eprintln!("median unknown user {u:?}, wrong password {w:?}");
    // A 2x margin cannot flake on a noisy machine yet catches a skipped hash by far.
    assert!(
        u * 2 > w && w * 2 > u,
        "unknown user median {u:?} vs wrong password median {w:?}"
    );
    assert_eq!(auth.stats().password_verifications, 64);
}
