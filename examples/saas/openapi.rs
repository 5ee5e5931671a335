//! The OpenAPI 3.1 document, generated from the code by utoipa.
//!
//! Each handler carries its operation (`#[utoipa::path]`: path, method, bodies, the statuses
//! it answers, its security requirements with scopes) and is registered with utoipa-axum's
//! `routes!`, which adds the route to the router and the operation to the document in one
//! step: what the router serves is what the document lists. The authorization server's
//! endpoints, served by `apiauth::oauth2`'s own router, are registered here through
//! documented handlers that forward to it, so they are no exception. `tests/openapi.rs`
//! checks both directions over a socket.

use std::sync::{Arc, OnceLock};

use apiauth::Auth;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower::ServiceExt;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Scopes,
    SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::problem::{self, Problem};

/// Names of the security schemes, as operations' `security(...)` refer to them.
pub mod scheme {
    pub const API_KEY: &str = "apiKey";
    pub const API_KEY_AUTHORIZATION: &str = "apiKeyAuthorization";
    pub const BASIC: &str = "basicAuth";
    pub const BEARER: &str = "bearerAuth";
    pub const DPOP: &str = "dpopAuth";
    pub const MUTUAL_TLS: &str = "mutualTls";
    pub const OAUTH2: &str = "oauth2";
    pub const HTTP_SIGNATURE: &str = "httpSignature";
    pub const WEBHOOK_SIGNATURE: &str = "webhookSignature";
}

/// The token endpoint, relative to the server URL.
const TOKEN_URL: &str = "/oauth/token";

/// The scopes the OAuth 2.0 client-credentials flow can grant.
const OAUTH_SCOPES: &[(&str, &str)] = &[
    ("companies:read", "Read company profiles"),
    ("contacts:read", "Search contacts"),
    ("enrich:write", "Create enrichments"),
    ("admin", "Manage API keys and read metrics"),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "apiauth example SaaS API",
        description = "A B2B data-enrichment API guarded by every apiauth method. Every error \
                       is `application/problem+json` (RFC 9457), except the OAuth 2.0 \
                       endpoints' errors, which are RFC 6749 §5.2 JSON."
    ),
    components(schemas(Problem, OAuthError)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "data", description = "Enrichment data: API key, Bearer JWT, DPoP-bound JWT or RFC 9421 signature"),
        (name = "webhooks", description = "Signed inbound webhooks"),
        (name = "admin", description = "API key management: Basic or a Bearer JWT with `admin`"),
        (name = "oauth", description = "The OAuth 2.0 authorization server"),
        (name = "operations", description = "Health, readiness and this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut api_key = ApiKeyValue::with_description(
            "X-API-Key",
            "An API key (`sk_test_…`) in `X-API-Key`. Never in the URL: a key in the query \
             string is refused with 400.",
        );
        api_key.extensions = None;
        components.add_security_scheme(
            scheme::API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(api_key)),
        );
        // `ApiKey` is not a registered HTTP authentication scheme, so this is described as
        // the header it is rather than as `type: http`.
        components.add_security_scheme(
            scheme::API_KEY_AUTHORIZATION,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The same API key as `Authorization: ApiKey <key>`.",
            ))),
        );
        components.add_security_scheme(
            scheme::BASIC,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "HTTP Basic (RFC 7617). The admin API: an administrator's user id and \
                         password; failed attempts lock the user and the address out (429). \
                         The token endpoints: the OAuth client id and secret.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            scheme::BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An RFC 9068 JWT access token from the token endpoint (RFC 6750). \
                         Errors use RFC 6750 §3.1 codes in `WWW-Authenticate` and the \
                         problem's `error` member.",
                    ))
                    .build(),
            ),
        );
        let scopes = Scopes::from_iter(OAUTH_SCOPES.iter().copied());
        components.add_security_scheme(
            scheme::OAUTH2,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    TOKEN_URL, scopes,
                ))],
                "OAuth 2.0 client credentials (RFC 6749 §4.4): the token endpoint issues a JWT \
                 access token, sent as `Authorization: Bearer`; a token request with a `DPoP` proof \
                 gets a DPoP-bound token instead (see `dpopAuth`). Revocation (RFC 7009) and \
                 introspection (RFC 7662) are at /oauth/revoke and /oauth/introspect.",
            )),
        );
        // OpenAPI 3.1 has no security scheme type for HTTP Message Signatures. This entry
        // names the header that carries the signature and says the rest in words and in
        // `x-rfc9421`; a generic client cannot produce it from `type: apiKey` alone.
        let mut signature = ApiKeyValue::with_description(
            "Signature",
            "Not an API key. An RFC 9421 HTTP Message Signature: the request carries \
             `Signature-Input` and `Signature` (RFC 9421 §4), made with `alg=\"hmac-sha256\"` \
             and the `keyid` of a shared secret. The signature must cover `@method`, and \
             `@target-uri` or `@authority`, `@path` and `@query`; and `content-digest` (RFC \
             9530) whenever the request has a body, which must match it. Parameters: \
             `created` (at most 5 minutes old, at most 30 s ahead) and a `nonce` used once \
             (a replay is refused). `@authority` is the public host this API is served at, \
             not the one a request names. On /v1/webhooks/crm `content-digest` is required \
             on every request. A failure is 401 with `WWW-Authenticate: Signature`.",
        );
        signature.extensions = Some(
            Extensions::builder()
                .add(
                    "x-rfc9421",
                    serde_json::json!({
                        "alg": "hmac-sha256",
                        "fields": ["Signature-Input", "Signature"],
                        "requiredComponents": ["@method", "@target-uri | @authority @path @query", "content-digest (with a body)"],
                        "requiredParameters": ["keyid", "created", "nonce"],
                        "maxAgeSeconds": 300,
                    }),
                )
                .build(),
        );
        components.add_security_scheme(
            scheme::HTTP_SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(signature)),
        );
        components.add_security_scheme(
            scheme::WEBHOOK_SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Webhook-Signature",
                "Not a static key: `t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw \
                 body>\">`, several `v1=` during a secret rotation; `t` within 5 minutes; a \
                 signature is accepted once.",
            ))),
        );
    }
}

/// An OAuth 2.0 error (RFC 6749 §5.2): the token endpoints' vocabulary, not problem+json.
#[derive(Serialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope` or `temporarily_unavailable`.
    #[schema(example = "invalid_client")]
    pub error: String,
    pub error_description: String,
}

// --- Answers many operations share. Each is a problem document (RFC 9457).

pub use answers::*;

/// Response descriptions that only the document reads: their fields are never built.
mod answers {
    #![allow(dead_code)]

    use utoipa::IntoResponses;

    use crate::problem::Problem;

    /// No valid credential: missing, unknown, wrong, expired or revoked. `WWW-Authenticate`
    /// carries one challenge per scheme the route takes.
    #[derive(IntoResponses)]
    #[response(
        status = 401,
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "One challenge per accepted scheme"))
    )]
    pub struct Unauthorized(#[to_schema] Problem);

    /// The credential is valid but lacks the route's scope (`error: insufficient_scope`,
    /// `scope` names it), or is not allowed here.
    #[derive(IntoResponses)]
    #[response(status = 403, content_type = "application/problem+json")]
    pub struct Forbidden(#[to_schema] Problem);

    /// A rate limit, an exhausted credit balance (`type`
    /// `urn:apiauth:problem:credits-exhausted`, `title` `Credits exhausted`, members
    /// `balance`, `cost`, `refills_at`; `Retry-After` runs to the refill at 00:00 UTC) or a
    /// lock-out: wait `Retry-After` seconds.
    #[derive(IntoResponses)]
    #[response(
        status = 429,
        content_type = "application/problem+json",
        headers(
            ("Retry-After" = u64, description = "Seconds to wait"),
            ("RateLimit-Policy" = String, description = "draft-ietf-httpapi-ratelimit-headers: one item per policy (`\"plan:free\";q=20;w=60, \"credits:free\";q=100;w=2678400`), on every answer of a limited route"),
            ("RateLimit" = String, description = "draft-ietf-httpapi-ratelimit-headers: what is left of each policy (`\"plan:free\";r=0;t=3, \"credits:free\";r=0;t=86400`)")
        )
    )]
    pub struct TooManyRequests(#[to_schema] Problem);

    /// A store this answer needs (keys, replay, quota, Redis) did not answer: fail closed.
    #[derive(IntoResponses)]
    #[response(
        status = 503,
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait"))
    )]
    pub struct Unavailable(#[to_schema] Problem);

    /// A malformed request: the body is not well-formed JSON, a path or query value is not
    /// acceptable, or a credential is where it must not be (an API key in the URL).
    #[derive(IntoResponses)]
    #[response(status = 400, content_type = "application/problem+json")]
    pub struct BadRequest(#[to_schema] Problem);

    /// The body is larger than this route reads.
    #[derive(IntoResponses)]
    #[response(status = 413, content_type = "application/problem+json")]
    pub struct PayloadTooLarge(#[to_schema] Problem);

    /// The body is not sent as `Content-Type: application/json`.
    #[derive(IntoResponses)]
    #[response(status = 415, content_type = "application/problem+json")]
    pub struct UnsupportedMediaType(#[to_schema] Problem);

    /// The body is JSON but lacks a required member or has one of the wrong type.
    #[derive(IntoResponses)]
    #[response(status = 422, content_type = "application/problem+json")]
    pub struct UnprocessableContent(#[to_schema] Problem);
}

// --- Bodies the admin and webhook handlers answer with `json!`, as they serialise.

/// An API key as administrators see it (`apiauth::api_key::KeySummary`): no secret, no digest.
#[derive(Serialize, ToSchema)]
pub struct KeySummary {
    /// The public key id.
    pub id: String,
    pub owner: String,
    pub tenant: Option<String>,
    /// Granted scopes, space-separated.
    #[schema(example = "companies:read contacts:read")]
    pub scopes: String,
    pub plan: Option<String>,
    /// `active`, `rotating`, `revoked`, `expired` or `rotated`.
    #[schema(example = "active")]
    pub status: String,
    /// Unix seconds.
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub last_used_at: Option<u64>,
    /// The successor, once rotated.
    pub rotated_to: Option<String>,
    /// The predecessor, for a key made by rotation.
    pub rotated_from: Option<String>,
    /// Until when a rotated key still works (Unix seconds).
    pub grace_until: Option<u64>,
}

/// A new key: the secret is in this answer only (`Cache-Control: no-store`).
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    #[schema(example = "sk_test_…")]
    pub key: String,
    pub summary: KeySummary,
}

/// A rotated key's successor; the previous key works for the grace period.
#[derive(Serialize, ToSchema)]
pub struct RotatedKey {
    pub key: String,
    pub summary: KeySummary,
    pub previous_key_valid_for_seconds: u64,
}

/// The tenant's keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeySummary>,
}

/// A revoked key.
#[derive(Serialize, ToSchema)]
pub struct RevokedKey {
    pub revoked: KeySummary,
}

/// Any JSON event; the signature covers its exact bytes.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "a request body description; handlers read the raw bytes"
)]
pub struct WebhookEvent(pub serde_json::Value);

/// A webhook accepted for processing.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// Who signed it.
    pub from: String,
    /// An id for the event (a digest of the body).
    #[schema(example = "evt_0123456789abcdef")]
    pub id: String,
}

// --- The library's handlers, registered through documented wrappers.

/// The caller's own usage, as `apiauth::quota::own_usage` reports it.
#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    /// The principal's subject.
    pub subject: String,
    /// The principal's identity (method and subject), the key of its records.
    pub identity: String,
    /// All requests counted.
    pub total: u64,
    /// Counts per route and answer class.
    pub usage: Vec<UsageRecord>,
    /// The tenant whose balance the caller draws on.
    pub tenant: Option<String>,
    /// The remaining balance and when it refills; null when the plan has no credits.
    pub credits: Option<crate::plans::CreditBalance>,
}

/// One usage series.
#[derive(Serialize, ToSchema)]
pub struct UsageRecord {
    /// The route template, e.g. `/v1/companies/{domain}`.
    pub route: String,
    /// `2xx`, `4xx`, …
    #[schema(example = "2xx")]
    pub status_class: String,
    pub count: u64,
}

/// The caller's own usage counts, credit balance and refill time (costs no credits).
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "data",
    responses(
        (status = 200, description = "The caller's own counts", body = UsageReport),
        Unauthorized,
        TooManyRequests,
        Unavailable,
    ),
    security(
        ("apiKey" = []),
        ("apiKeyAuthorization" = []),
        ("oauth2" = []),
        ("bearerAuth" = []),
        ("dpopAuth" = []),
        ("httpSignature" = []),
    )
)]
pub async fn usage(auth: Auth, req: Request) -> Response {
    crate::plans::usage_with_balance(auth, req).await
}

/// An access token (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// An RFC 9068 JWT.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the key of the request's `DPoP` proof
    /// (RFC 9449 §5.1).
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// A token grant: `grant_type=client_credentials`, optional `scope`; the client
/// authenticates with Basic or `client_id` and `client_secret` in this form
/// (`client_secret_post`). A `DPoP` header with a proof for `POST` on this endpoint (RFC 9449
/// §5) binds the token to the proof's key; an invalid proof is 400 `invalid_dpop_proof`.
#[derive(Serialize, ToSchema)]
pub struct TokenRequest {
    #[schema(example = "client_credentials")]
    pub grant_type: String,
    pub scope: Option<String>,
    /// The API the token is for (RFC 8707), its audience; one this server does not issue
    /// tokens for is 400 `invalid_target`.
    pub resource: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A token to revoke (RFC 7009 §2.1) or introspect (RFC 7662 §2.1).
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    pub token: String,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` for any token that is not
/// active, and the token's claims for one that is.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub sub: Option<String>,
    pub exp: Option<u64>,
    pub iat: Option<u64>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    pub jti: Option<String>,
    pub token_type: Option<String>,
}

/// A JWK Set (RFC 7517 §5).
#[derive(Serialize, ToSchema)]
pub struct JwkSet {
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// Authorization server metadata (RFC 8414 §2).
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Option<Vec<String>>,
    /// The DPoP proof algorithms the token endpoint accepts (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

/// Hands the request to the authorization server's own router.
async fn forward(server: Router, req: Request) -> Response {
    match server.oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    }
}

/// OAuth 2.0 client credentials grant (RFC 6749 §4.4).
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "oauth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449 §4.2) for `POST` on this endpoint: the token is then bound to its key (`token_type: DPoP`, `cnf.jkt`)")),
    responses(
        (status = 200, description = "An access token", body = TokenResponse),
        (status = 400, description = "Not a valid grant request; `invalid_target` for an unknown `resource` (RFC 8707), `invalid_dpop_proof` for a bad proof, `use_dpop_nonce` (with `DPoP-Nonce`) when a server nonce is required", body = OAuthError,
            headers(("DPoP-Nonce" = String, description = "The nonce to put in the next proof (`use_dpop_nonce`)"))),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic challenge"))),
        (status = 413, description = "The form is too large", body = OAuthError),
        (status = 429, description = "Too many failed client authentications", body = OAuthError,
            headers(("Retry-After" = u64))),
        (status = 503, description = "A store is unavailable", body = OAuthError,
            headers(("Retry-After" = u64))),
    ),
    security(("basicAuth" = []), ())
)]
pub async fn oauth_token(State(server): State<Router>, req: Request) -> Response {
    forward(server, req).await
}

/// Token revocation (RFC 7009): 200 whether or not the token was known.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or was not a valid token"),
        (status = 400, description = "Not a valid revocation request", body = OAuthError),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic challenge"))),
        (status = 413, description = "The form is too large", body = OAuthError),
        (status = 429, description = "Too many failed client authentications", body = OAuthError,
            headers(("Retry-After" = u64))),
        (status = 503, description = "A store is unavailable", body = OAuthError,
            headers(("Retry-After" = u64))),
    ),
    security(("basicAuth" = []), ())
)]
pub async fn oauth_revoke(State(server): State<Router>, req: Request) -> Response {
    forward(server, req).await
}

/// Token introspection (RFC 7662), for clients registered as resource servers.
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The token's state", body = Introspection),
        (status = 400, description = "Not a valid introspection request", body = OAuthError),
        (status = 401, description = "Client authentication failed (`invalid_client`)", body = OAuthError,
            headers(("WWW-Authenticate" = String, description = "Basic challenge"))),
        (status = 403, description = "This client may not introspect", body = OAuthError),
        (status = 413, description = "The form is too large", body = OAuthError),
        (status = 429, description = "Too many failed client authentications", body = OAuthError,
            headers(("Retry-After" = u64))),
        (status = 503, description = "A store is unavailable", body = OAuthError,
            headers(("Retry-After" = u64))),
    ),
    security(("basicAuth" = []), ())
)]
pub async fn oauth_introspect(State(server): State<Router>, req: Request) -> Response {
    forward(server, req).await
}

/// The keys that verify access tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "oauth",
    responses((status = 200, description = "The signing keys' public halves", body = JwkSet))
)]
pub async fn jwks(State(server): State<Router>, req: Request) -> Response {
    forward(server, req).await
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "Where the endpoints are and what they support", body = ServerMetadata))
)]
pub async fn server_metadata(State(server): State<Router>, req: Request) -> Response {
    forward(server, req).await
}

/// Protected resource metadata (RFC 9728) of the `/v1` API: its authorization server, scopes
/// and how tokens are presented. The `resource_metadata` of every Bearer challenge names it.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-protected-resource/v1",
    tag = "oauth",
    responses((status = 200, description = "The RFC 9728 metadata document", content_type = "application/json"))
)]
pub async fn resource_metadata(State(doc): State<Router>, req: Request) -> Response {
    forward(doc, req).await
}

/// The RFC 9728 document's route, documented.
pub fn resource_metadata_routes(doc: Router) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(resource_metadata))
        .with_state(doc)
}

/// The authorization server's routes, each documented.
pub fn oauth_routes(server: Router) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(oauth_token))
        .routes(routes!(oauth_revoke))
        .routes(routes!(oauth_introspect))
        .routes(routes!(jwks))
        .routes(routes!(server_metadata))
        .with_state(server)
}

/// Liveness: 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The document, filled in once every route is registered.
#[derive(Clone, Default)]
pub struct Served(Arc<OnceLock<String>>);

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document, generated from the router", content_type = "application/json"))
)]
pub async fn document(State(served): State<Served>) -> Response {
    let body = served.0.get().cloned().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An empty router that holds the document's info, components and security schemes.
pub fn root() -> OpenApiRouter {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// Splits the documented router into the axum router it serves and the document, serves the
/// document at `/openapi.json`, and answers unknown paths and methods with problems.
pub fn finish(router: OpenApiRouter, base_url: &str) -> Router {
    let served = Served::default();
    let router = router.merge(
        OpenApiRouter::new()
            .routes(routes!(document))
            .with_state(served.clone()),
    );
    let (router, mut api) = router.split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api.servers = Some(vec![Server::new(base_url)]);
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    add_dpop_scheme(&mut doc);
    name_required_scopes(&mut doc);
    let _ = served.0.set(doc.to_string());
    router
        .fallback(problem::not_found)
        // After every route: it applies to the routes registered so far.
        .method_not_allowed_fallback(problem::method_not_allowed)
}

/// The DPoP scheme (RFC 9449 §7.1), written as JSON: `DPoP` is a registered HTTP
/// authentication scheme, but utoipa's `HttpAuthScheme` does not name it.
fn add_dpop_scheme(doc: &mut serde_json::Value) {
    let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(|s| s.as_object_mut())
    else {
        return;
    };
    schemes.insert(
        scheme::DPOP.to_owned(),
        serde_json::json!({
            "type": "http",
            "scheme": "DPoP",
            "bearerFormat": "JWT",
            "description": "A DPoP-bound RFC 9068 JWT access token (RFC 9449): \
                `Authorization: DPoP <token>` plus a `DPoP` header with a fresh proof JWT \
                signed by the key the token is bound to (`cnf.jkt`), naming this request's \
                method (`htm`) and URL without query (`htu`), the token's hash (`ath`), a \
                unique `jti` and a current `iat`; ES256 or EdDSA. The token endpoint issues \
                one (`token_type: DPoP`) when the token request carries a proof. A replayed \
                or invalid proof is 401 `invalid_dpop_proof`; the same token as `Bearer` is \
                401 `invalid_token`. With --dpop-nonce, proofs carry the server nonce from \
                `DPoP-Nonce` (`use_dpop_nonce` hands one out).",
        }),
    );
    // OpenAPI 3.1 `mutualTLS`: no operation requires it (a certificate binds tokens, it
    // does not replace them), so it is listed for the token endpoint's description only.
    schemes.insert(
        scheme::MUTUAL_TLS.to_owned(),
        serde_json::json!({
            "type": "mutualTLS",
            "description": "Only when the server runs with --mtls-ca (or behind a proxy                 trusted with --trusted-cert-proxy, which passes the certificate in the RFC                 9440 `Client-Cert` header): a client certificate is optional on the TLS                 connection. A token requested over a connection with a certificate is bound                 to it (RFC 8705 §3.1, `cnf.x5t#S256`) and is then accepted only over                 connections presenting that certificate; elsewhere it is 401                 `invalid_token`. Clients registered for `tls_client_auth` or                 `self_signed_tls_client_auth` authenticate to the token endpoint with the                 certificate instead of a secret (RFC 8705 §2).",
        }),
    );
}

/// Adds `x-required-scopes` to each operation whose security requirements name scopes: the
/// same scopes whichever scheme carries them, stated once for tools that read no roles on
/// non-OAuth schemes.
fn name_required_scopes(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let mut scopes: Vec<serde_json::Value> = Vec::new();
            for requirement in op["security"].as_array().into_iter().flatten() {
                let listed = requirement.as_object().into_iter().flat_map(|r| r.values());
                for scope in listed.filter_map(|v| v.as_array()).flatten() {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                    }
                }
            }
            if !scopes.is_empty() {
                op["x-required-scopes"] = serde_json::Value::Array(scopes);
            }
        }
    }
}
