//! # apiauth-bearer
//!
//! RFC 6750 bearer tokens: the transport. This crate finds the token
//! (`Authorization: Bearer <token68>`, §2.1) and hands it to a [`TokenVerifier`], which decides
//! what the token means: a JWT (`apiauth-jwt`), an introspected OAuth 2.0 token
//! (`apiauth-oauth2`), or your own lookup.
//!
//! ```
//! use apiauth_bearer::{Bearer, TokenVerifier};
//! use apiauth_core::{Auth, AuthError, AuthMethod, Principal};
//! use axum::{routing::get, Router};
//!
//! struct Static;
//!
//! impl TokenVerifier for Static {
//!     fn method(&self) -> AuthMethod { AuthMethod::Bearer }
//!     async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
//!         // Real verifiers compare hashes in constant time or check signatures.
//!         if token == "demo" {
//!             Ok(Principal::builder("demo-user", AuthMethod::Bearer).build())
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

#[cfg(feature = "opaque")]
mod opaque;
#[cfg(feature = "opaque")]
pub use opaque::OpaqueTokens;

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use apiauth_core::header::{authorization_token68, is_token68};
use apiauth_core::{AuthError, AuthLayer, AuthMethod, Authenticator, Challenge, Principal};
use axum::body::Body;
use http::Request;

/// Decides what a bearer token means.
///
/// Errors follow the core contract: `AuthError::invalid_credentials` for a token that is not
/// valid (401 `invalid_token`), `AuthError::unavailable` when an upstream needed to decide
/// failed (503, never a pass).
pub trait TokenVerifier: Send + Sync + 'static {
    /// The method recorded on principals and audit events (`Bearer`, `Jwt`, `Introspection`).
    fn method(&self) -> AuthMethod;

    /// Verifies `token` (already checked to be RFC 7235 `token68`).
    fn verify(&self, token: &str) -> impl Future<Output = Result<Principal, AuthError>> + Send;
}

impl<V: TokenVerifier> TokenVerifier for Arc<V> {
    fn method(&self) -> AuthMethod {
        (**self).method()
    }
    fn verify(&self, token: &str) -> impl Future<Output = Result<Principal, AuthError>> + Send {
        (**self).verify(token)
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
    realm: Cow<'static, str>,
    allow_query: bool,
    allow_form: bool,
}

impl<V: TokenVerifier> Bearer<V> {
    /// Bearer tokens verified by `verifier`, realm `api`, header only.
    pub fn new(verifier: V) -> Self {
        Self {
            verifier,
            realm: Cow::Borrowed("api"),
            allow_query: false,
            allow_form: false,
        }
    }

    /// Sets the realm of the `WWW-Authenticate: Bearer` challenge.
    pub fn realm(mut self, realm: impl Into<Cow<'static, str>>) -> Self {
        self.realm = realm.into();
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
        Challenge::bearer(self.realm.clone())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<BearerCredential>, AuthError> {
        let header = authorization_token68(req, "Bearer")?;
        let query = query_token(req);
        match (header, query) {
            // Only when no other method has authenticated this request already (rule 5).
            (None, None)
                if self.allow_form
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
        self.verifier.verify(&token).await
    }
}
