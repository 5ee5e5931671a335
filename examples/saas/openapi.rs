//! The OpenAPI 3.1 document, generated from the same route table that `main.rs` uses to decide
//! each route's guard, so the two cannot drift apart.

use serde_json::{Map, Value, json};

/// One way a route accepts credentials.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// `X-API-Key` or `Authorization: ApiKey`.
    ApiKey,
    /// HTTP Basic (admin user).
    Basic,
    /// A JWT access token from `/oauth/token` (also described as an OAuth 2.0 flow).
    Bearer,
    /// An RFC 9421 HTTP Message Signature, `hmac-sha256`.
    Signature,
    /// The `Webhook-Signature: t=…,v1=…` profile.
    WebhookSignature,
    /// OAuth 2.0 client authentication (Basic or `client_secret_post`) at the token endpoints.
    OAuthClient,
}

pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub scopes: &'static [&'static str],
    pub guards: &'static [Guard],
}

use Guard::*;

const DATA: &[Guard] = &[ApiKey, Bearer, Signature];
const ADMIN: &[Guard] = &[Basic, Bearer];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        method: "get",
        path: "/v1/companies/{domain}",
        summary: "Company profile by domain",
        scopes: &["companies:read"],
        guards: DATA,
    },
    RouteDoc {
        method: "post",
        path: "/v1/contacts/search",
        summary: "Search contacts at a company",
        scopes: &["contacts:read"],
        guards: DATA,
    },
    RouteDoc {
        method: "post",
        path: "/v1/enrichments",
        summary: "Enrich an email address",
        scopes: &["enrich:write"],
        guards: DATA,
    },
    RouteDoc {
        method: "get",
        path: "/v1/usage",
        summary: "The caller's own usage counts",
        scopes: &[],
        guards: DATA,
    },
    RouteDoc {
        method: "post",
        path: "/v1/webhooks/crm",
        summary: "CRM webhook (RFC 9421 signed, nonce and content-digest required)",
        scopes: &[],
        guards: &[Signature],
    },
    RouteDoc {
        method: "post",
        path: "/v1/webhooks/billing",
        summary: "Billing webhook (Webhook-Signature t=,v1=)",
        scopes: &[],
        guards: &[WebhookSignature],
    },
    RouteDoc {
        method: "post",
        path: "/oauth/token",
        summary: "OAuth 2.0 client credentials grant (RFC 6749 §4.4)",
        scopes: &[],
        guards: &[OAuthClient],
    },
    RouteDoc {
        method: "post",
        path: "/oauth/revoke",
        summary: "Token revocation (RFC 7009)",
        scopes: &[],
        guards: &[OAuthClient],
    },
    RouteDoc {
        method: "post",
        path: "/oauth/introspect",
        summary: "Token introspection (RFC 7662)",
        scopes: &[],
        guards: &[OAuthClient],
    },
    RouteDoc {
        method: "get",
        path: "/.well-known/jwks.json",
        summary: "Signing keys (JWK Set)",
        scopes: &[],
        guards: &[],
    },
    RouteDoc {
        method: "get",
        path: "/.well-known/oauth-authorization-server",
        summary: "Authorization server metadata (RFC 8414)",
        scopes: &[],
        guards: &[],
    },
    RouteDoc {
        method: "post",
        path: "/admin/api-keys",
        summary: "Create an API key (the key is in this answer only)",
        scopes: &["admin"],
        guards: ADMIN,
    },
    RouteDoc {
        method: "get",
        path: "/admin/api-keys",
        summary: "List API keys (no secrets)",
        scopes: &["admin"],
        guards: ADMIN,
    },
    RouteDoc {
        method: "delete",
        path: "/admin/api-keys/{id}",
        summary: "Revoke an API key",
        scopes: &["admin"],
        guards: ADMIN,
    },
    RouteDoc {
        method: "post",
        path: "/admin/api-keys/{id}/rotate",
        summary: "Rotate an API key (old key valid for the grace period)",
        scopes: &["admin"],
        guards: ADMIN,
    },
    RouteDoc {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        scopes: &[],
        guards: &[],
    },
    RouteDoc {
        method: "get",
        path: "/healthz",
        summary: "Liveness: 200 while the process serves requests",
        scopes: &[],
        guards: &[],
    },
    RouteDoc {
        method: "get",
        path: "/readyz",
        summary: "Readiness: 200 when every store answers (Redis PING within 1 s with --redis-url), else 503 problem+json with Retry-After",
        scopes: &[],
        guards: &[],
    },
    RouteDoc {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics",
        scopes: &["admin"],
        guards: ADMIN,
    },
];

/// The scopes every data route may require, for the OAuth 2.0 flow description.
const OAUTH_SCOPES: &[(&str, &str)] = &[
    ("companies:read", "Read company profiles"),
    ("contacts:read", "Search contacts"),
    ("enrich:write", "Create enrichments"),
    ("admin", "Manage API keys and read metrics"),
];

fn security_of(route: &RouteDoc) -> Value {
    let scopes: Vec<Value> = route.scopes.iter().map(|s| json!(s)).collect();
    let alternatives: Vec<Value> = route
        .guards
        .iter()
        .flat_map(|g| -> Vec<Value> {
            match g {
                // Only OAuth 2.0 and OIDC schemes carry scope lists in OpenAPI; the others
                // list none and state the scope in `x-required-scopes`.
                ApiKey => vec![
                    json!({ "apiKey": [] }),
                    json!({ "apiKeyAuthorization": [] }),
                ],
                Basic => vec![json!({ "basicAuth": [] })],
                Bearer => vec![
                    json!({ "oauth2": scopes.clone() }),
                    json!({ "bearerAuth": [] }),
                ],
                Signature => vec![json!({ "httpSignature": [] })],
                WebhookSignature => vec![json!({ "webhookSignature": [] })],
                // client_secret_post carries the credentials in the form body, which OpenAPI
                // cannot name as a scheme: the empty requirement stands for it.
                OAuthClient => vec![json!({ "basicAuth": [] }), json!({})],
            }
        })
        .collect();
    Value::Array(alternatives)
}

pub fn document(base_url: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": route.summary,
            "operationId": format!("{}{}", route.method, route.path.replace(['/', '{', '}', '.', '-'], "_")),
            "responses": {
                "200": { "description": "Success" },
                "400": { "$ref": "#/components/responses/Problem" },
                "401": { "$ref": "#/components/responses/Problem" },
                "403": { "$ref": "#/components/responses/Problem" },
                "429": { "$ref": "#/components/responses/Problem" },
                "503": { "$ref": "#/components/responses/Problem" }
            },
            "security": security_of(route),
        });
        if !route.scopes.is_empty() {
            op["x-required-scopes"] = json!(route.scopes);
        }
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        entry[route.method] = op;
    }
    // Answers particular to a few operations.
    let problem = json!({ "$ref": "#/components/responses/Problem" });
    paths["/admin/api-keys"]["post"]["responses"]["422"] = json!({
        "description": "Unknown plan (problem+json; `known_plans` lists the plans)",
        "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
    });
    for (path, method) in [
        ("/admin/api-keys/{id}", "delete"),
        ("/admin/api-keys/{id}/rotate", "post"),
    ] {
        // Another tenant's key is not found, like a key that does not exist.
        paths[path][method]["responses"]["404"] = problem.clone();
    }
    paths["/readyz"]["get"]["responses"] = json!({
        "200": { "description": "Ready: every store answers" },
        "503": {
            "description": "Not ready: a store does not answer (problem+json)",
            "headers": { "Retry-After": { "schema": { "type": "integer" } } },
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
        }
    });
    let scopes: Map<String, Value> = OAUTH_SCOPES
        .iter()
        .map(|(s, d)| ((*s).to_owned(), json!(d)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "apiauth example SaaS API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A B2B data-enrichment API guarded by every apiauth method."
        },
        "servers": [{ "url": base_url }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-API-Key" },
                "apiKeyAuthorization": { "type": "http", "scheme": "ApiKey", "description": "Authorization: ApiKey <key>" },
                "basicAuth": { "type": "http", "scheme": "basic" },
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "oauth2": {
                    "type": "oauth2",
                    "flows": { "clientCredentials": { "tokenUrl": "/oauth/token", "scopes": scopes } }
                },
                "httpSignature": {
                    "type": "apiKey", "in": "header", "name": "Signature",
                    "description": "RFC 9421 HTTP Message Signature with alg=\"hmac-sha256\" (Signature-Input + Signature), covering @method, @authority, @path, @query, content-digest (RFC 9530) when there is a body, with created and nonce parameters"
                },
                "webhookSignature": {
                    "type": "apiKey", "in": "header", "name": "Webhook-Signature",
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">; several v1= during rotation; 5 minutes tolerance"
                }
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "properties": {
                        "type": { "type": "string" },
                        "title": { "type": "string" },
                        "status": { "type": "integer" },
                        "detail": { "type": "string" },
                        "error": { "type": "string" },
                        "scope": { "type": "string" }
                    }
                }
            }
        }
    })
}
