//! # apiauth-dpop
//!
//! Sender-constrained access tokens with DPoP (RFC 9449): a token bound to a client's key
//! (`cnf.jkt`, the key's RFC 7638 thumbprint) is accepted only with a fresh proof, signed by
//! that key, for this request's method and URI. A stolen token alone is useless.
//!
//! [`Dpop`] is the method: any [`TokenVerifier`](apiauth_bearer::TokenVerifier) for the
//! token (`apiauth_jwt::JwtVerifier`, whose `cnf` claim is read through its claims), and a
//! [`DpopVerifier`] for the proof, on the core layer contract.
//!
//! ```
//! use std::sync::Arc;
//! use apiauth_bearer::TokenVerifier;
//! use apiauth_core::{Auth, AuthError, AuthMethod, Principal, RequestContext};
//! use apiauth_dpop::{Dpop, DpopBinding, DpopKey, DpopVerifier};
//! use axum::{body::Body, routing::get, Router};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! /// A toy token verifier: the token names the thumbprint it is bound to.
//! struct Toy;
//! impl TokenVerifier for Toy {
//!     fn method(&self) -> AuthMethod { AuthMethod::BEARER }
//!     async fn verify(&self, token: &str, _: &RequestContext<'_>) -> Result<Principal, AuthError> {
//!         let jkt = token.strip_prefix("bound-to.").ok_or(AuthError::invalid_credentials("x"))?;
//!         Ok(Principal::builder("alice", AuthMethod::BEARER)
//!             .attribute(DpopBinding(jkt.to_owned()))
//!             .build())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // The URL clients use, not the Host header (the service may sit behind a proxy).
//! let proofs = DpopVerifier::builder("https://api.example").build().unwrap();
//! let app: Router = Router::new()
//!     .route("/me", get(|Auth(p): Auth| async move { p.subject().to_owned() }))
//!     .layer(Dpop::new(Toy, proofs).layer());
//!
//! let key = DpopKey::generate_es256().unwrap();
//! let token = format!("bound-to.{}", key.thumbprint());
//! let proof = key.proof("GET", "https://api.example/me").access_token(&token).sign().unwrap();
//! let req = Request::get("/me")
//!     .header("authorization", format!("DPoP {token}"))
//!     .header("dpop", &proof)
//!     .body(Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
//!
//! // The same proof again is a replay.
//! let again = Request::get("/me")
//!     .header("authorization", format!("DPoP {token}"))
//!     .header("dpop", &proof)
//!     .body(Body::empty()).unwrap();
//! let res = app.oneshot(again).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert!(res.headers()["www-authenticate"].to_str().unwrap()
//!     .starts_with(r#"DPoP algs="ES256 EdDSA", error="invalid_dpop_proof""#));
//! # });
//! ```
//!
//! ## What is checked (RFC 9449 §4.3)
//!
//! Each refusal is one [`DpopRefusal`] variant (its audit `reason`), answered `401` with
//! `WWW-Authenticate: DPoP algs="…", error="invalid_dpop_proof"` for the proof and
//! `error="invalid_token"` for the token or its binding:
//!
//! 1. exactly one `DPoP` header, at most 8 KiB, checked before any decoding;
//! 2. one compact JWS: strict base64url, JSON objects, no member twice;
//! 3. `jti`, `htm`, `htu`, `iat` present;
//! 4. `typ` is `dpop+jwt`;
//! 5. `alg` asymmetric (never `none` or `HS*`) and on the allowlist (default ES256, EdDSA;
//!    RS256 and PS256 on request), its key of the same family;
//! 6. the signature verifies with the `jwk` header;
//! 7. the `jwk` is public: `d`, `p`, `q`, `dp`, `dq`, `qi`, `oth` or `k` refuse it;
//! 8. `htm` is the request method;
//! 9. `htu` is the configured public base URL plus the request path, both normalised
//!    (RFC 3986 §6.2.2–6.2.3: case, default port, dot segments, percent-encoding), query
//!    and fragment ignored;
//! 10. with [`require_nonce`](DpopVerifierBuilder::require_nonce): the `nonce` is one the
//!     server issued; else `error="use_dpop_nonce"` and a fresh `DPoP-Nonce`;
//! 11. `iat` at most 60 s old and 5 s ahead; the `jti` (under the proof key) unused within
//!     that window, through a [`DpopReplayStore`] (spent last, so refused requests spend
//!     nothing);
//! 12. `ath` is the token's SHA-256, and the token's `cnf.jkt` is the proof key's
//!     thumbprint.
//!
//! A DPoP-bound token presented as `Bearer` is refused on every route (§7.1); a route in
//! [`DpopMode::Required`] refuses `Bearer` altogether, one in [`DpopMode::Allowed`] takes
//! unbound bearer tokens, one in [`DpopMode::BesideBearer`] leaves `Bearer` to a bearer layer
//! on the same route (so each scheme is offered and answered in its own words). Principals of DPoP requests have the method [`DPOP`], the token
//! principal's subject, issuer, scopes and JWT claims, and a [`DpopConfirmation`].
//!
//! The `DPoP` header carries a signed credential: mount
//! `apiauth_core::audit::sensitive_headers_layer_with([apiauth_dpop::DPOP_HEADER])`
//! outermost so traces never print it.
//!
//! Clients (and tests) sign proofs with [`DpopKey`] and [`DpopProofBuilder`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod alg;
mod auth;
mod client;
mod error;
mod htu;
mod jwk;
mod nonce;
mod store;
mod verifier;

pub use alg::DpopAlgorithm;
pub use auth::{
    DPOP, DPOP_HEADER, DPOP_NONCE_HEADER, Dpop, DpopBinding, DpopConfirmation, DpopCredential,
    DpopMode,
};
pub use client::{DpopKey, DpopKeyError, DpopProofBuilder};
pub use error::{DpopConfigError, DpopRefusal, INVALID_DPOP_PROOF, USE_DPOP_NONCE};
pub use jwk::{JwkError, PublicJwk, jwk_thumbprint_sha256};
pub use nonce::{DEFAULT_NONCE_PERIOD, DpopNonces, HmacDpopNonces};
pub use store::{DpopReplayStore, MemoryDpopReplayStore};
pub use verifier::{
    DEFAULT_MAX_AGE, DEFAULT_MAX_CLOCK_SKEW, DEFAULT_MAX_JTI_LEN, DEFAULT_MAX_PROOF_LEN,
    DpopVerifier, DpopVerifierBuilder, VerifiedProof, access_token_hash,
};
