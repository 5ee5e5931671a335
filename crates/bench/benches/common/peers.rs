//! Peer crates from crates.io, set up on the same tokens and signed requests as the apiauth
//! cases and in front of the same handler (`apiauth_bench::ok` on `apiauth_bench::ROUTE`).
//!
//! Shared by the criterion benches and the tests (`#[path]`), so that a peer is only
//! measured as it is shown to accept the good credential and refuse a tampered one.

use std::sync::Arc;

use apiauth_bench::{AUDIENCE, BenchError, HMAC_KEY_ID, ISSUER, JWKS_JSON, JwtAlg, bare_router};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// The claims the peers deserialise: what a handler of theirs would read.
// Deserialised on every request (that is the work measured), never read by `ok`.
#[allow(dead_code)]
#[derive(Clone, Debug, serde::Deserialize)]
pub struct PeerClaims {
    /// Subject.
    pub sub: String,
    /// Expiry.
    pub exp: u64,
    /// Scopes.
    pub scope: String,
}

/// `axum-jwt-auth`: its `Claims` extractor, run as middleware over the route with
/// `axum::middleware::from_extractor_with_state`, over a `LocalDecoder` with the same key
/// and the same checks (`iss`, `aud`, `exp`, `nbf`).
pub fn axum_jwt_auth(alg: JwtAlg) -> Result<Router, BenchError> {
    use jsonwebtoken10 as jwt10;
    let key = match alg {
        JwtAlg::Hs256 => jwt10::DecodingKey::from_secret(apiauth_bench::HS256_SECRET),
        JwtAlg::Es256 => {
            jwt10::DecodingKey::from_ec_pem(apiauth_bench::ES256_PUBLIC_PEM.as_bytes())
                .map_err(|e| BenchError::Setup(e.to_string()))?
        }
        JwtAlg::Rs256 => {
            jwt10::DecodingKey::from_rsa_pem(apiauth_bench::RS256_PUBLIC_PEM.as_bytes())
                .map_err(|e| BenchError::Setup(e.to_string()))?
        }
    };
    let algorithm = match alg {
        JwtAlg::Hs256 => jwt10::Algorithm::HS256,
        JwtAlg::Es256 => jwt10::Algorithm::ES256,
        JwtAlg::Rs256 => jwt10::Algorithm::RS256,
    };
    let mut validation = jwt10::Validation::new(algorithm);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    validation.validate_nbf = true;
    let decoder: axum_jwt_auth::Decoder<PeerClaims> = Arc::new(
        axum_jwt_auth::LocalDecoder::builder()
            .keys(vec![key])
            .validation(validation)
            .build()
            .map_err(|e| BenchError::Setup(e.to_string()))?,
    );
    Ok(
        bare_router().route_layer(axum::middleware::from_extractor_with_state::<
            axum_jwt_auth::Claims<PeerClaims>,
            _,
        >(decoder)),
    )
}

/// `tower-oauth2-resource-server`: its layer over a static JWK Set holding the same public
/// keys (ES256 and RS256; it refuses HMAC keys by design), checking `iss`, `aud`, `exp`, `nbf`.
pub async fn tower_oauth2_resource_server(alg: JwtAlg) -> Result<Router, BenchError> {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;
    let tenant = TenantConfiguration::static_builder(JWKS_JSON)
        .identifier(ISSUER)
        .audiences(&[AUDIENCE])
        .claims_validation(ClaimsValidationSpec::recommended(
            ISSUER,
            &vec![AUDIENCE.to_owned()],
        ))
        .allowed_algorithms(&[match alg {
            JwtAlg::Es256 => jsonwebtoken::Algorithm::ES256,
            JwtAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            JwtAlg::Hs256 => jsonwebtoken::Algorithm::HS256,
        }])
        .build()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let server = <OAuth2ResourceServer>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    Ok(bare_router().layer(server.into_layer::<Body>()))
}

/// `httpsig-hyper`: its request extensions (`verify_content_digest`, then
/// `verify_message_signature` with the same shared key and key id) in an axum middleware.
///
/// It checks the digest and the signature only: no replay store, no `created` window and
/// no coverage policy, so it does less than `apiauth-hmac` on every request.
pub fn httpsig_hyper(secret: &[u8]) -> Result<Router, BenchError> {
    use base64::Engine as _;
    use httpsig_hyper::prelude::{AlgorithmName, SharedKey};
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let key = Arc::new(
        SharedKey::from_base64(&AlgorithmName::HmacSha256, &b64)
            .map_err(|e| BenchError::Setup(e.to_string()))?,
    );
    Ok(bare_router().route_layer(axum::middleware::from_fn_with_state(key, httpsig_guard)))
}

async fn httpsig_guard(
    State(key): State<Arc<httpsig_hyper::prelude::SharedKey>>,
    req: Request,
    next: Next,
) -> Response {
    use httpsig_hyper::{MessageSignatureReq, RequestContentDigest};
    let Ok(req) = req.verify_content_digest().await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if req
        .verify_message_signature(&*key, Some(HMAC_KEY_ID))
        .await
        .is_err()
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(req.map(Body::new)).await
}
