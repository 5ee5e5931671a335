//! DPoP (RFC 9449) against the example over real HTTP: the authorization server binds tokens
//! to the key of a token request's proof, the API takes them only with a fresh proof from that
//! key, refuses them as bearer tokens, and says so in its challenges and metadata (RFC 9728).
//! RFC 8707 `resource` picks the audience at the token endpoint.
//!
//! With a `--test` filter, run `cargo build --example saas --example dpop-client` first (see
//! `saas_e2e.rs`).

mod support;

use apiauth::dpop::DpopKey;
use base64::Engine;
use serde_json::{Value, json};
use support::{Redis, Saas};

const COMPANY: &str = "/v1/companies/acme.com";

fn client(s: &Saas) -> (&str, &str) {
    (
        s.creds["oauth_client"]["client_id"].as_str().unwrap(),
        s.creds["oauth_client"]["client_secret"].as_str().unwrap(),
    )
}

/// The URL clients use: the credentials' `base_url` (the public URL when one is set).
fn public(s: &Saas, path: &str) -> String {
    format!("{}{path}", s.creds["base_url"].as_str().unwrap())
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn challenges(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `POST /oauth/token` (client credentials), with a proof when given.
async fn token_request(s: &Saas, proof: Option<&str>, form: &[(&str, &str)]) -> reqwest::Response {
    let (id, secret) = client(s);
    let mut form = form.to_vec();
    form.push(("grant_type", "client_credentials"));
    let mut req = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&form);
    if let Some(p) = proof {
        req = req.header("dpop", p);
    }
    req.send().await.unwrap()
}

/// A DPoP-bound token for `key`.
async fn bound_token(s: &Saas, key: &DpopKey) -> String {
    let proof = key.proof("POST", public(s, "/oauth/token")).sign().unwrap();
    let res = token_request(s, Some(&proof), &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get_with_dpop(s: &Saas, token: &str, proof: &str) -> reqwest::Response {
    s.http
        .get(s.url(COMPANY))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_request_with_a_proof_gets_a_token_bound_to_its_key() {
    let s = Saas::start(&[]).await;
    let key = DpopKey::generate_es256().unwrap();
    let proof = key
        .proof("POST", public(&s, "/oauth/token"))
        .sign()
        .unwrap();
    let res = token_request(&s, Some(&proof), &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    // RFC 9449 §5.1 and §6.1.
    assert_eq!(body["token_type"], "DPoP");
    let t = claims(body["access_token"].as_str().unwrap());
    assert_eq!(t["cnf"]["jkt"], key.thumbprint());

    // Without a proof: a bearer token, unbound.
    let res = token_request(&s, None, &[]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(claims(body["access_token"].as_str().unwrap())["cnf"].is_null());

    // A proof for another endpoint is refused, and no token is issued.
    let wrong = key
        .proof("POST", public(&s, "/oauth/revoke"))
        .sign()
        .unwrap();
    let res = token_request(&s, Some(&wrong), &[]).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_bound_token_reads_the_api_only_with_a_fresh_proof_of_its_key() {
    let s = Saas::start(&[]).await;
    let key = DpopKey::generate_es256().unwrap();
    let token = bound_token(&s, &key).await;
    let url = public(&s, COMPANY);

    let proof = key.proof("GET", &url).access_token(&token).sign().unwrap();
    let res = get_with_dpop(&s, &token, &proof).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["domain"], "acme.com");

    // The same proof again: a replay (RFC 9449 §11.1).
    let res = get_with_dpop(&s, &token, &proof).await;
    assert_eq!(res.status(), 401);
    let ch = challenges(&res);
    assert!(
        ch.iter()
            .any(|c| c.starts_with("DPoP ") && c.contains(r#"error="invalid_dpop_proof""#)),
        "{ch:?}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_dpop_proof");

    // A fresh proof from another key: the token is not bound to it.
    let other = DpopKey::generate_es256().unwrap();
    let proof = other
        .proof("GET", &url)
        .access_token(&token)
        .sign()
        .unwrap();
    let res = get_with_dpop(&s, &token, &proof).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");

    // A fresh proof from the right key works again.
    let proof = key.proof("GET", &url).access_token(&token).sign().unwrap();
    assert_eq!(get_with_dpop(&s, &token, &proof).await.status(), 200);
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_refused_and_unbound_bearer_tokens_still_work() {
    let s = Saas::start(&[]).await;
    let key = DpopKey::generate_es256().unwrap();
    let token = bound_token(&s, &key).await;
    // RFC 9449 §7.1: no downgrade to Bearer, answered in Bearer's words (RFC 6750 §3.1).
    let res = s
        .http
        .get(s.url(COMPANY))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let ch = challenges(&res);
    assert!(
        ch.iter()
            .any(|c| c.starts_with("Bearer ") && c.contains(r#"error="invalid_token""#)),
        "{ch:?}"
    );
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");

    // A token issued without a proof is a bearer token on the same route.
    let res = token_request(&s, None, &[]).await;
    let body: Value = res.json().await.unwrap();
    let bearer = body["access_token"].as_str().unwrap();
    let res = s
        .http
        .get(s.url(COMPANY))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // …but not under the DPoP scheme: it is bound to no key.
    let proof = key
        .proof("GET", public(&s, COMPANY))
        .access_token(bearer)
        .sign()
        .unwrap();
    assert_eq!(get_with_dpop(&s, bearer, &proof).await.status(), 401);
}

#[tokio::test]
async fn the_resource_parameter_picks_the_audience_and_an_unknown_one_is_invalid_target() {
    let s = Saas::start(&[]).await;
    let api = public(&s, "/v1");
    // RFC 8707 §2: the named resource becomes the token's audience.
    let res = token_request(&s, None, &[("resource", api.as_str())]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], api);

    for unknown in [
        "https://elsewhere.example/v1".to_owned(),
        public(&s, "/admin"),
        format!("{api}/"),
    ] {
        let res = token_request(&s, None, &[("resource", unknown.as_str())]).await;
        assert_eq!(res.status(), 400, "{unknown}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_target", "{unknown}");
        assert!(body.get("access_token").is_none());
    }
}

#[tokio::test]
async fn the_metadata_and_the_401_challenge_advertise_dpop() {
    let s = Saas::start(&[]).await;
    let meta_url = s.url("/.well-known/oauth-protected-resource/v1");
    // RFC 9728 §2.
    let doc: Value = s
        .http
        .get(&meta_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    assert_eq!(doc["dpop_bound_access_tokens_required"], false);
    // RFC 8414 with RFC 9449 §5.1.
    let as_meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        as_meta["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );

    // Nothing presented: the DPoP challenge beside Bearer's, both naming the metadata.
    let res = s.http.get(s.url(COMPANY)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let ch = challenges(&res);
    assert!(
        ch.contains(&format!(
            r#"DPoP realm="saas", algs="ES256 EdDSA", resource_metadata="{meta_url}""#
        )),
        "{ch:?}"
    );
    // A refused proof's challenge names it as well (RFC 9728 §5.1).
    let key = DpopKey::generate_es256().unwrap();
    let token = bound_token(&s, &key).await;
    let stale = key
        .proof("GET", public(&s, COMPANY))
        .access_token(&token)
        .issued_at(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .sign()
        .unwrap();
    let res = get_with_dpop(&s, &token, &stale).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenges(&res),
        [format!(
            r#"DPoP realm="saas", algs="ES256 EdDSA", resource_metadata="{meta_url}", error="invalid_dpop_proof", error_description="The DPoP proof is not valid.""#
        )]
    );
}

#[tokio::test]
async fn with_dpop_nonce_the_token_endpoint_and_the_api_hand_out_and_require_nonces() {
    let s = Saas::start(&["--dpop-nonce"]).await;
    let key = DpopKey::generate_es256().unwrap();
    let token_url = public(&s, "/oauth/token");
    // RFC 9449 §8: no nonce, 400 use_dpop_nonce with one to use.
    let proof = key.proof("POST", &token_url).sign().unwrap();
    let res = token_request(&s, Some(&proof), &[]).await;
    assert_eq!(res.status(), 400);
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "use_dpop_nonce"
    );
    let proof = key.proof("POST", &token_url).nonce(&nonce).sign().unwrap();
    let res = token_request(&s, Some(&proof), &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();

    // RFC 9449 §9: the API too; 401 use_dpop_nonce, then the nonce works.
    let url = public(&s, COMPANY);
    let proof = key.proof("GET", &url).access_token(token).sign().unwrap();
    let res = get_with_dpop(&s, token, &proof).await;
    assert_eq!(res.status(), 401);
    assert!(
        challenges(&res)
            .iter()
            .any(|c| c.starts_with("DPoP ") && c.contains(r#"error="use_dpop_nonce""#))
    );
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let proof = key
        .proof("GET", &url)
        .access_token(token)
        .nonce(&nonce)
        .sign()
        .unwrap();
    assert_eq!(get_with_dpop(&s, token, &proof).await.status(), 200);
    // A made-up nonce is refused.
    let proof = key
        .proof("GET", &url)
        .access_token(token)
        .nonce("made-up")
        .sign()
        .unwrap();
    assert_eq!(get_with_dpop(&s, token, &proof).await.status(), 401);
}

#[tokio::test]
async fn with_redis_a_proof_spent_on_one_instance_is_refused_on_another() {
    let redis = Redis::start().await;
    let args = [
        "--redis-url",
        redis.url.as_str(),
        "--demo-seed",
        "dpop-shared-demo",
        "--public-url",
        "http://api.example.test",
    ];
    let a = Saas::start(&args).await;
    let b = Saas::start(&args).await;
    let key = DpopKey::generate_ed25519().unwrap();
    let token = bound_token(&a, &key).await;
    let proof = key
        .proof("GET", public(&a, COMPANY))
        .access_token(&token)
        .sign()
        .unwrap();
    assert_eq!(get_with_dpop(&a, &token, &proof).await.status(), 200);
    // The replay store is shared: the proof is spent for every instance.
    let res = get_with_dpop(&b, &token, &proof).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_dpop_proof"
    );
    // A fresh proof works on B: the token and its key are good there.
    let proof = key
        .proof("GET", public(&b, COMPANY))
        .access_token(&token)
        .sign()
        .unwrap();
    assert_eq!(get_with_dpop(&b, &token, &proof).await.status(), 200);
}

/// The README's DPoP step: `cargo run --example dpop-client -- BASE CLIENT_ID SECRET`.
async fn run_dpop_client(s: &Saas) -> String {
    let saas = support::example_binary();
    let bin = saas.with_file_name(format!("dpop-client{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "run `cargo build --example dpop-client` first: {}",
        bin.display()
    );
    let (id, secret) = client(s);
    let out = tokio::process::Command::new(bin)
        .args([s.creds["base_url"].as_str().unwrap(), id, secret])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    stdout
}

#[tokio::test]
async fn the_readme_dpop_client_gets_a_bound_token_and_a_thief_gets_401s() {
    for flags in [&[][..], &["--dpop-nonce"]] {
        let s = Saas::start(flags).await;
        let out = run_dpop_client(&s).await;
        for line in [
            r#"token: token_type="DPoP" cnf.jkt=""#,
            "GET /v1/companies/acme.com with DPoP: 200 OK",
            r#"same proof again: 401 Unauthorized DPoP realm="saas""#,
            r#"token as Bearer: 401 Unauthorized Bearer realm="saas""#,
        ] {
            assert!(out.contains(line), "{flags:?}: {line} not in\n{out}");
        }
        assert!(out.contains(r#"error="invalid_dpop_proof""#), "{out}");
        assert!(out.contains(r#"error="invalid_token""#), "{out}");
        assert_eq!(
            out.contains("use_dpop_nonce"),
            !flags.is_empty(),
            "a nonce is asked for only with --dpop-nonce:\n{out}"
        );
    }
}
