//! The OpenAPI document at `/openapi.json` against the router that serves it, over a socket:
//! every documented operation is served, every served route is documented, the document is
//! well-formed OpenAPI 3.1, live answers match the documented bodies, and what the router
//! itself refuses (unknown path, method, content type, bad JSON) is problem+json.
//!
//! `cargo test --workspace` builds the example first; with a `--test` filter, run
//! `cargo build --example saas` before, or the tests drive a stale binary.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::Saas;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(s: &Saas) -> Value {
    let res = s.http.get(s.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

/// Every `(method, path)` the document lists.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.push((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete URL path for a template: `{domain}` and `{id}` filled in.
fn concrete(path: &str) -> String {
    path.replace("{domain}", "acme.com")
        .replace("{id}", "sk_test_no_such_key")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap()
}

/// Status, Content-Type and body of a problem answer (asserting it is one).
async fn problem(res: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = res.status();
    let headers = res.headers().clone();
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{status}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["title"], status.canonical_reason().unwrap());
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    (status, headers, body)
}

#[tokio::test]
async fn every_documented_operation_is_served_and_not_the_routers_fallback() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    let (_, _, unknown) = problem(s.http.get(s.url("/no/such/route")).send().await.unwrap()).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 19, "{ops:?}");
    for (m, path) in &ops {
        let res = s
            .http
            .request(method(m), s.url(&concrete(path)))
            .send()
            .await
            .unwrap();
        let status = res.status();
        assert_ne!(
            status, 405,
            "{m} {path}: the router does not take this method"
        );
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(
            !(status == 404 && body == unknown),
            "{m} {path}: documented, but the router has no such route"
        );
        // The status answered is one the operation documents.
        let responses = &doc["paths"][path][m]["responses"];
        assert!(
            responses.get(status.as_str()).is_some(),
            "{m} {path} answered {status}, undocumented: {responses}"
        );
    }
}

#[tokio::test]
async fn every_method_the_router_takes_on_a_path_is_documented_and_no_other() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_ascii_uppercase())
            .collect();
        for m in METHODS {
            if item.get(m).is_some() {
                continue;
            }
            // A 405's `Allow` is the router's own list of what this path is registered for.
            let res = s
                .http
                .request(method(m), s.url(&concrete(path)))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 405, "{m} {path}");
            let allow: BTreeSet<String> = res.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| v != "HEAD")
                .collect();
            assert_eq!(allow, documented, "{path}: served methods vs documented");
            problem(res).await;
        }
    }
}

/// The `(method, path)` of each handler registered with `routes!(…)` in the example's
/// source, read from the handler's `#[utoipa::path(method, path = "…")]`.
fn registered_routes() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/saas");
    // Files only: the portal's folder (examples/saas/portal/) serves HTML pages under
    // /portal, which are no API operations and stay out of the document.
    let sources: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let all = sources.join("\n");
    // Only `routes!` registers: a plain `.route(…)` would serve a path the document lacks.
    for plain in [
        ".route(",
        ".route_service(",
        ".nest_service(",
        ".fallback_service(",
    ] {
        assert!(
            !all.contains(plain),
            "the example registers a route with `{plain}…)`, outside `routes!`"
        );
    }
    let mut handlers = Vec::new();
    for chunk in all.split("routes!(").skip(1) {
        let list = chunk.split(')').next().unwrap();
        for h in list.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            handlers.push(h.rsplit("::").next().unwrap().to_owned());
        }
    }
    assert!(handlers.len() >= 19, "{handlers:?}");
    handlers
        .iter()
        .map(|h| {
            let at = all
                .find(&format!("async fn {h}("))
                .unwrap_or_else(|| panic!("handler {h} not found"));
            let attr_at = all[..at]
                .rfind("#[utoipa::path(")
                .unwrap_or_else(|| panic!("{h} has no #[utoipa::path]"));
            let attr = &all[attr_at + "#[utoipa::path(".len()..at];
            let m = attr
                .trim_start()
                .split(',')
                .next()
                .unwrap()
                .trim()
                .to_owned();
            let path = attr
                .split("path = \"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .unwrap_or_else(|| panic!("{h}: no path"))
                .to_owned();
            (m, path)
        })
        .collect()
}

#[tokio::test]
async fn every_route_the_example_and_the_authorization_server_register_is_documented() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    let documented: BTreeSet<(String, String)> = operations(&doc).into_iter().collect();
    let registered: BTreeSet<(String, String)> = registered_routes().into_iter().collect();
    assert_eq!(registered, documented);

    // The authorization server's own statement of its endpoints (RFC 8414).
    let meta: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = s.creds["base_url"].as_str().unwrap();
    for (member, m) in [
        ("token_endpoint", "post"),
        ("revocation_endpoint", "post"),
        ("introspection_endpoint", "post"),
        ("jwks_uri", "get"),
    ] {
        let url = meta[member].as_str().unwrap();
        let path = url.strip_prefix(base).unwrap_or(url);
        assert!(
            documented.contains(&(m.to_owned(), path.to_owned())),
            "{member} {path} is not in the document"
        );
    }
}

/// Resolves a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    doc.pointer(r.strip_prefix('#')?)
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_well_formed_openapi_3_1() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        assert!(resolve(&doc, r).is_some(), "unresolved $ref {r}");
    }

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    let oauth_scopes = &schemes["oauth2"]["flows"]["clientCredentials"]["scopes"];
    let mut ids = BTreeSet::new();
    for (m, path) in operations(&doc) {
        let op = &doc["paths"][&path][&m];
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{m} {path} has no responses");
        for (status, r) in responses {
            let r = match r.get("$ref") {
                Some(Value::String(x)) => resolve(&doc, x).unwrap(),
                _ => r,
            };
            assert!(r["description"].is_string(), "{m} {path} {status}");
            // Every error but the OAuth endpoints' (RFC 6749 §5.2) is a problem document.
            if (status.starts_with('4') || status.starts_with('5'))
                && let Some(content) = r["content"].as_object()
            {
                let types: Vec<_> = content.keys().collect();
                let want = if path.starts_with("/oauth/") {
                    "application/json"
                } else {
                    "application/problem+json"
                };
                assert_eq!(types, [want], "{m} {path} {status}");
            }
        }
        if let Some(id) = op["operationId"].as_str() {
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
        }
        for param in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| p["name"] == param && p["in"] == "path" && p["required"] == true);
            assert!(declared, "{m} {path}: path parameter {param} not declared");
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for (name, scopes) in requirement.as_object().unwrap() {
                assert!(
                    schemes.contains_key(name),
                    "{m} {path}: unknown scheme {name}"
                );
                if name == "oauth2" {
                    for scope in scopes.as_array().unwrap() {
                        assert!(oauth_scopes.get(scope.as_str().unwrap()).is_some());
                    }
                }
            }
        }
        // Guarded routes document their refusals.
        let guarded = op["security"].as_array().is_some_and(|r| {
            r.iter()
                .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        });
        if guarded {
            assert!(responses.contains_key("401"), "{m} {path}: no 401");
        }
        if op.get("x-required-scopes").is_some() {
            assert!(responses.contains_key("403"), "{m} {path}: no 403");
        }
        if op["requestBody"]["content"]
            .get("application/json")
            .is_some()
            && !path.starts_with("/v1/webhooks/")
        {
            for status in ["400", "415", "422"] {
                assert!(responses.contains_key(status), "{m} {path}: no {status}");
            }
        }
    }
}

#[tokio::test]
async fn the_document_names_every_scheme_status_and_scope() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiKey"]["type"], "apiKey");
    assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["basicAuth"]["scheme"], "basic");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["bearerAuth"]["bearerFormat"], "JWT");
    // OpenAPI 3.1's mutualTLS, described truthfully (RFC 8705: it binds tokens).
    assert_eq!(schemes["mutualTls"]["type"], "mutualTLS");
    let mtls = schemes["mutualTls"]["description"].as_str().unwrap();
    for needle in [
        "--mtls-ca",
        "cnf.x5t#S256",
        "Client-Cert",
        "tls_client_auth",
    ] {
        assert!(
            mtls.contains(needle),
            "mutualTls description lacks {needle}"
        );
    }
    // RFC 9449 §7.1: DPoP is an HTTP authentication scheme of its own.
    assert_eq!(schemes["dpopAuth"]["type"], "http");
    assert_eq!(schemes["dpopAuth"]["scheme"], "DPoP");
    let dpop = schemes["dpopAuth"]["description"].as_str().unwrap();
    for needle in [
        "DPoP <token>",
        "cnf.jkt",
        "htu",
        "ath",
        "jti",
        "invalid_dpop_proof",
    ] {
        assert!(dpop.contains(needle), "dpopAuth description lacks {needle}");
    }
    let cc = &schemes["oauth2"]["flows"]["clientCredentials"];
    assert_eq!(cc["tokenUrl"], "/oauth/token");
    for scope in ["companies:read", "contacts:read", "enrich:write", "admin"] {
        assert!(cc["scopes"][scope].is_string(), "{scope}");
    }
    // The signature scheme says what it is, not only which header it uses.
    let sig = &schemes["httpSignature"];
    let text = sig["description"].as_str().unwrap();
    for needle in [
        "Not an API key",
        "RFC 9421",
        "Signature-Input",
        "hmac-sha256",
        "content-digest",
        "nonce",
        "created",
    ] {
        assert!(
            text.contains(needle),
            "httpSignature description lacks {needle}"
        );
    }
    assert_eq!(sig["x-rfc9421"]["alg"], "hmac-sha256");
    assert!(schemes["webhookSignature"]["description"].is_string());

    // The problem schema (RFC 9457) with this API's extension members.
    let p = &doc["components"]["schemas"]["Problem"]["properties"];
    for member in [
        "type",
        "title",
        "status",
        "detail",
        "error",
        "scope",
        "known_plans",
    ] {
        assert!(p[member].is_object(), "Problem.{member}");
    }

    let responses = |m: &str, path: &str| -> Vec<String> {
        doc["paths"][path][m]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{m} {path}"))
            .keys()
            .cloned()
            .collect()
    };
    let has = |m: &str, path: &str, statuses: &[&str]| {
        let got = responses(m, path);
        for st in statuses {
            assert!(
                got.iter().any(|g| g == st),
                "{m} {path} lacks {st}: {got:?}"
            );
        }
    };
    has(
        "post",
        "/v1/enrichments",
        &["201", "401", "403", "415", "422", "429", "503"],
    );
    has(
        "post",
        "/v1/contacts/search",
        &["200", "400", "415", "422", "429"],
    );
    has("post", "/v1/webhooks/crm", &["202", "401", "503"]);
    has("post", "/v1/webhooks/billing", &["202", "401"]);
    has("post", "/admin/api-keys", &["201", "409", "422", "429"]);
    has("delete", "/admin/api-keys/{id}", &["200", "404", "409"]);
    has("post", "/admin/api-keys/{id}/rotate", &["201", "404"]);
    has("get", "/readyz", &["200", "503"]);
    has("post", "/oauth/token", &["200", "400", "401", "429", "503"]);

    // Per-operation requirements carry the route's scope, for every scheme it takes.
    let op = &doc["paths"]["/v1/contacts/search"]["post"];
    assert_eq!(op["x-required-scopes"], json!(["contacts:read"]));
    let security = op["security"].as_array().unwrap();
    for scheme in [
        "apiKey",
        "oauth2",
        "bearerAuth",
        "dpopAuth",
        "httpSignature",
    ] {
        assert!(
            security.contains(&json!({ scheme: ["contacts:read"] })),
            "{scheme}"
        );
    }
    let admin = doc["paths"]["/admin/api-keys"]["get"]["security"]
        .as_array()
        .unwrap();
    assert!(admin.contains(&json!({ "basicAuth": ["admin"] })));
    assert!(!admin.iter().any(|r| r.get("apiKey").is_some()));
    // The admin routes have no DPoP layer, so the document does not offer it there.
    assert!(!admin.iter().any(|r| r.get("dpopAuth").is_some()));
    // Public routes need nothing.
    assert!(doc["paths"]["/healthz"]["get"].get("security").is_none());
}

/// Checks `body` against `schema`: every required member present, no undocumented member,
/// nested objects and arrays alike.
fn conforms(doc: &Value, schema: &Value, body: &Value, at: &str) {
    let schema = match schema.get("$ref") {
        Some(Value::String(r)) => resolve(doc, r).unwrap(),
        _ => schema,
    };
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        // utoipa writes `Option<T>` of a component as oneOf [null, T].
        if body.is_null() {
            return;
        }
        let inner = one_of.iter().find(|s| s["type"] != "null").unwrap();
        return conforms(doc, inner, body, at);
    }
    match body {
        Value::Object(members) => {
            let props = schema["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{at}: an object where the schema says {schema}"));
            for name in schema["required"].as_array().into_iter().flatten() {
                assert!(
                    members.contains_key(name.as_str().unwrap()),
                    "{at}.{name} missing"
                );
            }
            for (name, value) in members {
                let prop = props
                    .get(name)
                    .unwrap_or_else(|| panic!("{at}.{name} is not documented"));
                conforms(doc, prop, value, &format!("{at}.{name}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

fn documented_body<'a>(doc: &'a Value, m: &str, path: &str, status: u16) -> &'a Value {
    let r = &doc["paths"][path][m]["responses"][status.to_string()];
    let r = match r.get("$ref") {
        Some(Value::String(x)) => resolve(doc, x).unwrap(),
        _ => r,
    };
    let content = r["content"]
        .as_object()
        .unwrap_or_else(|| panic!("{m} {path} {status}"));
    &content.values().next().unwrap()["schema"]
}

#[tokio::test]
async fn live_answers_match_the_documented_bodies() {
    let s = Saas::start(&[]).await;
    let doc = document(&s).await;
    let pro = s.creds["api_keys"]["pro"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = (
        s.creds["admin"]["username"].as_str().unwrap().to_owned(),
        s.creds["admin"]["password"].as_str().unwrap().to_owned(),
    );
    let check = |m: &'static str, path: &'static str, res: reqwest::Response| {
        let doc = &doc;
        async move {
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            let schema = documented_body(doc, m, path, status);
            conforms(doc, schema, &body, &format!("{m} {path} {status}"));
            body
        }
    };
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .header("x-api-key", &pro)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("get", "/v1/companies/{domain}", res).await;
    let res = s
        .http
        .post(s.url("/v1/contacts/search"))
        .header("x-api-key", &pro)
        .json(&json!({ "company_domain": "acme.com", "limit": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("post", "/v1/contacts/search", res).await;
    let res = s
        .http
        .post(s.url("/v1/enrichments"))
        .header("x-api-key", &pro)
        .json(&json!({ "email": "ada@acme.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    check("post", "/v1/enrichments", res).await;
    let res = s
        .http
        .get(s.url("/v1/usage"))
        .header("x-api-key", &pro)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("get", "/v1/usage", res).await;

    let res = s
        .http
        .post(s.url("/admin/api-keys"))
        .basic_auth(&admin.0, Some(&admin.1))
        .json(&json!({ "owner": "doc-check", "scopes": "companies:read", "plan": "free" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created = check("post", "/admin/api-keys", res).await;
    let id = created["summary"]["id"].as_str().unwrap().to_owned();
    let res = s
        .http
        .get(s.url("/admin/api-keys"))
        .basic_auth(&admin.0, Some(&admin.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("get", "/admin/api-keys", res).await;
    let res = s
        .http
        .post(s.url(&format!("/admin/api-keys/{id}/rotate")))
        .basic_auth(&admin.0, Some(&admin.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let rotated = check("post", "/admin/api-keys/{id}/rotate", res).await;
    let new_id = rotated["summary"]["id"].as_str().unwrap().to_owned();
    let res = s
        .http
        .delete(s.url(&format!("/admin/api-keys/{new_id}")))
        .basic_auth(&admin.0, Some(&admin.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("delete", "/admin/api-keys/{id}", res).await;
    let res = s
        .http
        .delete(s.url("/admin/api-keys/sk_test_no_such_key"))
        .basic_auth(&admin.0, Some(&admin.1))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    check("delete", "/admin/api-keys/{id}", res).await;

    let res = s
        .http
        .post(s.url("/oauth/token"))
        .basic_auth(
            s.creds["oauth_client"]["client_id"].as_str().unwrap(),
            s.creds["oauth_client"]["client_secret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    check("post", "/oauth/token", res).await;
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    check("post", "/oauth/token", res).await;
}

// --- What the router refuses before any handler: problem+json, no scheme's vocabulary.

#[tokio::test]
async fn an_unknown_path_is_404_problem_json() {
    let s = Saas::start(&[]).await;
    let (status, _, p) = problem(s.http.get(s.url("/v2/companies")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No authentication scheme refused this: no scheme's error code.
    assert!(p.get("error").is_none(), "{p}");
}

#[tokio::test]
async fn a_method_the_path_does_not_take_is_405_problem_json_with_allow() {
    let s = Saas::start(&[]).await;
    let (status, headers, p) =
        problem(s.http.delete(s.url("/healthz")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET,HEAD");
    assert!(p.get("error").is_none(), "{p}");
    // On a guarded path too, and without credentials: the method is wrong whoever asks.
    let (status, headers, _) =
        problem(s.http.get(s.url("/v1/enrichments")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

async fn search(s: &Saas, content_type: &str, body: &'static str) -> reqwest::Response {
    s.http
        .post(s.url("/v1/contacts/search"))
        .header(
            "x-api-key",
            s.creds["api_keys"]["pro"]["key"].as_str().unwrap(),
        )
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415_problem_json() {
    let s = Saas::start(&[]).await;
    let (status, _, p) = problem(search(&s, "text/plain", "company_domain=acme.com").await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(p["detail"].as_str().unwrap().contains("application/json"));
    assert!(p.get("error").is_none(), "{p}");
}

#[tokio::test]
async fn malformed_json_is_400_problem_json() {
    let s = Saas::start(&[]).await;
    let (status, _, p) =
        problem(search(&s, "application/json", "{\"company_domain\":").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(p.get("error").is_none(), "{p}");
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422_problem_json_without_echoing_it() {
    let s = Saas::start(&[]).await;
    let (status, _, p) =
        problem(search(&s, "application/json", r#"{"company_domain": 12345678}"#).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.get("error").is_none(), "{p}");
    assert!(!p.to_string().contains("12345678"), "{p}");
    // The admin API's bodies too.
    let res = s
        .http
        .post(s.url("/admin/api-keys"))
        .basic_auth(
            s.creds["admin"]["username"].as_str().unwrap(),
            s.creds["admin"]["password"].as_str(),
        )
        .json(&json!({ "scopes": "admin" }))
        .send()
        .await
        .unwrap();
    let (status, _, _) = problem(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_error_member_is_the_refusing_schemes_own() {
    let s = Saas::start(&[]).await;
    // Bearer's vocabulary (RFC 6750 §3.1) for a bad bearer token.
    let res = s
        .http
        .get(s.url("/v1/companies/acme.com"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    let (status, headers, p) = problem(res).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(p["error"], "invalid_token");
    assert!(
        headers.get_all("www-authenticate").iter().any(|v| v
            .to_str()
            .unwrap()
            .starts_with("Bearer")
            && v.to_str().unwrap().contains("invalid_token"))
    );
    // The OAuth endpoints speak RFC 6749 §5.2, in application/json.
    let res = s
        .http
        .post(s.url("/oauth/token"))
        .form(&[("grant_type", "password")])
        .basic_auth(
            s.creds["oauth_client"]["client_id"].as_str().unwrap(),
            s.creds["oauth_client"]["client_secret"].as_str(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
}
