//! Portal sessions: a random 256-bit id in a cookie, the rest on the server behind
//! [`SessionStore`].
//!
//! The memory store is the default; a shared store (SQL, Redis) implements the same three
//! calls. Expiry is decided here, not by the store: a session is dead once idle for
//! [`IDLE`] or older than [`ABSOLUTE`], whatever the store still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

/// A session unused this long is over.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session is over this long after sign-in, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions the memory store holds at most; the oldest are dropped first.
const MEMORY_CAPACITY: usize = 10_000;

/// Who signed in to a session.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedIn {
    pub subject: String,
    pub tenant: String,
    /// May see the operator's admin view.
    pub admin: bool,
}

/// One session, as the store keeps it. The id is the cookie's value; `csrf` is the token
/// every form of this session carries.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    pub user: Option<SignedIn>,
    pub created_at: SystemTime,
    pub last_seen: SystemTime,
}

impl Session {
    /// A fresh session with new random id and CSRF token.
    pub fn new(user: Option<SignedIn>, now: SystemTime) -> Self {
        Self {
            id: random_hex(),
            csrf: random_hex(),
            user,
            created_at: now,
            last_seen: now,
        }
    }

    /// Whether the idle or the absolute limit has passed.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        let since = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        since(self.last_seen) > IDLE || since(self.created_at) > ABSOLUTE
    }
}

/// 256 random bits from the OS, as 64 hex digits.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("OS randomness");
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where sessions live. Ids are only ever looked up whole; a store needs no scan.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn load(&self, id: &str) -> anyhow::Result<Option<Session>>;
    /// Inserts or replaces the session with `session.id`.
    async fn save(&self, session: &Session) -> anyhow::Result<()>;
    async fn delete(&self, id: &str) -> anyhow::Result<()>;
}

/// Sessions in this process's memory, bounded.
#[derive(Clone, Default)]
pub struct MemorySessionStore {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn load(&self, id: &str) -> anyhow::Result<Option<Session>> {
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(id).cloned())
    }

    async fn save(&self, session: &Session) -> anyhow::Result<()> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MEMORY_CAPACITY && !map.contains_key(&session.id) {
            let now = SystemTime::now();
            map.retain(|_, s| !s.is_expired(now));
            if map.len() >= MEMORY_CAPACITY
                && let Some(oldest) = map
                    .values()
                    .min_by_key(|s| s.last_seen)
                    .map(|s| s.id.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(session.id.clone(), session.clone());
        Ok(())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
        Ok(())
    }
}

/// Sessions in the SQL store (`apiauth::sql`, schema version 4): the id only as its SHA-256,
/// the rest as JSON. Use it with `db.session_store()` when the example runs on SQL.
#[async_trait]
impl SessionStore for apiauth::sql::SqlSessionStore {
    async fn load(&self, id: &str) -> anyhow::Result<Option<Session>> {
        match apiauth::sql::SqlSessionStore::load(self, id).await? {
            Some(row) => Ok(Some(serde_json::from_str(&row.data)?)),
            None => Ok(None),
        }
    }

    async fn save(&self, session: &Session) -> anyhow::Result<()> {
        let row = apiauth::sql::StoredSession {
            data: serde_json::to_string(session)?,
            created_at: session.created_at,
            last_seen: session.last_seen,
            // The row outlives neither limit.
            expires_at: (session.last_seen + IDLE).min(session.created_at + ABSOLUTE),
        };
        Ok(apiauth::sql::SqlSessionStore::save(self, &session.id, &row).await?)
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        Ok(apiauth::sql::SqlSessionStore::delete(self, id).await?)
    }
}
