//! # apiauth-hmac
//!
//! Requests signed with a shared secret, the standard way: RFC 9421 HTTP Message Signatures
//! with `hmac-sha256`, RFC 9530 `Content-Digest` for the body, and the webhook styles
//! partners use (`t=<ts>,v1=<hex>` and GitHub's `sha256=<hex>`).
//!
//! - [`HttpSignatureVerifier`]: an [`Authenticator`](apiauth_core::Authenticator) for
//!   `Signature-Input`/`Signature`. Keys come from an [`HmacKeyStore`] by `keyid` (several
//!   secrets per key while rotating); a [`CoveragePolicy`] says what must be signed; `created`
//!   is checked against a maximum age and clock skew; the `nonce` goes into core's
//!   [`ReplayStore`](apiauth_core::ReplayStore) so a captured request cannot be replayed. The
//!   body is read up to a limit (413 beyond) and within a [`BodyBudget`] shared across
//!   requests (503 when spent), its digest checked, and the same bytes handed on.
//! - [`Signer`] / [`sign_request`] (and `sign_reqwest` with the `reqwest` feature): the client
//!   half, with the same component rules.
//! - [`WebhookVerifier`]: webhook deliveries as an authenticator too.
//!
//! Every mismatch answers the same 401; the reason (`bad_signature`, `stale_created`,
//! `replayed_nonce`, …) is only in the audit event.
//!
//! ## Scheme and authority behind proxies
//!
//! `@scheme`, `@authority` and `@target-uri` describe the request the client sent. Over
//! HTTP/1.1 the request line has no scheme and the authority is in `Host`; over HTTP/2 both
//! are pseudo-headers (`:scheme`, `:authority`). The verifier takes the authority from the
//! URI if present, else from `Host`, and normalizes it (lowercase, no default port), so both
//! protocols give the same base. The scheme is the URI's, else `http`: behind a
//! TLS-terminating proxy set [`HttpSignatureVerifierBuilder::scheme`] to `https` (and
//! [`authority`](HttpSignatureVerifierBuilder::authority) if the proxy rewrites `Host`).
//! The default signer covers `@authority`, `@path` and `@query` rather than `@target-uri`,
//! which needs no scheme at all.
//!
//! ```
//! use apiauth_core::{Auth, AuthLayer};
//! use apiauth_hmac::{HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer};
//! use axum::{Router, body::Body, routing::post};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let secret = HmacSecret::generate();
//! let keys = MemoryHmacKeyStore::new();
//! keys.insert("client-1", HmacKey::new("acme-billing").secret(secret.clone()));
//!
//! // Server: guard a route.
//! let verifier = HttpSignatureVerifier::builder(keys).build().unwrap();
//! let app = Router::new()
//!     .route("/orders", post(|Auth(p): Auth| async move { p.subject().to_owned() }))
//!     .layer(AuthLayer::new(verifier));
//!
//! // Client: sign a request.
//! let signer = Signer::builder("client-1", secret).build().unwrap();
//! let mut req = http::Request::post("http://api.example.com/orders")
//!     .body(br#"{"qty":1}"#.to_vec())
//!     .unwrap();
//! signer.sign(&mut req).unwrap();
//!
//! let res = app.oneshot(req.map(Body::from)).await.unwrap();
//! assert_eq!(res.status(), 200);
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod components;
mod digest;
mod error;
mod secret;
mod sf;
mod sign;
mod store;
mod verify;
mod webhook;

pub use body::{BodyBudget, DEFAULT_BODY_BUDGET};
pub use components::{Component, SfType};
pub use digest::{CONTENT_DIGEST, DigestAlgorithm};
pub use error::{HttpSigConfigError, SignError};
pub use secret::{HmacSecret, MIN_SECRET_LEN, RotatingSecret};
/// Both structured-field parsers side by side, for the `sf_dictionary` fuzz target.
#[cfg(feature = "differential")]
#[doc(hidden)]
pub use sf::differential;
#[cfg(feature = "reqwest")]
pub use sign::sign_reqwest;
pub use sign::{Signer, SignerBuilder, sign_request};
pub use store::{HmacKey, HmacKeyStore, MemoryHmacKeyStore};
pub use verify::{
    CoveragePolicy, HttpSignatureVerifier, HttpSignatureVerifierBuilder, PresentedSignature,
    VerifiedSignature,
};
pub use webhook::{PresentedWebhook, WebhookProfile, WebhookVerifier, WebhookVerifierBuilder};

/// The one algorithm this crate implements (RFC 9421 §3.3.3).
pub const ALG: &str = "hmac-sha256";

/// `Signature-Input` (RFC 9421 §4.1).
pub const SIGNATURE_INPUT: http::HeaderName = http::HeaderName::from_static("signature-input");

/// `Signature` (RFC 9421 §4.2).
pub const SIGNATURE: http::HeaderName = http::HeaderName::from_static("signature");
