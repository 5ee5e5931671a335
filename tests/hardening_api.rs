//! Smaller holes of the example, closed and proven over real HTTP: the signed authority is the
//! public one, empty nonces and loose webhook hex are refused, unknown plans are 422, the admin
//! API stays inside the caller's tenant, `/readyz` reports an unreachable Redis, and the demo
//! resource server can introspect.
//!
//! With a `--test` filter, run `cargo build --example saas` first (see `saas_e2e.rs`).

mod support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apiauth_hmac::{HmacSecret, Signer};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Saas, TempDir, free_port};

fn cred<'a>(s: &'a Saas, path: &[&str]) -> &'a str {
    let mut v = &s.creds;
    for p in path {
        v = &v[*p];
    }
    v.as_str()
        .unwrap_or_else(|| panic!("credentials lack {path:?}"))
}

fn hmac_secret(s: &Saas) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(cred(s, &["hmac", "secret_base64"]))
        .unwrap()
}

fn signer(s: &Saas) -> Signer {
    Signer::builder(
        cred(s, &["hmac", "key_id"]),
        HmacSecret::new(hmac_secret(s)).unwrap(),
    )
    .build()
    .unwrap()
}

/// A GET of `path` signed as if sent to `http://{authority}`, then delivered to the example's
/// own socket with `Host: {authority}`: what an attacker replaying a captured request does.
async fn signed_for(s: &Saas, authority: &str, path: &str) -> reqwest::Response {
    let mut req = http::Request::builder()
        .method("GET")
        .uri(format!("http://{authority}{path}"))
        .body(Vec::new())
        .unwrap();
    signer(s).sign(&mut req).unwrap();
    *req.uri_mut() = s.url(path).parse().unwrap();
    req.headers_mut().insert("host", authority.parse().unwrap());
    s.http
        .execute(reqwest::Request::try_from(req).unwrap())
        .await
        .unwrap()
}

fn authority_of(url: &str) -> &str {
    url.split_once("://").unwrap().1.trim_end_matches('/')
}

async fn problem(res: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = res.status();
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    (status, headers, res.json().await.unwrap())
}

#[tokio::test]
async fn a_request_signed_for_another_authority_is_401_and_one_for_the_public_authority_200() {
    let s = Saas::start(&[]).await;
    let public = authority_of(cred(&s, &["base_url"])).to_owned();
    let (status, headers, p) =
        problem(signed_for(&s, "evil.example", "/v1/companies/acme.com").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Signature realm="saas""#);
    // RFC 9421 defines no error codes: the body borrows none from Bearer.
    assert!(p.get("error").is_none(), "{p}");
    assert_eq!(p["status"], 401);
    let res = signed_for(&s, &public, "/v1/companies/acme.com").await;
    assert_eq!(res.status(), 200);

    // Behind a load balancer the public URL names the authority; the socket's does not count.
    let s = Saas::start(&["--public-url", "http://api.example.test"]).await;
    let res = signed_for(&s, authority_of(&s.base), "/v1/companies/acme.com").await;
    assert_eq!(res.status(), 401);
    // Signed for the public URL (its default port left out) and delivered through the
    // proxy to this socket: accepted.
    let mut req = http::Request::builder()
        .method("GET")
        .uri("http://api.example.test/v1/companies/acme.com")
        .body(Vec::new())
        .unwrap();
    signer(&s).sign(&mut req).unwrap();
    *req.uri_mut() = s.url("/v1/companies/acme.com").parse().unwrap();
    let res = s
        .http
        .execute(reqwest::Request::try_from(req).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Signs a GET by hand (as the README's shell client does) with the given `nonce` value.
async fn signed_with_nonce(s: &Saas, nonce: &str) -> reqwest::Response {
    use hmac::{Mac, SimpleHmac};
    let authority = authority_of(cred(s, &["base_url"]));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let params = format!(
        r#"("@method" "@authority" "@path" "@query");created={created};keyid="{}";alg="hmac-sha256";nonce="{nonce}""#,
        cred(s, &["hmac", "key_id"])
    );
    let base = format!(
        "\"@method\": GET\n\"@authority\": {authority}\n\"@path\": /v1/companies/acme.com\n\"@query\": ?\n\"@signature-params\": {params}"
    );
    let mut mac = <SimpleHmac<sha2::Sha256> as Mac>::new_from_slice(&hmac_secret(s)).unwrap();
    mac.update(base.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    s.http
        .get(s.url("/v1/companies/acme.com"))
        .header("signature-input", format!("sig1={params}"))
        .header("signature", format!("sig1=:{sig}:"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_empty_nonce_is_refused() {
    let s = Saas::start(&[]).await;
    assert_eq!(signed_with_nonce(&s, "9f2c4e1a").await.status(), 200);
    let (status, headers, p) = problem(signed_with_nonce(&s, "").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], r#"Signature realm="saas""#);
    // RFC 9421 defines no error codes: the body borrows none from Bearer.
    assert!(p.get("error").is_none(), "{p}");
    assert_eq!(p["status"], 401);
}

fn billing_hex(secret: &str, t: u64, body: &[u8]) -> String {
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
async fn billing_webhook_v1_takes_only_64_lowercase_hex_digits() {
    let s = Saas::start(&[]).await;
    let secret = cred(&s, &["webhook_secret"]).to_owned();
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A body whose MAC starts with the digit 0, so that it can be respelled `+`.
    let (body, hex) = (0..)
        .map(|i| format!(r#"{{"type":"invoice.paid","n":{i}}}"#))
        .map(|b| {
            let h = billing_hex(&secret, t, b.as_bytes());
            (b, h)
        })
        .find(|(_, h)| h.starts_with('0'))
        .unwrap();
    let send = |v1: String| {
        s.http
            .post(s.url("/v1/webhooks/billing"))
            .header("webhook-signature", format!("t={t},v1={v1}"))
            .body(body.clone())
            .send()
    };
    for other in [
        format!("+{}", &hex[1..]),
        hex.to_ascii_uppercase(),
        format!("{}+", &hex[..63]),
        hex[..62].to_owned(),
        format!("{hex}00"),
    ] {
        let (status, _, p) = problem(send(other.clone()).await.unwrap()).await;
        assert_eq!(
            (status, p["status"].as_u64()),
            (StatusCode::BAD_REQUEST, Some(400)),
            "{other}"
        );
    }
    // The spelling senders write: accepted.
    assert_eq!(send(hex).await.unwrap().status(), 202);
}

fn admin(s: &Saas, who: &str, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    r.basic_auth(
        cred(s, &[who, "username"]),
        Some(cred(s, &[who, "password"])),
    )
}

#[tokio::test]
async fn an_unknown_plan_at_key_creation_is_422_naming_the_known_plans() {
    let s = Saas::start(&["--quota", "gold=5:1"]).await;
    let create = |plan: &str| {
        admin(&s, "admin", s.http.post(s.url("/admin/api-keys")))
            .json(&json!({ "owner": "bob", "scopes": "companies:read", "plan": plan }))
            .send()
    };
    let (status, _, p) = problem(create("platinum").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["status"], 422);
    assert_eq!(p["known_plans"], json!(["free", "pro", "gold"]));
    assert_eq!(p["detail"], "Unknown plan; known plans: free, pro, gold.");
    // Known plans, the one added by --quota among them, are accepted; so is no plan.
    for plan in ["free", "pro", "gold"] {
        assert_eq!(create(plan).await.unwrap().status(), 201, "{plan}");
    }
    let res = admin(&s, "admin", s.http.post(s.url("/admin/api-keys")))
        .json(&json!({ "owner": "carol" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Nothing was created for the refused request.
    let list: Value = admin(&s, "admin", s.http.get(s.url("/admin/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["plan"] != "platinum"),
        "{list}"
    );
}

#[tokio::test]
async fn another_tenants_admin_gets_404_for_revoke_and_rotate_as_for_an_unknown_key() {
    let s = Saas::start(&[]).await;
    assert_eq!(cred(&s, &["other_tenant_admin", "tenant"]), "globex");
    let created: Value = admin(&s, "admin", s.http.post(s.url("/admin/api-keys")))
        .json(&json!({ "owner": "bob", "scopes": "companies:read" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["summary"]["id"].as_str().unwrap().to_owned();
    let use_key = || {
        s.http
            .get(s.url("/v1/companies/acme.com"))
            .header("x-api-key", &key)
            .send()
    };
    let other = "other_tenant_admin";
    let unknown = problem(
        admin(
            &s,
            other,
            s.http.delete(s.url("/admin/api-keys/AAAAAAAAAAAA")),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    for req in [
        s.http.delete(s.url(&format!("/admin/api-keys/{id}"))),
        s.http.post(s.url(&format!("/admin/api-keys/{id}/rotate"))),
    ] {
        let (status, _, body) = problem(admin(&s, other, req).send().await.unwrap()).await;
        // The same answer as for a key that does not exist: the id is not confirmed.
        assert_eq!((status, &body), (unknown.0, &unknown.2));
    }
    // Neither revoked nor rotated: the key works, and its own tenant still manages it.
    assert_eq!(use_key().await.unwrap().status(), 200);
    let list: Value = admin(&s, other, s.http.get(s.url("/admin/api-keys")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["keys"], json!([]));
    let res = admin(
        &s,
        "admin",
        s.http.post(s.url(&format!("/admin/api-keys/{id}/rotate"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let res = admin(
        &s,
        "admin",
        s.http.delete(s.url(&format!("/admin/api-keys/{id}"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(use_key().await.unwrap().status(), 401);
    // The other tenant's admin manages its own tenant's keys.
    let theirs: Value = admin(&s, other, s.http.post(s.url("/admin/api-keys")))
        .json(&json!({ "owner": "dave" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["summary"]["tenant"], "globex");
    let theirs_id = theirs["summary"]["id"].as_str().unwrap();
    let res = admin(
        &s,
        other,
        s.http
            .delete(s.url(&format!("/admin/api-keys/{theirs_id}"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    // …and acme's admin cannot touch it.
    let res = admin(
        &s,
        "admin",
        s.http
            .post(s.url(&format!("/admin/api-keys/{theirs_id}/rotate"))),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
}

/// A `redis-server` this test owns on a fixed port, so it can be killed and started again.
struct OwnRedis {
    child: Child,
}

impl OwnRedis {
    async fn start(port: u16, dir: &TempDir) -> OwnRedis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for this test (CI installs it)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        OwnRedis { child }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn readyz_is_503_while_redis_is_unreachable_and_healthz_stays_200() {
    // In memory there is nothing to wait for.
    let s = Saas::start(&[]).await;
    let res = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    drop(s);

    let dir = TempDir::new("readyz-redis");
    let port = free_port();
    let redis = OwnRedis::start(port, &dir).await;
    let url = format!("redis://127.0.0.1:{port}");
    let s = Saas::start(&["--redis-url", &url]).await;
    assert_eq!(
        s.http.get(s.url("/readyz")).send().await.unwrap().status(),
        200
    );

    drop(redis);
    let started = Instant::now();
    let res = s.http.get(s.url("/readyz")).send().await.unwrap();
    let took = started.elapsed();
    let (status, headers, p) = problem(res).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(p["status"], 503);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Bounded by the probe's timeout (1 s) whatever Redis does; generous for a loaded machine.
    assert!(took < Duration::from_secs(5), "readyz took {took:?}");
    // Liveness is not readiness: the process still answers.
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );

    // Redis back on the same port: ready again, without a restart (the backend reconnects).
    let _redis = OwnRedis::start(port, &dir).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = s.http.get(s.url("/readyz")).send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "readyz did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Documented in the OpenAPI document.
    let doc: Value = s
        .http
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let readyz = &doc["paths"]["/readyz"]["get"]["responses"];
    assert!(
        readyz["503"]["headers"]["Retry-After"].is_object(),
        "{readyz}"
    );
    assert!(doc["paths"]["/healthz"]["get"].is_object());
}

#[tokio::test]
async fn the_demo_resource_server_introspects_a_token_issued_to_the_demo_client() {
    let s = Saas::start(&[]).await;
    let (client, secret) = (
        cred(&s, &["oauth_client", "client_id"]).to_owned(),
        cred(&s, &["oauth_client", "client_secret"]).to_owned(),
    );
    let (rs, rs_secret) = (
        cred(&s, &["resource_server", "client_id"]).to_owned(),
        cred(&s, &["resource_server", "client_secret"]).to_owned(),
    );
    assert_eq!(
        cred(&s, &["resource_server", "introspection_endpoint"]),
        format!("{}/oauth/introspect", cred(&s, &["base_url"]))
    );
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(&client, Some(&secret))
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
    let introspect = |id: &str, secret: &str| {
        s.http
            .post(s.url("/oauth/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.as_str())])
            .send()
    };
    let res = introspect(&rs, &rs_secret).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], client.as_str());
    assert_eq!(answer["scope"], "companies:read");
    // RFC 7662 §2.1: the caller must authenticate; a wrong secret is refused.
    let res = introspect(&rs, "ocs_wrong").await.unwrap();
    assert_eq!(res.status(), 401);
    // The demo client may not introspect; the resource server may obtain no token.
    assert_eq!(introspect(&client, &secret).await.unwrap().status(), 403);
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(&rs, Some(&rs_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
}
