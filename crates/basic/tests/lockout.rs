//! Lock-outs nobody can aim (issue 15 item 2): failures count per (user-id, address) first
//! with a low limit, per address, and per user-id with a high limit and progressive
//! back-off. Driven through a real router; time is a `ManualClock`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_basic::{BasicAuth, LockoutPolicy, MemoryCredentialStore};
use apiauth_core::clock::ManualClock;
use axum::Router;
use common::{Seen, app_from, cheap, me};
use http::{StatusCode, header};

fn alice() -> MemoryCredentialStore {
    let s = MemoryCredentialStore::new();
    s.insert_user("alice", cheap().hash("correct horse"));
    s
}

fn retry_after(a: &Seen) -> u64 {
    a.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A per-user limit of 10, first lock-out 60 s, doubling up to 240 s.
fn tight_user() -> LockoutPolicy {
    LockoutPolicy::new(10, Duration::from_secs(600), Duration::from_secs(60))
        .unwrap()
        .with_backoff_up_to(Duration::from_secs(240))
        .unwrap()
}

/// One layer seen from many addresses: `at(i)` is the router of `198.51.100.i`.
struct Net {
    auth: BasicAuth,
}

impl Net {
    fn at(&self, host: u8) -> Router {
        app_from(
            self.auth.clone().into_layer(),
            &format!("198.51.100.{host}:4000"),
        )
    }
}

#[tokio::test]
async fn sixty_wrong_passwords_from_one_address_leave_the_user_free_elsewhere() {
    // The defaults: 5 per (user, address), 20 per address, 100 per user.
    let auth = BasicAuth::builder(alice())
        .password_hasher(cheap())
        .build()
        .unwrap();
    let attacker = app_from(auth.clone().into_layer(), "203.0.113.66:5000");
    let user = app_from(auth.clone().into_layer(), "203.0.113.77:5000");
    for i in 0..60 {
        let a = me(&attacker, "alice", &format!("guess{i}")).await;
        if i < 5 {
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "guess {i}");
        } else {
            assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "guess {i}");
            assert_eq!(retry_after(&a), 900);
            assert!(a.headers.get(header::WWW_AUTHENTICATE).is_none());
        }
    }
    // Only the five checked guesses ran argon2.
    assert_eq!(auth.stats().password_verifications, 5);
    let a = me(&user, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["subject"], "alice");
    // The attacker's address stays locked even with the right password.
    let a = me(&attacker, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn guesses_spread_over_addresses_reach_the_per_user_lock_whose_back_off_doubles() {
    let clock = ManualClock::starting_now();
    let net = Net {
        auth: BasicAuth::builder(alice())
            .password_hasher(cheap())
            .user_lockout(tight_user())
            .cache_ttl(Duration::ZERO)
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    };
    let mut host = 1u8;
    for expected in [60, 120, 240, 240] {
        // Two guesses from each of five addresses: no address nears its own limits.
        for _ in 0..5 {
            for _ in 0..2 {
                let a = me(&net.at(host), "alice", "guess").await;
                assert_eq!(a.status, StatusCode::UNAUTHORIZED);
            }
            host += 1;
        }
        // Locked from everywhere, the right password included.
        let a = me(&net.at(200), "alice", "correct horse").await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&a), expected);
        clock.advance(Duration::from_secs(expected));
        assert_eq!(
            me(&net.at(201), "alice", "correct horse").await.status,
            StatusCode::OK
        );
    }
    // Quiet for the cap after the last lock-out: the next one is short again.
    clock.advance(Duration::from_secs(240));
    for _ in 0..5 {
        for _ in 0..2 {
            me(&net.at(host), "alice", "guess").await;
        }
        host += 1;
    }
    let a = me(&net.at(202), "alice", "correct horse").await;
    assert_eq!(retry_after(&a), 60);
}

#[tokio::test]
async fn a_signed_in_user_keeps_working_through_the_per_user_lock() {
    let clock = ManualClock::starting_now();
    let net = Net {
        auth: BasicAuth::builder(alice())
            .password_hasher(cheap())
            .user_lockout(tight_user())
            .cache_ttl(Duration::from_secs(3600))
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    };
    let home = net.at(10);
    assert_eq!(
        me(&home, "alice", "correct horse").await.status,
        StatusCode::OK
    );
    for host in 20..25 {
        for _ in 0..2 {
            me(&net.at(host), "alice", "guess").await;
        }
    }
    // The per-user lock is on: a request whose credentials were not verified is refused...
    let a = me(&net.at(30), "alice", "correct horse2").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    // ...but the verified credentials, cached, still pass, from any address.
    for host in [10, 31] {
        let a = me(&net.at(host), "alice", "correct horse").await;
        assert_eq!(a.status, StatusCode::OK, "from {host}: {}", a.body);
    }
    assert_eq!(net.auth.stats().cache_hits, 2);
}

#[tokio::test]
async fn guesses_refused_by_the_per_user_lock_still_spend_their_address_budget() {
    let clock = ManualClock::starting_now();
    let net = Net {
        auth: BasicAuth::builder(alice())
            .password_hasher(cheap())
            .user_lockout(tight_user())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    };
    for host in 1..=5 {
        for _ in 0..2 {
            me(&net.at(host), "alice", "guess").await;
        }
    }
    let runs = net.auth.stats().password_verifications;
    // From a fresh address: five refusals by the user lock (60 s), then that address's own
    // (user, address) lock-out of 15 minutes, none of them checked.
    let guesser = net.at(99);
    for _ in 0..5 {
        let a = me(&guesser, "alice", "guess").await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&a), 60);
    }
    let a = me(&guesser, "alice", "guess").await;
    assert_eq!(retry_after(&a), 900);
    assert_eq!(net.auth.stats().password_verifications, runs);
    // The user lock ends; the guessing address stays locked, others are free.
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        me(&guesser, "alice", "correct horse").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        me(&net.at(100), "alice", "correct horse").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_guessing_many_users_meets_the_address_lock() {
    let net = Net {
        auth: BasicAuth::builder(alice())
            .password_hasher(cheap())
            .build()
            .unwrap(),
    };
    let spray = net.at(7);
    for i in 0..20 {
        let a = me(&spray, &format!("user{i}"), "x").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = me(&spray, "alice", "correct horse").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&a), 900);
    assert_eq!(
        me(&net.at(8), "alice", "correct horse").await.status,
        StatusCode::OK
    );
}
