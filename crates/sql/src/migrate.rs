//! Embedded migrations: numbered versions, each applied in one transaction together with its
//! row in `apiauth_schema`, so a version is either wholly there or not at all. Concurrent
//! instances serialise on a lock (PostgreSQL: a transaction advisory lock; SQLite:
//! `BEGIN IMMEDIATE`), so running migrations twice, or from two processes at once, is a no-op.

use sqlx::AnyConnection;

use crate::db::{Dialect, SqlDatabase};
use crate::error::SqlError;

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 7;

/// Arbitrary constant naming the migration lock in `pg_advisory_xact_lock`.
const PG_LOCK: i64 = 0x0061_7069_6175_7468; // "apiauth"

/// The statements of version `v`, with the dialect's types filled in.
fn version(v: i64, d: Dialect) -> Vec<String> {
    let (blob, text) = (d.blob(), d.text_bytewise());
    let v1 = [
        format!(
            "CREATE TABLE apiauth_api_keys (
                id {text} PRIMARY KEY,
                hash {blob} NOT NULL,
                owner {text} NOT NULL,
                tenant {text},
                scopes TEXT NOT NULL,
                plan TEXT,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                last_used_at BIGINT,
                rotated_to TEXT,
                rotated_from TEXT,
                grace_until BIGINT,
                version BIGINT NOT NULL DEFAULT 0)"
        ),
        "CREATE INDEX apiauth_api_keys_by_created ON apiauth_api_keys (created_at, id)".into(),
        "CREATE INDEX apiauth_api_keys_by_owner ON apiauth_api_keys (owner, created_at, id)".into(),
        "CREATE INDEX apiauth_api_keys_by_tenant ON apiauth_api_keys (tenant, created_at, id)"
            .into(),
        // Ids of any length (JWT `jti`s come from tokens) are keyed by their SHA-256.
        format!(
            "CREATE TABLE apiauth_revocations (
                id_hash {blob} PRIMARY KEY,
                until_ms BIGINT NOT NULL)"
        ),
        "CREATE INDEX apiauth_revocations_by_end ON apiauth_revocations (until_ms)".into(),
        format!(
            "CREATE TABLE apiauth_basic_users (
                user_id {text} PRIMARY KEY,
                subject TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                tenant TEXT,
                scopes TEXT NOT NULL,
                generation BIGINT NOT NULL)"
        ),
        format!(
            "CREATE TABLE apiauth_counters (
                name {text} PRIMARY KEY,
                value BIGINT NOT NULL)"
        ),
        "INSERT INTO apiauth_counters (name, value) VALUES ('basic_generation', 0)".into(),
        format!(
            "CREATE TABLE apiauth_oauth_clients (
                client_id {text} PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                scopes TEXT NOT NULL,
                may_request_tokens BIGINT NOT NULL,
                may_introspect BIGINT NOT NULL,
                suspended BIGINT NOT NULL)"
        ),
        // One row per caller, route template, status class and UTC day: a rollup.
        format!(
            "CREATE TABLE apiauth_usage (
                identity {text} NOT NULL,
                route {text} NOT NULL,
                status_class BIGINT NOT NULL,
                day BIGINT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (identity, route, status_class, day))"
        ),
        // Private keys sealed with AES-256-GCM under the operator's key-encryption key.
        format!(
            "CREATE TABLE apiauth_signing_keys (
                kid {text} PRIMARY KEY,
                algorithm TEXT NOT NULL,
                nonce {blob} NOT NULL,
                sealed {blob} NOT NULL,
                created_at BIGINT NOT NULL,
                retired_at BIGINT)"
        ),
        // A known plaintext sealed under the key-encryption key, so a wrong one is refused
        // at startup rather than at the first token.
        format!(
            "CREATE TABLE apiauth_kek_check (
                id BIGINT PRIMARY KEY,
                nonce {blob} NOT NULL,
                sealed {blob} NOT NULL)"
        ),
    ];
    // Version 4: browser sessions (session.rs).
    let v4 = [
        format!(
            "CREATE TABLE apiauth_sessions (
                id_hash {blob} PRIMARY KEY,
                data TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                expires_at BIGINT NOT NULL)"
        ),
        "CREATE INDEX apiauth_sessions_by_expiry ON apiauth_sessions (expires_at)".into(),
    ];
    match (v, d) {
        (1, _) => v1.into_iter().collect(),
        (2, Dialect::Postgres) => v2_postgres(),
        // Version 2 on SQLite: nothing (one process hears its own changes).
        (3, _) => v3(d),
        (4, _) => v4.into_iter().collect(),
        // Version 5: the tenant an OAuth client belongs to (NULL: none).
        (5, _) => vec![format!(
            "ALTER TABLE apiauth_oauth_clients ADD COLUMN tenant {}",
            d.text_bytewise()
        )],
        (6, _) => v6(d),
        // Version 7: an RFC 8705 certificate registration (parameter and value; NULL: none).
        (7, _) => vec![
            "ALTER TABLE apiauth_oauth_clients ADD COLUMN tls_auth_parameter TEXT".into(),
            "ALTER TABLE apiauth_oauth_clients ADD COLUMN tls_auth_value TEXT".into(),
        ],
        _ => Vec::new(),
    }
}

/// Version 2 on PostgreSQL: every change to a record a cache may hold notifies
/// `apiauth_changes` (crate::cache) in the changing transaction, whoever makes it; the
/// notification is delivered at commit, or never if the transaction rolls back.
fn v2_postgres() -> Vec<String> {
    vec![
        "CREATE OR REPLACE FUNCTION apiauth_notify_change() RETURNS trigger
         LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_TABLE_NAME = 'apiauth_api_keys' THEN
             PERFORM pg_notify('apiauth_changes', 'k:' || COALESCE(NEW.id, OLD.id));
           ELSIF TG_TABLE_NAME = 'apiauth_revocations' THEN
             PERFORM pg_notify('apiauth_changes',
               'r:' || encode(COALESCE(NEW.id_hash, OLD.id_hash), 'hex'));
           END IF;
           RETURN NULL;
         END $$"
            .into(),
        // Last-used times are not part of a check: writing them notifies no one.
        "CREATE TRIGGER apiauth_api_keys_changed
         AFTER INSERT OR DELETE OR UPDATE OF hash, owner, tenant, scopes, plan, expires_at,
           revoked_at, rotated_to, rotated_from, grace_until
         ON apiauth_api_keys FOR EACH ROW EXECUTE FUNCTION apiauth_notify_change()"
            .into(),
        "CREATE TRIGGER apiauth_revocations_changed
         AFTER INSERT OR DELETE OR UPDATE ON apiauth_revocations
         FOR EACH ROW EXECUTE FUNCTION apiauth_notify_change()"
            .into(),
    ]
}

/// Version 3: credit balances, one row per key and its current refill period.
fn v3(d: Dialect) -> Vec<String> {
    let text = d.text_bytewise();
    vec![format!(
        "CREATE TABLE apiauth_credits (
            credit_key {text} PRIMARY KEY,
            period BIGINT NOT NULL,
            balance BIGINT NOT NULL)"
    )]
}

/// Version 6: the billing history (history.rs), one row per UTC day, tenant, identity and
/// route template.
fn v6(d: Dialect) -> Vec<String> {
    let text = d.text_bytewise();
    vec![
        format!(
            "CREATE TABLE apiauth_usage_history (
                day BIGINT NOT NULL,
                tenant {text} NOT NULL,
                identity {text} NOT NULL,
                route {text} NOT NULL,
                requests_2xx BIGINT NOT NULL,
                requests_4xx BIGINT NOT NULL,
                requests_5xx BIGINT NOT NULL,
                requests_other BIGINT NOT NULL,
                credits BIGINT NOT NULL,
                PRIMARY KEY (day, tenant, identity, route))"
        ),
        "CREATE INDEX apiauth_usage_history_by_tenant ON apiauth_usage_history (tenant, day)"
            .into(),
    ]
}

pub(crate) async fn run(db: &SqlDatabase) -> Result<(), SqlError> {
    let dialect = db.dialect();
    let connect = |source| SqlError::Connect {
        dialect: dialect.name(),
        source,
    };
    let mut conn = db.pool().acquire().await.map_err(connect)?;
    let conn: &mut AnyConnection = &mut conn;
    if dialect == Dialect::Postgres {
        // Held for the whole run: even `CREATE TABLE IF NOT EXISTS` races in PostgreSQL.
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(|source| SqlError::Migrate { version: 0, source })?;
    }
    let result = migrate_all(conn, dialect).await;
    if dialect == Dialect::Postgres {
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn migrate_all(conn: &mut AnyConnection, dialect: Dialect) -> Result<(), SqlError> {
    loop {
        let current = current_version(conn, dialect)
            .await
            .map_err(|source| SqlError::Migrate { version: 0, source })?;
        if current > SCHEMA_VERSION {
            return Err(SqlError::SchemaTooNew {
                found: current,
                supported: SCHEMA_VERSION,
            });
        }
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        let next = current + 1;
        apply(conn, dialect, next)
            .await
            .map_err(|source| SqlError::Migrate {
                version: next,
                source,
            })?;
        tracing::info!(target: crate::LOG_TARGET, version = next, "applied schema migration");
    }
}

async fn current_version(conn: &mut AnyConnection, _d: Dialect) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS apiauth_schema (
            version BIGINT PRIMARY KEY,
            applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM apiauth_schema")
        .fetch_one(&mut *conn)
        .await?;
    Ok(v.unwrap_or(0))
}

/// Applies version `v` unless another process did meanwhile, in one locked transaction.
async fn apply(conn: &mut AnyConnection, d: Dialect, v: i64) -> Result<(), sqlx::Error> {
    let begin = match d {
        Dialect::Sqlite => "BEGIN IMMEDIATE",
        Dialect::Postgres => "BEGIN",
    };
    sqlx::query(begin).execute(&mut *conn).await?;
    let result = async {
        if d == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        // Under the lock: another instance may have applied it while we waited.
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM apiauth_schema WHERE version = $1")
                .bind(v)
                .fetch_optional(&mut *conn)
                .await?;
        if done.is_some() {
            return Ok(());
        }
        for stmt in version(v, d) {
            sqlx::query(&stmt).execute(&mut *conn).await?;
        }
        let now = crate::time::secs(std::time::SystemTime::now());
        sqlx::query("INSERT INTO apiauth_schema (version, applied_at) VALUES ($1, $2)")
            .bind(v)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
