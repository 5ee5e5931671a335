//! HTTPS: TLS serving, a self-signed development certificate, HSTS, and refusing credentials
//! over plain HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use apiauth::client_addr::TrustedProxies;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// How the example learns whether a request arrived over HTTPS.
#[derive(Clone, Debug)]
pub struct TransportPolicy {
    /// This process terminates TLS itself.
    pub tls: bool,
    /// Believe `X-Forwarded-Proto` / `Forwarded: proto=` from these proxies.
    pub proxies: Arc<TrustedProxies>,
    /// Refuse plain-HTTP requests that carry credentials.
    pub require_https: bool,
}

impl TransportPolicy {
    fn is_https(&self, req: &Request) -> bool {
        if self.tls {
            return true;
        }
        // Only the proxies in front may say the client spoke HTTPS to them.
        let from_proxy = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| self.proxies.trusts(peer.ip()));
        if !from_proxy {
            return false;
        }
        let h = req.headers();
        if let Some(p) = h.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
            // The proxy nearest to us appends last.
            return p
                .rsplit(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        }
        if let Some(f) = h.get(header::FORWARDED).and_then(|v| v.to_str().ok()) {
            // RFC 7239: the last element was added by the nearest proxy.
            if let Some(last) = f.rsplit(',').next() {
                return last.split(';').any(|pair| {
                    pair.trim().split_once('=').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("proto")
                            && v.trim_matches('"').eq_ignore_ascii_case("https")
                    })
                });
            }
        }
        false
    }
}

const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "x-api-key",
    "signature",
    "signature-input",
    "webhook-signature",
];

/// The OAuth endpoints whose requests carry a client secret in the body with
/// `client_secret_post` (RFC 6749 §2.3.1), and tokens: RFC 6749 §2.3.1 and §3.2 require TLS
/// for them.
const BODY_CREDENTIAL_PATHS: [&str; 3] = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"];

fn carries_credentials(req: &Request) -> bool {
    CREDENTIAL_HEADERS
        .iter()
        .any(|h| req.headers().contains_key(*h))
        || (req.method() != axum::http::Method::GET
            && BODY_CREDENTIAL_PATHS
                .iter()
                .any(|p| req.uri().path().ends_with(p)))
}

/// Middleware: HSTS on HTTPS responses; with `require_https`, 400 for plain-HTTP requests that
/// carry credentials in a header or, at the OAuth endpoints, in the body (the credential has
/// leaked already, but it is not honoured).
pub async fn enforce(policy: TransportPolicy, req: Request, next: Next) -> Response {
    let https = policy.is_https(&req);
    if policy.require_https && !https && carries_credentials(&req) {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": "Bad Request",
            "status": 400,
            "detail": "Credentials must be sent over HTTPS.",
            "error": "invalid_request",
        });
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response();
    }
    let mut res = next.run(req).await;
    if https {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// `base` (its certificate and ALPN protocols), asking clients for a certificate issued by
/// the CA in `ca_pem` and accepting connections without one (RFC 8705: a client without a
/// certificate still gets bearer tokens; one with a certificate gets tokens bound to it).
pub fn request_client_certificates(
    base: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    ca_pem: &Path,
) -> anyhow::Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>> {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::server::WebPkiClientVerifier;
    use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto};

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(base.cert_resolver.clone());
    config.alpn_protocols = base.alpn_protocols.clone();
    Ok(Arc::new(config))
}

/// Loads a rustls server configuration from PEM files, or makes a self-signed one for
/// `localhost` when `dev` is set.
pub async fn rustls_config(
    cert: Option<&Path>,
    key: Option<&Path>,
    dev: bool,
) -> anyhow::Result<Option<axum_server::tls_rustls::RustlsConfig>> {
    use axum_server::tls_rustls::RustlsConfig;
    if dev {
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])?;
        let config = RustlsConfig::from_pem(
            cert.cert.pem().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await?;
        return Ok(Some(config));
    }
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some(RustlsConfig::from_pem_file(c, k).await?)),
        _ => Ok(None),
    }
}
