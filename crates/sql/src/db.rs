//! One connection pool for every store, on SQLite or PostgreSQL through sqlx's `any` driver:
//! one code path, one SQL text per statement (`$1` placeholders and `ON CONFLICT` mean the same
//! in both), and the few differences kept in [`Dialect`].

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apiauth_core::StoreError;
use apiauth_core::clock::{SharedClock, SystemClock};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

use crate::error::{LOG_TARGET, SqlError, unavailable};

/// Default bound on one store operation; past it the operation is a 503.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Default time SQLite waits for another writer before giving up (`PRAGMA busy_timeout`).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default pool size.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite, embedded: a file, opened in WAL mode with a busy timeout.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Dialect {
    /// The dialect of `url`: `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub fn of_url(url: &str) -> Result<Self, SqlError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(SqlError::UnsupportedUrl)
        }
    }

    /// `SQLite` or `PostgreSQL`, for logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// The column type of raw bytes.
    pub(crate) const fn blob(self) -> &'static str {
        match self {
            Self::Sqlite => "BLOB",
            Self::Postgres => "BYTEA",
        }
    }

    /// A text column compared and ordered bytewise, as Rust orders strings (SQLite's
    /// default; PostgreSQL's default collation follows the locale).
    pub(crate) const fn text_bytewise(self) -> &'static str {
        match self {
            Self::Sqlite => "TEXT",
            Self::Postgres => "TEXT COLLATE \"C\"",
        }
    }
}

/// Builder for [`SqlDatabase`].
#[must_use]
pub struct SqlDatabaseBuilder {
    url: String,
    command_timeout: Duration,
    busy_timeout: Duration,
    max_connections: u32,
    clock: SharedClock,
    cache_ttl: Duration,
    cache_capacity: usize,
}

impl fmt::Debug for SqlDatabaseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password.
        f.debug_struct("SqlDatabaseBuilder")
            .field("command_timeout", &self.command_timeout)
            .field("busy_timeout", &self.busy_timeout)
            .field("max_connections", &self.max_connections)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl SqlDatabaseBuilder {
    /// Bounds every store operation (acquiring a connection included); past it the operation
    /// fails with [`StoreError::Unavailable`], a 503. Default [`DEFAULT_COMMAND_TIMEOUT`].
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// SQLite's wait for a concurrent writer. Default [`DEFAULT_BUSY_TIMEOUT`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// At most `n` connections (at least 1). Default [`DEFAULT_MAX_CONNECTIONS`].
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The clock the stores read (expiry, revocation ends, usage periods).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The longest a cached record lives (the `cached_*` stores): the bound on seeing a
    /// change when no notification arrives. Default [`DEFAULT_CACHE_TTL`](crate::DEFAULT_CACHE_TTL).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Records each cache holds. Default [`DEFAULT_CACHE_CAPACITY`](crate::DEFAULT_CACHE_CAPACITY).
    pub fn cache_capacity(mut self, n: usize) -> Self {
        self.cache_capacity = n.max(1);
        self
    }

    /// Connects and brings the schema up to date (each version in one transaction; a
    /// database already up to date is left alone). Fails if the database cannot be reached:
    /// a startup error, kept apart from the request path's 503s.
    pub async fn connect(self) -> Result<SqlDatabase, SqlError> {
        install_drivers();
        let dialect = Dialect::of_url(&self.url)?;
        let url = match dialect {
            Dialect::Sqlite => sqlite_url(&self.url),
            Dialect::Postgres => self.url.clone(),
        };
        // An in-memory SQLite database is one per connection: keep one.
        let max = if url.contains(":memory:") {
            1
        } else {
            self.max_connections
        };
        let busy_ms = self.busy_timeout.as_millis().min(i32::MAX as u128);
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(self.command_timeout)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL: readers never wait for the writer; the busy timeout makes
                        // writers queue instead of failing at once.
                        conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                            .await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|source| SqlError::Connect {
                dialect: dialect.name(),
                source,
            })?;
        // SQLite: every change goes through this process, which hears its own at once.
        let registry = crate::cache::Registry::new(dialect == Dialect::Sqlite);
        let db = SqlDatabase {
            inner: Arc::new(Inner {
                pool,
                dialect,
                timeout: self.command_timeout,
                clock: self.clock,
                registry,
                cache_ttl: self.cache_ttl,
                cache_capacity: self.cache_capacity,
            }),
        };
        crate::migrate::run(&db).await?;
        if dialect == Dialect::Postgres {
            crate::cache::spawn_listener(url, &db.inner.registry);
        }
        tracing::info!(target: LOG_TARGET, dialect = dialect.name(), "sql stores ready");
        Ok(db)
    }
}

/// `sqlite:path` with `mode=rwc` unless a mode is given, so a missing file is created.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// A pool on one database, migrated, from which every SQL store is made.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use apiauth_sql::SqlDatabase;
/// # let dir = std::env::temp_dir().join(format!("apiauth-sql-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let url = format!("sqlite:{}", dir.join("app.db").display());
/// // `sqlite:target/app.db` (created when missing) or `postgres://user@host/db`.
/// let db = SqlDatabase::builder(url).connect().await?;
/// let keys = apiauth_api_key::ApiKeys::new(std::sync::Arc::new(db.api_key_store()));
/// # let _ = keys;
/// # drop(db); std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
///
/// Cheap to clone. The pool reconnects by itself, so service resumes when the database does.
#[derive(Clone)]
pub struct SqlDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    dialect: Dialect,
    timeout: Duration,
    clock: SharedClock,
    registry: Arc<crate::cache::Registry>,
    cache_ttl: Duration,
    cache_capacity: usize,
}

impl fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("dialect", &self.inner.dialect)
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl SqlDatabase {
    /// Starts a database on `url`: `sqlite:path/to/file.db` or `postgres://…`.
    pub fn builder(url: impl Into<String>) -> SqlDatabaseBuilder {
        SqlDatabaseBuilder {
            url: url.into(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            clock: Arc::new(SystemClock),
            cache_ttl: crate::DEFAULT_CACHE_TTL,
            cache_capacity: crate::DEFAULT_CACHE_CAPACITY,
        }
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.inner.dialect
    }

    /// The pool, for an app that keeps its own tables in the same database.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Whether the database answers now (for a readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run("ping", async {
            sqlx::query("SELECT 1").execute(self.pool()).await?;
            Ok(())
        })
        .await
    }

    /// Closes every connection; later operations fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub(crate) fn registry(&self) -> &Arc<crate::cache::Registry> {
        &self.inner.registry
    }

    pub(crate) fn cache_ttl(&self) -> Duration {
        self.inner.cache_ttl
    }

    pub(crate) fn cache_capacity(&self) -> usize {
        self.inner.cache_capacity
    }

    /// Runs `f` bounded by the command timeout, mapping every failure to
    /// [`StoreError::Unavailable`].
    pub(crate) async fn run<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.inner.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(op, &e)),
            Err(_) => {
                tracing::warn!(target: LOG_TARGET, op, "sql statement timed out");
                Err(StoreError::Unavailable(format!("sql: {op} timed out")))
            }
        }
    }

    /// The revocation list on this database.
    pub fn revocation_list(&self) -> crate::SqlRevocationList {
        crate::SqlRevocationList::new(self.clone())
    }

    /// The revocation list behind a bounded cache of its answers (the warm path; see
    /// [`CachedRevocationList`](crate::CachedRevocationList)).
    pub fn cached_revocation_list(&self) -> crate::CachedRevocationList {
        crate::CachedRevocationList::new(self.clone())
    }

    /// The API key store behind a bounded cache of verified records (the warm path; see
    /// [`CachedApiKeyStore`](crate::CachedApiKeyStore)).
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn cached_api_key_store(&self) -> crate::CachedApiKeyStore {
        crate::CachedApiKeyStore::new(self.clone())
    }

    /// The API key store on this database.
    #[cfg(feature = "api-key")]
    #[cfg_attr(docsrs, doc(cfg(feature = "api-key")))]
    pub fn api_key_store(&self) -> crate::SqlApiKeyStore {
        crate::SqlApiKeyStore::new(self.clone())
    }

    /// The HTTP Basic credential store on this database.
    #[cfg(feature = "basic")]
    #[cfg_attr(docsrs, doc(cfg(feature = "basic")))]
    pub fn credential_store(&self) -> crate::SqlCredentialStore {
        crate::SqlCredentialStore::new(self.clone())
    }

    /// The OAuth 2.0 client registry on this database.
    #[cfg(feature = "oauth2-server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "oauth2-server")))]
    pub fn client_registry(&self) -> crate::SqlClientRegistry {
        crate::SqlClientRegistry::new(self.clone())
    }

    /// The usage meter on this database.
    #[cfg(feature = "quota")]
    #[cfg_attr(docsrs, doc(cfg(feature = "quota")))]
    pub fn usage_meter(&self) -> crate::SqlUsageMeter {
        crate::SqlUsageMeter::new(self.clone())
    }

    /// The billing history on this database (credits' per-day usage rows).
    #[cfg(feature = "quota")]
    pub fn usage_history(&self) -> crate::SqlUsageHistory {
        crate::SqlUsageHistory::new(self.clone())
    }

    /// The browser session store on this database.
    pub fn session_store(&self) -> crate::SqlSessionStore {
        crate::SqlSessionStore::new(self.clone())
    }
}

/// Makes sqlx's `Any` backend know our two dialects, unless the application has installed a
/// driver set of its own. The list is process-wide and can be set once; sqlx's
/// `install_default_drivers` panics when an application set it first, and a library must
/// neither panic on that nor take over state the application owns. With the application's
/// set, a URL whose driver it lacks is a connect error (`SqlError`), not a panic.
fn install_drivers() {
    // Err means a set is already installed (ours from an earlier connect, or the app's).
    let _ = sqlx::any::install_drivers(&[sqlx::postgres::any::DRIVER, sqlx::sqlite::any::DRIVER]);
}
