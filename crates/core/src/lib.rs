//! # apiauth-core
//!
//! The pieces every apiauth method shares: the [`Principal`] a method layer produces, the
//! [`Authenticator`] trait and the [`AuthLayer`] that keeps the layer contract for it, the
//! [`Auth`] and [`Scoped`] extractors that decide "may they", one [`AuthError`] with RFC 7235
//! challenges and RFC 9457 bodies, audit events, and small store traits with bounded in-memory
//! implementations.
//!
//! ```
//! use apiauth_core::{scope, Auth, Scoped};
//! use axum::{routing::get, Router};
//!
//! scope!(pub ReportsRead = "reports:read");
//!
//! async fn me(Auth(p): Auth) -> String { p.subject().to_owned() }
//! async fn reports(Scoped(p, ..): Scoped<ReportsRead>) -> String { p.subject().to_owned() }
//!
//! // Stack any method layers (API key, Bearer, …) with `.layer(...)`; the extractors answer
//! // 401 with every offered challenge, or 403 `insufficient_scope`.
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/reports", get(reports));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod audit;
pub mod client_addr;
pub mod clock;
pub mod confirmation;
mod context;
mod error;
mod extract;
pub mod header;
mod layer;
mod principal;
pub mod scope;
mod step_up;
pub mod store;
pub mod token;
pub mod trace;
pub mod ttl;

pub use context::RequestContext;
pub use error::{AuthError, Challenge, ErrorCodes, ErrorKind, ErrorResponder};
pub use extract::{
    Auth, AuthRejection, RequireScopes, RequireScopesService, Scoped, unauthenticated,
};
pub use layer::{AuthFuture, AuthLayer, AuthService, Authenticator, OfferedChallenges};
pub use principal::{AuthMethod, Principal, PrincipalBuilder};
pub use scope::{AllOf, AnyOf, Scope, ScopeParseError, ScopeRequirement, ScopeSet};
pub use step_up::{AuthenticationContext, RequireAuthentication, RequireAuthenticationService};
pub use store::{MemoryReplayStore, MemoryRevocationList, ReplayStore, RevocationList, StoreError};
