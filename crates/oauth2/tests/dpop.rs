//! DPoP at the token endpoint (RFC 9449 §5), end to end over loopback: a token request with a
//! valid proof gets `token_type: DPoP` and a JWT whose `cnf.jkt` is the proof key's
//! thumbprint; that token then works at a resource server only with proofs from that key.
#![cfg(all(feature = "server", feature = "dpop", feature = "introspection"))]

mod common;

use std::sync::Arc;

use apiauth_core::{Auth, ScopeSet};
use apiauth_dpop::{Dpop, DpopKey, DpopVerifier, HmacDpopNonces};
use apiauth_jwt::{Issuer, JwtVerifier};
use apiauth_oauth2::{AuthorizationServer, MemoryClientRegistry};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, cheap_hasher, listener, serve_on};
use serde_json::Value;

struct Setup {
    server: AuthorizationServer,
    token_url: String,
    id: String,
    secret: String,
    http: reqwest::Client,
}

async fn start(proofs: impl FnOnce(&str) -> DpopVerifier) -> Setup {
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let secret = clients.register("worker", ScopeSet::parse("a").unwrap());
    let (l, addr) = listener().await;
    let base = format!("http://{addr}");
    let server = AuthorizationServer::builder(base.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .password_hasher(cheap_hasher())
        .dpop(proofs(&base))
        .build()
        .unwrap();
    serve_on(l, server.router()).await;
    Setup {
        server,
        token_url: format!("{base}/oauth/token"),
        id: "worker".into(),
        secret: secret.expose_secret().to_owned(),
        http: reqwest::Client::new(),
    }
}

impl Setup {
    async fn request(&self, proofs: &[&str]) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.id, Some(&self.secret))
            .form(&[("grant_type", "client_credentials")]);
        for p in proofs {
            req = req.header("dpop", *p);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.json().await.unwrap())
    }
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_token_request_with_a_valid_proof_gets_a_dpop_bound_token() {
    let s = start(|base| DpopVerifier::builder(base).build().unwrap()).await;
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("POST", &s.token_url).sign().unwrap();
    let (status, _, body) = s.request(&[&proof]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["cnf"]["jkt"], key.thumbprint());

    // Without a proof: a plain bearer token, no cnf.
    let (status, _, body) = s.request(&[]).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert!(
        claims(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );

    // RFC 8414 metadata advertises the accepted algorithms (RFC 9449 §5.1).
    let meta: Value = s
        .http
        .get(s.server.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["dpop_signing_alg_values_supported"],
        serde_json::json!(["ES256", "EdDSA"])
    );
}

#[tokio::test]
async fn invalid_or_replayed_proofs_at_the_token_endpoint_are_400_invalid_dpop_proof() {
    let s = start(|base| DpopVerifier::builder(base).build().unwrap()).await;
    let key = DpopKey::generate_es256().unwrap();
    let good = key.proof("POST", &s.token_url).sign().unwrap();
    let wrong_htu = key
        .proof("POST", "https://elsewhere.example/oauth/token")
        .sign()
        .unwrap();
    let wrong_htm = key.proof("GET", &s.token_url).sign().unwrap();
    for bad in [wrong_htu.as_str(), wrong_htm.as_str(), "junk"] {
        let (status, _, body) = s.request(&[bad]).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_dpop_proof");
    }
    let (status, _, body) = s.request(&[&good, &good]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    assert_eq!(s.request(&[&good]).await.0, 200);
    let (status, _, body) = s.request(&[&good]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "replay"
    );
}

#[tokio::test]
async fn a_required_nonce_at_the_token_endpoint_is_handed_out_then_accepted() {
    let s = start(|base| {
        DpopVerifier::builder(base)
            .require_nonce(Arc::new(HmacDpopNonces::new().unwrap()))
            .build()
            .unwrap()
    })
    .await;
    let key = DpopKey::generate_es256().unwrap();
    let first = key.proof("POST", &s.token_url).sign().unwrap();
    let (status, headers, body) = s.request(&[&first]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("use_dpop_nonce"))
    );
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let retry = key.proof("POST", &s.token_url).nonce(nonce).sign().unwrap();
    let (status, _, body) = s.request(&[&retry]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn the_issued_token_works_at_a_resource_server_only_with_its_key() {
    let s = start(|base| DpopVerifier::builder(base).build().unwrap()).await;
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("POST", &s.token_url).sign().unwrap();
    let token = s.request(&[&proof]).await.2["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A resource server with the server's keys, requiring DPoP.
    let issuer = Issuer::new(s.server.issuer())
        .audience(AUDIENCE)
        .require_at_jwt()
        .jwk_set(&s.server.jwks().unwrap())
        .unwrap();
    let jwt = JwtVerifier::builder().issuer(issuer).build().await.unwrap();
    let rs_proofs = DpopVerifier::builder("https://api.example.test")
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/data",
            get(|Auth(p): Auth| async move { p.method().as_str() }),
        )
        .layer(Dpop::new(jwt, rs_proofs).layer());
    let (l, addr) = listener().await;
    serve_on(l, app).await;
    let url = format!("http://{addr}/data");
    let send = |scheme: &'static str, proof: Option<String>| {
        let mut req = s
            .http
            .get(&url)
            .header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send()
    };

    let own = key
        .proof("GET", "https://api.example.test/data")
        .access_token(&token)
        .sign()
        .unwrap();
    let res = send("DPoP", Some(own)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "dpop");

    // The stolen token with the thief's key, or as a bearer token: refused.
    let thief = DpopKey::generate_es256().unwrap();
    let theirs = thief
        .proof("GET", "https://api.example.test/data")
        .access_token(&token)
        .sign()
        .unwrap();
    assert_eq!(send("DPoP", Some(theirs)).await.unwrap().status(), 401);
    assert_eq!(send("Bearer", None).await.unwrap().status(), 401);
}

#[test]
fn a_dpop_verifier_for_another_origin_is_a_startup_error() {
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let r = AuthorizationServer::builder("https://as.example")
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .dpop(
            DpopVerifier::builder("https://other.example")
                .build()
                .unwrap(),
        )
        .build();
    assert!(r.is_err());
}

#[tokio::test]
async fn introspection_names_the_binding_and_the_token_works_only_with_its_key() {
    use apiauth_bearer::Bearer;
    use apiauth_oauth2::IntrospectionVerifier;
    // The setup of `start`, plus a resource server allowed to introspect.
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let secret = clients.register("worker", ScopeSet::parse("a").unwrap());
    let rs_secret = clients.register_resource_server("rs");
    let (l, addr) = listener().await;
    let base = format!("http://{addr}");
    let server = AuthorizationServer::builder(base.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .password_hasher(cheap_hasher())
        .dpop(DpopVerifier::builder(&base).build().unwrap())
        .build()
        .unwrap();
    serve_on(l, server.router()).await;
    let s = Setup {
        server,
        token_url: format!("{base}/oauth/token"),
        id: "worker".into(),
        secret: secret.expose_secret().to_owned(),
        http: reqwest::Client::new(),
    };
    let key = DpopKey::generate_es256().unwrap();
    let proof = key.proof("POST", &s.token_url).sign().unwrap();
    let token = s.request(&[&proof]).await.2["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // RFC 9449 §6.2: the answer says DPoP and names the key's thumbprint.
    let answer: Value = s
        .http
        .post(format!("{base}/oauth/introspect"))
        .basic_auth("rs", Some(rs_secret.expose_secret()))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"]["jkt"], key.thumbprint());

    let verifier = || {
        IntrospectionVerifier::builder(format!("{base}/oauth/introspect"))
            .dangerous_allow_http()
            .client_credentials("rs", rs_secret.expose_secret())
            .audience(AUDIENCE)
            .build()
            .unwrap()
    };
    let rs_proofs = DpopVerifier::builder("https://api.example.test")
        .build()
        .unwrap();
    let me = || get(|Auth(p): Auth| async move { p.method().as_str() });
    let app = Router::new()
        .route(
            "/data",
            me().layer(Dpop::new(verifier(), rs_proofs).layer()),
        )
        .route("/plain", me().layer(Bearer::new(verifier()).layer()));
    let (l, addr) = listener().await;
    serve_on(l, app).await;
    let send = |path: &'static str, scheme: &'static str, proof: Option<String>| {
        let mut req = s
            .http
            .get(format!("http://{addr}{path}"))
            .header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        req.send()
    };
    let own = key
        .proof("GET", "https://api.example.test/data")
        .access_token(&token)
        .sign()
        .unwrap();
    let res = send("/data", "DPoP", Some(own)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "dpop");
    let thief = DpopKey::generate_es256()
        .unwrap()
        .proof("GET", "https://api.example.test/data")
        .access_token(&token)
        .sign()
        .unwrap();
    assert_eq!(
        send("/data", "DPoP", Some(thief)).await.unwrap().status(),
        401
    );
    // RFC 9449 §7.1: even a plain bearer route refuses the bound token.
    let res = send("/plain", "Bearer", None).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
}
