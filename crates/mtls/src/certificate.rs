//! The peer's client certificate, as servers put it into request extensions.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Request;
use sha2::{Digest, Sha256};
use tower::{Layer, Service};

/// The end-entity certificate the client presented in the TLS handshake (or that a trusted
/// TLS-terminating proxy forwarded in `Client-Cert`, see
/// [`ClientCertHeaderLayer`](crate::ClientCertHeaderLayer)), as DER.
///
/// It travels in the request extensions: a server inserts it for every request of a
/// connection ([`ClientCertificateLayer`], or [`from_tls_stream`](Self::from_tls_stream) in
/// a hand-written serving loop), and [`CertificateBound`](crate::CertificateBound) reads it.
/// Its `x5t#S256` thumbprint is computed once, when it is made.
///
/// ```
/// use apiauth_mtls::ClientCertificate;
///
/// let cert = ClientCertificate::from_der(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
/// assert_eq!(cert.x5t_s256().len(), 43);
/// assert!(format!("{cert:?}").starts_with("ClientCertificate(x5t#S256="));
/// ```
#[derive(Clone)]
pub struct ClientCertificate {
    der: Bytes,
    x5t_s256: Arc<str>,
}

impl ClientCertificate {
    /// The certificate whose DER encoding is `der`. The bytes are not parsed: the TLS
    /// library (or the proxy) verified the chain; the binding check only hashes them.
    pub fn from_der(der: impl Into<Bytes>) -> Self {
        let der = der.into();
        let x5t_s256 = x5t_s256(&der).into();
        Self { der, x5t_s256 }
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The `x5t#S256` thumbprint: base64url, without padding, of the SHA-256 of the DER
    /// encoding (RFC 8705 §3.1, RFC 7515 §4.1.8).
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }

    /// The end-entity certificate of a tokio-rustls server connection, after its handshake:
    /// the first of rustls' `peer_certificates()`. `None` when the client sent none (a
    /// verifier built with `allow_unauthenticated`).
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn from_tls_stream<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> Option<Self> {
        Self::from_tls_connection(stream.get_ref().1)
    }

    /// The end-entity certificate of a rustls server connection, after its handshake.
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn from_tls_connection(conn: &tokio_rustls::rustls::ServerConnection) -> Option<Self> {
        let first = conn.peer_certificates()?.first()?;
        Some(Self::from_der(first.as_ref().to_vec()))
    }

    /// The layer that puts this connection's certificate (if any) into every request's
    /// extensions; build one per connection.
    pub fn layer(cert: Option<Self>) -> ClientCertificateLayer {
        ClientCertificateLayer { cert }
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short: a certificate is public, but kilobytes of DER have no place in a log line.
        write!(f, "ClientCertificate(x5t#S256={})", self.x5t_s256)
    }
}

/// RFC 8705 §3.1: base64url(SHA-256(DER)), no padding.
fn x5t_s256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

/// Puts one connection's [`ClientCertificate`] into every request's extensions, replacing
/// any there (only the server knows the connection). Made by [`ClientCertificate::layer`].
#[derive(Clone, Debug)]
pub struct ClientCertificateLayer {
    cert: Option<ClientCertificate>,
}

impl<S> Layer<S> for ClientCertificateLayer {
    type Service = ClientCertificateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientCertificateService {
            inner,
            cert: self.cert.clone(),
        }
    }
}

/// The service made by [`ClientCertificateLayer`].
#[derive(Clone, Debug)]
pub struct ClientCertificateService<S> {
    inner: S,
    cert: Option<ClientCertificate>,
}

impl<S, B> Service<Request<B>> for ClientCertificateService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        match &self.cert {
            Some(c) => {
                req.extensions_mut().insert(c.clone());
            }
            None => {
                req.extensions_mut().remove::<ClientCertificate>();
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_is_base64url_sha256_of_the_der() {
        // SHA-256("abc") is the FIPS 180-2 example digest ba7816bf…f20015ad.
        let c = ClientCertificate::from_der(&b"abc"[..]);
        assert_eq!(c.x5t_s256(), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
        assert_eq!(c.der(), b"abc");
    }
}
