//! DPoP (RFC 9449): sender-constrained access tokens, wired once for the authorization server
//! and the API.
//!
//! - One [`DpopVerifier`] for the public origin checks proofs at the token endpoint (a token
//!   request with a valid proof gets a token bound to the proof's key: `cnf.jkt`,
//!   `token_type: DPoP`) and on the `/v1` routes. Its replay store is the bundle's: Redis
//!   with `--redis-url` (a proof is spent once across every instance), else memory.
//! - On `/v1` the [`Dpop`] layer sits beside the Bearer layer ([`DpopMode::BesideBearer`]):
//!   `Authorization: DPoP <token>` plus a `DPoP` proof goes to this layer, `Bearer` to the
//!   Bearer layer, and each scheme is offered and refused in its own words. A DPoP-bound token
//!   presented as `Bearer` is refused by the JWT verifier on every route (RFC 9449 §7.1).
//! - `--dpop-nonce` makes every proof carry a server nonce (RFC 9449 §8–9), derived from the
//!   demo seed so that instances sharing it accept each other's nonces.

use std::sync::Arc;

use apiauth::dpop::{Dpop, DpopMode, DpopReplayStore, DpopVerifier, HmacDpopNonces};
use apiauth::jwt::JwtVerifier;
use apiauth::mtls::CertificateBound;
use apiauth::{AuthLayer, bearer::ProtectedResourceMetadata};

use crate::cli::Args;

/// The proof verifier for `base_url` (the URL clients use: proofs name it in `htu`, never
/// what a request's Host header claims).
pub fn verifier(
    args: &Args,
    base_url: &str,
    replay: Arc<dyn DpopReplayStore>,
    nonce_secret: [u8; 32],
) -> anyhow::Result<DpopVerifier> {
    let mut proofs = DpopVerifier::builder(base_url).replay_store(replay);
    if args.dpop_nonce {
        proofs = proofs.require_nonce(Arc::new(HmacDpopNonces::with_secret(&nonce_secret)?));
    }
    Ok(proofs.build()?)
}

/// What the RFC 9728 document adds for DPoP: the proof algorithms accepted (RFC 9449 §5.1).
/// Bound tokens are not required: bearer tokens keep working on the same routes.
pub fn metadata(
    meta: ProtectedResourceMetadata,
    proofs: &DpopVerifier,
) -> ProtectedResourceMetadata {
    meta.dpop_signing_alg_values_supported(proofs.algorithms().iter().map(|a| a.as_str()))
        .dpop_bound_access_tokens_required(false)
}

/// The `/v1` layer: DPoP-bound JWTs with a fresh proof, beside the Bearer layer.
pub fn layer(
    jwt: CertificateBound<JwtVerifier>,
    proofs: DpopVerifier,
    resource_metadata: String,
) -> AuthLayer<Dpop<CertificateBound<JwtVerifier>>> {
    Dpop::new(jwt, proofs)
        .mode(DpopMode::BesideBearer)
        .realm("saas")
        .resource_metadata(resource_metadata)
        .layer()
}
