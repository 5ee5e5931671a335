//! DPoP proofs are single-use across instances: two verifiers, each on its own connection
//! to one real `redis-server`, in one namespace.
#![cfg(feature = "dpop")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use apiauth_dpop::{DpopKey, DpopRefusal, DpopVerifier};
use common::TestRedis;
use http::Method;

const TIMEOUT: Duration = Duration::from_secs(5);
const URL: &str = "https://api.example.test/items";

fn verifier(store: apiauth_redis::RedisDpopReplayStore) -> DpopVerifier {
    DpopVerifier::builder("https://api.example.test")
        .replay_store(Arc::new(store))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_used_on_instance_a_is_refused_as_a_replay_on_instance_b() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let a = verifier(redis.backend_in(&ns, TIMEOUT).dpop_replay_store());
    let b = verifier(redis.backend_in(&ns, TIMEOUT).dpop_replay_store());
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("GET", URL).access_token("tok").sign().unwrap();

    a.verify(&proof, &Method::GET, "/items", Some("tok"))
        .await
        .expect("first use on A");
    let r = b
        .verify(&proof, &Method::GET, "/items", Some("tok"))
        .await
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::Replayed), "{r}");
    // A fresh proof from the same key is fine on B.
    let fresh = key.proof("GET", URL).access_token("tok").sign().unwrap();
    b.verify(&fresh, &Method::GET, "/items", Some("tok"))
        .await
        .expect("a new proof");
    // Another namespace (another app) does not share the entries.
    let other = verifier(redis.backend(TIMEOUT).dpop_replay_store());
    other
        .verify(&proof, &Method::GET, "/items", Some("tok"))
        .await
        .expect("other namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_concurrent_uses_on_two_instances_exactly_one_is_accepted() {
    let redis = TestRedis::new();
    let ns = common::unique_namespace();
    let a = verifier(redis.backend_in(&ns, TIMEOUT).dpop_replay_store());
    let b = verifier(redis.backend_in(&ns, TIMEOUT).dpop_replay_store());
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("GET", URL).sign().unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let v = if i % 2 == 0 { a.clone() } else { b.clone() };
        let proof = proof.clone();
        tasks.push(tokio::spawn(async move {
            v.verify(&proof, &Method::GET, "/items", None).await.is_ok()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap());
    }
    assert_eq!(accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_a_store_failure_never_an_accepted_proof() {
    let mut redis = TestRedis::own();
    let v = verifier(
        redis
            .backend(Duration::from_millis(300))
            .dpop_replay_store(),
    );
    redis.kill();
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("GET", URL).sign().unwrap();
    let r = v
        .verify(&proof, &Method::GET, "/items", None)
        .await
        .unwrap_err();
    assert!(matches!(r, DpopRefusal::Store(_)), "{r}");
}
