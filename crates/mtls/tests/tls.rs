//! RFC 8705 over real TLS on loopback: rcgen makes a CA, a server certificate and two client
//! certificates; a tokio-rustls server asks for (but does not require) client certificates
//! and puts the peer's into the request extensions; a token bound to one certificate works
//! only over a connection presenting it. Then the RFC 9440 `Client-Cert` header over plain
//! HTTP: honoured from a trusted proxy address, stripped from anyone else.

use std::net::SocketAddr;
use std::sync::Arc;

use apiauth_bearer::{Bearer, TokenVerifier};
use apiauth_core::confirmation::{CertificateBinding, refuse_unchecked_certificate_binding};
use apiauth_core::{Auth, AuthError, AuthMethod, Principal, RequestContext};
use apiauth_mtls::{CertificateBound, ClientCertHeaderLayer, ClientCertificate};
use axum::extract::ConnectInfo;
use axum::{Router, routing::get};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore};
use tower::{Layer, ServiceExt};

/// A toy verifier for the transport tests: `bound.<x5t>` is bound to that thumbprint,
/// `plain` is not bound. It refuses bound tokens no wrapper checks, as the suite's do.
struct Toy;

impl TokenVerifier for Toy {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }
    async fn verify(&self, token: &str, cx: &RequestContext<'_>) -> Result<Principal, AuthError> {
        let b = Principal::builder("svc", AuthMethod::BEARER);
        let p = match token.strip_prefix("bound.") {
            Some(x5t) => b.attribute(CertificateBinding::new(x5t)).build(),
            None if token == "plain" => b.build(),
            None => return Err(AuthError::invalid_credentials("unknown")),
        };
        refuse_unchecked_certificate_binding(&p, cx)?;
        Ok(p)
    }
}

struct Pki {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    a: (CertificateDer<'static>, PrivateKeyDer<'static>),
    b: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &ca).unwrap();
        (
            cert.der().clone(),
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
    };
    Pki {
        ca: ca.der().clone(),
        server: leaf(vec!["localhost".into()], "localhost"),
        a: leaf(vec![], "client-a"),
        b: leaf(vec![], "client-b"),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Arc<RootCertStore> {
    let mut r = RootCertStore::empty();
    r.add(ca.clone()).unwrap();
    Arc::new(r)
}

fn app() -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(Bearer::new(CertificateBound::new(Toy)).layer())
}

/// A TLS server as the example serves: client certificates requested, verified against the
/// CA, optional; the peer's certificate put into each request's extensions.
async fn tls_server(pki: &Pki) -> SocketAddr {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&pki.ca), provider())
        .allow_unauthenticated()
        .build()
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    ClientCertificate::layer(ClientCertificate::from_tls_stream(&tls)).layer(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(svc))
                    .await;
            });
        }
    });
    addr
}

struct Answer {
    status: StatusCode,
    challenge: String,
}

/// One request over a fresh TLS connection, presenting `cert` if given.
async fn call_tls(
    pki: &Pki,
    addr: SocketAddr,
    cert: Option<&(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    token: &str,
) -> Answer {
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(&pki.ca));
    let config = match cert {
        Some((c, k)) => b
            .with_client_auth_cert(vec![c.clone()], k.clone_key())
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    send(TokioIo::new(tls), token, None).await
}

async fn send<IO>(io: IO, token: &str, client_cert: Option<&str>) -> Answer
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::get("/me")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"));
    if let Some(v) = client_cert {
        req = req.header("client-cert", v);
    }
    let res = tx
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let _ = res.into_body().collect().await;
    Answer { status, challenge }
}

fn thumbprint(cert: &CertificateDer<'static>) -> String {
    ClientCertificate::from_der(cert.as_ref().to_vec())
        .x5t_s256()
        .to_owned()
}

fn assert_invalid_token(a: &Answer) {
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.challenge.starts_with("Bearer") && a.challenge.contains(r#"error="invalid_token""#),
        "{}",
        a.challenge
    );
}

#[tokio::test]
async fn a_token_bound_to_cert_a_works_only_over_a_connection_presenting_cert_a() {
    let pki = pki();
    let addr = tls_server(&pki).await;
    let token = format!("bound.{}", thumbprint(&pki.a.0));

    let a = call_tls(&pki, addr, Some(&pki.a), &token).await;
    assert_eq!(a.status, StatusCode::OK);

    // Another certificate from the same CA: refused.
    assert_invalid_token(&call_tls(&pki, addr, Some(&pki.b), &token).await);
    // No certificate at all: refused.
    assert_invalid_token(&call_tls(&pki, addr, None, &token).await);
}

#[tokio::test]
async fn an_unbound_token_passes_with_or_without_a_client_certificate() {
    let pki = pki();
    let addr = tls_server(&pki).await;
    for cert in [None, Some(&pki.a)] {
        let a = call_tls(&pki, addr, cert, "plain").await;
        assert_eq!(a.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_route_requiring_binding_refuses_an_unbound_token() {
    let app: Router = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(Bearer::new(CertificateBound::new(Toy).require_binding()).layer());
    let req = Request::get("/me")
        .header("authorization", "Bearer plain")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bound_token_through_a_plain_bearer_layer_is_refused_even_with_the_certificate() {
    // Fail closed: the verifier alone, with no CertificateBound around it.
    let app: Router = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(Bearer::new(Toy).layer());
    let cert = ClientCertificate::from_der(vec![0x30, 0x00]);
    let mut req = Request::get("/me")
        .header("authorization", format!("Bearer bound.{}", cert.x5t_s256()))
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut().insert(cert);
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A plain-HTTP server behind `ClientCertHeaderLayer` trusting `cidr`.
async fn proxied_server(cidr: &str) -> SocketAddr {
    let app = app().layer(ClientCertHeaderLayer::from_cidrs([cidr]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

async fn call_proxied(addr: SocketAddr, token: &str, client_cert: Option<&str>) -> Answer {
    let tcp = TcpStream::connect(addr).await.unwrap();
    send(TokioIo::new(tcp), token, client_cert).await
}

fn sf_binary(cert: &CertificateDer<'static>) -> String {
    use base64::Engine;
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(cert.as_ref())
    )
}

#[tokio::test]
async fn the_client_cert_header_is_honoured_from_a_trusted_proxy() {
    let pki = pki();
    let addr = proxied_server("127.0.0.1/32").await;
    let token = format!("bound.{}", thumbprint(&pki.a.0));
    let a = call_proxied(addr, &token, Some(&sf_binary(&pki.a.0))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_invalid_token(&call_proxied(addr, &token, Some(&sf_binary(&pki.b.0))).await);
    assert_invalid_token(&call_proxied(addr, &token, None).await);
}

#[tokio::test]
async fn the_client_cert_header_from_an_untrusted_peer_is_stripped() {
    let pki = pki();
    // Loopback is not in the trusted range: this client is not a proxy.
    let addr = proxied_server("10.0.0.0/8").await;
    let token = format!("bound.{}", thumbprint(&pki.a.0));
    assert_invalid_token(&call_proxied(addr, &token, Some(&sf_binary(&pki.a.0))).await);
    // What reaches the handlers has no Client-Cert header at all.
    let seen: Router = Router::new()
        .route(
            "/",
            get(
                |h: http::HeaderMap, ConnectInfo(_): ConnectInfo<SocketAddr>| async move {
                    format!("{}", h.contains_key("client-cert"))
                },
            ),
        )
        .layer(ClientCertHeaderLayer::from_cidrs(["10.0.0.0/8"]).unwrap());
    let mut req = Request::get("/")
        .header("client-cert", sf_binary(&pki.a.0))
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("127.0.0.1:5000".parse::<SocketAddr>().unwrap()));
    let body = seen.oneshot(req).await.unwrap().into_body();
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"false");
}

#[tokio::test]
async fn a_malformed_client_cert_from_a_trusted_proxy_is_400() {
    let addr = proxied_server("127.0.0.1/32").await;
    for bad in ["not-a-byte-sequence", ":!!!:", ":AAAA:"] {
        let a = call_proxied(addr, "plain", Some(bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let huge = format!(":{}:", "A".repeat(20_000));
    let a = call_proxied(addr, "plain", Some(&huge)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}

#[test]
fn thumbprint_matches_one_computed_independently_with_openssl() {
    // tests/data/README.md: how both files were made.
    let der = include_bytes!("data/client.der");
    let expected = include_str!("data/client.der.x5t").trim();
    assert_eq!(
        ClientCertificate::from_der(der.to_vec()).x5t_s256(),
        expected
    );
}

#[tokio::test]
async fn a_trusted_proxys_client_cert_reaches_handlers_marked_sensitive() {
    let pki = pki();
    let seen: Router = Router::new()
        .route(
            "/",
            get(|h: http::HeaderMap| async move {
                h.get("client-cert").map_or("absent", |v| {
                    if v.is_sensitive() {
                        "sensitive"
                    } else {
                        "plain"
                    }
                })
            }),
        )
        .layer(ClientCertHeaderLayer::from_cidrs(["127.0.0.1/32"]).unwrap());
    let mut req = Request::get("/")
        .header("client-cert", sf_binary(&pki.a.0))
        .body(axum::body::Body::empty())
        .unwrap();
    req.extensions_mut()
        .insert(ConnectInfo("127.0.0.1:5000".parse::<SocketAddr>().unwrap()));
    let body = seen.oneshot(req).await.unwrap().into_body();
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"sensitive");
}
