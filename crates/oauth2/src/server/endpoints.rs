//! The endpoint handlers.

use std::sync::Arc;

use apiauth_core::ScopeSet;
use apiauth_core::audit::TARGET;
use apiauth_core::clock::unix_seconds;
use axum::Json;
use axum::body::Body;
use axum::extract::State as AxState;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::header::CACHE_CONTROL;
use http::{HeaderValue, Request, StatusCode};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::State;
use super::client_auth::{OAuthError, authenticate, no_store, read};
use crate::claims::{Audience, IntrospectionResponse};

/// The claims of an RFC 9068 access token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    iat: u64,
    jti: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    scope: String,
    /// The client's tenant (a private claim, RFC 7519 §4.3), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    /// RFC 9449 §6.1 / RFC 8705 §3.1: the key or certificate the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation>,
}

/// RFC 7800 §3.1 confirmation: RFC 9449 §6.1's `jkt`, RFC 8705 §3.1's `x5t#S256`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Confirmation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jkt: Option<String>,
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<String>,
}

/// RFC 9068 §2.1: the `typ` header of JWT access tokens.
const AT_JWT: &str = "at+jwt";

fn fail(state: &State, e: OAuthError) -> Response {
    e.respond(&state.issuer)
}

/// `POST /oauth/token`: the client-credentials grant (RFC 6749 §4.4).
pub(crate) async fn token(AxState(state): AxState<Arc<State>>, req: Request<Body>) -> Response {
    match issue(&state, req).await {
        Ok(res) => res,
        Err(e) => {
            tracing::warn!(target: TARGET, outcome = "reject", method = "oauth2_client", endpoint = "token", reason = e.reason);
            fail(&state, e)
        }
    }
}

/// The `DPoP` proof of a token request, if this server offers DPoP-bound tokens (RFC 9449
/// §5); a server that does not ignores the header and issues bearer tokens.
#[cfg(feature = "dpop")]
fn dpop_proof(state: &State, req: &Request<Body>) -> Result<Option<String>, OAuthError> {
    if state.dpop.is_none() {
        return Ok(None);
    }
    let mut values = req.headers().get_all("dpop").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(OAuthError::invalid_dpop_proof("dpop_multiple_proofs")),
        (Some(v), None) => v
            .to_str()
            .map(|s| Some(s.to_owned()))
            .map_err(|_| OAuthError::invalid_dpop_proof("dpop_proof_malformed")),
    }
}

/// RFC 9449 §4.3 on the token request's proof (no access token yet, so no `ath`); the
/// thumbprint of its key.
#[cfg(feature = "dpop")]
async fn dpop_binding(state: &State, proof: Option<String>) -> Result<Option<String>, OAuthError> {
    use apiauth_dpop::DpopRefusal;
    let (Some(v), Some(proof)) = (&state.dpop, proof) else {
        return Ok(None);
    };
    let path = format!("{}{}", state.path_prefix, super::TOKEN_PATH);
    match v.verify(&proof, &http::Method::POST, &path, None).await {
        Ok(p) => Ok(Some(p.jkt().to_owned())),
        Err(r @ (DpopRefusal::NonceMissing | DpopRefusal::NonceInvalid)) => {
            Err(OAuthError::use_dpop_nonce(r.reason(), v.issue_nonce()))
        }
        Err(DpopRefusal::Store(_)) => Err(OAuthError::unavailable("store_unavailable")),
        Err(r) => Err(OAuthError::invalid_dpop_proof(r.reason())),
    }
}

async fn issue(state: &State, req: Request<Body>) -> Result<Response, OAuthError> {
    #[cfg(feature = "dpop")]
    let proof = dpop_proof(state, &req)?;
    let (presented, form) = read(req).await?;
    // RFC 8705 §3.1: a token issued over a connection with a client certificate is bound to
    // it, whatever the client authenticated with.
    #[cfg(feature = "mtls")]
    let x5t: Option<String> = presented
        .certificate
        .as_ref()
        .filter(|_| state.mtls)
        .map(|c| c.x5t_s256().to_owned());
    #[cfg(not(feature = "mtls"))]
    let x5t: Option<String> = None;
    let grant_type = form.get("grant_type").ok_or(OAuthError::invalid_request(
        "The grant_type parameter is required.",
        "missing_grant_type",
    ))?;
    let client = authenticate(state, presented, &form).await?;
    if grant_type != "client_credentials" {
        return Err(OAuthError::unsupported_grant_type());
    }
    if !client.may_request_tokens() {
        return Err(OAuthError::unauthorized_client(
            "This client may not use the client_credentials grant.",
            "grant_not_allowed",
        ));
    }
    if client.is_suspended() {
        return Err(OAuthError::invalid_grant("client_suspended"));
    }
    // RFC 6749 §3.3: absent scope means the client's default, here everything it may have.
    let scope = match form.get("scope") {
        None => client.allowed_scopes().clone(),
        Some(s) => ScopeSet::parse(s).map_err(|_| {
            OAuthError::invalid_scope("The scope parameter is malformed.", "malformed_scope")
        })?,
    };
    if !client.allowed_scopes().is_superset_of(&scope) {
        return Err(OAuthError::invalid_scope(
            "The requested scope exceeds what this client may request.",
            "scope_not_allowed",
        ));
    }
    // RFC 8707 §2: `resource` names the API the token is for and becomes its audience; it
    // must be one this server issues tokens for, compared exactly (no normalisation, so a
    // client cannot reach another resource through an equivalent spelling).
    let aud = match form.get("resource") {
        None => state.audience.clone(),
        Some(r) if r.contains('#') => {
            return Err(OAuthError::invalid_target(
                "The resource must be an absolute URI without a fragment.",
                "resource_with_fragment",
            ));
        }
        Some(r) => match state.resources.iter().find(|known| known.as_str() == r) {
            Some(known) => known.clone(),
            None => {
                return Err(OAuthError::invalid_target(
                    "This server issues no tokens for the requested resource.",
                    "unknown_resource",
                ));
            }
        },
    };

    // Last of the checks, so that a refused request does not spend its proof.
    #[cfg(feature = "dpop")]
    let jkt = dpop_binding(state, proof).await?;
    #[cfg(not(feature = "dpop"))]
    let jkt: Option<String> = None;

    let key = state
        .keys
        .current()
        .map_err(|_| OAuthError::unavailable("key_generation_failed"))?;
    let now = unix_seconds(state.clock.now());
    let lifetime = state.token_lifetime.as_secs();
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: client.client_id().to_owned(),
        aud,
        exp: now.saturating_add(lifetime),
        iat: now,
        jti: new_jti().ok_or(OAuthError::unavailable("no_randomness"))?,
        client_id: client.client_id().to_owned(),
        scope: scope.to_string(),
        tenant: client.tenant_id().map(str::to_owned),
        cnf: (jkt.is_some() || x5t.is_some()).then_some(Confirmation { jkt, x5t_s256: x5t }),
    };
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(AT_JWT.to_owned());
    header.kid = Some(key.kid.clone());
    let jwt = jsonwebtoken::encode(&header, &claims, &key.encoding)
        .map_err(|_| OAuthError::unavailable("signing_failed"))?;
    tracing::info!(
        target: TARGET,
        outcome = "issue",
        method = "oauth2_client",
        endpoint = "token",
        subject = client.client_id(),
        credential_id = claims.jti.as_str(),
        scope = claims.scope.as_str(),
    );
    // RFC 6749 §5.1. `scope` is always sent: it may differ from what was requested.
    let body = serde_json::json!({
        "access_token": jwt,
        // RFC 9449 §5.1: a bound token is a DPoP token.
        // RFC 8705 §3: a certificate-bound token is still a Bearer token.
        "token_type": if claims.cnf.as_ref().is_some_and(|c| c.jkt.is_some()) { "DPoP" } else { "Bearer" },
        "expires_in": lifetime,
        "scope": claims.scope,
    });
    let mut res = Json(body).into_response();
    no_store(res.headers_mut());
    Ok(res)
}

fn new_jti() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl State {
    /// The claims of `token` if it is a well-formed access token of this server: RFC 9068
    /// `typ`, a current or previous key, valid signature, our `iss` and `aud`. Expiry is
    /// left to the caller, which knows the clock.
    pub(crate) fn decode(&self, token: &str) -> Option<AccessClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(AT_JWT) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok || header.alg != Algorithm::ES256 {
            return None;
        }
        let key = self.keys.find(header.kid.as_deref()?)?;
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.leeway = 0;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.resources);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// `POST /oauth/revoke` (RFC 7009).
pub(crate) async fn revoke(AxState(state): AxState<Arc<State>>, req: Request<Body>) -> Response {
    match revoke_inner(&state, req).await {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => {
            tracing::warn!(target: TARGET, outcome = "reject", method = "oauth2_client", endpoint = "revoke", reason = e.reason);
            fail(&state, e)
        }
    }
}

async fn revoke_inner(state: &State, req: Request<Body>) -> Result<(), OAuthError> {
    let (presented, form) = read(req).await?;
    let client = authenticate(state, presented, &form).await?;
    let token = form.get("token").ok_or(OAuthError::invalid_request(
        "The token parameter is required.",
        "missing_token",
    ))?;
    // RFC 7009 §2.2: an invalid or unknown token is not an error; there is nothing to do.
    let Some(claims) = state.decode(token) else {
        return Ok(());
    };
    // RFC 7009 §2.1: a client may revoke only the tokens issued to it.
    if claims.client_id != client.client_id() {
        return Err(OAuthError::unauthorized_client(
            "The token was not issued to this client.",
            "revoke_foreign_token",
        ));
    }
    let now = state.clock.now();
    let exp = std::time::SystemTime::UNIX_EPOCH
        .checked_add(std::time::Duration::from_secs(claims.exp))
        .ok_or(OAuthError::unavailable("exp_out_of_range"))?;
    if exp > now {
        // Remembered until the token would have expired anyway.
        state.revoked.revoke(&claims.jti, exp).await?;
    }
    tracing::info!(
        target: TARGET,
        outcome = "revoke",
        method = "oauth2_client",
        endpoint = "revoke",
        subject = client.client_id(),
        credential_id = claims.jti.as_str(),
    );
    Ok(())
}

/// `POST /oauth/introspect` (RFC 7662), for clients allowed to introspect.
pub(crate) async fn introspect(
    AxState(state): AxState<Arc<State>>,
    req: Request<Body>,
) -> Response {
    match introspect_inner(&state, req).await {
        Ok(answer) => {
            let mut res = Json(answer).into_response();
            no_store(res.headers_mut());
            res
        }
        Err(e) => {
            tracing::warn!(target: TARGET, outcome = "reject", method = "oauth2_client", endpoint = "introspect", reason = e.reason);
            fail(&state, e)
        }
    }
}

async fn introspect_inner(
    state: &State,
    req: Request<Body>,
) -> Result<IntrospectionResponse, OAuthError> {
    let (presented, form) = read(req).await?;
    let client = authenticate(state, presented, &form).await?;
    // RFC 7662 §4: only protected resources authorized to do so may introspect.
    if !client.may_introspect() {
        return Err(OAuthError::unauthorized_client(
            "This client may not introspect tokens.",
            "introspection_not_allowed",
        )
        .with_status(StatusCode::FORBIDDEN));
    }
    let token = form.get("token").ok_or(OAuthError::invalid_request(
        "The token parameter is required.",
        "missing_token",
    ))?;
    let Some(claims) = state.decode(token) else {
        return Ok(IntrospectionResponse::inactive());
    };
    if claims.exp <= unix_seconds(state.clock.now()) {
        return Ok(IntrospectionResponse::inactive());
    }
    if state.revoked.is_revoked(&claims.jti).await? {
        return Ok(IntrospectionResponse::inactive());
    }
    // RFC 9449 §6.2: a DPoP-bound token is introspected as `DPoP` with its `cnf.jkt`;
    // RFC 8705 §3.2: a certificate-bound one names its `cnf.x5t#S256`.
    let cnf = claims.cnf.map(|c| crate::claims::Confirmation {
        jkt: c.jkt,
        x5t_s256: c.x5t_s256,
    });
    let dpop = cnf.as_ref().is_some_and(|c| c.jkt.is_some());
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(claims.scope),
        client_id: Some(claims.client_id),
        tenant: claims.tenant,
        token_type: Some(if dpop { "DPoP" } else { "Bearer" }.to_owned()),
        cnf,
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        sub: Some(claims.sub),
        aud: Some(Audience::One(claims.aud)),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
        ..IntrospectionResponse::default()
    })
}

/// `GET /.well-known/jwks.json`: the current and previous public keys.
pub(crate) async fn jwks(AxState(state): AxState<Arc<State>>) -> Response {
    match state.keys.jwks() {
        Ok(set) => {
            let mut res = Json(set).into_response();
            // Short, so that verifiers pick up a rotation soon.
            res.headers_mut().insert(
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            res
        }
        Err(_) => fail(&state, OAuthError::unavailable("key_generation_failed")),
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub(crate) async fn metadata(AxState(state): AxState<Arc<State>>) -> Response {
    let mut res = Json(state.metadata()).into_response();
    res.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}
