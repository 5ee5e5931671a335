//! # apiauth-oauth2
//!
//! OAuth 2.0 for apiauth, both halves:
//!
//! - **Resource server**: [`IntrospectionVerifier`], a bearer
//!   [`TokenVerifier`](apiauth_bearer::TokenVerifier) that asks an RFC 7662 introspection
//!   endpoint whether a token is active, authenticating as a client (`client_secret_basic` or
//!   `client_secret_post`). Answers are cached under the SHA-256 of the token
//!   ([`IntrospectionCache`]), re-checked (`exp`, `nbf`, `aud`, `iss`) on every hit, and
//!   concurrent requests for one uncached token share a single call. An endpoint that is down,
//!   slow or answers nonsense gives 503 with `Retry-After`: never a pass, never a 401.
//! - **Authorization server**: [`AuthorizationServer`], an axum `Router` to mount, with the
//!   client-credentials grant (RFC 6749 §4.4) issuing RFC 9068 JWT access tokens signed by
//!   rotating ES256 keys, revocation (RFC 7009), introspection (RFC 7662), a JWKS with the
//!   current and previous keys, and RFC 8414 metadata. Clients live in a [`ClientRegistry`]
//!   holding argon2id hashes of their secrets.
//!
//! ```
//! use std::sync::Arc;
//! use apiauth_bearer::Bearer;
//! use apiauth_core::{scope, Scoped, ScopeSet};
//! use apiauth_oauth2::{AuthorizationServer, IntrospectionVerifier, MemoryClientRegistry};
//! use axum::{routing::get, Router};
//!
//! scope!(InvoicesRead = "invoices:read");
//!
//! # fn main() -> Result<(), apiauth_oauth2::OAuth2ConfigError> {
//! // The authorization server: register clients, mount its router.
//! let clients = MemoryClientRegistry::new();
//! let worker_secret = clients.register("billing-worker", ScopeSet::parse("invoices:read").unwrap());
//! let rs_secret = clients.register_resource_server("invoices-api");
//! let auth_server = AuthorizationServer::builder("https://auth.example.com")
//!     .audience("https://invoices.example.com")
//!     .clients(Arc::new(clients))
//!     .build()?;
//! let auth_app: Router = auth_server.router();
//!
//! // A resource server: tokens checked by introspection at that server.
//! let verifier = IntrospectionVerifier::builder(auth_server.introspection_endpoint())
//!     .client_credentials("invoices-api", rs_secret.expose_secret())
//!     .audience(auth_server.audience())
//!     .issuer(auth_server.issuer())
//!     .build()?;
//! let api: Router = Router::new()
//!     .route("/invoices", get(|Scoped(p, ..): Scoped<InvoicesRead>| async move {
//!         format!("invoices for {}", p.subject())
//!     }))
//!     .layer(Bearer::new(verifier).layer());
//! # let _ = (auth_app, api, worker_secret);
//! # Ok(())
//! # }
//! ```
//!
//! Tokens from the server half are ordinary RFC 9068 JWTs, so an API can also verify them
//! locally with `apiauth-jwt` pointed at [`AuthorizationServer::jwks_uri`], sharing the
//! server's [`RevocationList`](apiauth_core::RevocationList) for revocation.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

#[cfg(feature = "introspection")]
mod cache;
mod claims;
mod error;
#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "server")]
mod server;

#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use cache::{DEFAULT_CACHE_CAPACITY, IntrospectionCache, MemoryIntrospectionCache, TokenKey};
pub use claims::{Audience, Confirmation, IntrospectionResponse};
pub use error::OAuth2ConfigError;
#[cfg(feature = "introspection")]
#[cfg_attr(docsrs, doc(cfg(feature = "introspection")))]
pub use introspection::{ClientAuthMethod, IntrospectionVerifier, IntrospectionVerifierBuilder};
#[cfg(all(feature = "server", feature = "mtls"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "server", feature = "mtls"))))]
pub use server::TlsClientAuth;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub use server::{
    AuthorizationServer, AuthorizationServerBuilder, CLIENT_SECRET_PREFIX, ClientRegistry,
    KeyRotation, MemoryClientRegistry, RegisteredClient,
};
