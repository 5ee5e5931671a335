//! The example SaaS API as a user runs it: a separate process on a free loopback port, its
//! credentials file, and every route walked with every method over real HTTP.
//!
//! `cargo test --workspace` builds the example first; with a `--test` filter, run
//! `cargo build --example saas` before, or the tests drive a stale binary.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apiauth_hmac::{HmacSecret, Signer};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Redis, Saas};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

async fn token(s: &Saas, scope: &str) -> String {
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(s, &["oauth_client", "client_id"]),
            Some(cred(s, &["oauth_client", "client_secret"])),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().unwrap().to_owned()
}

fn signer(s: &Saas) -> Signer {
    let secret = base64::engine::general_purpose::STANDARD
        .decode(cred(s, &["hmac", "secret_base64"]))
        .unwrap();
    Signer::builder(
        cred(s, &["hmac", "key_id"]),
        HmacSecret::new(secret).unwrap(),
    )
    .build()
    .unwrap()
}

/// Signs with RFC 9421 (hmac-sha256) and sends.
async fn signed(s: &Saas, method: &str, path: &str, body: &[u8]) -> reqwest::Response {
    signed_with(s, &signer(s), method, path, body).await
}

async fn signed_with(
    s: &Saas,
    signer: &Signer,
    method: &str,
    path: &str,
    body: &[u8],
) -> reqwest::Response {
    let mut req = http::Request::builder()
        .method(method)
        .uri(s.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .unwrap();
    signer.sign(&mut req).unwrap();
    s.http
        .execute(reqwest::Request::try_from(req).unwrap())
        .await
        .unwrap()
}

async fn problem(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    (status, res.json().await.unwrap())
}

#[tokio::test]
async fn unauthenticated_data_routes_are_401_listing_every_scheme() {
    let s = Saas::start(&[]).await;
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenges: Vec<_> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let metadata = s.url("/.well-known/oauth-protected-resource/v1");
    assert_eq!(
        challenges,
        [
            format!(r#"Bearer realm="saas", resource_metadata="{metadata}""#),
            format!(r#"DPoP realm="saas", algs="ES256 EdDSA", resource_metadata="{metadata}""#),
            r#"ApiKey realm="saas""#.to_owned(),
            r#"Signature realm="saas""#.to_owned()
        ]
    );
    let (_, p) = problem(res).await;
    assert_eq!(p["status"], 401);
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn api_keys_guard_each_route_by_scope() {
    let s = Saas::start(&[]).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]);
    let free = cred(&s, &["api_keys", "free", "key"]);
    let get = |k: &str, path: &str| s.http.get(s.url(path)).header("x-api-key", k).send();
    let res = get(pro, "/v1/companies/acme.com").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["domain"], "acme.com");
    let search = json!({ "company_domain": "acme.com", "limit": 2 });
    let res = s
        .http
        .post(s.url("/v1/contacts/search"))
        .header("authorization", format!("ApiKey {pro}"))
        .json(&search)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["contacts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let res = s
        .http
        .post(s.url("/v1/enrichments"))
        .header("x-api-key", pro)
        .json(&json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // The free key has companies:read only.
    assert_eq!(
        get(free, "/v1/companies/acme.com").await.unwrap().status(),
        200
    );
    let res = s
        .http
        .post(s.url("/v1/contacts/search"))
        .header("x-api-key", free)
        .json(&search)
        .send()
        .await
        .unwrap();
    let (status, p) = problem(res).await;
    assert_eq!(
        (status, p["error"].as_str(), p["scope"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some("contacts:read")
        )
    );
    // A key in the URL is refused, a wrong key is 401 with the same body as any other.
    let res = s
        .http
        .get(s.url(&format!("/v1/companies/acme.com?api_key={pro}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let mut tampered = pro.to_owned();
    tampered.replace_range(10..11, if &pro[10..11] == "a" { "b" } else { "a" });
    let (status, p) = problem(get(&tampered, "/v1/companies/acme.com").await.unwrap()).await;
    // The API key scheme's own code; `invalid_token` is Bearer's.
    assert_eq!(
        (status, p["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_key"))
    );
}

#[tokio::test]
async fn oauth_client_credentials_token_then_revoke() {
    let s = Saas::start(&[]).await;
    let t = token(&s, "companies:read").await;
    let call = |t: &str| {
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .bearer_auth(t)
            .send()
    };
    assert_eq!(call(&t).await.unwrap().status(), 200);
    // Scope beyond the token: 403 with the RFC 6750 challenge.
    let res = s
        .http
        .post(s.url("/v1/enrichments"))
        .bearer_auth(&t)
        .json(&json!({ "email": "a@b.co" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="insufficient_scope""#)
    );
    // client_secret_post works as well (RFC 6749 §2.3.1).
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", cred(&s, &["oauth_client", "client_id"])),
            (
                "client_secret",
                cred(&s, &["oauth_client", "client_secret"]),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // An admin scope is not the client's to ask for.
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(&s, &["oauth_client", "client_id"]),
            Some(cred(&s, &["oauth_client", "client_secret"])),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_scope");
    // Revocation (RFC 7009) takes effect on the next request.
    let res = s
        .http
        .post(s.url("/oauth/revoke"))
        .basic_auth(
            cred(&s, &["oauth_client", "client_id"]),
            Some(cred(&s, &["oauth_client", "client_secret"])),
        )
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, p) = problem(call(&t).await.unwrap()).await;
    assert_eq!(
        (status, p["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    // Discovery documents.
    let meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], s.base.as_str());
    assert_eq!(meta["token_endpoint"], s.url("/oauth/token"));
    let jwks: Value = s
        .http
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
}

#[tokio::test]
async fn rfc9421_signed_requests_are_accepted_and_replays_refused() {
    let s = Saas::start(&[]).await;
    let res = signed(&s, "GET", "/v1/companies/acme.com", b"").await;
    assert_eq!(res.status(), 200);
    let body = br#"{"email":"grace@acme.com"}"#;
    let res = signed(&s, "POST", "/v1/enrichments", body).await;
    assert_eq!(res.status(), 201);
    // The same signed request again: its nonce is spent.
    let signer = signer(&s);
    let mut req = http::Request::builder()
        .method("GET")
        .uri(s.url("/v1/companies/acme.com"))
        .body(Vec::new())
        .unwrap();
    signer.sign(&mut req).unwrap();
    let replay = reqwest::Request::try_from(req.clone()).unwrap();
    assert_eq!(
        s.http
            .execute(reqwest::Request::try_from(req).unwrap())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(s.http.execute(replay).await.unwrap().status(), 401);
    // A wrong secret: 401.
    let wrong = Signer::builder(cred(&s, &["hmac", "key_id"]), HmacSecret::generate())
        .build()
        .unwrap();
    let (status, p) =
        problem(signed_with(&s, &wrong, "GET", "/v1/companies/acme.com", b"").await).await;
    // RFC 9421 defines no error codes: none is borrowed from Bearer.
    assert_eq!(
        (status, p["error"].as_str()),
        (StatusCode::UNAUTHORIZED, None)
    );
    assert_eq!(p["detail"], "The credentials are not valid.");
}

#[tokio::test]
async fn crm_webhook_takes_only_a_signature_with_nonce_and_content_digest() {
    let s = Saas::start(&[]).await;
    let event = br#"{"type":"contact.updated","id":"c_1"}"#;
    let res = signed(&s, "POST", "/v1/webhooks/crm", event).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["received"], true);
    // No nonce: refused.
    let no_nonce = Signer::builder(
        cred(&s, &["hmac", "key_id"]),
        HmacSecret::new(
            base64::engine::general_purpose::STANDARD
                .decode(cred(&s, &["hmac", "secret_base64"]))
                .unwrap(),
        )
        .unwrap(),
    )
    .dangerous_without_nonce()
    .build()
    .unwrap();
    assert_eq!(
        signed_with(&s, &no_nonce, "POST", "/v1/webhooks/crm", event)
            .await
            .status(),
        401
    );
    // An API key is not a way in here.
    let res = s
        .http
        .post(s.url("/v1/webhooks/crm"))
        .header("x-api-key", cred(&s, &["api_keys", "pro", "key"]))
        .body(event.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Body changed after signing: the digest no longer matches.
    let signer = signer(&s);
    let mut req = http::Request::builder()
        .method("POST")
        .uri(s.url("/v1/webhooks/crm"))
        .body(event.to_vec())
        .unwrap();
    signer.sign(&mut req).unwrap();
    *req.body_mut() = br#"{"type":"contact.deleted","id":"c_1"}"#.to_vec();
    assert_eq!(
        s.http
            .execute(reqwest::Request::try_from(req).unwrap())
            .await
            .unwrap()
            .status(),
        401
    );
}

fn billing_signature(secret: &str, t: u64, body: &[u8]) -> String {
    use hmac::{Mac, SimpleHmac};
    let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn billing_webhook_takes_the_timestamped_profile() {
    let s = Saas::start(&[]).await;
    let secret = cred(&s, &["webhook_secret"]).to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let send = |header: String, body: &'static [u8]| {
        s.http
            .post(s.url("/v1/webhooks/billing"))
            .header("webhook-signature", header)
            .body(body)
            .send()
    };
    let body: &[u8] = br#"{"type":"invoice.paid"}"#;
    let good = billing_signature(&secret, now, body);
    assert_eq!(
        send(format!("t={now},v1={good}"), body)
            .await
            .unwrap()
            .status(),
        202
    );
    // During a rotation the sender sends two signatures; one valid suffices.
    let body2: &[u8] = br#"{"type":"invoice.voided"}"#;
    let old = billing_signature("whsec_retired_secret_that_is_long_enough_0", now, body2);
    let new = billing_signature(&secret, now, body2);
    assert_eq!(
        send(format!("t={now},v1={old},v1={new}"), body2)
            .await
            .unwrap()
            .status(),
        202
    );
    // Outside the 5-minute tolerance, or a wrong signature: 401.
    let stale = now - 301;
    let body3: &[u8] = br#"{"type":"invoice.created"}"#;
    assert_eq!(
        send(
            format!("t={stale},v1={}", billing_signature(&secret, stale, body3)),
            body3
        )
        .await
        .unwrap()
        .status(),
        401
    );
    assert_eq!(
        send(format!("t={now},v1={old}"), body3)
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn admin_manages_api_keys_create_rotate_revoke() {
    let s = Saas::start(&["--rotation-grace", "2"]).await;
    let (user, pw) = (
        cred(&s, &["admin", "username"]).to_owned(),
        cred(&s, &["admin", "password"]).to_owned(),
    );
    let admin = |r: reqwest::RequestBuilder| r.basic_auth(&user, Some(&pw));
    let res = admin(s.http.post(s.url("/admin/api-keys")))
        .json(&json!({ "owner": "bob", "scopes": "companies:read", "plan": "free" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["summary"]["id"].as_str().unwrap().to_owned();
    let use_key = |k: String| {
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .header("x-api-key", k)
            .send()
    };
    assert_eq!(use_key(key.clone()).await.unwrap().status(), 200);
    // Listing never shows a secret.
    let list = admin(s.http.get(s.url("/admin/api-keys")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&id) && !list.contains(&key[8..]), "{list}");
    // Rotation: both keys work during the grace period, then only the new one.
    let rotated: Value = admin(s.http.post(s.url(&format!("/admin/api-keys/{id}/rotate"))))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let new_id = rotated["summary"]["id"].as_str().unwrap().to_owned();
    assert_eq!(use_key(key.clone()).await.unwrap().status(), 200);
    assert_eq!(use_key(new_key.clone()).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(use_key(key.clone()).await.unwrap().status(), 401);
    assert_eq!(use_key(new_key.clone()).await.unwrap().status(), 200);
    // Revocation: effective on the next request.
    assert_eq!(
        admin(s.http.delete(s.url(&format!("/admin/api-keys/{new_id}"))))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(use_key(new_key).await.unwrap().status(), 401);
    // Not the admin: wrong password 401; an API key is no way into admin routes; a bearer
    // token without the admin scope is 403.
    let res = s
        .http
        .get(s.url("/admin/api-keys"))
        .basic_auth(&user, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Basic realm="saas-admin", charset="UTF-8""#
    );
    let res = s
        .http
        .get(s.url("/admin/api-keys"))
        .header("x-api-key", cred(&s, &["api_keys", "pro", "key"]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let t = token(&s, "companies:read").await;
    assert_eq!(
        s.http
            .get(s.url("/admin/api-keys"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // A bearer token with the admin scope (the admin console client) is the other way in.
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            cred(&s, &["admin_oauth_client", "client_id"]),
            Some(cred(&s, &["admin_oauth_client", "client_secret"])),
        )
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let admin_token = res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .http
        .get(s.url("/admin/api-keys"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(&id));
    // Admin scope is for the admin API only: data routes still want their own scope.
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Metrics are admin-only too.
    assert_eq!(
        s.http.get(s.url("/metrics")).send().await.unwrap().status(),
        401
    );
    let metrics = admin(s.http.get(s.url("/metrics")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("apiauth_auth_outcomes_total"), "{metrics}");
}

#[tokio::test]
async fn free_plan_is_limited_to_its_burst_with_ratelimit_headers() {
    let s = Saas::start(&[]).await;
    let free = cred(&s, &["api_keys", "free", "key"]).to_owned();
    for i in 0..20 {
        let res = s
            .http
            .get(s.url("/v1/companies/acme.com"))
            .header("x-api-key", &free)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.headers()["ratelimit-limit"], "20");
        assert_eq!(
            res.headers()["ratelimit-remaining"],
            (19 - i).to_string().as_str()
        );
    }
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", &free)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=3).contains(&retry),
        "one request refills every 3 s: {retry}"
    );
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let (_, p) = problem(res).await;
    assert_eq!(p["status"], 429);
    // The pro key has its own bucket.
    let pro = cred(&s, &["api_keys", "pro", "key"]);
    assert_eq!(
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .header("x-api-key", pro)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn usage_reports_the_callers_own_counts_per_route() {
    let s = Saas::start(&[]).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]).to_owned();
    for d in ["a.com", "b.com", "c.com"] {
        s.http
            .get(s.url(&format!("/v1/companies/{d}")))
            .header("x-api-key", &pro)
            .send()
            .await
            .unwrap();
    }
    let usage: Value = s
        .http
        .get(s.url("/v1/usage"))
        .header("x-api-key", &pro)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["subject"], "acme-pro");
    let rows = usage["usage"].as_array().unwrap();
    let companies = rows
        .iter()
        .find(|r| r["route"] == "/v1/companies/{domain}")
        .unwrap();
    assert_eq!(
        (
            companies["status_class"].as_str(),
            companies["count"].as_u64()
        ),
        (Some("2xx"), Some(3))
    );
    // Another caller sees only its own.
    let free = cred(&s, &["api_keys", "free", "key"]);
    let usage: Value = s
        .http
        .get(s.url("/v1/usage"))
        .header("x-api-key", free)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(usage["subject"], "acme-free");
    assert_eq!(usage["total"], 0);
}

#[tokio::test]
async fn openapi_document_describes_every_scheme_and_route_scope() {
    let s = Saas::start(&[]).await;
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in [
        "apiKey",
        "basicAuth",
        "bearerAuth",
        "oauth2",
        "httpSignature",
        "webhookSignature",
    ] {
        assert!(schemes.contains_key(name), "{name}");
    }
    assert_eq!(
        schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        "/oauth/token"
    );
    let op = &doc["paths"]["/v1/contacts/search"]["post"];
    assert_eq!(op["x-required-scopes"], json!(["contacts:read"]));
    assert!(
        op["security"]
            .as_array()
            .unwrap()
            .contains(&json!({ "oauth2": ["contacts:read"] }))
    );
    assert!(
        doc["paths"]["/v1/webhooks/billing"]["post"]["security"]
            .as_array()
            .unwrap()
            .contains(&json!({ "webhookSignature": [] }))
    );
}

#[tokio::test]
async fn no_secret_reaches_any_log_line_even_at_trace() {
    let dir = support::TempDir::new("logs");
    let log = dir.0.join("saas.log");
    let s = Saas::start_logging(&["--log-format", "json"], &[("RUST_LOG", "trace")], &log).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]).to_owned();
    s.http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", &pro)
        .send()
        .await
        .unwrap();
    s.http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", format!("{pro}x"))
        .send()
        .await
        .unwrap();
    let t = token(&s, "companies:read").await;
    s.http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    s.http
        .get(s.url("/admin/api-keys"))
        .basic_auth("admin", Some(cred(&s, &["admin", "password"])))
        .send()
        .await
        .unwrap();
    signed(&s, "GET", "/v1/companies/acme.com", b"").await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("apiauth::audit"), "no audit events logged");
    let token_signature = t.rsplit('.').next().unwrap();
    for secret in [
        pro.as_str(),
        &pro[8..],
        token_signature,
        cred(&s, &["admin", "password"]),
        cred(&s, &["oauth_client", "client_secret"]),
        cred(&s, &["admin_oauth_client", "client_secret"]),
        cred(&s, &["hmac", "secret_base64"]),
        cred(&s, &["webhook_secret"]),
    ] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
    // The Basic header, the admin password and the OAuth secret never appear either.
    assert!(!text.to_ascii_lowercase().contains("authorization: basic"));
}

#[tokio::test]
async fn dev_tls_serves_https_with_hsts() {
    let s = Saas::start(&["--dev-tls"]).await;
    assert!(s.base.starts_with("https://"));
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let pro = cred(&s, &["api_keys", "pro", "key"]);
    assert_eq!(
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .header("x-api-key", pro)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn require_https_refuses_credentials_over_plain_http_unless_the_proxy_says_https() {
    let s = Saas::start(&["--require-https", "--trust-forwarded"]).await;
    let pro = cred(&s, &["api_keys", "pro", "key"]);
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", pro)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", pro)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let mut s = Saas::start(&[]).await;
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn two_instances_on_one_redis_share_credentials_revocations_quotas_and_lockouts() {
    let redis = Redis::start().await;
    let args = [
        "--redis-url",
        redis.url.as_str(),
        "--demo-seed",
        "shared-demo",
        // Behind one load balancer: one public URL, one Redis, one seed.
        "--public-url",
        "http://api.example.test",
    ];
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    for path in [
        &["api_keys", "pro", "key"][..],
        &["admin", "password"],
        &["oauth_client", "client_secret"],
        &["hmac", "secret_base64"],
        &["webhook_secret"],
    ] {
        assert_eq!(cred(&a, path), cred(&b, path), "{path:?}");
    }
    // A key created on A works on B; revoked on A, it is refused on B at once.
    let created: Value = a
        .http
        .post(a.url("/admin/api-keys"))
        .basic_auth("admin", Some(cred(&a, &["admin", "password"])))
        .json(&json!({ "owner": "carol", "scopes": "companies:read" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let id = created["summary"]["id"].as_str().unwrap();
    assert_eq!(
        b.http
            .get(b.url("/v1/companies/x.com"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    a.http
        .delete(a.url(&format!("/admin/api-keys/{id}")))
        .basic_auth("admin", Some(cred(&a, &["admin", "password"])))
        .send()
        .await
        .unwrap();
    assert_eq!(
        b.http
            .get(b.url("/v1/companies/x.com"))
            .header("x-api-key", key)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A signed request accepted by A is a replay on B. Both verify against the public
    // authority, so the signature base is the same and only the shared nonce store can
    // refuse it.
    let signer = signer(&a);
    assert_eq!(cred(&a, &["base_url"]), "http://api.example.test");
    let sign_public = || {
        let mut r = http::Request::builder()
            .method("GET")
            .uri("http://api.example.test/v1/companies/x.com")
            .body(Vec::new())
            .unwrap();
        signer.sign(&mut r).unwrap();
        r
    };
    let to = |s: &Saas, req: &http::Request<Vec<u8>>| {
        let mut r = req.clone();
        *r.uri_mut() = s.url("/v1/companies/x.com").parse().unwrap();
        reqwest::Request::try_from(r).unwrap()
    };
    assert_eq!(
        b.http
            .execute(to(&b, &sign_public()))
            .await
            .unwrap()
            .status(),
        200,
        "B accepts a request signed for the public authority"
    );
    let req = sign_public();
    assert_eq!(a.http.execute(to(&a, &req)).await.unwrap().status(), 200);
    assert_eq!(
        b.http.execute(to(&b, &req)).await.unwrap().status(),
        401,
        "replayed nonce"
    );
    // An access token issued by A is accepted by B (one signing key per seed); revoked on A,
    // it is refused on B.
    let t = token(&a, "companies:read").await;
    assert_eq!(
        b.http
            .get(b.url("/v1/companies/x.com"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let res = a
        .http
        .post(a.url("/oauth/revoke"))
        .basic_auth(
            cred(&a, &["oauth_client", "client_id"]),
            Some(cred(&a, &["oauth_client", "client_secret"])),
        )
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        b.http
            .get(b.url("/v1/companies/x.com"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // One quota across both: the free key's 20-request burst is shared.
    let free = cred(&a, &["api_keys", "free", "key"]);
    for i in 0..20 {
        let inst = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            inst.http
                .get(inst.url("/v1/companies/x.com"))
                .header("x-api-key", free)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(
        b.http
            .get(b.url("/v1/companies/x.com"))
            .header("x-api-key", free)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    assert_eq!(
        a.http
            .get(a.url("/v1/companies/x.com"))
            .header("x-api-key", free)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );

    // Basic lock-out counters are shared too: five failures for one user-id from one address,
    // split over A and B, lock that address out of it on both (the per-(user, address)
    // default is 5 failures).
    let admin_me = |s: &Saas, password: &str| {
        s.http
            .get(s.url("/admin/api-keys"))
            .basic_auth("intruder", Some(password))
            .send()
    };
    for (i, inst) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
        let res = admin_me(inst, &format!("guess-{i}")).await.unwrap();
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    for inst in [&b, &a] {
        let res = admin_me(inst, "guess-6").await.unwrap();
        assert_eq!(res.status(), 429);
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 60, "Retry-After {retry}");
    }
}

#[tokio::test]
async fn tls_cert_and_key_files_serve_https() {
    let dir = support::TempDir::new("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let s = Saas::start(&[
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ])
    .await;
    assert!(s.base.starts_with("https://"));
    let res = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));
    // The OAuth issuer is the https URL (no insecure-issuer exception needed).
    let meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta["issuer"].as_str().unwrap().starts_with("https://"));
    let t = token(&s, "companies:read").await;
    assert_eq!(
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = Saas::start(&[]).await;
    let secret = cred(&s, &["webhook_secret"]).to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = br#"{"type":"invoice.paid","id":"in_1"}"#;
    let sig = billing_signature(&secret, now, body);
    let addr = s
        .base
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/webhooks/billing HTTP/1.1\r\nHost: {addr}\r\nWebhook-Signature: t={now},v1={sig}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body[..10]).await.unwrap();
    // The request is in flight (its body half sent) when the signal arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.signal_term();
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.write_all(&body[10..]).await.unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    let status = s.wait();
    assert!(status.success(), "{status:?}");
}
