//! A small app as every instance of a service would run it: Bearer tokens checked against the
//! shared revocation list and replay store.

use std::sync::Arc;
use std::time::Duration;

use apiauth_bearer::{Bearer, TokenVerifier};
use apiauth_core::store::{ReplayStore, RevocationList};
use apiauth_core::{Auth, AuthError, AuthMethod, Principal};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;

/// `jti.<id>`: valid unless `<id>` is revoked. `once.<nonce>`: valid on first use only.
#[derive(Clone)]
pub struct SharedStateVerifier {
    pub revocations: Arc<dyn RevocationList>,
    pub replay: Arc<dyn ReplayStore>,
}

impl TokenVerifier for SharedStateVerifier {
    fn method(&self) -> AuthMethod {
        AuthMethod::BEARER
    }

    async fn verify(
        &self,
        token: &str,
        _req: &apiauth_core::RequestContext<'_>,
    ) -> Result<Principal, AuthError> {
        if let Some(jti) = token.strip_prefix("jti.") {
            if self.revocations.is_revoked(jti).await? {
                return Err(AuthError::invalid_credentials("revoked"));
            }
            return Ok(Principal::builder("alice", AuthMethod::BEARER)
                .credential_id(jti)
                .build());
        }
        if let Some(nonce) = token.strip_prefix("once.") {
            if !self
                .replay
                .insert_if_absent(nonce, Duration::from_secs(300))
                .await?
            {
                return Err(AuthError::invalid_credentials("replayed"));
            }
            return Ok(Principal::builder("bob", AuthMethod::BEARER).build());
        }
        Err(AuthError::invalid_credentials("unknown_token"))
    }
}

/// One instance: `/me` answers the subject.
pub fn instance(revocations: Arc<dyn RevocationList>, replay: Arc<dyn ReplayStore>) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Auth(p): Auth| async move { p.subject().to_owned() }),
        )
        .layer(
            Bearer::new(SharedStateVerifier {
                revocations,
                replay,
            })
            .realm("api")
            .layer(),
        )
}

pub use apiauth_testkit::{Seen, send};

pub async fn get_with_token(app: &Router, token: &str) -> Seen {
    let req = Request::get("/me")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send(app, req).await
}
