//! Issue 15, items 1 and 3: callers of different credential sources never share a quota
//! bucket or usage record, and the client address is the one behind trusted proxies only.
//!
//! The example runs as a separate process on loopback (see `tests/support`); the two-issuer
//! case runs a small axum app with the JWT verifier on loopback.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth::bearer::Bearer;
use apiauth::jwt::{Issuer, JwtKey, JwtVerifier};
use apiauth::quota::{QuotaLayer, QuotaPolicy, own_usage};
use axum::Router;
use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Saas, TempDir};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

async fn usage(
    s: &Saas,
    auth: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Value {
    let res = auth(s.http.get(s.url("/v1/usage"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn count(usage: &Value, route: &str) -> u64 {
    usage["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["route"] == route && r["status_class"] == "2xx")
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn an_api_key_owner_and_an_oauth_client_of_one_name_have_their_own_bucket_and_usage() {
    // A burst of 4 that does not refill during the test, for callers no plan resolves for
    // (a key of tenant globex, which is on no plan, created without one) and for pro (the
    // OAuth client's tenant acme). The namesake key is another tenant's: credentials of one
    // tenant share its bucket by design (issue 18), so keying by identity is seen across
    // tenants.
    let s = Saas::start(&["--quota", "default=4:0.001", "--quota", "pro=4:0.001"]).await;
    let client_id = cred(&s, &["oauth_client", "client_id"]).to_owned();
    assert_eq!(client_id, "acme-crm-sync");
    let (user, pw) = (
        cred(&s, &["other_tenant_admin", "username"]),
        cred(&s, &["other_tenant_admin", "password"]),
    );
    let res = s
        .http
        .post(s.url("/admin/api-keys"))
        .basic_auth(user, Some(pw))
        .json(&json!({ "owner": client_id, "scopes": "companies:read" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let key = res.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_key = |r: reqwest::RequestBuilder| r.header("x-api-key", &key);

    // The key spends its whole burst: three lookups and one usage read.
    for _ in 0..3 {
        let res = with_key(s.http.get(s.url("/v1/companies/acme.com")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let key_usage = usage(&s, with_key).await;
    assert_eq!(key_usage["subject"], "acme-crm-sync");
    assert_eq!(key_usage["identity"], "api_key::acme-crm-sync");
    assert_eq!(count(&key_usage, "/v1/companies/{domain}"), 3);
    let res = with_key(s.http.get(s.url("/v1/companies/acme.com")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the key's own bucket is empty");

    // The OAuth client of the same name still has its whole bucket, and its own records.
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            &client_id,
            Some(cred(&s, &["oauth_client", "client_secret"])),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "companies:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_token = |r: reqwest::RequestBuilder| r.bearer_auth(&token);
    let res = with_token(s.http.get(s.url("/v1/companies/acme.com")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "a namesake's spent bucket is not the client's"
    );
    let token_usage = usage(&s, with_token).await;
    assert_eq!(token_usage["subject"], "acme-crm-sync");
    let identity = token_usage["identity"].as_str().unwrap();
    assert!(
        identity.starts_with("jwt:http") && identity.ends_with(":acme-crm-sync"),
        "{identity}"
    );
    assert_eq!(count(&token_usage, "/v1/companies/{domain}"), 1);
}

const AUD: &str = "https://api.test";

fn mint(iss: &str, secret: &[u8], sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({ "iss": iss, "aud": AUD, "sub": sub, "iat": now, "exp": now + 600 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

#[tokio::test]
async fn two_issuers_with_one_subject_are_two_callers() {
    let (a, b) = (
        b"issuer-a-secret-of-32-bytes-long!",
        b"issuer-b-secret-of-32-bytes-long!",
    );
    let jwt = JwtVerifier::builder()
        .issuer(
            Issuer::new("https://a.example")
                .audience(AUD)
                .key(JwtKey::hmac(a).unwrap()),
        )
        .issuer(
            Issuer::new("https://b.example")
                .audience(AUD)
                .key(JwtKey::hmac(b).unwrap()),
        )
        .build()
        .await
        .unwrap();
    let quota = QuotaLayer::builder()
        .default_plan(QuotaPolicy::per_minute(1).burst(2))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/item", get(|| async { "item" }))
        .route("/usage", get(own_usage))
        .layer(quota)
        .layer(Bearer::new(jwt).layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let http = reqwest::Client::new();
    let get = |path: &str, token: &str| {
        http.get(format!("http://{addr}{path}"))
            .bearer_auth(token)
            .send()
    };
    let from_a = mint("https://a.example", a, "user-1");
    let from_b = mint("https://b.example", b, "user-1");
    assert_eq!(get("/item", &from_a).await.unwrap().status(), 200);
    assert_eq!(get("/item", &from_a).await.unwrap().status(), 200);
    assert_eq!(get("/item", &from_a).await.unwrap().status(), 429);
    // Issuer B's `user-1` is somebody else.
    assert_eq!(get("/item", &from_b).await.unwrap().status(), 200);
    let usage: Value = get("/usage", &from_b).await.unwrap().json().await.unwrap();
    assert_eq!(usage["identity"], "jwt:https%3A//b.example:user-1");
    assert_eq!(usage["total"], 1, "{usage}");
}

/// An HTTP client whose connections come from `source` (any 127/8 address is loopback).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `s.url(path)` on 127.0.0.1, the family of the clients bound to a 127/8 source.
fn url4(s: &Saas, path: &str) -> String {
    s.url(path).replacen("://localhost:", "://127.0.0.1:", 1)
}

/// Sends anonymous requests as `xff` until the anonymous bucket answers 429; panics if it
/// never does.
async fn exhaust(http: &reqwest::Client, s: &Saas, xff: &str) {
    for _ in 0..50 {
        let res = http
            .get(url4(s, "/v1/companies/acme.com"))
            .header("x-forwarded-for", xff)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        assert_eq!(res.status(), 401);
    }
    panic!("the anonymous bucket of {xff} never ran out");
}

async fn status_as(http: &reqwest::Client, s: &Saas, xff: &str) -> StatusCode {
    http.get(url4(s, "/v1/companies/acme.com"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap()
        .status()
}

const ANON: [&str; 2] = ["--quota", "anonymous=3:0.001"];

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_anonymous_bucket_and_audit_address() {
    let dir = TempDir::new("identity-log");
    let log = dir.0.join("log");
    let s = Saas::start_logging(&[&ANON[..], &["--trust-forwarded"]].concat(), &[], &log).await;
    let proxy = client_from("127.0.0.1");
    exhaust(&proxy, &s, "203.0.113.1").await;
    // Another client behind the same proxy is not limited by the first one's requests.
    assert_eq!(status_as(&proxy, &s, "203.0.113.2").await, 401);
    // A client cannot pick its address: the proxy appended the real one on the right.
    assert_eq!(status_as(&proxy, &s, "203.0.113.2, 203.0.113.1").await, 429);
    // A refused credential is audited with the client's address, not the proxy's.
    let res = proxy
        .get(url4(&s, "/v1/companies/acme.com"))
        .header("x-forwarded-for", "198.51.100.7")
        .header("x-api-key", "sk_live_not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    drop(s);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("client=198.51.100.7"),
        "the audit event names the client behind the proxy:\n{text}"
    );
    assert!(!text.contains("client=127.0.0.1"), "{text}");
}

#[tokio::test]
async fn without_trusted_proxies_the_forwarding_header_changes_nothing() {
    // Unconfigured: the socket peer is the client, whatever it claims.
    let s = Saas::start(&ANON).await;
    let peer = client_from("127.0.0.1");
    exhaust(&peer, &s, "203.0.113.1").await;
    assert_eq!(status_as(&peer, &s, "203.0.113.2").await, 429);
    // Another socket peer is another client.
    assert_eq!(
        status_as(&client_from("127.0.0.9"), &s, "203.0.113.1").await,
        401
    );

    // Trusting 127.0.0.1 only: a peer at 127.0.0.66 is not a proxy, so its header is ignored.
    let s = Saas::start(&[&ANON[..], &["--trust-forwarded", "127.0.0.1/32"]].concat()).await;
    let stranger = client_from("127.0.0.66");
    exhaust(&stranger, &s, "203.0.113.1").await;
    assert_eq!(status_as(&stranger, &s, "203.0.113.2").await, 429);
    // And it cannot claim HTTPS either: --require-https is not fooled by its header.
    let s = Saas::start(&["--require-https", "--trust-forwarded", "127.0.0.1/32"]).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]).to_owned();
    let send = |http: reqwest::Client| {
        let req = http
            .get(url4(&s, "/v1/companies/acme.com"))
            .header("x-api-key", &pro)
            .header("x-forwarded-proto", "https");
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(send(client_from("127.0.0.66")).await, 400);
    assert_eq!(send(client_from("127.0.0.1")).await, 200);
}
