//! What a verifier may see of a request besides its credential.

use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, Uri, Version};

/// A borrowed view of a request's parts: method, URI, version, headers and extensions,
/// never the body.
///
/// Verifiers that bind a token to the request read it here: a proof-of-possession check
/// (RFC 9449 DPoP) compares the `DPoP` header's `htm` and `htu` with [`method`](Self::method)
/// and [`uri`](Self::uri); a certificate-bound token (RFC 8705 mTLS) finds the peer
/// certificate the server put into [`extensions`](Self::extensions).
///
/// ```
/// use apiauth_core::RequestContext;
/// use http::Request;
///
/// let req = Request::post("https://api.example/v1/items")
///     .header("dpop", "eyJ…")
///     .body(())
///     .unwrap();
/// let cx = RequestContext::new(&req);
/// assert_eq!(cx.method(), "POST");
/// assert_eq!(cx.uri().path(), "/v1/items");
/// assert!(cx.headers().contains_key("dpop"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestContext<'a> {
    method: &'a Method,
    uri: &'a Uri,
    version: Version,
    headers: &'a HeaderMap,
    extensions: &'a Extensions,
    checks_certificate_binding: bool,
}

impl<'a> RequestContext<'a> {
    /// The parts of `req`.
    pub fn new<B>(req: &'a Request<B>) -> Self {
        Self {
            method: req.method(),
            uri: req.uri(),
            version: req.version(),
            headers: req.headers(),
            extensions: req.extensions(),
            checks_certificate_binding: false,
        }
    }

    /// The parts of a request already split with [`Request::into_parts`].
    pub fn from_parts(parts: &'a Parts) -> Self {
        Self {
            method: &parts.method,
            uri: &parts.uri,
            version: parts.version,
            headers: &parts.headers,
            extensions: &parts.extensions,
            checks_certificate_binding: false,
        }
    }

    /// The request method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request target as received (origin-form for most HTTP/1.1 requests: path and
    /// query, no scheme or authority; the `Host` header is in [`headers`](Self::headers)).
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The request headers.
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions: what the server and outer layers attached (a TLS peer
    /// certificate, [`ClientAddr`](crate::client_addr::ClientAddr), the principal of an outer
    /// layer, …).
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The same context, with the promise that the caller compares a certificate-bound
    /// token's `cnf.x5t#S256` with the request's client certificate after the verifier
    /// returns (RFC 8705 §3). Only such a wrapper (`apiauth-mtls`'s `CertificateBound`) sets
    /// it; without it verifiers refuse bound tokens
    /// ([`refuse_unchecked_certificate_binding`](crate::confirmation::refuse_unchecked_certificate_binding)).
    pub fn checking_certificate_binding(mut self) -> Self {
        self.checks_certificate_binding = true;
        self
    }

    /// Whether the caller checks certificate bindings (see
    /// [`checking_certificate_binding`](Self::checking_certificate_binding)).
    pub fn checks_certificate_binding(&self) -> bool {
        self.checks_certificate_binding
    }
}
