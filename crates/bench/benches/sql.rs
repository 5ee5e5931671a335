//! The API key check over the SQL store's warm path (`CachedApiKeyStore` on SQLite) against
//! the in-memory store, same request, same router (`cargo bench -p apiauth-bench --bench sql`).
//! The warm path answers from memory, so the two should cost the same; the cold path (one
//! database lookup per request) is measured by `crates/sql/tests/cold_path.rs`.

use std::sync::Arc;
use std::time::Duration;

use apiauth_api_key::MemoryApiKeyStore;
use apiauth_sql::SqlDatabase;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime")
}

fn all(c: &mut Criterion) {
    let rt = runtime();
    let dir = std::env::temp_dir().join(format!("apiauth-bench-sql-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite:{}", dir.join("bench.db").display());
    let db = rt
        .block_on(SqlDatabase::builder(url).connect())
        .expect("SQLite database");
    let memory = rt
        .block_on(apiauth_bench::api_key_case_on(Arc::new(
            MemoryApiKeyStore::new(),
        )))
        .expect("memory case");
    let sql = rt
        .block_on(apiauth_bench::api_key_case_on(Arc::new(
            db.cached_api_key_store(),
        )))
        .expect("sql case");
    let mut g = c.benchmark_group("api_key_store");
    for (id, case) in [("memory", &memory.case), ("sql_warm", &sql.case)] {
        let status = rt
            .block_on(case.router.clone().oneshot(case.request()))
            .map(|r| r.status())
            .expect("infallible router");
        assert_eq!(status, 200, "{id} must accept the benchmark request");
        g.bench_function(id, |b| {
            b.to_async(&rt).iter_batched(
                || case.request(),
                |req| case.router.clone().oneshot(req),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60)
}

criterion_group! {
    name = benches;
    config = config();
    targets = all
}
criterion_main!(benches);
