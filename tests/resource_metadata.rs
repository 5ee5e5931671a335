//! RFC 9728 discovery over real HTTP: a client with no credentials gets a 401 whose Bearer
//! challenge names the protected resource metadata, which names the authorization server,
//! whose RFC 8414 metadata gives the token endpoint; the token it issues is for that resource
//! and is accepted.
//!
//! With a `--test` filter, run `cargo build --example saas` first (see `saas_e2e.rs`).

mod support;

use base64::Engine;
use serde_json::Value;
use support::Saas;

fn param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = challenge.find(&key)? + key.len();
    let rest = &challenge[start..];
    Some(&rest[..rest.find('"')?])
}

#[tokio::test]
async fn a_client_discovers_the_authorization_server_from_a_401() {
    let s = Saas::start(&[]).await;
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let bearer: Vec<String> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("Bearer "))
        .collect();
    assert_eq!(bearer.len(), 1, "{bearer:?}");
    let meta_url = param(&bearer[0], "resource_metadata").expect("RFC 9728 §5.1 parameter");
    assert_eq!(
        meta_url,
        s.url("/.well-known/oauth-protected-resource/v1"),
        "RFC 9728 §3.1: the well-known segment between host and path"
    );

    let res = s.http.get(meta_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    let resource = doc["resource"].as_str().unwrap().to_owned();
    assert_eq!(resource, s.url("/v1"));
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    let scopes: Vec<&str> = doc["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"companies:read"), "{scopes:?}");
    let issuer = doc["authorization_servers"][0].as_str().unwrap();

    // RFC 8414 §3: the authorization server's metadata, then its token endpoint.
    let as_meta: Value = s
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_meta["issuer"], issuer);
    let res = s
        .http
        .post(as_meta["token_endpoint"].as_str().unwrap())
        .basic_auth(
            s.creds["oauth_client"]["client_id"].as_str().unwrap(),
            s.creds["oauth_client"]["client_secret"].as_str(),
        )
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "companies:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token: Value = res.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    // The token is for the resource the metadata named (RFC 9068 §3 `aud`).
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let aud = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        other => panic!("aud {other}"),
    };
    assert!(aud.contains(&resource), "{aud:?} vs {resource}");
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
