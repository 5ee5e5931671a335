//! A measurement, not a check: the cold path of one API key lookup (`ApiKeyStore::get` and a
//! whole request through the API key layer) on memory, SQLite and PostgreSQL, and the warm
//! path (the cached stores) on both. Ignored by
//! default; run it with
//!
//! ```text
//! cargo test -p apiauth-sql --release --test cold_path -- --ignored --nocapture
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiauth_api_key::{ApiKeyStore, ApiKeys, MemoryApiKeyStore, NewKey};
use apiauth_core::clock::ManualClock;
use axum::body::Body;
use axum::routing::get;
use common::TempSqlite;
use common::postgres::TestPostgres;
use tower::ServiceExt;

const N: usize = 2_000;

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{what:<34} median {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

async fn measure(name: &str, store: Arc<dyn ApiKeyStore>) {
    let keys = ApiKeys::new(store.clone());
    // Many keys, so lookups are not all one hot row.
    let mut created = Vec::new();
    for i in 0..200 {
        created.push(
            keys.create(NewKey::new(format!("owner-{i}")))
                .await
                .unwrap(),
        );
    }
    let mut samples = Vec::with_capacity(N);
    for i in 0..N {
        let id = &created[i % created.len()].summary.id;
        let t = Instant::now();
        let r = store.get(id).await.unwrap();
        samples.push(t.elapsed());
        assert!(r.is_some());
    }
    report(&format!("{name}: store.get"), samples);

    let app = axum::Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keys.auth().layer().unwrap());
    let mut samples = Vec::with_capacity(N);
    for i in 0..N {
        let key = created[i % created.len()].key.expose_secret();
        let req = http::Request::get("/me")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap();
        let t = Instant::now();
        let res = app.clone().oneshot(req).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(res.status(), 200);
    }
    report(&format!("{name}: request through layer"), samples);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn cold_api_key_lookup_on_memory_sqlite_and_postgres() {
    measure("memory", Arc::new(MemoryApiKeyStore::new())).await;
    let file = TempSqlite::new();
    let db = common::connect(&file.url(), &ManualClock::starting_now()).await;
    measure("sqlite", Arc::new(db.api_key_store())).await;
    // The warm path: the same lookups through the cache (all but the first of each key hit).
    measure("sqlite cached", Arc::new(db.cached_api_key_store())).await;
    let pg = TestPostgres::start();
    let db = common::connect(&pg.url(), &ManualClock::starting_now()).await;
    measure("postgres", Arc::new(db.api_key_store())).await;
    measure("postgres cached", Arc::new(db.cached_api_key_store())).await;
}
