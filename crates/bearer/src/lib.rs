//! # apiauth-bearer
//!
//! RFC 6750 bearer tokens: the transport. This crate finds the token
//! (`Authorization: Bearer <token68>`, §2.1) and hands it to a [`TokenVerifier`], which decides
//! what the token means: a JWT (`apiauth-jwt`), an introspected OAuth 2.0 token
//! (`apiauth-oauth2`), or your own lookup.
//!
//! ```
//! use apiauth_bearer::{Bearer, TokenVerifier};
//! use apiauth_core::{Auth, AuthError, AuthMethod, Principal, RequestContext};
//! use axum::{routing::get, Router};
//!
//! struct Static;
//!
//! impl TokenVerifier for Static {
//!     fn method(&self) -> AuthMethod { AuthMethod::BEARER }
//!     async fn verify(&self, token: &str, _req: &RequestContext<'_>) -> Result<Principal, AuthError> {
//!         // Real verifiers compare hashes in constant time or check signatures.
//!         if token == "demo" {
//!             Ok(Principal::builder("demo-user", AuthMethod::BEARER).build())
//!         } else {
//!             Err(AuthError::invalid_credentials("unknown_token"))
//!         }
//!     }
//! }
//!
//! let app: Router = Router::new()
//!     .route("/me", get(|Auth(p): Auth| async move { p.subject().to_owned() }))
//!     .layer(Bearer::new(Static).realm("api").layer());
//! ```
//!
//! Opaque tokens (personal access tokens, service tokens) are [`OpaqueTokens`]: prefixed,
//! checksummed secrets stored only as SHA-256, managed with `apiauth_api_key::ApiKeys`.
//!
//! Tokens in the query string (`?access_token=`, RFC 6750 §2.3) leak into logs, browser
//! history and proxies, so they are refused with 400 unless a route opts in with
//! [`Bearer::dangerous_allow_query_token`]. Form-encoded body tokens (§2.2) are read only on
//! routes that opt in with [`Bearer::allow_form_body_token`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "opaque")]
mod opaque;
mod resource_metadata;
#[cfg(feature = "opaque")]
#[cfg_attr(docsrs, doc(cfg(feature = "opaque")))]
pub use opaque::OpaqueTokens;
pub use resource_metadata::{ProtectedResourceMetadata, ResourceMetadataError, WELL_KNOWN_SUFFIX};

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use apiauth_core::header::{authorization_token68, is_token68};
use apiauth_core::{
    AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal, RequestContext,
};
use axum::body::Body;
use http::Request;

/// Decides what a bearer token means.
///
/// The verifier sees the request's parts too ([`RequestContext`]: method, URI, headers,
/// extensions), so a token bound to the request (a DPoP proof in the `DPoP` header, RFC 9449;
/// a client certificate in the extensions, RFC 8705) is checked here, by a verifier that may
/// wrap another one.
///
/// Errors follow the core contract: `AuthError::invalid_credentials` for a token that is not
/// valid (401 `invalid_token`), `AuthError::unavailable` when an upstream needed to decide
/// failed (503, never a pass).
pub trait TokenVerifier: Send + Sync + 'static {
    /// The method recorded on principals and audit events (`Bearer`, `Jwt`, `Introspection`).
    fn method(&self) -> AuthMethod;

    /// Verifies `token` (already checked to be RFC 7235 `token68`), presented on the request
    /// whose parts are `req`.
    fn verify(
        &self,
        token: &str,
        req: &RequestContext<'_>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send;
}

impl<V: TokenVerifier> TokenVerifier for Arc<V> {
    fn method(&self) -> AuthMethod {
        (**self).method()
    }
    fn verify(
        &self,
        token: &str,
        req: &RequestContext<'_>,
    ) -> impl Future<Output = Result<Principal, AuthError>> + Send {
        (**self).verify(token, req)
    }
}

/// The `Authorization` scheme a token layer reads and challenges with: `Bearer` (RFC 6750)
/// or another token scheme built the same way, such as `DPoP` (RFC 9449 §7.1).
///
/// Schemes compare case-insensitively (RFC 7235 §2.1).
///
/// ```
/// use apiauth_bearer::TokenScheme;
/// assert_eq!(TokenScheme::Bearer.as_str(), "Bearer");
/// assert_eq!(TokenScheme::custom("DPoP").unwrap().as_str(), "DPoP");
/// assert!(TokenScheme::custom("not a token").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenScheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// Another scheme: an RFC 7230 `token`, checked by [`TokenScheme::custom`].
    Custom(Cow<'static, str>),
}

/// A scheme name that is not an RFC 7230 `token` (letters, digits and ``!#$%&'*+-.^_`|~``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScheme;

impl std::fmt::Display for InvalidScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an authentication scheme must be a non-empty RFC 7230 token")
    }
}

impl std::error::Error for InvalidScheme {}

impl TokenScheme {
    /// A scheme other than `Bearer`, for example `DPoP`.
    pub fn custom(name: impl Into<Cow<'static, str>>) -> Result<Self, InvalidScheme> {
        let name = name.into();
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(InvalidScheme);
        }
        if name.eq_ignore_ascii_case("bearer") {
            return Ok(TokenScheme::Bearer);
        }
        Ok(TokenScheme::Custom(name))
    }

    /// The scheme as written in `Authorization` and `WWW-Authenticate`.
    pub fn as_str(&self) -> &str {
        match self {
            TokenScheme::Bearer => "Bearer",
            TokenScheme::Custom(name) => name,
        }
    }
}

/// Largest token accepted from the query string or a form body; header size is bounded by
/// the server.
const MAX_QUERY_TOKEN: usize = 16 * 1024;

/// Largest form body read to find an `access_token` (RFC 6750 §2.2).
const MAX_FORM_BODY: usize = 64 * 1024;

/// Where the token is, as [`Bearer`]'s `extract` found it.
#[derive(Clone)]
pub enum BearerCredential {
    /// In `Authorization` or, where allowed, the query string.
    Token(String),
    /// Possibly in an `application/x-www-form-urlencoded` body (RFC 6750 §2.2): read by
    /// `verify`, which hands the same bytes on.
    FormBody,
}

impl std::fmt::Debug for BearerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerCredential::Token(_) => f.write_str("Token([redacted])"),
            BearerCredential::FormBody => f.write_str("FormBody"),
        }
    }
}

/// The bearer-token method: configuration plus the [`Authenticator`] implementation.
#[must_use]
pub struct Bearer<V> {
    verifier: V,
    scheme: TokenScheme,
    realm: Cow<'static, str>,
    resource_metadata: Option<Cow<'static, str>>,
    allow_query: bool,
    allow_form: bool,
}

impl<V: TokenVerifier> Bearer<V> {
    /// Bearer tokens verified by `verifier`, realm `api`, header only.
    pub fn new(verifier: V) -> Self {
        Self {
            verifier,
            scheme: TokenScheme::Bearer,
            realm: Cow::Borrowed("api"),
            resource_metadata: None,
            allow_query: false,
            allow_form: false,
        }
    }

    /// Reads tokens of `scheme` instead of `Bearer` (for example `DPoP`), and challenges with
    /// it. The query and form-body options are RFC 6750's: with another scheme only the header
    /// is read (RFC 9449 §7.1).
    pub fn scheme(mut self, scheme: TokenScheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// Sets the realm of the `WWW-Authenticate` challenge.
    pub fn realm(mut self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Names the resource's RFC 9728 metadata document in every challenge
    /// (`resource_metadata="…"`, RFC 9728 §5.1), so a client that got a 401 can discover which
    /// authorization server to ask; `url` is [`ProtectedResourceMetadata::metadata_url`].
    pub fn resource_metadata(mut self, url: impl Into<Cow<'static, str>>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Also accepts `?access_token=` (RFC 6750 §2.3). The token then appears in access logs,
    /// browser history and `Referer` headers; enable it only on the routes that must have it.
    pub fn dangerous_allow_query_token(mut self) -> Self {
        self.allow_query = true;
        self
    }

    /// Also accepts `access_token` in an `application/x-www-form-urlencoded` body of a
    /// non-GET request (RFC 6750 §2.2). The body (at most 64 KiB) is read to find it and handed
    /// on unchanged. Such a request claims this method even when the body turns out to hold no
    /// token (then 401), so put this layer outermost on the routes that allow it.
    pub fn allow_form_body_token(mut self) -> Self {
        self.allow_form = true;
        self
    }

    /// The verifier.
    pub fn verifier(&self) -> &V {
        &self.verifier
    }

    /// Wraps this method in the core [`AuthLayer`].
    pub fn layer(self) -> AuthLayer<Self> {
        AuthLayer::new(self)
    }
}

fn query_token(req: &Request<Body>) -> Option<Cow<'_, str>> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v)
}

/// RFC 6750 §2.2: a form-encoded body on a method that defines one (never GET).
fn is_form_post(req: &Request<Body>) -> bool {
    let method = req.method();
    if method == http::Method::GET || method == http::Method::HEAD {
        return false;
    }
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn malformed_form() -> AuthError {
    AuthError::invalid_request("The form-encoded access token is malformed.")
        .with_reason("malformed_form_token")
}

impl<V: TokenVerifier> Bearer<V> {
    /// Reads the form body (bounded), takes its single `access_token` and puts the body back.
    async fn token_from_form(&self, req: &mut Request<Body>) -> Result<String, AuthError> {
        let body = std::mem::take(req.body_mut());
        let bytes = axum::body::to_bytes(body, MAX_FORM_BODY)
            .await
            .map_err(|_| AuthError::payload_too_large())?;
        // §2.2: the body consists entirely of ASCII characters.
        if !bytes.is_ascii() {
            *req.body_mut() = Body::from(bytes);
            return Err(malformed_form());
        }
        let mut tokens = form_urlencoded::parse(&bytes)
            .filter(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned());
        let first = tokens.next();
        let second = tokens.next();
        *req.body_mut() = Body::from(bytes);
        match (first, second) {
            (None, _) => Err(AuthError::missing_credentials()),
            (Some(_), Some(_)) => Err(AuthError::invalid_request(
                "Send the access token in one place only.",
            )
            .with_reason("token_twice_in_form")),
            (Some(t), None) if t.len() <= MAX_QUERY_TOKEN && is_token68(&t) => Ok(t),
            (Some(_), None) => Err(malformed_form()),
        }
    }
}

impl<V: TokenVerifier> Authenticator for Bearer<V> {
    type Credential = BearerCredential;

    fn method(&self) -> AuthMethod {
        self.verifier.method()
    }

    fn challenge(&self) -> Challenge {
        let c = match &self.scheme {
            TokenScheme::Bearer => Challenge::bearer(self.realm.clone()),
            TokenScheme::Custom(name) => Challenge::new(name.clone())
                .param("realm", self.realm.clone())
                .with_error_attributes(),
        };
        match &self.resource_metadata {
            Some(url) => c.param("resource_metadata", url.clone()),
            None => c,
        }
    }

    fn scope_challenge(&self) -> Option<Challenge> {
        // RFC 6750 §3.1; realm is optional there, so none is repeated.
        let scheme: Cow<'static, str> = match &self.scheme {
            TokenScheme::Bearer => Cow::Borrowed("Bearer"),
            TokenScheme::Custom(name) => name.clone(),
        };
        Some(Challenge::new(scheme).with_error_attributes())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<BearerCredential>, AuthError> {
        let header = authorization_token68(req, self.scheme.as_str())?;
        // Query and form tokens are RFC 6750's alone (RFC 9449 §7.1 allows only the header).
        let query = match self.scheme {
            TokenScheme::Bearer => query_token(req),
            TokenScheme::Custom(_) => None,
        };
        match (header, query) {
            // Only when no other method has authenticated this request already (rule 5).
            (None, None)
                if self.allow_form
                    && self.scheme == TokenScheme::Bearer
                    && is_form_post(req)
                    && req.extensions().get::<Principal>().is_none() =>
            {
                Ok(Some(BearerCredential::FormBody))
            }
            (None, None) => Ok(None),
            (Some(t), None) => Ok(Some(BearerCredential::Token(t.to_owned()))),
            // RFC 6750 §2: clients MUST NOT use more than one method to transmit the token.
            (Some(_), Some(_)) => Err(AuthError::invalid_request(
                "Send the access token in one place only.",
            )
            .with_reason("token_in_header_and_query")),
            (None, Some(_)) if !self.allow_query => Err(AuthError::invalid_request(
                "Access tokens in the URL are not accepted; send them in the Authorization header.",
            )
            .with_reason("token_in_query")),
            (None, Some(t)) => {
                if t.len() > MAX_QUERY_TOKEN || !is_token68(&t) {
                    return Err(AuthError::invalid_request("The access token is malformed.")
                        .with_reason("malformed_query_token"));
                }
                Ok(Some(BearerCredential::Token(t.into_owned())))
            }
        }
    }

    async fn verify(
        &self,
        credential: BearerCredential,
        req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        let token = match credential {
            BearerCredential::Token(t) => t,
            BearerCredential::FormBody => self.token_from_form(req).await?,
        };
        self.verifier
            .verify(&token, &RequestContext::new(req))
            .await
    }
}
