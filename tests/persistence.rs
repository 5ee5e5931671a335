//! The example's state on a real database, seen over HTTP: a restart on SQLite keeps keys,
//! clients, revocations, usage, the billing export and the credentials file; two instances
//! on one PostgreSQL act as one and spend a balance exactly; the database killed is a 503
//! with `Retry-After`, and service resumes without a restart once it is back.
//!
//! The PostgreSQL tests start their own server (crates/sql/tests/common/postgres.rs);
//! `APIAUTH_SKIP_POSTGRES=1` opts out of them explicitly.

#[path = "../crates/sql/tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
mod support;

use std::time::{Duration, Instant};

use postgres::{TestPostgres, skipped};
use serde_json::{Value, json};
use support::{Saas, TempDir};

/// One key-encryption key for every instance of a test (hex of 32 bytes).
const KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// One public URL for every instance, so they name one issuer and audience.
const PUBLIC_URL: &str = "http://saas.test";

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("credential {path:?}"))
}

async fn get_with_key(saas: &Saas, key: &str) -> reqwest::Response {
    saas.http
        .get(saas.url("/v1/companies/acme.com"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap()
}

async fn get_with_token(saas: &Saas, token: &str) -> u16 {
    saas.http
        .get(saas.url("/v1/companies/acme.com"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn admin(saas: &Saas, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.basic_auth(
        s(&saas.creds, &["admin", "username"]),
        Some(s(&saas.creds, &["admin", "password"])),
    )
}

/// Creates a key as the demo admin; returns (id, key).
async fn create_key(saas: &Saas, owner: &str) -> (String, String) {
    let res = admin(saas, saas.http.post(saas.url("/admin/api-keys")))
        .json(&json!({ "owner": owner, "scopes": "companies:read", "plan": "pro" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    (
        s(&v, &["summary", "id"]).to_owned(),
        s(&v, &["key"]).to_owned(),
    )
}

async fn revoke_key(saas: &Saas, id: &str) {
    let res = admin(
        saas,
        saas.http.delete(saas.url(&format!("/admin/api-keys/{id}"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
}

async fn token(saas: &Saas) -> String {
    let res = saas
        .http
        .post(saas.url("/oauth/token"))
        .basic_auth(
            s(&saas.creds, &["oauth_client", "client_id"]),
            Some(s(&saas.creds, &["oauth_client", "client_secret"])),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "companies:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s(&res.json::<Value>().await.unwrap(), &["access_token"]).to_owned()
}

async fn revoke_token(saas: &Saas, token: &str) {
    let res = saas
        .http
        .post(saas.url("/oauth/revoke"))
        .basic_auth(
            s(&saas.creds, &["oauth_client", "client_id"]),
            Some(s(&saas.creds, &["oauth_client", "client_secret"])),
        )
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The demo tenant's keys, as the admin API lists them.
async fn tenant_keys(saas: &Saas) -> Vec<Value> {
    let res = admin(saas, saas.http.get(saas.url("/admin/api-keys")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["keys"]
        .as_array()
        .unwrap()
        .clone()
}

/// Total requests the usage endpoint reports for `key`'s caller.
async fn usage_total(saas: &Saas, key: &str) -> u64 {
    let res = saas
        .http
        .get(saas.url("/v1/usage"))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["total"].as_u64().expect("usage total")
}

/// Polls `check` every 20 ms until it holds; fails past `within`. Returns the time taken.
async fn within<F: Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_restart_keeps_keys_clients_revocations_usage_and_the_credentials_file() {
    let dir = TempDir::new("persist-sqlite");
    let url = format!("sqlite:{}", dir.0.join("saas.db").display());
    let args = ["--database-url", url.as_str(), "--public-url", PUBLIC_URL];

    let mut a = Saas::start(&args).await;
    let pro = s(&a.creds, &["api_keys", "pro", "key"]).to_owned();
    let (_, kept) = create_key(&a, "kept").await;
    let (revoked_id, revoked) = create_key(&a, "revoked").await;
    revoke_key(&a, &revoked_id).await;
    assert_eq!(get_with_key(&a, &kept).await.status(), 200);
    assert_eq!(get_with_key(&a, &revoked).await.status(), 401);
    for _ in 0..3 {
        assert_eq!(get_with_key(&a, &pro).await.status(), 200);
    }
    let live_token = token(&a).await;
    let revoked_token = token(&a).await;
    revoke_token(&a, &revoked_token).await;
    assert_eq!(get_with_token(&a, &live_token).await, 200);
    assert_eq!(get_with_token(&a, &revoked_token).await, 401);
    let used_before = usage_total(&a, &pro).await;
    assert!(used_before >= 3, "usage counted: {used_before}");
    let keys_before = tenant_keys(&a).await.len();
    let creds_before = a.creds.clone();
    assert!(a.terminate().success());

    let b = Saas::start(&args).await;
    assert_eq!(
        b.creds, creds_before,
        "the same credentials file after a restart"
    );
    assert_eq!(
        tenant_keys(&b).await.len(),
        keys_before,
        "the demo keys are not created twice"
    );
    assert_eq!(get_with_key(&b, &kept).await.status(), 200);
    assert_eq!(get_with_key(&b, &pro).await.status(), 200);
    assert_eq!(get_with_key(&b, &revoked).await.status(), 401);
    assert_eq!(
        get_with_token(&b, &live_token).await,
        200,
        "a token from before the restart"
    );
    assert_eq!(get_with_token(&b, &revoked_token).await, 401);
    // The OAuth client (its record in the database) still gets tokens.
    assert_eq!(get_with_token(&b, &token(&b).await).await, 200);
    assert!(usage_total(&b, &pro).await >= used_before, "usage survives");

    // No PEM in the file (the sealed rows themselves are checked by crates/sql/tests/sql.rs).
    let bytes = std::fs::read(dir.0.join("saas.db")).unwrap();
    assert!(!bytes.windows(11).any(|w| w == b"PRIVATE KEY"));
}

/// README: `cargo run --example saas` keeps its records in SQLite at `target/saas.db`,
/// relative to the working directory, with nothing to install, and says so at startup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_run_keeps_records_in_target_saas_db_and_names_its_stores() {
    let dir = TempDir::new("default-db");
    let log = dir.0.join("first.log");
    let mut a = Saas::start_in(&dir.0, &[], &log).await;
    let db = dir.0.join("target/saas.db");
    assert!(db.is_file(), "no database at {}", db.display());
    let startup = std::fs::read_to_string(&log).unwrap();
    assert!(
        startup.contains("stores: records") && startup.contains("in SQLite target/saas.db"),
        "{startup}"
    );
    let (_, kept) = create_key(&a, "kept").await;
    assert_eq!(get_with_key(&a, &kept).await.status(), 200);
    let creds_before = a.creds.clone();
    assert!(a.terminate().success());

    let b = Saas::start_in(&dir.0, &[], &dir.0.join("second.log")).await;
    // The same demo credentials (the URLs in the file follow the new free port).
    for part in ["api_keys", "hmac", "admin", "portal"] {
        if part == "portal" {
            assert_eq!(b.creds[part]["password"], creds_before[part]["password"]);
        } else {
            assert_eq!(b.creds[part], creds_before[part], "{part}");
        }
    }
    assert_eq!(
        b.creds["oauth_client"]["client_secret"],
        creds_before["oauth_client"]["client_secret"]
    );
    assert_eq!(get_with_key(&b, &kept).await.status(), 200);
    drop(b);

    // `--in-memory` keeps the old behaviour and warns that nothing is kept.
    let log = dir.0.join("memory.log");
    let c = Saas::start_in(&dir.0, &["--in-memory"], &log).await;
    assert_eq!(get_with_key(&c, &kept).await.status(), 401);
    let startup = std::fs::read_to_string(&log).unwrap();
    assert!(startup.contains("stores: memory only"), "{startup}");
}

/// Issue 17: a signing key may be loaded from a PEM file instead of being kept sealed in
/// the database. The tokens it signs verify after a restart, the JWKS publishes its public
/// half and nothing else, and the key is not written to the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_from_a_pem_file_signs_across_restarts_and_stays_out_of_the_database() {
    use base64::Engine as _;
    let dir = TempDir::new("pem-key");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = dir.0.join("signing.pem");
    std::fs::write(&pem, key.serialize_pem()).unwrap();
    let url = format!("sqlite:{}", dir.0.join("saas.db").display());
    let pem_arg = pem.display().to_string();
    let args = [
        "--database-url",
        url.as_str(),
        "--signing-key-pem",
        pem_arg.as_str(),
        "--public-url",
        PUBLIC_URL,
    ];
    let mut a = Saas::start(&args).await;
    let jwks: Value = a
        .http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "only the file's key is published: {jwks}");
    // The uncompressed point 0x04 || x || y of the file's key (RFC 7518 §6.2.1).
    let point = key.public_key_raw();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(keys[0]["x"], b64.encode(&point[1..33]));
    assert_eq!(keys[0]["y"], b64.encode(&point[33..65]));
    let before = token(&a).await;
    assert_eq!(get_with_token(&a, &before).await, 200);
    assert!(a.terminate().success());

    let b = Saas::start(&args).await;
    assert_eq!(
        get_with_token(&b, &before).await,
        200,
        "a token from before"
    );
    let db = std::fs::read(dir.0.join("saas.db")).unwrap();
    let der = key.serialize_der();
    assert!(!db.windows(der.len()).any(|w| w == der.as_slice()));

    // A file without a P-256 private key stops the start with a message naming the file.
    std::fs::write(&pem, "not a key").unwrap();
    let out = std::process::Command::new(support::example_binary())
        .args(["--in-memory", "--signing-key-pem", pem_arg.as_str()])
        .args(["--addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("signing.pem"), "{stderr}");
}

fn pg_args(url: &str) -> Vec<String> {
    [
        "--database-url",
        url,
        "--kek",
        KEK,
        "--public-url",
        PUBLIC_URL,
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_act_as_one() {
    if skipped("two_instances_on_one_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    let args = pg_args(&pg.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    assert_eq!(a.creds, b.creds, "one demo tenant, without --demo-seed");

    // A key created on A works on B; a token from A verifies on B.
    let (id, key) = create_key(&a, "shared").await;
    assert_eq!(get_with_key(&b, &key).await.status(), 200);
    let t = token(&a).await;
    assert_eq!(get_with_token(&b, &t).await, 200);

    // Revoked on A: refused on B within a second (B has the key cached by now).
    assert_eq!(get_with_key(&b, &key).await.status(), 200);
    revoke_key(&a, &id).await;
    let took = within(
        Duration::from_secs(1),
        "key revocation seen on B",
        || async { get_with_key(&b, &key).await.status() == 401 },
    )
    .await;
    eprintln!("key revocation on A refused on B after {took:?}");
    revoke_token(&a, &t).await;
    let took = within(
        Duration::from_secs(1),
        "token revocation seen on B",
        || async { get_with_token(&b, &t).await == 401 },
    )
    .await;
    eprintln!("token revocation on A refused on B after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_killed_answers_503_with_retry_after_then_recovers_without_restart() {
    if skipped("database_killed") {
        return;
    }
    let mut pg = TestPostgres::start();
    let args = pg_args(&pg.url());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let saas = Saas::start(&args).await;
    let (_, used) = create_key(&saas, "used").await;
    let (_, unseen) = create_key(&saas, "unseen").await;
    assert_eq!(get_with_key(&saas, &used).await.status(), 200);

    pg.kill();
    // A key never checked needs the database: 503 at once, never 401, never a pass.
    let res = get_with_key(&saas, &unseen).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    // A cached key may answer until the instance notices the database is gone; then 503.
    within(
        Duration::from_secs(10),
        "cached key refused with 503",
        || async {
            let res = get_with_key(&saas, &used).await;
            assert!(
                matches!(res.status().as_u16(), 200 | 503),
                "only a pass within the bound or a 503: {}",
                res.status()
            );
            res.status() == 503 && res.headers().contains_key("retry-after")
        },
    )
    .await;
    let ready = saas.http.get(saas.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));

    pg.restart();
    within(Duration::from_secs(30), "service resumes", || async {
        get_with_key(&saas, &used).await.status() == 200
    })
    .await;
    assert_eq!(get_with_key(&saas, &unseen).await.status(), 200);
    let ready = saas.http.get(saas.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_redis_two_instances_share_records_and_lock_out_through_redis() {
    if skipped("sql_and_redis") {
        return;
    }
    let pg = TestPostgres::start();
    let redis = support::Redis::start().await;
    let mut args = pg_args(&pg.url());
    args.extend(["--redis-url".to_owned(), redis.url.clone()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    assert_eq!(a.creds, b.creds);
    let (id, key) = create_key(&a, "both").await;
    assert_eq!(get_with_key(&b, &key).await.status(), 200);
    revoke_key(&a, &id).await;
    within(Duration::from_secs(1), "revocation seen on B", || async {
        get_with_key(&b, &key).await.status() == 401
    })
    .await;
    // Lock-outs live in Redis in this mode (one budget across instances is proven by
    // saas_e2e's Redis test over the same stores); here: guessing still ends in 429.
    let mut statuses = Vec::new();
    for i in 0..12 {
        let saas = if i % 2 == 0 { &a } else { &b };
        let res = saas
            .http
            .get(saas.url("/admin/api-keys"))
            .basic_auth("admin", Some("wrong"))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert!(statuses.contains(&429), "locked out: {statuses:?}");
}

/// The `portal_session` value a response sets.
fn portal_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("portal_session="))
        .and_then(|c| c.split(';').next())
        .expect("a portal_session cookie")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_session_and_its_usage_chart_survive_a_restart_on_sqlite() {
    let dir = TempDir::new("persist-portal");
    let url = format!("sqlite:{}", dir.0.join("saas.db").display());
    let args = ["--database-url", url.as_str(), "--public-url", PUBLIC_URL];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut a = Saas::start(&args).await;
    let res = http.get(a.url("/portal/sign-in")).send().await.unwrap();
    let visitor = portal_cookie(&res);
    let html = res.text().await.unwrap();
    let start = html.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = html[start..start + html[start..].find('"').unwrap()].to_owned();
    let res = http
        .post(a.url("/portal/sign-in"))
        .header("cookie", format!("portal_session={visitor}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", s(&a.creds, &["portal", "username"])),
            ("password", s(&a.creds, &["portal", "password"])),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let session = portal_cookie(&res);
    let keys = |saas: &Saas| {
        http.get(saas.url("/portal/keys"))
            .header("cookie", format!("portal_session={session}"))
            .send()
    };
    assert_eq!(keys(&a).await.unwrap().status(), 200);
    // Two calls with the tenant's API key and one with its OAuth client's token: the usage
    // page counts every credential of the tenant, from the stored billing history.
    let pro = s(&a.creds, &["api_keys", "pro", "key"]).to_owned();
    for _ in 0..2 {
        assert_eq!(get_with_key(&a, &pro).await.status(), 200);
    }
    assert_eq!(get_with_token(&a, &token(&a).await).await, 200);
    let requests_total = |saas: &Saas| {
        let req = http
            .get(saas.url("/portal/usage"))
            .header("cookie", format!("portal_session={session}"))
            .send();
        async move {
            let html = req.await.unwrap().text().await.unwrap();
            let at = html
                .find(r#"<svg id="requests-per-day""#)
                .expect("the chart");
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            let v = &tag[tag.find(r#"data-total=""#).unwrap() + r#"data-total=""#.len()..];
            v[..v.find('"').unwrap()].parse::<u64>().unwrap()
        }
    };
    assert_eq!(requests_total(&a).await, 3);
    assert!(a.terminate().success());

    // Sessions are rows of the database (ids kept only as hashes): the new process knows it.
    let b = Saas::start(&args).await;
    assert_eq!(
        keys(&b).await.unwrap().status(),
        200,
        "signed in after a restart"
    );
    assert_eq!(
        requests_total(&b).await,
        3,
        "the usage chart survives a restart"
    );
}

fn operator(saas: &Saas, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    req.basic_auth(
        s(&saas.creds, &["operator", "username"]),
        Some(s(&saas.creds, &["operator", "password"])),
    )
}

/// The billing export as JSON rows and as CSV text.
async fn export(saas: &Saas) -> (Vec<Value>, String) {
    let res = operator(saas, saas.http.get(saas.url("/admin/usage/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rows = res.json::<Value>().await.unwrap()["rows"]
        .as_array()
        .unwrap()
        .clone();
    let res = operator(
        saas,
        saas.http.get(saas.url("/admin/usage/export?format=csv")),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    (rows, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_billing_export_survives_a_restart_on_sqlite_as_json_and_csv() {
    let dir = TempDir::new("persist-history");
    let url = format!("sqlite:{}", dir.0.join("saas.db").display());
    let args = ["--database-url", url.as_str(), "--public-url", PUBLIC_URL];

    let mut a = Saas::start(&args).await;
    let pro = s(&a.creds, &["api_keys", "pro", "key"]).to_owned();
    let free = s(&a.creds, &["api_keys", "free", "key"]).to_owned();
    for _ in 0..2 {
        assert_eq!(get_with_key(&a, &pro).await.status(), 200);
    }
    assert_eq!(get_with_key(&a, &free).await.status(), 200);
    let (rows, csv) = export(&a).await;
    let company = |rows: &[Value], identity: &str| -> Value {
        rows.iter()
            .find(|r| r["identity"] == identity && r["route"] == "/v1/companies/{domain}")
            .unwrap_or_else(|| panic!("no row of {identity}: {rows:?}"))
            .clone()
    };
    let row = company(&rows, "api_key::acme-pro");
    assert_eq!(
        (row["tenant"].as_str(), row["requests_2xx"].as_u64()),
        (Some("acme"), Some(2))
    );
    assert_eq!(row["credits"], 2);
    assert_eq!(company(&rows, "api_key::acme-free")["tenant"], "initech");
    assert!(csv.lines().count() >= 3, "{csv}");
    assert!(a.terminate().success());

    // A new process on the same file: the same rows, in both formats.
    let b = Saas::start(&args).await;
    let (rows_after, csv_after) = export(&b).await;
    assert_eq!(rows_after, rows, "the JSON export after a restart");
    assert_eq!(csv_after, csv, "the CSV export after a restart");
    // And new requests add to the day's row rather than start another.
    assert_eq!(get_with_key(&b, &pro).await.status(), 200);
    let (rows_later, _) = export(&b).await;
    let row = company(&rows_later, "api_key::acme-pro");
    assert_eq!(
        (row["requests_2xx"].as_u64(), row["credits"].as_u64()),
        (Some(3), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_admit_exactly_fifty_of_two_hundred_at_cost_one() {
    if skipped("credits_on_postgres") {
        return;
    }
    let pg = TestPostgres::start();
    let mut args = pg_args(&pg.url());
    // The rate limit out of the way: only credits limit here.
    args.extend(["--quota".to_owned(), "pro=1000:1000".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    let res = operator(&a, a.http.post(a.url("/admin/tenants/acme/credits")))
        .json(&json!({ "set": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pro = s(&a.creds, &["api_keys", "pro", "key"]).to_owned();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (http, url) = if i % 2 == 0 {
            (a.http.clone(), a.url("/v1/companies/acme.com"))
        } else {
            (b.http.clone(), b.url("/v1/companies/acme.com"))
        };
        let pro = pro.clone();
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .header("x-api-key", pro)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let (mut ok, mut out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => out += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, out), (50, 150));
    let res = operator(&b, b.http.get(b.url("/admin/tenants/acme/credits")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["remaining"], 0);
}
