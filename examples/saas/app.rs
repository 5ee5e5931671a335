//! Composition: stores, demo tenant, method layers, routes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use apiauth::api_key::{ApiKeyAuthenticator, ApiKeyRecord, ApiKeys, KeyFilter, NewKey};
use apiauth::basic::{BasicAuth, CredentialRecord, MemoryCredentialStore, PasswordHasher};
use apiauth::bearer::{Bearer, ProtectedResourceMetadata};
use apiauth::client_addr::TrustedProxies;
use apiauth::hmac::{
    BodyBudget, Component, CoveragePolicy, HmacKey, HmacSecret, HttpSignatureVerifier,
    MemoryHmacKeyStore, WebhookProfile, WebhookVerifier,
};
use apiauth::jwt::{Issuer, JwtVerifier};
use apiauth::mtls::{CertificateBound, ClientCertHeaderLayer};
use apiauth::oauth2::{AuthorizationServer, KeyRotation, RegisteredClient};
use apiauth::quota::{QuotaLayer, QuotaPolicy};
use apiauth::{Auth, AuthLayer, Scope, ScopeSet, Scoped, audit, scope};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::cli::Args;
use crate::data;
use crate::openapi::{self, Forbidden, TooManyRequests, Unauthorized, Unavailable};
use crate::plans::{self, COST_COMPANY, COST_ENRICHMENT, COST_SEARCH, COST_USAGE};
use crate::problem::{ApiJson, Problem};
use crate::transport::{self, TransportPolicy};

scope!(pub CompaniesRead = "companies:read");
scope!(pub ContactsRead = "contacts:read");
scope!(pub EnrichWrite = "enrich:write");
scope!(pub Admin = "admin");

const DATA_SCOPES: &str = "companies:read contacts:read enrich:write";
const TENANT: &str = "acme";

pub struct Built {
    pub router: Router,
    pub credentials: Value,
    api_keys: Arc<ApiKeyAuthenticator>,
    stores: crate::stores::Stores,
}

impl Built {
    /// Writes what must not be lost at exit (queued last-used times, usage counts).
    pub async fn shutdown(&self) {
        if let Err(e) = self.api_keys.flush_last_used().await {
            tracing::warn!("could not flush API key last-used times: {e}");
        }
        self.stores.shutdown().await;
    }
}

/// Secrets of the demo tenant, all derived from one seed so that instances sharing Redis and
/// the same `--demo-seed` agree on them.
struct Seed(Vec<u8>);

impl Seed {
    fn new(seed: Option<&str>) -> Self {
        match seed {
            Some(s) => Self(s.as_bytes().to_vec()),
            None => {
                let mut b = [0u8; 32];
                getrandom::fill(&mut b).expect("OS randomness");
                Self(b.to_vec())
            }
        }
    }

    /// A P-256 private key (RFC 5915 DER) derived from the seed, so that every instance
    /// started with the same seed signs and verifies access tokens with the same key.
    fn p256_key(&self) -> Vec<u8> {
        for round in 0u32.. {
            let d = self.bytes(&format!("oauth-signing-key#{round}"));
            // ECPrivateKey { version 1, privateKey OCTET STRING, parameters [0] prime256v1 }
            let mut der = vec![0x30, 0x31, 0x02, 0x01, 0x01, 0x04, 0x20];
            der.extend_from_slice(&d);
            der.extend_from_slice(&[
                0xa0, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            ]);
            // A scalar of zero or past the group order (odds about 2^-32) is refused: next.
            if aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &der,
            )
            .is_ok()
            {
                return der;
            }
        }
        unreachable!("a valid scalar is found within a few rounds")
    }

    fn bytes(&self, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"apiauth-saas-demo\0");
        h.update(&self.0);
        h.update([0]);
        h.update(label.as_bytes());
        h.finalize().into()
    }

    /// A base62 string of `len` characters derived from `label`.
    fn text(&self, label: &str, len: usize) -> String {
        const A: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut out = String::with_capacity(len);
        let mut round = 0u32;
        while out.len() < len {
            for b in self.bytes(&format!("{label}#{round}")) {
                if b < 248 && out.len() < len {
                    out.push(A[usize::from(b % 62)] as char);
                }
            }
            round += 1;
        }
        out
    }
}

#[derive(Clone)]
struct AdminState {
    keys: ApiKeys,
    grace: Duration,
    metrics: Option<PrometheusHandle>,
    /// The plans the quota layer knows; a key may name only these.
    plans: Arc<[String]>,
}

/// A second tenant with its own administrator, so that the admin API's tenant isolation can
/// be seen (and tested) with the demo alone.
const OTHER_TENANT: &str = "globex";
/// How long `/readyz` waits for a store before it answers 503.
const READY_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn build(
    args: &Args,
    base_url: &str,
    policy: TransportPolicy,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<Built> {
    // Which store holds what: examples/saas/stores.rs.
    let opened = crate::stores::open(args).await?;
    let seed = Seed::new(opened.demo_seed.as_deref());
    let stores = opened.bundle.clone();

    // --- API keys: the demo tenant's pro and free keys.
    let keys = ApiKeys::new(stores.api_keys.clone()).prefix("sk_test_")?;
    let mut key_creds = serde_json::Map::new();
    for (plan, scopes) in [("pro", DATA_SCOPES), ("free", "companies:read")] {
        let generated = keys
            .format()
            .derive_from_seed(&seed.bytes(&format!("api-key-{plan}")));
        let record = ApiKeyRecord {
            id: generated.id.clone().into(),
            hash: generated.hash,
            owner: format!("{TENANT}-{plan}").into(),
            // Issue 18: the free key is another tenant's, on `free`.
            tenant: Some(key_tenant(plan).into()),
            scopes: ScopeSet::parse(scopes)?,
            plan: Some(plan.into()),
            created_at: SystemTime::now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            rotated_from: None,
            grace_until: None,
        };
        // false: another instance with the same seed stored it already.
        keys.store().insert(record).await?;
        key_creds.insert(
            plan.to_owned(),
            json!({ "id": generated.id, "key": generated.token.expose_secret(), "scopes": scopes, "tenant": key_tenant(plan) }),
        );
    }
    let api_key_auth = Arc::new(keys.auth().realm("saas").build()?);

    // --- HTTP Basic: the admin user.
    let admin_password = seed.text("admin-password", 24);
    let hasher = PasswordHasher::default();
    let users = MemoryCredentialStore::new();
    users.insert(
        "admin",
        CredentialRecord::new("admin", hasher.hash(&admin_password))
            .tenant(TENANT)
            .scopes(ScopeSet::parse("admin")?),
    );
    let other_admin = format!("{OTHER_TENANT}-admin");
    let other_admin_password = seed.text("other-admin-password", 24);
    users.insert(
        other_admin.as_str(),
        CredentialRecord::new(other_admin.as_str(), hasher.hash(&other_admin_password))
            .tenant(OTHER_TENANT)
            .scopes(ScopeSet::parse("admin")?),
    );
    // The developer portal's user: signs in to /portal, not to the admin API (no scope).
    let portal_password = seed.text("portal-password", 24);
    users.insert(
        crate::portal::DEMO_USER,
        CredentialRecord::new(crate::portal::DEMO_USER, hasher.hash(&portal_password))
            .tenant(TENANT),
    );
    let portal_users = users.clone();
    // The operator: reads and changes tenants' credit balances, exports the billing history.
    let operator_password = seed.text("operator-password", 24);
    users.insert(
        "operator",
        CredentialRecord::new("operator", hasher.hash(&operator_password))
            .scopes(ScopeSet::parse("credits:admin")?),
    );
    // Failure counters in the shared stores: with --redis-url, one budget for all instances.
    let basic = BasicAuth::builder(users)
        .realm("saas-admin")
        .password_hasher(hasher.clone())
        .lockout_store(stores.lockouts.clone())
        .layer()?;

    // --- OAuth 2.0: the authorization server and the demo client.
    let client_id = "acme-crm-sync";
    let client_secret = format!("ocs_{}", seed.text("oauth-client-secret", 40));
    let client = RegisteredClient::new(
        client_id,
        hasher.hash(&client_secret),
        ScopeSet::parse(DATA_SCOPES)?,
    )
    .tenant(TENANT);
    // An operator's console: may obtain `admin` tokens for the admin API.
    let admin_client_id = "acme-admin-console";
    let admin_client_secret = format!("ocs_{}", seed.text("oauth-admin-client-secret", 40));
    let admin_client = RegisteredClient::new(
        admin_client_id,
        hasher.hash(&admin_client_secret),
        ScopeSet::parse("admin")?,
    )
    .tenant(TENANT);
    // A resource server: may introspect tokens (RFC 7662 §2.1 wants it authenticated), may
    // obtain none.
    let resource_server_id = "acme-resource-server";
    let resource_server_secret = format!("ocs_{}", seed.text("oauth-resource-server-secret", 40));
    let resource_server = RegisteredClient::new(
        resource_server_id,
        hasher.hash(&resource_server_secret),
        ScopeSet::empty(),
    )
    .without_token_grant()
    .allow_introspection();
    let (clients, client_writer) = opened
        .clients(&hasher, vec![client, admin_client, resource_server])
        .await?;
    let mut auth_server = AuthorizationServer::builder(base_url)
        .audience(format!("{base_url}/v1"))
        .clients(clients)
        .revocation_list(stores.revocations.clone())
        // Failed client authentication counts in the same store as Basic's (its own keys):
        // with --redis-url, one budget for all instances.
        .lockout_store(stores.lockouts.clone())
        .password_hasher(hasher.clone())
        // The database's key (sealed there under the KEK), else one per demo seed: instances
        // sharing either accept each other's tokens. Rolled by hand (manual rotation).
        .signing_key_der(
            opened
                .signing_key_der
                .clone()
                .unwrap_or_else(|| seed.p256_key()),
        )
        .key_rotation(KeyRotation::manual());
    if !policy.tls {
        auth_server = auth_server.dangerous_allow_http_issuer();
    }
    // RFC 8705: tokens requested with a client certificate are bound to it.
    if args.mtls_ca.is_some() || args.trusted_cert_proxy.is_some() {
        auth_server = auth_server.mutual_tls();
    }
    // DPoP (examples/saas/dpop.rs): one proof verifier for the token endpoint and the API.
    let proofs = crate::dpop::verifier(
        args,
        base_url,
        stores.dpop_replay.clone(),
        seed.bytes("dpop-nonce-secret"),
    )?;
    let auth_server = auth_server.dpop(proofs.clone()).build()?;

    // --- JWT: this process verifies its own access tokens with the published keys.
    let issuer = Issuer::new(auth_server.issuer())
        .audience(auth_server.audience())
        .require_at_jwt()
        .jwk_set(&auth_server.jwks()?)?;
    let jwt = JwtVerifier::builder()
        .issuer(issuer)
        // The client's tenant, written by the authorization server: quotas, credits and
        // the admin API's tenant checks follow it.
        .tenant_claim("tenant")
        .revocation_list(stores.revocations.clone())
        .cache(10_000, Duration::from_secs(60))
        .build()
        .await?;
    // RFC 9728: what a client that got a 401 needs to find the authorization server. The
    // resource is the API's identifier, the audience of its tokens (RFC 8707).
    let resource = auth_server.audience().to_owned();
    let resource_meta = if policy.tls {
        ProtectedResourceMetadata::new(resource)?
    } else {
        ProtectedResourceMetadata::dangerous_allow_http(resource)?
    }
    .authorization_server(auth_server.issuer())
    .scopes_supported(DATA_SCOPES.split(' '))
    .resource_name("apiauth example SaaS API")
    .resource_documentation(format!("{base_url}/openapi.json"));
    // RFC 8705: a certificate-bound token only over a connection presenting its certificate
    // (a token bound both ways passes both checks).
    let jwt = CertificateBound::new(jwt);
    let resource_meta = crate::dpop::metadata(resource_meta, &proofs);
    let dpop = crate::dpop::layer(jwt.clone(), proofs, resource_meta.metadata_url());
    let bearer = Bearer::new(jwt)
        .realm("saas")
        .resource_metadata(resource_meta.metadata_url())
        .layer();

    // --- HMAC: the partner key for RFC 9421 signatures, and the billing webhook secret.
    let hmac_secret = seed.bytes("hmac-partner-secret");
    let hmac_keys = Arc::new(MemoryHmacKeyStore::new());
    hmac_keys.insert(
        "acme-partner-1",
        HmacKey::new(format!("{TENANT}-partner"))
            .tenant(TENANT)
            .scopes(ScopeSet::parse(DATA_SCOPES)?)
            .secret(HmacSecret::new(hmac_secret)?),
    );
    // RFC 9421 §7.2.1: the scheme and authority signed over are the ones clients call (the
    // public URL), never what a request's Host claims, so a request signed for another
    // host cannot be replayed here.
    let (scheme, authority) = public_origin(base_url)?;
    // One budget for every body read before its signature is checked. The serving loop's
    // body timeout (started at the head, so always first) answers 408 before these do.
    let body_budget = BodyBudget::new(args.body_budget);
    let signatures = HttpSignatureVerifier::builder(hmac_keys.clone())
        .body_budget(body_budget.clone())
        .body_timeout(args.body_timeout)
        .replay_store(stores.replay.clone())
        .scheme(&scheme)
        .authority(&authority)
        .realm("saas")
        .build()?;
    // The CRM webhook: a nonce (the default) and a covered content-digest, always.
    let crm_signatures = HttpSignatureVerifier::builder(hmac_keys)
        .body_budget(body_budget.clone())
        .body_timeout(args.body_timeout)
        .replay_store(stores.replay.clone())
        .policy(
            CoveragePolicy::recommended().require(Component::field(apiauth::hmac::CONTENT_DIGEST)),
        )
        .scheme(&scheme)
        .authority(&authority)
        .realm("saas-webhooks")
        .build()?;
    let webhook_secret = format!("whsec_{}", seed.text("webhook-secret", 40));
    let billing = WebhookVerifier::builder(WebhookProfile::timestamped(), "billing-provider")
        .secret(HmacSecret::new(webhook_secret.as_bytes())?)
        .body_budget(body_budget)
        .body_timeout(args.body_timeout)
        .tolerance(Duration::from_secs(300))
        .replay_store(stores.replay.clone())
        .tenant(TENANT)
        .build()?;

    // --- Quotas and usage.
    // Plans drive both limits (plans.rs): each plan's rate limit is its GCRA policy, per
    // tenant, so every credential of a tenant (API keys, OAuth client, HMAC partner) shares
    // its tenant's plan and bucket; its credit allowance is what the credits layer charges.
    let tenant_plans = plans::plans(&args.credits);
    let mut plans: Vec<String> = tenant_plans.iter().map(|(n, _)| n.to_owned()).collect();
    plans.sort();
    let mut quota = QuotaLayer::builder()
        .plans(tenant_plans.clone())
        // Callers no plan resolves for (principals of no tenant on a plan, naming none).
        .default_plan(QuotaPolicy::per_second(50).burst(100))
        .anonymous(QuotaPolicy::per_second(5).burst(20))
        .limiter(stores.rate_limiter.clone())
        .usage_meter(stores.usage.clone())
        // The three fields of drafts 00–06 beside RateLimit-Policy/RateLimit, for older clients.
        .legacy_headers();
    for (plan, burst, per_second) in &args.quotas {
        let period = Duration::from_secs_f64(1.0 / per_second);
        let policy = QuotaPolicy::with_period(period).burst(*burst);
        // `default` is the plan of principals no plan resolves for; `anonymous` the
        // per-address quota of requests without a valid credential; any other name overrides
        // (or adds) that plan's rate limit.
        quota = match plan.as_str() {
            "default" => quota.default_plan(policy),
            "anonymous" => quota.anonymous(policy),
            _ => {
                if !plans.contains(plan) {
                    plans.push(plan.clone());
                }
                quota.plan(plan.clone(), policy)
            }
        };
    }
    let quota = quota.build()?;

    // --- Routes. Layers: the last `.layer` is outermost, so auth runs before quota. Each
    // route is registered with its OpenAPI operation by `routes!` (openapi.rs).
    let api_key_layer = AuthLayer::new(api_key_auth.clone());
    let credits = plans::credits(tenant_plans, opened.credit_store(), opened.usage_history());
    let data = OpenApiRouter::new()
        .routes(routes!(data::get_company).layer(credits.cost(COST_COMPANY)))
        .routes(routes!(data::search_contacts).layer(credits.cost(COST_SEARCH)))
        .routes(routes!(data::create_enrichment).layer(credits.cost(COST_ENRICHMENT)))
        .routes(routes!(openapi::usage).layer(credits.cost(COST_USAGE)))
        .layer(axum::Extension(credits.clone()))
        .layer(quota)
        .layer(AuthLayer::new(signatures))
        .layer(api_key_layer)
        .layer(dpop)
        .layer(bearer.clone());

    let webhooks = OpenApiRouter::new()
        .routes(routes!(crm_webhook).layer(AuthLayer::new(crm_signatures)))
        .routes(routes!(billing_webhook).layer(AuthLayer::new(billing)));

    let plans: Arc<[String]> = plans.into();
    let portal = crate::portal::Portal::demo(crate::portal::DemoParts {
        keys: keys.clone(),
        users: portal_users,
        hasher: hasher.clone(),
        lockouts: stores.lockouts.clone(),
        clients: client_writer,
        tenant: TENANT,
        demo_clients: &[
            (client_id, DATA_SCOPES),
            (admin_client_id, "admin"),
            (resource_server_id, ""),
        ],
        plans: plans.clone(),
        grantable: ScopeSet::parse(DATA_SCOPES)?,
        grace: Duration::from_secs(args.rotation_grace),
        tls: policy.tls,
        tenants: &[TENANT, OTHER_TENANT, plans::FREE_TENANT],
        credits: credits.clone(),
        sessions: opened.session_store(),
    })?;

    let admin = OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(rotate_key))
        .routes(routes!(prometheus))
        .routes(routes!(plans::read_credits, plans::change_credits))
        .routes(routes!(plans::usage_export))
        .layer(axum::Extension(credits))
        .with_state(AdminState {
            keys: keys.clone(),
            grace: Duration::from_secs(args.rotation_grace),
            metrics,
            plans,
        })
        .layer(basic)
        .layer(bearer);

    let public = OpenApiRouter::new()
        // Liveness: the process answers. Readiness: its stores answer too.
        .routes(routes!(openapi::healthz))
        .routes(routes!(ready))
        .with_state(opened.health());

    let client_addr = TrustedProxies::clone(&policy.proxies).layer();
    // RFC 9440 `Client-Cert`, believed only from the configured TLS-terminating proxies.
    let cert_header = match &args.trusted_cert_proxy {
        Some(ranges) => Some(ClientCertHeaderLayer::from_cidrs(ranges)?),
        None => None,
    };
    let router = openapi::root()
        .merge(data)
        .merge(webhooks)
        .merge(admin)
        .merge(openapi::oauth_routes(auth_server.router()))
        .merge(openapi::resource_metadata_routes(resource_meta.router()))
        .merge(public);
    // The document at /openapi.json, and problem answers for unknown paths and methods.
    let router = openapi::finish(router, base_url)
        .merge(portal.router())
        .layer(axum::middleware::from_fn(move |req, next| {
            transport::enforce(policy.clone(), req, next)
        }))
        // The span shows the path and the query's names, never its values (credentials).
        .layer(TraceLayer::new_for_http().make_span_with(apiauth::trace::request_span))
        .layer(audit::sensitive_headers_layer_with([
            apiauth::dpop::DPOP_HEADER,
        ]));
    let router = match cert_header {
        Some(l) => router.layer(l),
        None => router,
    };
    // Outermost: every layer inside reads the client address it resolved.
    let router = router.layer(client_addr);

    let credentials = json!({
        "base_url": base_url,
        "tenant": TENANT,
        "api_keys": key_creds,
        "admin": { "username": "admin", "password": admin_password, "scopes": "admin", "tenant": TENANT },
        "operator": { "username": "operator", "password": operator_password, "scopes": "credits:admin" },
        "oauth_client": {
            "client_id": client_id,
            "client_secret": client_secret,
            "scopes": DATA_SCOPES,
            "token_endpoint": auth_server.token_endpoint(),
            "tenant": TENANT,
        },
        "admin_oauth_client": {
            "client_id": admin_client_id,
            "client_secret": admin_client_secret,
            "scopes": "admin",
        },
        "resource_server": {
            "client_id": resource_server_id,
            "client_secret": resource_server_secret,
            "introspection_endpoint": auth_server.introspection_endpoint(),
        },
        "other_tenant_admin": {
            "tenant": OTHER_TENANT,
            "username": other_admin,
            "password": other_admin_password,
            "scopes": "admin",
        },
        "hmac": {
            "key_id": "acme-partner-1",
            "secret_base64": base64::engine::general_purpose::STANDARD.encode(hmac_secret),
            "scopes": DATA_SCOPES,
            "tenant": TENANT,
        },
        "webhook_secret": webhook_secret,
        "portal": {
            "url": format!("{base_url}/portal/"),
            "username": crate::portal::DEMO_USER,
            "password": portal_password,
        },
    });
    Ok(Built {
        router,
        credentials,
        api_keys: api_key_auth,
        stores: opened,
    })
}

/// The tenant of the demo API key on `plan` (issue 18: `pro` is acme's, `free` another's).
fn key_tenant(plan: &str) -> &'static str {
    if plan == "free" {
        plans::FREE_TENANT
    } else {
        TENANT
    }
}

fn received(Auth(p): Auth, body: &Bytes) -> Response {
    let id: String = Sha256::digest(body)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (
        StatusCode::ACCEPTED,
        Json(json!({ "received": true, "from": p.subject(), "id": format!("evt_{id}") })),
    )
        .into_response()
}

/// CRM webhook: RFC 9421 signed, nonce and content-digest required.
#[utoipa::path(
    post,
    path = "/v1/webhooks/crm",
    tag = "webhooks",
    request_body = openapi::WebhookEvent,
    responses(
        (status = 202, description = "Accepted", body = openapi::WebhookReceipt),
        Unauthorized,
        Unavailable,
    ),
    security(("httpSignature" = []))
)]
async fn crm_webhook(auth: Auth, body: Bytes) -> Response {
    received(auth, &body)
}

/// Billing webhook: `Webhook-Signature: t=…,v1=…`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/billing",
    tag = "webhooks",
    request_body = openapi::WebhookEvent,
    responses(
        (status = 202, description = "Accepted", body = openapi::WebhookReceipt),
        Unauthorized,
        Unavailable,
    ),
    security(("webhookSignature" = []))
)]
async fn billing_webhook(auth: Auth, body: Bytes) -> Response {
    received(auth, &body)
}

/// A key to create, in the administrator's tenant.
#[derive(Deserialize, utoipa::ToSchema)]
struct CreateKey {
    owner: String,
    /// Space-separated scopes.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "companies:read")]
    scopes: Option<ScopeSet>,
    #[serde(default)]
    plan: Option<String>,
    /// Seconds until the key expires.
    #[serde(default)]
    expires_in: Option<u64>,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn admin_error(e: apiauth::api_key::ApiKeyError) -> Response {
    use apiauth::api_key::ApiKeyError as E;
    let (status, detail) = match &e {
        E::NotFound => (StatusCode::NOT_FOUND, "No such key."),
        E::Store(_) => {
            let mut res = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The key store is unavailable; retry later.",
                json!({}),
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
            return res;
        }
        _ => (StatusCode::CONFLICT, "The key cannot be changed that way."),
    };
    problem(status, detail, json!({}))
}

/// An RFC 9457 problem body; `extra` adds extension members (§3.2).
fn problem(status: StatusCode, detail: &str, extra: Value) -> Response {
    let mut body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), extra) {
        b.extend(extra);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The scheme and authority of the public URL, for the signature verifiers.
fn public_origin(base_url: &str) -> anyhow::Result<(String, String)> {
    let uri: axum::http::Uri = base_url
        .parse()
        .context("--public-url must be an absolute http(s) URL")?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if !matches!(scheme.as_str(), "http" | "https")
        || authority.is_empty()
        || authority.contains('@')
    {
        anyhow::bail!("--public-url must be an absolute http(s) URL with a host and no user");
    }
    Ok((scheme, authority.to_owned()))
}

/// `GET /readyz`: 200 when every store answers, else 503 with `Retry-After`, so that a load
/// balancer sends no traffic to an instance whose guarded routes would all answer 503.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: every store answers", body = String, content_type = "text/plain"),
        Unavailable,
    )
)]
async fn ready(State(stores): State<crate::stores::Health>) -> Response {
    match stores.check(READY_TIMEOUT).await {
        Ok(()) => no_store("ok".into_response()),
        Err(unavailable) => unavailable,
    }
}

/// Whether key `id` exists and belongs to `tenant`. Another tenant's key is reported as no
/// key at all (404, not 403), so a caller cannot learn which ids exist elsewhere.
async fn in_tenant(keys: &ApiKeys, id: &str, tenant: &str) -> Result<(), Response> {
    match keys.get(id).await {
        Ok(Some(k)) if k.tenant.as_deref() == Some(tenant) => Ok(()),
        Ok(_) => Err(admin_error(apiauth::api_key::ApiKeyError::NotFound)),
        Err(e) => Err(admin_error(e)),
    }
}

/// Create an API key; the key is in this answer only.
#[utoipa::path(
    post,
    path = "/admin/api-keys",
    tag = "admin",
    request_body = CreateKey,
    responses(
        (status = 201, description = "Created", body = openapi::CreatedKey),
        openapi::BadRequest,
        Unauthorized,
        Forbidden,
        (status = 409, description = "The key cannot be made that way", body = Problem, content_type = "application/problem+json"),
        openapi::PayloadTooLarge,
        openapi::UnsupportedMediaType,
        (status = 422, description = "Not the expected JSON, or an unknown plan (`known_plans` lists the plans)", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [Admin::NAME]), ("oauth2" = [Admin::NAME]), ("bearerAuth" = [Admin::NAME]))
)]
async fn create_key(
    Scoped(p, ..): Scoped<Admin>,
    State(s): State<AdminState>,
    ApiJson(req): ApiJson<CreateKey>,
) -> Response {
    let mut spec = NewKey::new(req.owner).tenant(p.tenant().unwrap_or(TENANT).to_owned());
    if let Some(scopes) = req.scopes {
        spec = spec.scopes(scopes);
    }
    if let Some(plan) = req.plan {
        // An unknown plan would silently get the default quota: refuse it, naming the
        // known ones (the name itself is not echoed).
        if !s.plans.contains(&plan) {
            let detail = format!("Unknown plan; known plans: {}.", s.plans.join(", "));
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                &detail,
                json!({ "known_plans": &*s.plans }),
            );
        }
        spec = spec.plan(plan);
    }
    if let Some(secs) = req.expires_in {
        spec = spec.expires_in(Duration::from_secs(secs));
    }
    match s.keys.create(spec).await {
        Ok(created) => no_store(
            (
                StatusCode::CREATED,
                Json(json!({ "key": created.key.expose_secret(), "summary": created.summary })),
            )
                .into_response(),
        ),
        Err(e) => admin_error(e),
    }
}

/// List the tenant's API keys (no secrets).
#[utoipa::path(
    get,
    path = "/admin/api-keys",
    tag = "admin",
    responses(
        (status = 200, description = "The tenant's keys", body = openapi::KeyList),
        Unauthorized,
        Forbidden,
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [Admin::NAME]), ("oauth2" = [Admin::NAME]), ("bearerAuth" = [Admin::NAME]))
)]
async fn list_keys(Scoped(p, ..): Scoped<Admin>, State(s): State<AdminState>) -> Response {
    let filter = KeyFilter::all().tenant(p.tenant().unwrap_or(TENANT).to_owned());
    match s.keys.list(&filter).await {
        Ok(keys) => Json(json!({ "keys": keys })).into_response(),
        Err(e) => admin_error(e),
    }
}

/// Revoke an API key.
#[utoipa::path(
    delete,
    path = "/admin/api-keys/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 200, description = "Revoked", body = openapi::RevokedKey),
        Unauthorized,
        Forbidden,
        (status = 404, description = "No such key in this tenant (another tenant's key too)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key cannot be changed that way", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [Admin::NAME]), ("oauth2" = [Admin::NAME]), ("bearerAuth" = [Admin::NAME]))
)]
async fn revoke_key(
    Scoped(p, ..): Scoped<Admin>,
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    // A key's tenant never changes, so checking before revoking leaves no gap.
    if let Err(res) = in_tenant(&s.keys, &id, p.tenant().unwrap_or(TENANT)).await {
        return res;
    }
    match s.keys.revoke(&id).await {
        Ok(summary) => Json(json!({ "revoked": summary })).into_response(),
        Err(e) => admin_error(e),
    }
}

/// Rotate an API key; the old key stays valid for the grace period.
#[utoipa::path(
    post,
    path = "/admin/api-keys/{id}/rotate",
    tag = "admin",
    params(("id" = String, Path, description = "The key id")),
    responses(
        (status = 201, description = "The successor", body = openapi::RotatedKey),
        Unauthorized,
        Forbidden,
        (status = 404, description = "No such key in this tenant (another tenant's key too)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key cannot be changed that way", body = Problem, content_type = "application/problem+json"),
        TooManyRequests,
        Unavailable,
    ),
    security(("basicAuth" = [Admin::NAME]), ("oauth2" = [Admin::NAME]), ("bearerAuth" = [Admin::NAME]))
)]
async fn rotate_key(
    Scoped(p, ..): Scoped<Admin>,
    State(s): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    if let Err(res) = in_tenant(&s.keys, &id, p.tenant().unwrap_or(TENANT)).await {
        return res;
    }
    match s.keys.rotate(&id, s.grace).await {
        Ok(created) => no_store(
            (
                StatusCode::CREATED,
                Json(json!({
                    "key": created.key.expose_secret(),
                    "summary": created.summary,
                    "previous_key_valid_for_seconds": s.grace.as_secs(),
                })),
            )
                .into_response(),
        ),
        Err(e) => admin_error(e),
    }
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "admin",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        Unauthorized,
        Forbidden,
        TooManyRequests,
        (status = 503, description = "No metrics recorder is installed"),
    ),
    security(("basicAuth" = [Admin::NAME]), ("oauth2" = [Admin::NAME]), ("bearerAuth" = [Admin::NAME]))
)]
async fn prometheus(_: Scoped<Admin>, State(s): State<AdminState>) -> Response {
    match s.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
