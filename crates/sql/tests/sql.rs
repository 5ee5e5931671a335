//! What the SQL stores promise beyond the shared contracts: migrations, SQLite's mode,
//! secrets at rest only as hashes or sealed, signing keys under the KEK, and fail-closed
//! behaviour with recovery when PostgreSQL goes away.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiauth_api_key::{ApiKeys, NewKey};
use apiauth_basic::PasswordHasher;
use apiauth_core::ScopeSet;
use apiauth_core::clock::ManualClock;
use apiauth_sql::{KeyEncryptionKey, SqlDatabase, SqlError, SqlSigningKeyStore};
use axum::body::Body;
use axum::routing::get;
use common::TempSqlite;
use common::postgres::{TestPostgres, skipped};
use sqlx::{Column, Row};
use tower::ServiceExt;

/// Every value of every row of `table`, as bytes (text and blobs alike).
async fn raw_table(db: &SqlDatabase, table: &str) -> Vec<Vec<u8>> {
    let rows = sqlx::query(&format!("SELECT * FROM {table}"))
        .fetch_all(db.pool())
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in rows {
        for c in row.columns() {
            let i = c.ordinal();
            if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                out.push(s.into_bytes());
            } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                out.push(b);
            }
        }
    }
    out
}

fn contains(haystack: &[Vec<u8>], needle: &[u8]) -> bool {
    haystack
        .iter()
        .any(|v| v.windows(needle.len()).any(|w| w == needle))
}

const TABLES: [&str; 7] = [
    "apiauth_api_keys",
    "apiauth_revocations",
    "apiauth_basic_users",
    "apiauth_oauth_clients",
    "apiauth_usage",
    "apiauth_signing_keys",
    "apiauth_kek_check",
];

async fn secrets_are_at_rest_only_as_hashes_or_sealed(db: SqlDatabase) {
    let keys = ApiKeys::new(Arc::new(db.api_key_store()));
    let key = keys.create(NewKey::new("alice")).await.unwrap();
    let hasher = PasswordHasher::dangerous_with_params(8, 1, 1).unwrap();
    let client_secret = db
        .client_registry()
        .register("worker", ScopeSet::parse("jobs:run").unwrap(), &hasher)
        .await
        .unwrap();
    let password = "correct horse battery staple";
    db.credential_store()
        .insert_user("bob", &hasher.hash(password))
        .await
        .unwrap();
    let (kek, _) = KeyEncryptionKey::generate().unwrap();
    let signing = SqlSigningKeyStore::open(&db, kek).await.unwrap();
    let current = signing.current_or_generate().await.unwrap();

    let mut everything = Vec::new();
    for t in TABLES {
        everything.extend(raw_table(&db, t).await);
    }
    let key = key.key.expose_secret().as_bytes();
    assert!(!contains(&everything, key), "an API key in clear");
    // Nor any part of one long enough to matter (the id alone is public).
    assert!(!contains(&everything, &key[key.len() - 30..]));
    assert!(!contains(
        &everything,
        client_secret.expose_secret().as_bytes()
    ));
    assert!(!contains(&everything, password.as_bytes()));
    let der = current.private_key_der();
    assert!(!contains(&everything, der), "a signing key in clear");
    // The P-256 scalar itself (32 bytes inside the PKCS#8) appears nowhere either.
    let scalar = &der[36..68];
    assert!(!contains(&everything, scalar));
    // What is there: the API key's SHA-256, argon2id PHC strings.
    let digest = apiauth_core::token::SecretHash::of(key);
    assert!(contains(&everything, digest.as_bytes()));
    assert!(contains(&everything, b"$argon2id$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_at_rest_only_as_hashes_or_sealed_on_sqlite() {
    let file = TempSqlite::new();
    let db = common::connect(&file.url(), &ManualClock::starting_now()).await;
    secrets_are_at_rest_only_as_hashes_or_sealed(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_at_rest_only_as_hashes_or_sealed_on_postgres() {
    if skipped("secrets_on_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    let db = common::connect(&pg.url(), &ManualClock::starting_now()).await;
    secrets_are_at_rest_only_as_hashes_or_sealed(db).await;
}

async fn schema_versions(db: &SqlDatabase) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM apiauth_schema ORDER BY version")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_is_created_in_wal_mode_and_migrations_twice_are_a_no_op() {
    let file = TempSqlite::new();
    let clock = ManualClock::starting_now();
    let db = common::connect(&file.url(), &clock).await;
    assert!(file.path().exists(), "the file is created");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(busy >= 1000, "{busy}");
    db.credential_store()
        .insert_user("u", "$argon2id$x")
        .await
        .unwrap();
    drop(db);
    // Again, and twice at once: same schema, data kept.
    let url = file.url();
    let (a, b) = tokio::join!(common::connect(&url, &clock), common::connect(&url, &clock));
    assert_eq!(
        schema_versions(&a).await,
        (1..=apiauth_sql::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    use apiauth_basic::CredentialStore;
    assert!(b.credential_store().get("u").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_from_two_instances_at_once_apply_once() {
    if skipped("postgres_migrations") {
        return;
    }
    let pg = TestPostgres::start();
    let clock = ManualClock::starting_now();
    let url = pg.url();
    let (a, b) = tokio::join!(common::connect(&url, &clock), common::connect(&url, &clock));
    assert_eq!(
        schema_versions(&a).await,
        (1..=apiauth_sql::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    let c = common::connect(&pg.url(), &clock).await;
    assert_eq!(
        schema_versions(&c).await,
        (1..=apiauth_sql::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    b.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_urls_are_a_startup_error_that_names_no_secret() {
    let e = SqlDatabase::builder("mysql://root:hunter2@db/x")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::UnsupportedUrl));
    assert!(!e.to_string().contains("hunter2"));
    // Nobody listens on port 1: a connect error, and the password is not in it.
    let e = SqlDatabase::builder("postgres://u:hunter2@127.0.0.1:1/db")
        .command_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::Connect { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}

async fn signing_keys_are_sealed_under_the_kek(db: SqlDatabase) {
    let (kek, text) = KeyEncryptionKey::generate().unwrap();
    assert!(
        !format!("{kek:?}").contains(&text[..8]),
        "Debug hides the KEK"
    );
    let store = SqlSigningKeyStore::open(&db, kek).await.unwrap();
    let first = store.current_or_generate().await.unwrap();
    assert!(!format!("{first:?}").contains("der"));

    // The same KEK, parsed from its text as an operator gives it: the same key comes back.
    let again = SqlSigningKeyStore::open(&db, KeyEncryptionKey::parse(&text).unwrap())
        .await
        .unwrap();
    let loaded = again.current_or_generate().await.unwrap();
    assert_eq!(loaded.kid(), first.kid());
    assert_eq!(loaded.private_key_der(), first.private_key_der());

    // The kid is the one the authorization server publishes for that key (RFC 7638).
    let server = apiauth_oauth2::AuthorizationServer::builder("https://as.example")
        .audience("api")
        .clients(Arc::new(apiauth_oauth2::MemoryClientRegistry::new()))
        .key_rotation(apiauth_oauth2::KeyRotation::manual())
        .signing_key_der(loaded.private_key_der())
        .build()
        .unwrap();
    let jwks = server.jwks().unwrap();
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(first.kid()));

    // A wrong KEK is refused at open, with a message that says so.
    let (wrong, _) = KeyEncryptionKey::generate().unwrap();
    let e = SqlSigningKeyStore::open(&db, wrong).await.unwrap_err();
    assert!(matches!(e, SqlError::WrongKek), "{e:?}");
    assert!(e.to_string().contains("key-encryption key does not match"));
    assert!(matches!(
        KeyEncryptionKey::parse("too short"),
        Err(SqlError::KekFormat)
    ));

    // A sealed key moved to another row's id does not open: the kid is the AAD.
    let second = again.generate().await.unwrap();
    sqlx::query(
        "UPDATE apiauth_signing_keys SET sealed = (SELECT sealed FROM apiauth_signing_keys
         WHERE kid = $1), nonce = (SELECT nonce FROM apiauth_signing_keys WHERE kid = $1)
         WHERE kid = $2",
    )
    .bind(first.kid())
    .bind(&second)
    .execute(db.pool())
    .await
    .unwrap();
    assert!(
        again.get(&second).await.is_err(),
        "a swapped row must not open"
    );
    assert!(again.get(first.kid()).await.unwrap().is_some());

    // Retiring the current key makes the next one current; instances agree on the oldest.
    assert!(again.retire(first.kid()).await.unwrap());
    assert_eq!(again.list().await.unwrap().len(), 2);
    // Configured keys (from PEM files) are accepted and sealed too.
    let kid = again.insert_der(first.private_key_der()).await.unwrap();
    assert_eq!(kid, first.kid(), "the same key, not a second copy");
    assert!(matches!(
        again.insert_der(b"not a key").await,
        Err(SqlError::InvalidSigningKey)
    ));

    // Rekeying re-seals everything under the new KEK; the old one is refused from then on.
    sqlx::query("DELETE FROM apiauth_signing_keys WHERE kid = $1")
        .bind(&second) // the row broken by the swap above
        .execute(db.pool())
        .await
        .unwrap();
    let (next, next_text) = KeyEncryptionKey::generate().unwrap();
    let rekeyed = again.rekey(next).await.unwrap();
    let k = rekeyed.get(first.kid()).await.unwrap().unwrap();
    assert_eq!(k.private_key_der(), first.private_key_der());
    let e = SqlSigningKeyStore::open(&db, KeyEncryptionKey::parse(&text).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, SqlError::WrongKek));
    let reopened = SqlSigningKeyStore::open(&db, KeyEncryptionKey::parse(&next_text).unwrap())
        .await
        .unwrap();
    assert!(reopened.get(first.kid()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_sealed_under_the_kek_on_sqlite() {
    let file = TempSqlite::new();
    let db = common::connect(&file.url(), &ManualClock::starting_now()).await;
    signing_keys_are_sealed_under_the_kek(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_are_sealed_under_the_kek_on_postgres() {
    if skipped("signing_keys_on_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    let db = common::connect(&pg.url(), &ManualClock::starting_now()).await;
    signing_keys_are_sealed_under_the_kek(db).await;
}

async fn status_of(app: &axum::Router, key: &str) -> (u16, Option<String>, String) {
    let req = http::Request::get("/me")
        .header("x-api-key", key)
        .body(Body::empty())
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .unwrap();
    (status, retry, String::from_utf8_lossy(&body).into_owned())
}

async fn until_ok(app: &axum::Router, key: &str) {
    let start = Instant::now();
    loop {
        match status_of(app, key).await.0 {
            200 => return,
            503 => {}
            other => panic!("during recovery got {other}"),
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_unavailable((status, retry, body): &(u16, Option<String>, String), key: &str) {
    assert_eq!(*status, 503, "fail closed, never 401: {body}");
    assert!(
        retry
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some()
    );
    assert!(!body.contains(key) && !body.to_lowercase().contains("postgres"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_or_frozen_answers_503_then_recovers_without_restart() {
    if skipped("postgres_down") {
        return;
    }
    let mut pg = TestPostgres::start();
    let db = SqlDatabase::builder(pg.url())
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let keys = ApiKeys::new(Arc::new(db.api_key_store()));
    let created = keys.create(NewKey::new("alice")).await.unwrap();
    let key = created.key.expose_secret().to_owned();
    let app = axum::Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(keys.auth().layer().unwrap());
    assert_eq!(status_of(&app, &key).await.0, 200);

    pg.kill();
    for _ in 0..3 {
        assert_unavailable(&status_of(&app, &key).await, &key);
    }
    pg.restart();
    until_ok(&app, &key).await;

    pg.signal_all("-STOP");
    let start = Instant::now();
    assert_unavailable(&status_of(&app, &key).await, &key);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "bounded by the timeout"
    );
    pg.signal_all("-CONT");
    until_ok(&app, &key).await;
}

/// Two instances (two pools on one database) rotate one key at the same moment, many times
/// over: each time exactly one rotation wins, the loser's successor is withdrawn, and the old
/// key's record names the winner.
async fn concurrent_rotations_leave_one_winner(url: &str) {
    let clock = ManualClock::starting_now();
    let a = ApiKeys::new(Arc::new(common::connect(url, &clock).await.api_key_store()));
    let b = ApiKeys::new(Arc::new(common::connect(url, &clock).await.api_key_store()));
    for round in 0..10 {
        let old = a
            .create(NewKey::new(format!("owner-{round}")))
            .await
            .unwrap();
        let id = old.summary.id.clone();
        let grace = Duration::from_secs(60);
        let (ra, rb) = tokio::join!(a.rotate(&id, grace), b.rotate(&id, grace));
        let winners: Vec<_> = [ra, rb].into_iter().filter_map(Result::ok).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one rotation wins");
        let winner = &winners[0].summary.id;
        let record = b.get(&id).await.unwrap().unwrap();
        assert_eq!(record.rotated_to.as_ref(), Some(winner), "round {round}");
        let live: Vec<_> = a
            .list(&apiauth_api_key::KeyFilter::all().owner(format!("owner-{round}")))
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.status.is_usable())
            .map(|k| k.id)
            .collect();
        // The old key (in its grace period) and the winner's successor; the loser's is revoked.
        assert_eq!(live.len(), 2, "round {round}: {live:?}");
        assert!(live.contains(winner) && live.contains(&id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_leave_one_winner_on_sqlite() {
    let file = TempSqlite::new();
    concurrent_rotations_leave_one_winner(&file.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_leave_one_winner_on_postgres() {
    if skipped("rotations_on_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    concurrent_rotations_leave_one_winner(&pg.url()).await;
}

/// Counts the last-used batches that reach the SQL store.
struct CountingStore {
    inner: apiauth_sql::SqlApiKeyStore,
    batches: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl apiauth_api_key::ApiKeyStore for CountingStore {
    async fn get(
        &self,
        id: &str,
    ) -> Result<Option<apiauth_api_key::ApiKeyRecord>, apiauth_core::StoreError> {
        self.inner.get(id).await
    }
    async fn insert(
        &self,
        r: apiauth_api_key::ApiKeyRecord,
    ) -> Result<bool, apiauth_core::StoreError> {
        self.inner.insert(r).await
    }
    async fn list(
        &self,
        f: &apiauth_api_key::KeyFilter,
    ) -> Result<Vec<apiauth_api_key::ApiKeyRecord>, apiauth_core::StoreError> {
        self.inner.list(f).await
    }
    async fn update(
        &self,
        id: &str,
        c: &apiauth_api_key::KeyChange,
    ) -> Result<Option<apiauth_api_key::ApiKeyRecord>, apiauth_core::StoreError> {
        self.inner.update(id, c).await
    }
    async fn record_last_used(
        &self,
        batch: &[(Arc<str>, std::time::SystemTime)],
    ) -> Result<(), apiauth_core::StoreError> {
        self.batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.record_last_used(batch).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_times_reach_sql_in_one_batch_not_one_write_per_request() {
    use apiauth_api_key::ApiKeyStore;
    let file = TempSqlite::new();
    let db = common::connect(&file.url(), &ManualClock::starting_now()).await;
    let store = Arc::new(CountingStore {
        inner: db.api_key_store(),
        batches: Default::default(),
    });
    let keys = ApiKeys::new(store.clone());
    let mut created = Vec::new();
    for i in 0..20 {
        created.push(keys.create(NewKey::new(format!("o{i}"))).await.unwrap());
    }
    // A long interval: nothing is written until the explicit flush below.
    let auth = keys
        .auth()
        .last_used_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    for i in 0..400 {
        let key = created[i % created.len()].key.expose_secret();
        auth.verify_secret(key, apiauth_core::AuthMethod::API_KEY)
            .await
            .unwrap();
    }
    assert_eq!(store.batches.load(std::sync::atomic::Ordering::Relaxed), 0);
    auth.flush_last_used().await.unwrap();
    assert_eq!(store.batches.load(std::sync::atomic::Ordering::Relaxed), 1);
    for c in &created {
        let r = db
            .api_key_store()
            .get(&c.summary.id)
            .await
            .unwrap()
            .unwrap();
        assert!(r.last_used_at.is_some(), "{}", c.summary.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_counts_survive_a_failed_flush_and_land_once_postgres_is_back() {
    use apiauth_quota::{StatusClass, UsageMeter};
    if skipped("usage_on_postgres") {
        return;
    }
    let mut pg = TestPostgres::start();
    let db = SqlDatabase::builder(pg.url())
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let meter = db.usage_meter().flush_interval(Duration::from_secs(3600));
    for _ in 0..5 {
        meter
            .record("alice", "/x", StatusClass::Success)
            .await
            .unwrap();
    }
    meter.flush().await.unwrap();
    for _ in 0..3 {
        // Counting needs no database: a request is never refused for it.
        meter
            .record("alice", "/x", StatusClass::Success)
            .await
            .unwrap();
    }
    pg.kill();
    assert!(meter.flush().await.is_err());
    assert!(
        meter.usage("alice").await.is_err(),
        "503, not a wrong count"
    );
    pg.restart();
    let start = Instant::now();
    let usage = loop {
        match meter.usage("alice").await {
            Ok(u) => break u,
            Err(_) if start.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    };
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].count, 8, "nothing lost, nothing counted twice");
}
