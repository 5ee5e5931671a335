//! Credits in SQL (issue 18): two store instances on one database, SQLite file and a real
//! PostgreSQL, admit exactly 50 of 200 concurrent reservations against 50 credits; refunds
//! go back into their own period only; a new period starts full.

mod common;

use std::sync::Arc;

use apiauth_core::clock::ManualClock;
use apiauth_quota::{CreditStore, Reservation};
use apiauth_sql::SqlCreditStore;
use common::TempSqlite;
use common::postgres::{TestPostgres, skipped};

async fn two_instances_admit_exactly_fifty(url: &str) {
    let clock = ManualClock::starting_now();
    let a = Arc::new(SqlCreditStore::new(common::connect(url, &clock).await));
    let b = Arc::new(SqlCreditStore::new(common::connect(url, &clock).await));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move { s.reserve("tenant:acme", 671, 50, 1).await.unwrap() })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Reservation::Reserved { .. }) {
            ok += 1;
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(a.read("tenant:acme", 671, 50).await.unwrap(), 0);
    assert_eq!(
        b.reserve("tenant:acme", 671, 50, 1).await.unwrap(),
        Reservation::Exhausted { remaining: 0 }
    );

    // A refund goes back into its own period; the next period starts full and ignores
    // refunds of the old one.
    a.refund("tenant:acme", 671, 50, 3).await.unwrap();
    assert_eq!(b.read("tenant:acme", 671, 50).await.unwrap(), 3);
    assert_eq!(
        b.reserve("tenant:acme", 672, 50, 10).await.unwrap(),
        Reservation::Reserved { remaining: 40 }
    );
    a.refund("tenant:acme", 671, 50, 5).await.unwrap();
    assert_eq!(a.read("tenant:acme", 672, 50).await.unwrap(), 40);
    // Top-up and set.
    assert_eq!(a.add("tenant:acme", 672, 50, 7).await.unwrap(), 47);
    b.set("tenant:acme", 672, 2).await.unwrap();
    assert_eq!(
        a.reserve("tenant:acme", 672, 50, 3).await.unwrap(),
        Reservation::Exhausted { remaining: 2 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sqlite_instances_on_one_file_admit_exactly_fifty_of_two_hundred() {
    let file = TempSqlite::new();
    two_instances_admit_exactly_fifty(&file.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_instances_admit_exactly_fifty_of_two_hundred() {
    if skipped("credits_on_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    two_instances_admit_exactly_fifty(&pg.url()).await;
}
