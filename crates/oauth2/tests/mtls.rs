//! RFC 8705 at the authorization server: `tls_client_auth` and `self_signed_tls_client_auth`
//! at the token endpoint, tokens bound to the request's client certificate (`cnf.x5t#S256`),
//! the binding in introspection answers and metadata; and at a resource server, an
//! introspected certificate-bound token refused by a plain Bearer layer and accepted by
//! `CertificateBound` only with its certificate.
//!
//! The certificate reaches the token endpoint as servers put it there (a `ClientCertificate`
//! request extension); the TLS transport that does so is proven in `apiauth-mtls`'s
//! `tests/tls.rs`.
#![cfg(all(feature = "server", feature = "mtls", feature = "introspection"))]

mod common;

use std::sync::Arc;

use apiauth_bearer::Bearer;
use apiauth_core::{Auth, ScopeSet};
use apiauth_mtls::{CertificateBound, ClientCertificate};
use apiauth_oauth2::{
    AuthorizationServer, IntrospectionVerifier, MemoryClientRegistry, RegisteredClient,
    TlsClientAuth,
};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{AUDIENCE, cheap_hasher, listener, serve_on};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use serde_json::Value;
use tower::ServiceExt;

/// A certificate with subject `CN=<cn>,O=Example Corp` and a dNSName SAN `<dns>`.
fn cert(cn: &str, dns: &str) -> ClientCertificate {
    let mut p = CertificateParams::new(vec![dns.to_owned()]).unwrap();
    // In the certificate: O first, then CN (RFC 4514 writes it `CN=…,O=…`).
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names
        .push(SanType::Rfc822Name("ops@example.test".try_into().unwrap()));
    let der = p.self_signed(&KeyPair::generate().unwrap()).unwrap();
    ClientCertificate::from_der(der.der().to_vec())
}

struct Setup {
    server: AuthorizationServer,
    base: String,
    rs_secret: String,
    secret_client: String,
    self_signed: ClientCertificate,
}

async fn start() -> Setup {
    let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
    let scopes = ScopeSet::parse("a").unwrap();
    clients.insert(RegisteredClient::tls_client_auth(
        "dn-client",
        // Another spelling of the certificate's subject: compared as a DN.
        TlsClientAuth::subject_dn("cn=Client A, o=example corp").unwrap(),
        scopes.clone(),
    ));
    clients.insert(RegisteredClient::tls_client_auth(
        "dns-client",
        TlsClientAuth::SanDns("a.clients.example.test".into()),
        scopes.clone(),
    ));
    let self_signed = cert("Self Signed", "s.clients.example.test");
    clients.insert(RegisteredClient::tls_client_auth(
        "self-signed-client",
        TlsClientAuth::SelfSigned(self_signed.x5t_s256().to_owned()),
        scopes.clone(),
    ));
    let secret_client = clients.register("secret-client", scopes);
    let rs_secret = clients.register_resource_server("rs");
    let (l, addr) = listener().await;
    let base = format!("http://{addr}");
    let server = AuthorizationServer::builder(base.clone())
        .dangerous_allow_http_issuer()
        .audience(AUDIENCE)
        .clients(Arc::new(clients))
        .password_hasher(cheap_hasher())
        .mutual_tls()
        .build()
        .unwrap();
    serve_on(l, server.router()).await;
    Setup {
        server,
        base,
        rs_secret: rs_secret.expose_secret().to_owned(),
        secret_client: secret_client.expose_secret().to_owned(),
        self_signed,
    }
}

/// A token request on the server's router, with `cert` as the connection's certificate.
async fn token_request(
    s: &Setup,
    form: &str,
    basic: Option<&str>,
    cert: Option<&ClientCertificate>,
) -> (StatusCode, Value) {
    let mut req =
        Request::post("/oauth/token").header("content-type", "application/x-www-form-urlencoded");
    if let Some(b) = basic {
        req = req.header("authorization", format!("Basic {b}"));
    }
    let mut req = req.body(Body::from(form.to_owned())).unwrap();
    if let Some(c) = cert {
        req.extensions_mut().insert(c.clone());
    }
    let res = s.server.router().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

const GRANT: &str = "grant_type=client_credentials&client_id=";

#[tokio::test]
async fn tls_client_auth_by_subject_dn_gets_a_token_bound_to_its_certificate() {
    let s = start().await;
    let a = cert("Client A", "a.clients.example.test");
    let (status, body) = token_request(&s, &format!("{GRANT}dn-client"), None, Some(&a)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // RFC 8705 §3: a certificate-bound token is a Bearer token.
    assert_eq!(body["token_type"], "Bearer");
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], a.x5t_s256());
    assert_eq!(claims["sub"], "dn-client");
}

#[tokio::test]
async fn a_certificate_with_another_subject_or_none_is_invalid_client() {
    let s = start().await;
    let b = cert("Client B", "b.clients.example.test");
    for (client, c) in [
        ("dn-client", Some(&b)),
        ("dns-client", Some(&b)),
        ("self-signed-client", Some(&b)),
        ("dn-client", None),
    ] {
        let (status, body) = token_request(&s, &format!("{GRANT}{client}"), None, c).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{client}: {body}");
        assert_eq!(body["error"], "invalid_client", "{client}");
        assert!(body.get("access_token").is_none());
    }
}

#[tokio::test]
async fn tls_client_auth_by_san_dns_and_self_signed_by_thumbprint_succeed() {
    let s = start().await;
    let a = cert("Anything", "A.Clients.Example.Test");
    let (status, body) = token_request(&s, &format!("{GRANT}dns-client"), None, Some(&a)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = token_request(
        &s,
        &format!("{GRANT}self-signed-client"),
        None,
        Some(&s.self_signed),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["x5t#S256"], s.self_signed.x5t_s256());
}

#[tokio::test]
async fn a_secret_for_a_tls_client_is_refused_and_a_secret_client_over_mtls_gets_a_bound_token() {
    let s = start().await;
    let basic = |id: &str, secret: &str| {
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    let (status, body) = token_request(
        &s,
        "grant_type=client_credentials",
        Some(&basic("dn-client", "guess")),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    // A secret client on an mTLS connection: its token is bound to the connection's
    // certificate (§3.1); without a certificate, it is not bound.
    let a = cert("Client A", "a.clients.example.test");
    let auth = basic("secret-client", &s.secret_client);
    let (status, body) =
        token_request(&s, "grant_type=client_credentials", Some(&auth), Some(&a)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        payload(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        a.x5t_s256()
    );
    let (_, body) = token_request(&s, "grant_type=client_credentials", Some(&auth), None).await;
    assert!(
        payload(body["access_token"].as_str().unwrap())
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn metadata_advertises_certificate_bound_tokens_and_the_mtls_auth_methods() {
    let s = start().await;
    let m: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["tls_client_certificate_bound_access_tokens"], true);
    let methods = m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    for want in [
        "tls_client_auth",
        "self_signed_tls_client_auth",
        "client_secret_basic",
    ] {
        assert!(methods.iter().any(|v| v == want), "{want}: {m}");
    }
}

#[tokio::test]
async fn introspection_names_the_binding_and_only_certificate_bound_accepts_the_token() {
    let s = start().await;
    let a = cert("Client A", "a.clients.example.test");
    let (_, body) = token_request(&s, &format!("{GRANT}dn-client"), None, Some(&a)).await;
    let token = body["access_token"].as_str().unwrap().to_owned();

    // RFC 8705 §3.2: the introspection answer carries `cnf.x5t#S256`.
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/oauth/introspect", s.base))
        .basic_auth("rs", Some(&s.rs_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["cnf"]["x5t#S256"], a.x5t_s256());

    let verifier = || {
        IntrospectionVerifier::builder(format!("{}/oauth/introspect", s.base))
            .dangerous_allow_http()
            .client_credentials("rs", &s.rs_secret)
            .audience(AUDIENCE)
            .build()
            .unwrap()
    };
    let me = || get(|Auth(p): Auth| async move { p.subject().to_owned() });
    let call = |app: Router, cert: Option<ClientCertificate>| {
        let token = token.clone();
        async move {
            let mut req = Request::get("/me")
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            if let Some(c) = cert {
                req.extensions_mut().insert(c);
            }
            app.oneshot(req).await.unwrap().status()
        }
    };
    // A plain Bearer layer over introspection: refused, even with the certificate.
    let plain = Router::new()
        .route("/me", me())
        .layer(Bearer::new(verifier()).layer());
    assert_eq!(call(plain, Some(a.clone())).await, StatusCode::UNAUTHORIZED);
    // CertificateBound: only with the certificate the token is bound to.
    let bound = Router::new()
        .route("/me", me())
        .layer(Bearer::new(CertificateBound::new(verifier())).layer());
    assert_eq!(call(bound.clone(), Some(a)).await, StatusCode::OK);
    let b = cert("Client B", "b.clients.example.test");
    assert_eq!(call(bound.clone(), Some(b)).await, StatusCode::UNAUTHORIZED);
    assert_eq!(call(bound, None).await, StatusCode::UNAUTHORIZED);
}
