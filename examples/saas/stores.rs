//! Which store holds what: SQL for records, Redis (when given) for hot short-lived state,
//! memory for a single process. One [`Stores`] bundle, picked from the command line:
//!
//! | mode | flags | records (keys, clients, revocations, usage, signing keys, demo seed) | hot state (nonces, DPoP proofs, rate limits, lock-outs) | credit balances | billing history |
//! |---|---|---|---|---|---|
//! | SQLite (default) | none | `target/saas.db` | memory | `target/saas.db` | `target/saas.db` |
//! | SQL | `--database-url postgres://…` (or `sqlite:…`) | that database | memory | the database | the database |
//! | SQL + Redis | `--database-url … --redis-url …` | the database | Redis | Redis | the database |
//! | Redis alone | `--redis-url …` | Redis | Redis | Redis | memory (per instance) |
//! | memory | `--in-memory` | memory | memory | memory | memory |
//!
//! With SQL and Redis both given, balances live in Redis only (atomic scripts, one round
//! trip): there is no balance of record in SQL behind a Redis hot counter, so a Redis that
//! loses its data (no persistence configured) starts every tenant's period again at its
//! allowance. docs/ARCHITECTURE.md ("Credits") says why.
//!
//! The bundle lives in the example, not in a library crate: a library type composing SQL and
//! Redis would make every user of one build the other. Each piece it composes is a library
//! store (`apiauth::sql`, `apiauth::redis`, the method crates' memory stores).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use apiauth::oauth2::{ClientRegistry, MemoryClientRegistry, RegisteredClient};
use apiauth::redis::RedisBackend;
use apiauth::sql::{KeyEncryptionKey, SqlDatabase, SqlUsageHistory, SqlUsageMeter};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cli::Args;

/// Where the default run keeps its state, relative to the working directory.
pub const DEFAULT_DATABASE: &str = "sqlite:target/saas.db";

/// The stores of one instance, and what `/readyz` and shutdown need of them.
pub struct Stores {
    /// The shared-state stores the layers read.
    pub bundle: apiauth::redis::Stores,
    /// The demo seed this instance derives the demo tenant from: the one given, the one the
    /// database remembers, or (first start, or no database) a new random one.
    pub demo_seed: Option<String>,
    /// The authorization server's signing key, from the database (sealed there under the
    /// KEK); `None` without a database (the key is then derived from the demo seed).
    pub signing_key_der: Option<Vec<u8>>,
    clients: Clients,
    health: Health,
    usage: Option<SqlUsageMeter>,
    history: Option<SqlUsageHistory>,
}

enum Clients {
    Memory,
    Redis(RedisBackend),
    Sql(apiauth::sql::SqlClientRegistry),
}

/// What `/readyz` pings.
#[derive(Clone, Default)]
pub struct Health {
    redis: Option<RedisBackend>,
    sql: Option<SqlDatabase>,
}

impl Health {
    /// `Ok` when every store answers within `within`, else 503 with `Retry-After`.
    pub async fn check(&self, within: std::time::Duration) -> Result<(), Response> {
        if let Some(r) = &self.redis
            && !matches!(tokio::time::timeout(within, r.ping()).await, Ok(Ok(())))
        {
            return Err(unavailable("Redis"));
        }
        if let Some(db) = &self.sql
            && !matches!(tokio::time::timeout(within, db.ping()).await, Ok(Ok(())))
        {
            return Err(unavailable("the database"));
        }
        Ok(())
    }
}

fn unavailable(what: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": "Service Unavailable",
        "status": 503,
        "detail": format!("A store this instance needs ({what}) is not answering."),
    });
    let mut res = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The filesystem path of a `sqlite:` URL (`sqlite:path`, `sqlite://path`, query dropped).
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(path))
}

/// The key-encryption key: `--kek` / `APIAUTH_KEK`, else (SQLite only) the file beside the
/// database, created once readable by its owner only.
fn key_encryption_key(args: &Args, db_file: Option<&Path>) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(text) = &args.kek {
        return KeyEncryptionKey::parse(text).context("--kek / APIAUTH_KEK");
    }
    let Some(db_file) = db_file else {
        anyhow::bail!(
            "a PostgreSQL database needs --kek or APIAUTH_KEK (32 bytes, hex or base64), the \
             same on every instance: it seals the signing keys stored there"
        );
    };
    let mut path = db_file.as_os_str().to_owned();
    path.push(".kek");
    let path = PathBuf::from(path);
    match std::fs::read_to_string(&path) {
        Ok(text) => KeyEncryptionKey::parse(&text)
            .with_context(|| format!("the key-encryption key in {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (kek, text) = KeyEncryptionKey::generate()?;
            write_new_private(&path, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::warn!(
                "generated a key-encryption key into {} (mode 0600): it seals the signing \
                 keys in the database; keep it apart from the database in production \
                 (--kek / APIAUTH_KEK)",
                path.display()
            );
            Ok(kek)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Creates `path` (failing if it exists), readable by its owner only.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// The demo seed the database remembers, stored on first start; instances starting at once
/// agree on the first one written.
async fn remembered_seed(db: &SqlDatabase, given: Option<&str>) -> anyhow::Result<String> {
    let pool = db.pool();
    apiauth::sql::sqlx::query(
        "CREATE TABLE IF NOT EXISTS saas_demo (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )
    .execute(pool)
    .await
    .context("creating the example's table saas_demo")?;
    if let Some(seed) = given {
        return Ok(seed.to_owned());
    }
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).context("OS randomness")?;
    let fresh: String = b.iter().map(|x| format!("{x:02x}")).collect();
    apiauth::sql::sqlx::query(
        "INSERT INTO saas_demo (name, value) VALUES ('seed', $1) ON CONFLICT DO NOTHING",
    )
    .bind(&fresh)
    .execute(pool)
    .await
    .context("storing the demo seed")?;
    let seed: String =
        apiauth::sql::sqlx::query_scalar("SELECT value FROM saas_demo WHERE name = 'seed'")
            .fetch_one(pool)
            .await
            .context("reading the demo seed")?;
    Ok(seed)
}

/// Opens the stores the command line asks for and logs which backends are in use.
pub async fn open(args: &Args) -> anyhow::Result<Stores> {
    let redis = match &args.redis_url {
        Some(url) => {
            let backend = RedisBackend::builder(url.clone())
                .namespace("apiauth-saas")
                .build()
                .context("Redis configuration")?;
            backend
                .ping()
                .await
                .context("Redis is not reachable at --redis-url")?;
            Some(backend)
        }
        None => None,
    };
    // Redis alone (today's multi-instance mode) unless a database is named.
    let database_url = match (&args.database_url, &redis, args.in_memory) {
        (_, _, true) => None,
        (Some(url), _, _) => Some(url.clone()),
        (None, Some(_), _) => None,
        (None, None, _) => Some(DEFAULT_DATABASE.to_owned()),
    };
    let mut bundle = match &redis {
        Some(r) => r.stores(),
        None => apiauth::redis::Stores::in_memory(),
    };
    let pem_key = match &args.signing_key_pem {
        Some(path) => Some(signing_key_from_pem(path)?),
        None => None,
    };
    let Some(url) = database_url else {
        let (what, clients) = match &redis {
            Some(r) => (
                "Redis (all state; several instances act as one)",
                Clients::Redis(r.clone()),
            ),
            None => (
                "memory only: every key, client, revocation and usage count is lost at exit",
                Clients::Memory,
            ),
        };
        tracing::info!("stores: {what}");
        return Ok(Stores {
            bundle,
            demo_seed: args.demo_seed.clone(),
            signing_key_der: pem_key,
            clients,
            health: Health { redis, sql: None },
            usage: None,
            history: None,
        });
    };

    let db_file = sqlite_path(&url);
    if let Some(dir) = db_file.as_deref().and_then(Path::parent)
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let kek = key_encryption_key(args, db_file.as_deref())?;
    let db = SqlDatabase::builder(url.as_str())
        .connect()
        .await
        .context("opening the database (--database-url)")?;
    let signing = apiauth::sql::SqlSigningKeyStore::open(&db, kek)
        .await
        .context("the signing keys")?;
    // A key from a PEM file is used as it is: nothing is generated or written for it.
    let (signing_key_der, key_source) = match pem_key {
        Some(der) => (der, "from --signing-key-pem".to_owned()),
        None => {
            let k = signing
                .current_or_generate()
                .await
                .context("the signing key")?;
            (k.private_key_der().to_vec(), k.kid().to_owned())
        }
    };
    let demo_seed = remembered_seed(&db, args.demo_seed.as_deref()).await?;

    // Records in SQL, each read through a bounded cache (LISTEN/NOTIFY on PostgreSQL).
    bundle.api_keys = Arc::new(db.cached_api_key_store());
    bundle.revocations = Arc::new(db.cached_revocation_list());
    let usage = db.usage_meter();
    bundle.usage = Arc::new(usage.clone());
    let where_ = match &db_file {
        Some(f) => format!("{} {}", db.dialect().name(), f.display()),
        None => db.dialect().name().to_owned(),
    };
    let hot = if redis.is_some() {
        "Redis"
    } else {
        "memory (this process)"
    };
    tracing::info!(
        "stores: records (API keys, OAuth clients, revocations, usage, signing key {}) in \
         {where_}; nonces, rate limits and lock-outs in {hot}",
        key_source
    );
    Ok(Stores {
        bundle,
        demo_seed: Some(demo_seed),
        signing_key_der: Some(signing_key_der),
        clients: Clients::Sql(db.client_registry()),
        history: Some(db.usage_history()),
        health: Health {
            redis,
            sql: Some(db),
        },
        usage: Some(usage),
    })
}

impl Stores {
    /// Stores the demo clients (replacing earlier records of them) and hands back the
    /// registry the authorization server reads.
    pub async fn clients(
        &self,
        hasher: &apiauth::basic::PasswordHasher,
        clients: Vec<RegisteredClient>,
    ) -> anyhow::Result<(
        Arc<dyn ClientRegistry>,
        Arc<dyn crate::portal::ClientWriter>,
    )> {
        Ok(match &self.clients {
            Clients::Memory => {
                let registry = MemoryClientRegistry::with_hasher(hasher.clone());
                for c in clients {
                    registry.insert(c);
                }
                (Arc::new(registry.clone()), Arc::new(registry))
            }
            Clients::Redis(r) => {
                let registry = r.client_registry();
                for c in &clients {
                    registry.insert(c).await?;
                }
                (Arc::new(registry.clone()), Arc::new(registry))
            }
            Clients::Sql(registry) => {
                for c in &clients {
                    registry.insert(c).await?;
                }
                (Arc::new(registry.clone()), Arc::new(registry.clone()))
            }
        })
    }

    /// Where credit balances live: Redis when given (atomic scripts shared by every
    /// instance), else the database (one conditional statement per change), else memory.
    pub fn credit_store(&self) -> Arc<dyn apiauth::quota::CreditStore> {
        match (&self.health.redis, &self.health.sql) {
            (Some(r), _) => Arc::new(apiauth::redis::RedisCreditStore::new(r.clone())),
            (None, Some(db)) => Arc::new(apiauth::sql::SqlCreditStore::new(db.clone())),
            (None, None) => Arc::new(apiauth::quota::MemoryCreditStore::new()),
        }
    }

    /// Where the billing history lives: the database when there is one (it survives a
    /// restart and every instance adds to the same rows), else this process's memory.
    pub fn usage_history(&self) -> Arc<dyn apiauth::quota::UsageHistory> {
        match &self.history {
            Some(h) => Arc::new(h.clone()),
            None => Arc::new(apiauth::quota::MemoryUsageHistory::new()),
        }
    }

    /// Where portal sessions live: the database when there is one (they survive a restart
    /// and are shared by instances), else memory.
    pub fn session_store(&self) -> Arc<dyn crate::portal::SessionStore> {
        match &self.health.sql {
            Some(db) => Arc::new(db.session_store()),
            None => Arc::new(crate::portal::MemorySessionStore::default()),
        }
    }

    /// What `/readyz` pings.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Writes what must not be lost at exit (pending usage counts and billing rows).
    pub async fn shutdown(&self) {
        if let Some(u) = &self.usage
            && let Err(e) = u.flush().await
        {
            tracing::warn!("could not flush usage counts: {e}");
        }
        if let Some(h) = &self.history
            && let Err(e) = h.flush().await
        {
            tracing::warn!("could not flush the usage history: {e}");
        }
    }
}

/// The DER of the one private key in a PEM file (RFC 7468), checked to be a P-256 key.
fn signing_key_from_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    use tokio_rustls::rustls::pki_types::PrivateKeyDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let key = PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("no private key in {}", path.display()))?;
    let der = key.secret_der().to_vec();
    aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
    )
    .map_err(|_| anyhow::anyhow!("{} does not hold a P-256 private key", path.display()))?;
    Ok(der)
}
