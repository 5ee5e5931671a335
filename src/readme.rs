//! The README's Rust snippets, compiled as doctests.
//!
//! Each block below holds one snippet of `README.md` verbatim, between hidden lines (`# `)
//! that give it what the README leaves to the surrounding text: imports, a scope, an async
//! function to `?` and `.await` in. The README itself stays free of those lines, and
//! `tests/readme.rs` fails when a README snippet is not found here word for word, so the
//! README cannot drift from code that compiles.

/// README snippet 1: scopes.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use apiauth::{scope, Auth, Scoped, AllOf};
///
/// scope!(pub ContactsRead = "contacts:read");
/// scope!(pub EnrichWrite = "enrich:write");
///
/// async fn whoami(Auth(p): Auth) -> String { p.subject().to_owned() }
/// async fn search(Scoped(p, ..): Scoped<ContactsRead>) -> String { p.subject().to_owned() }
/// async fn both(_: Scoped<AllOf<(ContactsRead, EnrichWrite)>>) {}
/// # Ok(())
/// # }
/// ```
pub struct Snippet1;

/// README snippet 2: api_keys.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::sync::Arc;
/// use apiauth::api_key::{ApiKeys, MemoryApiKeyStore, NewKey};
/// use apiauth::{scope, ScopeSet, Scoped};
/// use axum::{routing::get, Router};
///
/// scope!(pub ReportsRead = "reports:read");
/// async fn reports(Scoped(p, ..): Scoped<ReportsRead>) -> String { format!("hi {}", p.subject()) }
///
/// let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new())).prefix("sk_live_")?;
/// let app: Router = Router::new()
///     .route("/reports", get(reports))
///     .layer(keys.auth().realm("api").layer()?);
/// let created = keys
///     .create(NewKey::new("alice").tenant("acme").scopes(ScopeSet::parse("reports:read")?))
///     .await?; // give created.key.expose_secret() to alice, once
/// # Ok(())
/// # }
/// ```
pub struct Snippet2;

/// README snippet 3: basic.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use apiauth::basic::{BasicAuth, MemoryCredentialStore, PasswordHasher};
///
/// let hasher = PasswordHasher::default(); // argon2id m=19456 KiB, t=2, p=1
/// let users = MemoryCredentialStore::new();
/// users.insert_user("Aladdin", hasher.hash("open sesame"));
/// let layer = BasicAuth::builder(users).realm("admin").password_hasher(hasher).layer()?;
/// # Ok(())
/// # }
/// ```
pub struct Snippet3;

/// README snippet 4: jwt.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # use axum::{routing::get, Router};
/// # use apiauth::{scope, Scoped};
/// # scope!(ReportsRead = "reports:read");
/// use apiauth::bearer::Bearer;
/// use apiauth::jwt::{Issuer, JwtVerifier};
///
/// let verifier = JwtVerifier::builder()
///     .issuer(Issuer::jwks("https://idp.example", "https://idp.example/.well-known/jwks.json")
///         .audience("https://api.example")
///         .require_at_jwt())
///     .build()
///     .await?; // fails fast if the JWKS cannot be fetched
/// let app: Router = Router::new()
///     .route("/reports", get(|Scoped(p, ..): Scoped<ReportsRead>| async move { p.subject().to_owned() }))
///     .layer(Bearer::new(verifier).layer());
/// # Ok(())
/// # }
/// ```
pub struct Snippet4;

/// README snippet 5: oauth2.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # use std::sync::Arc;
/// # use axum::{routing::get, Router};
/// # use apiauth::{scope, ScopeSet, Scoped};
/// # use apiauth::bearer::Bearer;
/// # use apiauth::jwt::{Issuer, JwtVerifier};
/// # scope!(InvoicesRead = "invoices:read");
/// use apiauth::oauth2::{AuthorizationServer, IntrospectionVerifier, MemoryClientRegistry};
///
/// let clients = MemoryClientRegistry::new();
/// let worker_secret = clients.register("billing-worker", ScopeSet::parse("invoices:read")?); // shown once
/// let auth = AuthorizationServer::builder("https://auth.example.com")
///     .audience("https://invoices.example.com")
///     .clients(Arc::new(clients))
///     .build()?;
/// let auth_app: Router = auth.router(); // /oauth/token, /oauth/revoke, /oauth/introspect, JWKS, RFC 8414
///
/// // The API verifies the server's RFC 9068 tokens with apiauth-jwt …
/// let verifier = JwtVerifier::builder()
///     .issuer(Issuer::new(auth.issuer()).discovery_url(auth.metadata_url())
///         .audience(auth.audience()).require_at_jwt())
///     .build().await?;
/// // … or by introspection: IntrospectionVerifier::builder(auth.introspection_endpoint())
/// let api: Router = Router::new()
///     .route("/invoices", get(|Scoped(p, ..): Scoped<InvoicesRead>| async move { p.subject().to_owned() }))
///     .layer(Bearer::new(verifier).layer());
/// # Ok(())
/// # }
/// ```
pub struct Snippet5;

/// README snippet 6: hmac.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # use axum::{routing::post, Router};
/// # use apiauth::Auth;
/// use apiauth::hmac::{HmacKey, HmacSecret, HttpSignatureVerifier, MemoryHmacKeyStore, Signer};
/// use apiauth::AuthLayer;
///
/// let secret = HmacSecret::generate();
/// let keys = MemoryHmacKeyStore::new();
/// keys.insert("client-1", HmacKey::new("acme-billing").secret(secret.clone()));
///
/// // Server: guard a route (behind a TLS terminator add `.scheme("https")`).
/// let app: Router = Router::new()
///     .route("/orders", post(|Auth(p): Auth| async move { p.subject().to_owned() }))
///     .layer(AuthLayer::new(HttpSignatureVerifier::builder(keys).build()?));
///
/// // Client: sign a request (adds Content-Digest, Signature-Input, Signature).
/// let signer = Signer::builder("client-1", secret).build()?;
/// let mut req = http::Request::post("https://api.example.com/orders").body(b"{}".to_vec())?;
/// signer.sign(&mut req)?; // or apiauth::hmac::sign_reqwest(&mut req, &signer), feature "reqwest"
/// # Ok(())
/// # }
/// ```
pub struct Snippet6;

/// README snippet 7: quota.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # use std::sync::Arc;
/// # use axum::{routing::get, Router};
/// # use apiauth::api_key::{ApiKeys, MemoryApiKeyStore};
/// # use apiauth::bearer::Bearer;
/// # use apiauth::jwt::{Issuer, JwtVerifier};
/// # async fn item() {}
/// # let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new()));
/// # let verifier = JwtVerifier::builder().issuer(Issuer::jwks("https://idp.example", "https://idp.example/jwks.json").audience("api")).build().await?;
/// use apiauth::quota::{own_usage, QuotaLayer, QuotaPolicy};
///
/// let quota = QuotaLayer::builder()
///     .plan("free", QuotaPolicy::per_minute(20).burst(20))
///     .plan("pro", QuotaPolicy::per_second(100).burst(200))
///     .build()?;
/// let app: Router = Router::new()
///     .route("/items/{id}", get(item))
///     .route("/usage", get(own_usage))   // the caller's own counts
///     .layer(quota)                      // inside: sees the Principal and the route template
///     .layer(keys.auth().layer()?)       // outside: authenticates first
///     .layer(Bearer::new(verifier).layer());
/// # Ok(())
/// # }
/// ```
pub struct Snippet7;

/// README snippet 8: redis.
///
/// ```rust
/// # async fn readme() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # use apiauth::api_key::ApiKeys;
/// # use apiauth::quota::QuotaLayer;
/// use apiauth::redis::{RedisBackend, Stores};
///
/// let stores = match std::env::var("APP_REDIS_URL") {
///     Ok(url) => RedisBackend::builder(url).namespace("myapp").build()?.stores(),
///     Err(_) => Stores::in_memory(),
/// };
/// let keys = ApiKeys::new(stores.api_keys.clone());
/// let quota = QuotaLayer::builder()
///     .limiter(stores.rate_limiter.clone())
///     .usage_meter(stores.usage.clone())
///     .build()?;
/// // stores.revocations → JwtVerifier / AuthorizationServer; stores.replay → signature verifiers
/// # Ok(())
/// # }
/// ```
pub struct Snippet8;
