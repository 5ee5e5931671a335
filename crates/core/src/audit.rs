//! Audit events through `tracing`, target [`TARGET`], and a layer that keeps secrets out of
//! traces.
//!
//! Every accept and every reject is one event with the fields `outcome`, `method`, `subject`,
//! `credential_id`, `reason`, `status`, `route` and `client` (the address
//! [`client`] resolves); an accept also names the caller's `identity`
//! ([`Principal::identity`]) and `tenant`. No field ever holds a secret: the
//! principal holds none, and error reasons are fixed words such as `unknown_key`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath};
use http::{Extensions, HeaderName, Request};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;

use crate::client_addr::ClientAddr;
use crate::error::AuthError;
use crate::principal::{AuthMethod, Principal};

/// The `tracing` target of every audit event.
pub const TARGET: &str = "apiauth::audit";

/// The route of a request for audit events: the matched route template when axum's router
/// has matched one (so ids in paths do not explode the label space), else the raw path.
pub fn route<B>(req: &Request<B>) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or_else(|| req.uri().path())
}

/// The client address of a request: the one [`ClientAddrLayer`](crate::client_addr) resolved
/// behind trusted proxies, else the socket peer when the server was started with
/// `into_make_service_with_connect_info::<SocketAddr>()`, else `None`.
///
/// Everything keyed per client address (lock-outs, the anonymous rate limit, audit) reads it
/// here, so that one configuration of trusted proxies applies to all of them.
pub fn client<B>(req: &Request<B>) -> Option<IpAddr> {
    client_of(req.extensions())
}

/// [`client`] from a request's extensions (for extractors that hold only the parts).
pub fn client_of(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return Some(*ip);
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| match c.0.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        })
}

/// Records an accepted credential.
pub fn accepted<B>(principal: &Principal, req: &Request<B>) {
    tracing::info!(
        target: TARGET,
        outcome = "accept",
        method = principal.method().as_str(),
        subject = principal.subject(),
        identity = principal.identity(),
        tenant = principal.tenant(),
        credential_id = principal.credential_id(),
        route = route(req),
        client = client(req).map(tracing::field::display),
    );
}

/// Records a rejected request: the specific reason goes here, never into the response. The
/// subject and credential id come from [`AuthError::with_subject`] and
/// [`AuthError::with_credential_id`] when the method knew them.
pub fn rejected<B>(method: AuthMethod, error: &AuthError, req: &Request<B>) {
    tracing::warn!(
        target: TARGET,
        outcome = "reject",
        method = method.as_str(),
        reason = error.reason(),
        status = error.status().as_u16(),
        subject = error.subject(),
        credential_id = error.credential_id(),
        route = route(req),
        client = client(req).map(tracing::field::display),
    );
}

/// Records a rejection that names the subject and credential id (public parts), for methods
/// that know them before verification fails (a revoked key id, a locked-out user name).
pub fn rejected_with_subject<B>(
    method: AuthMethod,
    error: &AuthError,
    subject: Option<&str>,
    credential_id: Option<&str>,
    req: &Request<B>,
) {
    tracing::warn!(
        target: TARGET,
        outcome = "reject",
        method = method.as_str(),
        reason = error.reason(),
        status = error.status().as_u16(),
        subject = subject,
        credential_id = credential_id,
        route = route(req),
        client = client(req).map(tracing::field::display),
    );
}

/// The request headers that carry secrets in this suite: `Authorization`,
/// `Proxy-Authorization`, `Cookie`, `X-API-Key`, `Signature`, `Webhook-Signature`,
/// `X-Hub-Signature-256` and `X-Signature`.
pub fn sensitive_headers() -> [HeaderName; 8] {
    [
        http::header::AUTHORIZATION,
        http::header::PROXY_AUTHORIZATION,
        http::header::COOKIE,
        HeaderName::from_static("x-api-key"),
        HeaderName::from_static("signature"),
        HeaderName::from_static("webhook-signature"),
        HeaderName::from_static("x-hub-signature-256"),
        HeaderName::from_static("x-signature"),
    ]
}

/// A layer that marks [`sensitive_headers`] as sensitive, so `tower-http`'s `TraceLayer` and
/// any `Debug` of the headers print `Sensitive` instead of the value. Put it outermost.
pub fn sensitive_headers_layer() -> SetSensitiveRequestHeadersLayer {
    SetSensitiveRequestHeadersLayer::new(sensitive_headers())
}

/// [`sensitive_headers_layer`] plus the headers a method outside this suite carries its
/// credential in (for example `DPoP`), so they are never printed either.
pub fn sensitive_headers_layer_with(
    extra: impl IntoIterator<Item = HeaderName>,
) -> SetSensitiveRequestHeadersLayer {
    SetSensitiveRequestHeadersLayer::new(sensitive_headers().into_iter().chain(extra))
}
