//! The RFC 9440 `Client-Cert` header, believed only from trusted TLS-terminating proxies.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use apiauth_core::AuthError;
use apiauth_core::client_addr::{ClientAddrConfigError, TrustedProxies};
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::{HeaderName, HeaderValue, Request};
use tower::{Layer, Service};

use crate::ClientCertificate;

/// `Client-Cert` (RFC 9440 §2.2): the end-entity certificate as a structured-field byte
/// sequence, `:<base64 DER>:`.
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
/// `Client-Cert-Chain` (RFC 9440 §2.3): not read here, but removed from untrusted peers.
pub const CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");

/// Default bound on a `Client-Cert` value: 16 KiB, far above a real end-entity certificate.
pub const DEFAULT_MAX_HEADER_LEN: usize = 16 * 1024;

/// Reads the client certificate from `Client-Cert` (RFC 9440) when, and only when, the
/// connection's peer (axum's `ConnectInfo<SocketAddr>`) is one of the configured
/// TLS-terminating proxies.
///
/// - From a trusted proxy, the header is the client's certificate: it replaces any
///   [`ClientCertificate`] in the extensions (the proxy's own connection certificate is not
///   the client's), and a request without the header has none. The header stays, marked
///   sensitive. More than one `Client-Cert` line, a value over the size bound, or a value
///   that is not one `:base64:` byte sequence of a DER SEQUENCE is a broken proxy: 400
///   `invalid_request`, never a request that silently lost its certificate.
/// - From any other peer (or when the peer is unknown), `Client-Cert` and
///   `Client-Cert-Chain` are removed before anything inside sees them (RFC 9440 §4: a
///   client must never choose them), and the connection's own certificate, if any, stays.
///
/// Put it outermost, before the authentication layers.
///
/// ```
/// use apiauth_mtls::ClientCertHeaderLayer;
/// use axum::{routing::get, Router};
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(ClientCertHeaderLayer::from_cidrs(["10.0.0.0/8"]).unwrap());
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientCertHeaderLayer {
    proxies: Arc<TrustedProxies>,
    max_len: usize,
}

impl ClientCertHeaderLayer {
    /// Trusts the header from peers in these ranges (`10.0.0.0/8`, `2001:db8::/32`, a single
    /// address), with core's CIDR parsing. There is no hop-count form: the header is
    /// believed from the immediate peer only, which must be a known proxy.
    pub fn from_cidrs<I, S>(ranges: I) -> Result<Self, ClientAddrConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Self {
            proxies: Arc::new(TrustedProxies::cidrs(ranges)?),
            max_len: DEFAULT_MAX_HEADER_LEN,
        })
    }

    /// Bounds the header value's length (default [`DEFAULT_MAX_HEADER_LEN`]).
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }
}

impl<S> Layer<S> for ClientCertHeaderLayer {
    type Service = ClientCertHeaderService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientCertHeaderService {
            inner,
            proxies: self.proxies.clone(),
            max_len: self.max_len,
        }
    }
}

/// The service made by [`ClientCertHeaderLayer`].
#[derive(Clone, Debug)]
pub struct ClientCertHeaderService<S> {
    inner: S,
    proxies: Arc<TrustedProxies>,
    max_len: usize,
}

/// Why a trusted proxy's `Client-Cert` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    SeveralLines,
    TooLong,
    NotByteSequence,
}

/// Parses an RFC 8941 §3.3.5 byte sequence holding a DER SEQUENCE (RFC 9440 §2.2).
fn parse(value: &HeaderValue, max_len: usize) -> Result<ClientCertificate, Malformed> {
    let raw = value.as_bytes();
    if raw.len() > max_len {
        return Err(Malformed::TooLong);
    }
    // RFC 8941 §4.2: surrounding spaces are not part of the item.
    let inner = raw
        .trim_ascii()
        .strip_prefix(b":")
        .and_then(|v| v.strip_suffix(b":"))
        .ok_or(Malformed::NotByteSequence)?;
    // RFC 8941 §4.2.7: the standard alphabet; parsers should not insist on `=` padding.
    const B64: GeneralPurpose = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let der = B64.decode(inner).map_err(|_| Malformed::NotByteSequence)?;
    // A certificate is a DER SEQUENCE (tag 0x30); anything else is not one.
    if der.first() != Some(&0x30) {
        return Err(Malformed::NotByteSequence);
    }
    Ok(ClientCertificate::from_der(der))
}

impl<S, B> Service<Request<B>> for ClientCertHeaderService<S>
where
    S: Service<Request<B>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let trusted = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(peer)| self.proxies.trusts(peer.ip()));
        let headers = req.headers_mut();
        if !trusted {
            // RFC 9440 §4: never from a client.
            headers.remove(CLIENT_CERT);
            headers.remove(CLIENT_CERT_CHAIN);
            return Box::pin(self.inner.call(req));
        }
        let parsed = {
            let mut lines = headers.get_all(CLIENT_CERT).iter();
            match (lines.next(), lines.next()) {
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(Malformed::SeveralLines),
                (Some(v), None) => parse(v, self.max_len).map(Some),
            }
        };
        match parsed {
            Err(why) => {
                let detail = match why {
                    Malformed::SeveralLines => "more than one Client-Cert header",
                    Malformed::TooLong => "the Client-Cert header is too long",
                    Malformed::NotByteSequence => "the Client-Cert header is not a certificate",
                };
                let res = AuthError::invalid_request(detail).into_response();
                Box::pin(async move { Ok(res) })
            }
            Ok(cert) => {
                if let Some(mut v) = headers.remove(CLIENT_CERT) {
                    v.set_sensitive(true);
                    headers.insert(CLIENT_CERT, v);
                }
                match cert {
                    Some(c) => req.extensions_mut().insert(c),
                    None => req.extensions_mut().remove::<ClientCertificate>(),
                };
                Box::pin(self.inner.call(req))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn byte_sequences_parse_with_or_without_padding_and_anything_else_does_not() {
        // 0x30 0x00 is "MAA=" in base64.
        let a = parse(&hv(":MAA=:"), 100).unwrap();
        let b = parse(&hv(" :MAA: "), 100).unwrap();
        assert_eq!(a.der(), [0x30, 0x00]);
        assert_eq!(a.x5t_s256(), b.x5t_s256());
        for bad in ["MAA=", ":MAA=", ":M-A_:", ":AAA=:", "::", ":MAA=:;a=1"] {
            assert_eq!(
                parse(&hv(bad), 100).unwrap_err(),
                Malformed::NotByteSequence,
                "{bad}"
            );
        }
        assert_eq!(parse(&hv(":MAA=:"), 5).unwrap_err(), Malformed::TooLong);
    }
}
