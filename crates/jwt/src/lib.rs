//! # apiauth-jwt
//!
//! JWT bearer tokens (RFC 7519, RFC 9068 access tokens) verified against static keys, a JWKS
//! URL or an issuer found by OpenID Connect discovery. [`JwtVerifier`] is a
//! [`TokenVerifier`](apiauth_bearer::TokenVerifier): put it in `apiauth_bearer::Bearer` and
//! the RFC 6750 transport, challenges and layer contract come from there.
//!
//! ```
//! use apiauth_bearer::Bearer;
//! use apiauth_core::{scope, Scoped};
//! use apiauth_jwt::{Issuer, JwtKey, JwtVerifier};
//! use axum::{body::Body, routing::get, Router};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! scope!(ReportsRead = "reports:read");
//!
//! async fn reports(Scoped(p, ..): Scoped<ReportsRead>) -> String {
//!     format!("reports for {}", p.subject())
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let secret = b"an example secret of at least 32 bytes";
//! // In production: Issuer::jwks(iss, jwks_url) or Issuer::discover(iss).
//! let verifier = JwtVerifier::builder()
//!     .issuer(Issuer::new("https://idp.example").key(JwtKey::hmac(secret)?).audience("reports-api"))
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/reports", get(reports))
//!     .layer(Bearer::new(verifier).realm("reports").layer());
//!
//! // A token as the issuer would mint it.
//! let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 300;
//! let claims = serde_json::json!({
//!     "iss": "https://idp.example", "aud": "reports-api", "sub": "alice",
//!     "exp": exp, "scope": "reports:read",
//! });
//! let token = jsonwebtoken::encode(
//!     &jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret),
//! ).unwrap();
//!
//! let req = Request::get("/reports").header("authorization", format!("Bearer {token}"))
//!     .body(Body::empty()).unwrap();
//! assert_eq!(app.oneshot(req).await.unwrap().status(), 200);
//! # Ok::<(), apiauth_jwt::JwtConfigError>(())
//! # }).unwrap();
//! ```
//!
//! With keys from an identity provider, only the issuer changes:
//!
//! ```no_run
//! use apiauth_bearer::Bearer;
//! use apiauth_core::{scope, Scoped};
//! use apiauth_jwt::{Issuer, JwtVerifier};
//! use axum::{routing::get, Router};
//!
//! scope!(ReportsRead = "reports:read");
//!
//! # async fn run() -> Result<(), apiauth_jwt::JwtConfigError> {
//! let verifier = JwtVerifier::builder()
//!     .issuer(
//!         Issuer::jwks("https://idp.example", "https://idp.example/.well-known/jwks.json")
//!             .audience("https://api.example")
//!             .require_at_jwt(),
//!     )
//!     .build()
//!     .await?; // fails fast if the JWKS cannot be fetched
//! let app: Router = Router::new()
//!     .route("/reports", get(|Scoped(p, ..): Scoped<ReportsRead>| async move {
//!         p.subject().to_owned()
//!     }))
//!     .layer(Bearer::new(verifier).layer());
//! # Ok(()) }
//! ```
//!
//! ## What is checked
//!
//! - length (8 KiB by default) before any decoding; exactly three base64url parts, canonical
//!   encoding, JSON objects without duplicate names;
//! - `alg`: `none` in any casing is refused; each key has its own allowlist, limited to its
//!   own family, so HMAC is never tried with a public key; `kid` only selects among the keys
//!   configured or fetched for the token's issuer;
//! - `jku`, `x5u`, `jwk` and `x5c` headers are **refused**, not ignored: a token that points
//!   at its own key is either an attack or a misconfigured issuer, and either way should be
//!   visible; `crit` is refused (no extension is understood);
//! - `exp` required; `nbf`, `iat` when present; `iss` always (it selects the issuer); `aud`
//!   unless the issuer opts out with `dangerous_accept_any_audience`; optional `typ` (`at+jwt`);
//!   claims of the wrong JSON type are refused, never treated as absent;
//! - `jti` against a core [`RevocationList`](apiauth_core::RevocationList) when configured.
//!
//! Every refusal is 401 `invalid_token` with one public text; the specific reason goes to
//! the audit event only. A key set that cannot be refreshed keeps serving for the stale
//! window, then requests get 503 with `Retry-After`, never 401.
//!
//! ## Principal
//!
//! Subject from `sub`, credential id from `jti` (else `kid`), scopes from `scope` or `scp`,
//! expiry from `exp`, tenant, plan and [`Roles`] from configurable claims, and every claim as
//! [`JwtClaims`]; the [`Claims<T>`] extractor deserialises them into your type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod claims;
mod error;
mod json;
mod key;
mod remote;
mod token;
mod verifier;

pub use claims::{Claims, ClaimsRejection, JwtClaims, Roles};
pub use error::{FetchError, JwtConfigError};
pub use jsonwebtoken::Algorithm;
pub use key::{JwtKey, MIN_HMAC_SECRET_LEN};
pub use verifier::{
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, Issuer, JwtVerifier, JwtVerifierBuilder,
};
