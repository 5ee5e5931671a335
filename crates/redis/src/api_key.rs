//! [`ApiKeyStore`] on Redis.
//!
//! Layout, all under the namespace:
//! - `apikey:<id>`: a hash with `r`, the record as JSON (the SHA-256 digest of the key, never
//!   the key), and `u`, the last-used time in Unix seconds, kept apart so that batched
//!   last-used writes never race with revocations on the record;
//! - `apikey-index:all`, `apikey-owner:<owner>`, `apikey-tenant:<tenant>`: sorted sets of ids
//!   scored by creation time, for `list` without scanning the keyspace.
//!
//! A record gets a TTL once it has an end (revocation, expiry or rotation grace): it is kept
//! for a retention period after that end (30 days by default) for administrators, then Redis
//! drops it. Index entries of dropped records are pruned by `list`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_api_key::{ApiKeyRecord, ApiKeyStore, KeyChange, KeyFilter};
use apiauth_core::clock::unix_seconds;
use apiauth_core::store::StoreError;
use async_trait::async_trait;
use redis::Script;

use crate::backend::{RedisBackend, ttl_ms_until};

/// How long a revoked, expired or rotated-out record stays listable by default.
pub const DEFAULT_API_KEY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Attempts of the compare-and-set loop in `update` before giving up (as unavailable).
const MAX_UPDATE_ATTEMPTS: usize = 32;
/// Ids per `list` page and per `record_last_used` script call.
const PAGE: usize = 200;

/// KEYS: record, then the index sets. ARGV: json, score, id, ttl ms (0: none).
const INSERT_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[1])
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3]) end
return 1
";

/// Compare-and-set of the record. KEYS: record. ARGV: expected json, new json, ttl ms (0: none).
/// Returns -1 when there is no record, 0 when it changed meanwhile, 1 when written.
const UPDATE_LUA: &str = r"
local cur = redis.call('HGET', KEYS[1], 'r')
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'r', ARGV[2])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
";

/// KEYS: records. ARGV: Unix seconds, one per key. Keeps the latest; ignores unknown ids.
const TOUCH_LUA: &str = r"
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local cur = tonumber(redis.call('HGET', KEYS[i], 'u') or '0') or 0
    if tonumber(ARGV[i]) > cur then redis.call('HSET', KEYS[i], 'u', ARGV[i]) end
  end
end
return 0
";

/// [`ApiKeyStore`] on Redis; see the module docs for the layout. No local cache: every
/// lookup reads Redis, so a revocation is seen by every instance on its next request.
#[derive(Clone)]
pub struct RedisApiKeyStore {
    backend: RedisBackend,
    retention: Duration,
    scripts: Arc<Scripts>,
}

struct Scripts {
    insert: Script,
    update: Script,
    touch: Script,
}

impl fmt::Debug for RedisApiKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisApiKeyStore")
            .field("namespace", &self.backend.namespace())
            .field("retention", &self.retention)
            .finish()
    }
}

impl RedisApiKeyStore {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            retention: DEFAULT_API_KEY_RETENTION,
            scripts: Arc::new(Scripts {
                insert: Script::new(INSERT_LUA),
                update: Script::new(UPDATE_LUA),
                touch: Script::new(TOUCH_LUA),
            }),
        }
    }

    /// How long a record stays after it stopped working (revoked, expired, rotated out)
    /// before Redis drops it. Default 30 days.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    fn record_key(&self, id: &str) -> String {
        self.backend.key("apikey", id)
    }

    /// TTL in ms for a record, 0 for none: until its end plus the retention.
    fn ttl_ms(&self, r: &ApiKeyRecord) -> u64 {
        let end = match (r.revoked_at, r.valid_until()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(end) => end,
                None => return 0,
            },
        };
        let keep_until = end.checked_add(self.retention).unwrap_or(end);
        // Already past retention: keep briefly rather than refuse the write.
        ttl_ms_until(keep_until, SystemTime::now()).unwrap_or(1)
    }

    /// Reads the raw record JSON and the last-used seconds.
    async fn read(&self, id: &str) -> Result<Option<(String, Option<u64>)>, StoreError> {
        let (json, used): (Option<String>, Option<String>) = self
            .backend
            .query(
                "api_key_get",
                redis::cmd("HMGET")
                    .arg(self.record_key(id))
                    .arg("r")
                    .arg("u"),
            )
            .await?;
        Ok(json.map(|j| (j, used.and_then(|u| u.parse().ok()))))
    }
}

fn parse(json: &str, used: Option<u64>) -> Result<ApiKeyRecord, StoreError> {
    // A record we cannot read fails closed; the text may hold a digest, so it is not logged.
    let mut r: ApiKeyRecord = serde_json::from_str(json)
        .map_err(|_| StoreError::Unavailable("redis: unreadable api key record".into()))?;
    if let Some(at) = used.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
    {
        r.touch(at);
    }
    Ok(r)
}

fn to_json(r: &ApiKeyRecord) -> Result<String, StoreError> {
    serde_json::to_string(r)
        .map_err(|_| StoreError::Unavailable("redis: api key record not serialisable".into()))
}

#[async_trait]
impl ApiKeyStore for RedisApiKeyStore {
    async fn get(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.read(id).await? {
            Some((json, used)) => parse(&json, used).map(Some),
            None => Ok(None),
        }
    }

    async fn insert(&self, record: ApiKeyRecord) -> Result<bool, StoreError> {
        let json = to_json(&record)?;
        let mut inv = self.scripts.insert.key(self.record_key(&record.id));
        inv.key(self.backend.key("apikey-index", "all"))
            .key(self.backend.key("apikey-owner", &record.owner));
        if let Some(t) = &record.tenant {
            inv.key(self.backend.key("apikey-tenant", t));
        }
        inv.arg(json)
            .arg(unix_seconds(record.created_at))
            .arg(&*record.id)
            .arg(self.ttl_ms(&record));
        let inserted: i64 = self.backend.eval("api_key_insert", &inv).await?;
        Ok(inserted == 1)
    }

    async fn list(&self, filter: &KeyFilter) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let index = match (&filter.owner, &filter.tenant) {
            (Some(o), _) => self.backend.key("apikey-owner", o),
            (None, Some(t)) => self.backend.key("apikey-tenant", t),
            (None, None) => self.backend.key("apikey-index", "all"),
        };
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let mut start = 0usize;
        while out.len() < filter.limit {
            // Sorted by score (creation second), then by id: the memory store's order.
            let ids: Vec<String> = self
                .backend
                .query(
                    "api_key_list",
                    redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(start)
                        .arg(start + PAGE - 1),
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            start += ids.len();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET").arg(self.record_key(id)).arg("r").arg("u");
            }
            let rows: Vec<(Option<String>, Option<String>)> =
                self.backend.pipe("api_key_list", &pipe).await?;
            for (id, (json, used)) in ids.into_iter().zip(rows) {
                let Some(json) = json else {
                    gone.push(id); // dropped by its TTL
                    continue;
                };
                let r = parse(&json, used.and_then(|u| u.parse().ok()))?;
                if filter.matches(&r) && out.len() < filter.limit {
                    out.push(r);
                }
            }
        }
        if !gone.is_empty() {
            // After the scan, so that ranks did not shift under it. Best effort.
            let _: Result<i64, _> = self
                .backend
                .query("api_key_prune", redis::cmd("ZREM").arg(&index).arg(&gone))
                .await;
        }
        Ok(out)
    }

    async fn update(
        &self,
        id: &str,
        change: &KeyChange,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key = self.record_key(id);
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some((json, used)) = self.read(id).await? else {
                return Ok(None);
            };
            let mut r = parse(&json, None)?;
            // The same function as every other store, so all agree on what a change means.
            r.apply(change);
            let mut inv = self.scripts.update.key(&key);
            inv.arg(&json).arg(to_json(&r)?).arg(self.ttl_ms(&r));
            match self.backend.eval::<i64>("api_key_update", &inv).await? {
                1 => {
                    if let Some(at) = used
                        .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)))
                    {
                        r.touch(at);
                    }
                    return Ok(Some(r));
                }
                -1 => return Ok(None),
                _ => continue, // changed meanwhile: apply again to the new version
            }
        }
        Err(StoreError::Unavailable(
            "redis: api key update contention".into(),
        ))
    }

    async fn record_last_used(&self, batch: &[(Arc<str>, SystemTime)]) -> Result<(), StoreError> {
        for chunk in batch.chunks(PAGE) {
            let mut inv = self.scripts.touch.prepare_invoke();
            for (id, at) in chunk {
                inv.key(self.record_key(id)).arg(unix_seconds(*at));
            }
            let _: i64 = self.backend.eval("api_key_touch", &inv).await?;
        }
        Ok(())
    }
}
