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
//! [`Bearer::dangerous_allow_query_token`]. Form-encoded body tokens (§2.2) are not supported.
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

/// Largest token accepted from the query string; header size is bounded by the server.
const MAX_QUERY_TOKEN: usize = 16 * 1024;

/// The bearer-token method: configuration plus the [`Authenticator`] implementation.
#[must_use]
pub struct Bearer<V> {
    verifier: V,
    realm: Cow<'static, str>,
    allow_query: bool,
}

impl<V: TokenVerifier> Bearer<V> {
    /// Bearer tokens verified by `verifier`, realm `api`, header only.
    pub fn new(verifier: V) -> Self {
        Self {
            verifier,
            realm: Cow::Borrowed("api"),
            allow_query: false,
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

impl<V: TokenVerifier> Authenticator for Bearer<V> {
    type Credential = String;

    fn method(&self) -> AuthMethod {
        self.verifier.method()
    }

    fn challenge(&self) -> Challenge {
        Challenge::bearer(self.realm.clone())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<String>, AuthError> {
        let header = authorization_token68(req, "Bearer")?;
        let query = query_token(req);
        match (header, query) {
            (None, None) => Ok(None),
            (Some(t), None) => Ok(Some(t.to_owned())),
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
                Ok(Some(t.into_owned()))
            }
        }
    }

    async fn verify(&self, token: String, _: &mut Request<Body>) -> Result<Principal, AuthError> {
        self.verifier.verify(&token).await
    }
}
