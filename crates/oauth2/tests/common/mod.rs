//! Shared fixtures: an authorization server on a loopback port, a manual clock, cheap argon2.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apiauth_basic::PasswordHasher;
use apiauth_core::clock::{ManualClock, SharedClock};
use apiauth_core::{MemoryRevocationList, ScopeSet};
use apiauth_oauth2::{AuthorizationServer, KeyRotation, MemoryClientRegistry};
use axum::Router;
use tokio::net::TcpListener;

pub const AUDIENCE: &str = "https://api.example.test";
/// A second resource the server issues tokens for (RFC 8707).
pub const REPORTS: &str = "https://reports.example.test/v2";
pub const LIFETIME: Duration = Duration::from_secs(300);
pub const ROTATION: Duration = Duration::from_secs(3600);

/// Argon2id cheap enough for tests (the production default is OWASP's).
pub fn cheap_hasher() -> PasswordHasher {
    PasswordHasher::dangerous_with_params(64, 1, 1).unwrap()
}

/// Serves `app` on a fresh loopback port until the test ends.
pub async fn serve_on(listener: TcpListener, app: Router) {
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
}

pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

pub struct Client {
    pub id: String,
    pub secret: String,
}

/// An authorization server on loopback with three clients:
/// `worker` (scopes `a b`), `other` (scope `a`) and `rs` (a resource server that introspects).
pub struct As {
    pub server: AuthorizationServer,
    pub clients: MemoryClientRegistry,
    pub revoked: MemoryRevocationList,
    pub clock: ManualClock,
    pub addr: SocketAddr,
    pub base: String,
    pub worker: Client,
    pub other: Client,
    pub rs: Client,
    /// Number of requests the introspection endpoint received.
    pub introspections: Arc<AtomicUsize>,
    pub http: reqwest::Client,
}

impl As {
    pub async fn start() -> Self {
        Self::start_with(KeyRotation::every(ROTATION), Duration::ZERO).await
    }

    /// `introspect_delay` holds every introspection answer back, to make requests overlap.
    pub async fn start_with(rotation: KeyRotation, introspect_delay: Duration) -> Self {
        let clock = ManualClock::starting_now();
        let shared: SharedClock = Arc::new(clock.clone());
        let clients = MemoryClientRegistry::with_hasher(cheap_hasher());
        let worker = clients.register("worker", ScopeSet::parse("a b").unwrap());
        let other = clients.register("other", ScopeSet::parse("a").unwrap());
        let rs = clients.register_resource_server("rs");
        let revoked = MemoryRevocationList::with_clock(shared.clone());
        let (listener, addr) = listener().await;
        let base = format!("http://{addr}");
        let server = AuthorizationServer::builder(base.clone())
            .dangerous_allow_http_issuer()
            .audience(AUDIENCE)
            .resource(REPORTS)
            .token_lifetime(LIFETIME)
            .key_rotation(rotation)
            .clients(Arc::new(clients.clone()))
            .revocation_list(Arc::new(revoked.clone()))
            .password_hasher(cheap_hasher())
            .clock(shared)
            .build()
            .unwrap();
        let introspections = Arc::new(AtomicUsize::new(0));
        let counter = introspections.clone();
        let app = server.router().layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    if req.uri().path() == "/oauth/introspect" {
                        counter.fetch_add(1, Ordering::SeqCst);
                        if !introspect_delay.is_zero() {
                            tokio::time::sleep(introspect_delay).await;
                        }
                    }
                    next.run(req).await
                }
            },
        ));
        serve_on(listener, app).await;
        let c = |id: &str, s: apiauth_core::token::SecretString| Client {
            id: id.to_owned(),
            secret: s.expose_secret().to_owned(),
        };
        Self {
            server,
            clients,
            revoked,
            clock,
            addr,
            base,
            worker: c("worker", worker),
            other: c("other", other),
            rs: c("rs", rs),
            introspections,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token for `client` (Basic auth) with `scope`, or the client's default.
    pub async fn token(&self, client: &Client, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let res = self
            .http
            .post(self.url("/oauth/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub fn introspection_count(&self) -> usize {
        self.introspections.load(Ordering::SeqCst)
    }
}
