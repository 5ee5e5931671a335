//! The developer portal: server-rendered pages under `/portal` where a tenant's users
//! manage API keys and OAuth clients, watch usage and read their audit events.
//!
//! - Sign-in checks the password with the suite's [`BasicAuth`] (argon2id, the admin API's
//!   credential store and lock-out counters), so the portal has no password rules of its own.
//! - Sessions ([`session`]): a random 256-bit id in an `HttpOnly`, `SameSite=Strict`,
//!   `Path=/portal` cookie (`Secure` on TLS), renewed at sign-in, deleted at sign-out, with
//!   idle and absolute expiry; the data stays on the server behind [`SessionStore`].
//! - Every form carries the session's CSRF token, compared in constant time; a post with a
//!   foreign `Origin` is refused as well ([`security`]).
//! - Every answer has a CSP without `unsafe-inline` and `frame-ancestors 'none'`, and
//!   `X-Frame-Options: DENY`; pages are `no-store`. The only secrets a page ever holds are a
//!   key or client secret just made, shown once.
//!
//! Seams for other stores: [`SessionStore`] (sessions), the credit ledger's usage history
//! (requests and credits per day), [`ClientWriter`] (the OAuth client registry), [`Portal::credits`] (credit balances).

mod audit;
mod handlers;
mod pages;
mod security;
mod session;
mod usage;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use apiauth::ScopeSet;
use apiauth::api_key::ApiKeys;
use apiauth::basic::{BasicAuth, PasswordHasher};
use apiauth::oauth2::RegisteredClient;
use async_trait::async_trait;
use axum::Router;
use axum::routing::{get, post};

pub use audit::AuditRingLayer;
pub use session::{MemorySessionStore, SessionStore};

/// Writes a client into the OAuth client registry the authorization server reads.
#[async_trait]
pub trait ClientWriter: Send + Sync + 'static {
    async fn put(&self, client: RegisteredClient) -> anyhow::Result<()>;
}

#[async_trait]
impl ClientWriter for apiauth::oauth2::MemoryClientRegistry {
    async fn put(&self, client: RegisteredClient) -> anyhow::Result<()> {
        self.insert(client);
        Ok(())
    }
}

#[async_trait]
impl ClientWriter for apiauth::redis::RedisClientRegistry {
    async fn put(&self, client: RegisteredClient) -> anyhow::Result<()> {
        Ok(self.insert(&client).await?)
    }
}

#[async_trait]
impl ClientWriter for apiauth::sql::SqlClientRegistry {
    async fn put(&self, client: RegisteredClient) -> anyhow::Result<()> {
        Ok(self.insert(&client).await?)
    }
}

#[async_trait]
impl<T: ClientWriter + ?Sized> ClientWriter for Arc<T> {
    async fn put(&self, client: RegisteredClient) -> anyhow::Result<()> {
        (**self).put(client).await
    }
}

/// An OAuth client as the portal lists it (the registry itself has no listing).
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub client_id: String,
    pub scopes: String,
    pub created_at: SystemTime,
    pub secret_rotated_at: Option<SystemTime>,
}

/// A tenant's credit balance, when a credit ledger is configured.
#[derive(Clone, Debug)]
pub struct Credits {
    pub remaining: u64,
    pub next_refill: SystemTime,
}

/// Everything the portal reads and writes.
pub struct Portal {
    pub keys: ApiKeys,
    pub basic: BasicAuth,
    pub sessions: Arc<dyn SessionStore>,
    pub clients: Arc<dyn ClientWriter>,
    /// Tenant → its clients. In memory: the seam for a stored client directory.
    pub client_list: Mutex<BTreeMap<String, Vec<ClientInfo>>>,
    pub hasher: PasswordHasher,
    pub plans: Arc<[String]>,
    /// Scopes a portal user may give a key or client.
    pub grantable: ScopeSet,
    pub grace: Duration,
    /// The server has TLS: cookies are `Secure`, origins `https`.
    pub tls: bool,
    /// The tenants the admin view lists, with or without keys. The seam for a tenant store.
    pub tenants: Vec<String>,
    /// The credit ledger the API charges (plans, balances, refills).
    pub ledger: apiauth::quota::Credits,
}

impl Portal {
    /// Records that `tenant` owns `client` (demo clients at start, portal-made ones after).
    pub fn own_client(&self, tenant: &str, client: ClientInfo) {
        let mut map = self.client_list.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(tenant.to_owned()).or_default();
        list.retain(|c| c.client_id != client.client_id);
        list.push(client);
    }

    /// The tenant's credit balance and next refill, from the ledger the API charges;
    /// `None` when the tenant's plan has no credits or the store does not answer (the pages
    /// then say so).
    pub async fn credits(&self, tenant: &str) -> Option<Credits> {
        let b = self.ledger.tenant_balance(tenant).await.ok().flatten()?;
        Some(Credits {
            remaining: b.remaining,
            next_refill: SystemTime::now() + Duration::from_secs(b.seconds_until_refill),
        })
    }

    /// The routes, all under `/portal`, to merge into the application's router.
    pub fn router(self) -> Router {
        let state = Arc::new(self);
        let pages = Router::new()
            .route("/", get(handlers::home))
            .route(
                "/sign-in",
                get(handlers::sign_in_form).post(handlers::sign_in),
            )
            .route("/sign-out", post(handlers::sign_out))
            .route("/keys", get(handlers::keys).post(handlers::create_key))
            .route("/keys/{id}/rotate", post(handlers::rotate_key))
            .route("/keys/{id}/revoke", post(handlers::revoke_key))
            .route(
                "/clients",
                get(handlers::clients).post(handlers::create_client),
            )
            .route("/clients/{id}/rotate", post(handlers::rotate_client))
            .route("/usage", get(handlers::usage))
            .route("/audit", get(handlers::audit))
            .route("/admin", get(handlers::admin))
            .route("/admin/tenants/{tenant}/credits", post(handlers::top_up))
            .route("/static/portal.js", get(handlers::script))
            .route("/static/portal.css", get(handlers::style))
            .with_state(state.clone());
        Router::new()
            .nest("/portal", pages)
            // A nested "/" serves `/portal` only; the credentials file names `/portal/`.
            .route("/portal/", get(handlers::home).with_state(state))
            .layer(axum::middleware::from_fn(security::headers))
    }
}

/// The demo tenant's portal user (the credentials file names it under `portal`).
pub const DEMO_USER: &str = "acme-portal";

/// What [`Portal::demo`] is made from: the example's own stores.
pub struct DemoParts<'a> {
    pub keys: ApiKeys,
    pub users: apiauth::basic::MemoryCredentialStore,
    pub hasher: PasswordHasher,
    pub lockouts: Arc<dyn apiauth::basic::LockoutStore>,
    pub clients: Arc<dyn ClientWriter>,
    pub tenant: &'a str,
    /// The demo tenant's OAuth clients made at start: (client id, scopes).
    pub demo_clients: &'a [(&'a str, &'a str)],
    pub plans: Arc<[String]>,
    pub grantable: ScopeSet,
    pub grace: Duration,
    pub tls: bool,
    pub tenants: &'a [&'a str],
    pub credits: apiauth::quota::Credits,
    pub sessions: Arc<dyn SessionStore>,
}

impl Portal {
    /// The portal over the example's stores, with memory sessions. Sign-in uses the admin
    /// API's users and lock-out counters, through a Basic authenticator of its own.
    pub fn demo(parts: DemoParts<'_>) -> anyhow::Result<Self> {
        let basic = BasicAuth::builder(parts.users)
            .realm("saas-portal")
            .password_hasher(parts.hasher.clone())
            .lockout_store(parts.lockouts)
            .build()?;
        let portal = Self {
            keys: parts.keys,
            basic,
            sessions: parts.sessions,
            clients: parts.clients,
            client_list: Mutex::default(),
            hasher: parts.hasher,
            plans: parts.plans,
            grantable: parts.grantable,
            grace: parts.grace,
            tls: parts.tls,
            tenants: parts.tenants.iter().map(|t| (*t).to_owned()).collect(),
            ledger: parts.credits,
        };
        let now = SystemTime::now();
        for (id, scopes) in parts.demo_clients {
            portal.own_client(
                parts.tenant,
                ClientInfo {
                    client_id: (*id).to_owned(),
                    scopes: (*scopes).to_owned(),
                    created_at: now,
                    secret_rotated_at: None,
                },
            );
        }
        Ok(portal)
    }
}
