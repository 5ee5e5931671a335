//! Credits shared through Redis: two instances (two backends, two connections) × concurrent
//! reservations against a balance of 50 at cost 1 → exactly 50 succeed.
#![cfg(feature = "quota")]

mod common;

use std::time::Duration;

use apiauth_quota::{CreditStore, Reservation};
use apiauth_redis::RedisCreditStore;
use common::{TestRedis, unique_namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_admit_exactly_fifty_of_two_hundred_reservations() {
    let redis = TestRedis::new();
    let ns = unique_namespace();
    let a = RedisCreditStore::new(redis.backend_in(&ns, Duration::from_secs(5)));
    let b = RedisCreditStore::new(redis.backend_in(&ns, Duration::from_secs(5)));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { s.reserve("tenant:t", 3, 50, 1).await.unwrap() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Reservation::Reserved { .. }) {
            ok += 1;
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(a.read("tenant:t", 3, 50).await.unwrap(), 0);
    // A refund restores what was reserved; a new period starts full; add and set top up.
    b.refund("tenant:t", 3, 50, 1).await.unwrap();
    assert_eq!(a.read("tenant:t", 3, 50).await.unwrap(), 1);
    assert_eq!(a.add("tenant:t", 3, 50, 9).await.unwrap(), 10);
    b.set("tenant:t", 3, 2).await.unwrap();
    assert_eq!(a.read("tenant:t", 3, 50).await.unwrap(), 2);
    assert_eq!(a.read("tenant:t", 4, 50).await.unwrap(), 50);
}
