//! The `iat` window and the replay window on an injected clock, without sleeping.

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{Clock, ManualClock};
use apiauth_dpop::{DpopKey, DpopRefusal, DpopVerifier, MemoryDpopReplayStore};
use http::Method;

const URL: &str = "https://api.example/items";

fn setup() -> (ManualClock, DpopVerifier) {
    let clock = ManualClock::starting_now();
    let store = MemoryDpopReplayStore::with_capacity(1000, Arc::new(clock.clone()));
    let v = DpopVerifier::builder("https://api.example")
        .clock(Arc::new(clock.clone()))
        .replay_store(Arc::new(store))
        .build()
        .unwrap();
    (clock, v)
}

#[tokio::test]
async fn a_proof_is_accepted_for_sixty_seconds_and_five_seconds_early_then_refused() {
    let (clock, v) = setup();
    let key = DpopKey::generate_es256().unwrap();
    let at = |offset: i64| {
        let now = clock.now();
        let t = if offset >= 0 {
            now + Duration::from_secs(offset as u64)
        } else {
            now - Duration::from_secs((-offset) as u64)
        };
        key.proof("GET", URL).issued_at(t).sign().unwrap()
    };
    for ok in [0, -60, 5] {
        assert!(
            v.check(&at(ok), &Method::GET, "/items", None).is_ok(),
            "{ok}"
        );
    }
    let r = v.check(&at(-62), &Method::GET, "/items", None).unwrap_err();
    assert!(matches!(r, DpopRefusal::IssuedTooLongAgo), "{r}");
    let r = v.check(&at(7), &Method::GET, "/items", None).unwrap_err();
    assert!(matches!(r, DpopRefusal::IssuedInFuture), "{r}");

    // A proof made now is good until its iat is 60 s old.
    let proof = at(0);
    clock.advance(Duration::from_secs(59));
    assert!(v.check(&proof, &Method::GET, "/items", None).is_ok());
    clock.advance(Duration::from_secs(3));
    let r = v.check(&proof, &Method::GET, "/items", None).unwrap_err();
    assert!(matches!(r, DpopRefusal::IssuedTooLongAgo), "{r}");
}

#[tokio::test]
async fn a_spent_proof_stays_spent_for_as_long_as_it_could_be_accepted() {
    let (clock, v) = setup();
    let key = DpopKey::generate_es256().unwrap();
    // Made 5 s ahead of our clock: acceptable until 65 s from now.
    let proof = key
        .proof("GET", URL)
        .issued_at(clock.now() + Duration::from_secs(5))
        .sign()
        .unwrap();
    v.verify(&proof, &Method::GET, "/items", None)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(64));
    let r = v
        .verify(&proof, &Method::GET, "/items", None)
        .await
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::Replayed), "{r}");
    clock.advance(Duration::from_secs(2));
    let r = v
        .verify(&proof, &Method::GET, "/items", None)
        .await
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::IssuedTooLongAgo), "{r}");
}

#[tokio::test]
async fn two_keys_may_use_the_same_jti() {
    let (_, v) = setup();
    for _ in 0..2 {
        let key = DpopKey::generate_ed25519().unwrap();
        let proof = key.proof("GET", URL).jti("same").sign().unwrap();
        v.verify(&proof, &Method::GET, "/items", None)
            .await
            .unwrap();
    }
}

#[test]
fn configuration_errors_are_reported_at_build() {
    assert!(DpopVerifier::builder("not a url").build().is_err());
    assert!(DpopVerifier::builder("ftp://x.example").build().is_err());
    assert!(
        DpopVerifier::builder("https://x.example/?q=1")
            .build()
            .is_err()
    );
    assert!(
        DpopVerifier::builder("https://x.example")
            .algorithms([])
            .build()
            .is_err()
    );
}
