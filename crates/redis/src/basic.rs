//! [`CredentialStore`] on Redis, for HTTP Basic users shared by every instance.

use std::fmt;
use std::sync::Arc;

use apiauth_basic::{CredentialRecord, CredentialStore};
use apiauth_core::ScopeSet;
use apiauth_core::store::StoreError;
use async_trait::async_trait;
use redis::Script;

use crate::backend::RedisBackend;

/// Replaces a user under a fresh generation. KEYS: record, generation counter.
/// ARGV: user id, subject, PHC string, scopes, tenant ('' for none). Returns the generation.
const INSERT_LUA: &str = r"
local gen = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'subject', ARGV[2], 'phc', ARGV[3],
  'scopes', ARGV[4], 'gen', gen)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'tenant', ARGV[5]) end
return gen
";

/// Replaces the PHC string of an existing user under a fresh generation.
/// KEYS: record, generation counter. ARGV: PHC string. Returns 0 when there is no such user.
const SET_HASH_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local gen = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'phc', ARGV[1], 'gen', gen)
return gen
";

/// [`CredentialStore`] on Redis: one hash per user (`<ns>:basic-user:<user_id>`) with the
/// argon2 PHC string (never the password), tenant, scopes and generation.
///
/// Generations come from one Redis counter (`<ns>:basic-generation`), so every write on any
/// instance gets a generation never used before, and verifications cached by any instance
/// for an older record stop counting. Users do not expire; [`remove`](Self::remove) them.
#[derive(Clone)]
pub struct RedisCredentialStore {
    backend: RedisBackend,
    scripts: Arc<(Script, Script)>,
}

impl fmt::Debug for RedisCredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCredentialStore")
            .field("namespace", &self.backend.namespace())
            .finish()
    }
}

impl RedisCredentialStore {
    pub(crate) fn new(backend: RedisBackend) -> Self {
        Self {
            backend,
            scripts: Arc::new((Script::new(INSERT_LUA), Script::new(SET_HASH_LUA))),
        }
    }

    fn key(&self, user_id: &str) -> String {
        self.backend.key("basic-user", user_id)
    }

    fn generation_key(&self) -> String {
        self.backend.key("basic-generation", "counter")
    }

    /// Adds or replaces `user_id` with `record` (its generation is replaced by a fresh one).
    pub async fn insert(&self, user_id: &str, record: &CredentialRecord) -> Result<(), StoreError> {
        let mut inv = self.scripts.0.key(self.key(user_id));
        inv.key(self.generation_key())
            .arg(user_id)
            .arg(record.subject())
            .arg(record.password_hash())
            .arg(record.granted_scopes().to_string())
            .arg(record.tenant_id().unwrap_or(""));
        let _: i64 = self.backend.eval("basic_insert", &inv).await?;
        Ok(())
    }

    /// Adds or replaces a user whose subject is its user-id, with the PHC string
    /// `password_hash`.
    pub async fn insert_user(&self, user_id: &str, password_hash: &str) -> Result<(), StoreError> {
        self.insert(user_id, &CredentialRecord::new(user_id, password_hash))
            .await
    }

    /// Replaces the PHC string of `user_id`. `false` if there is no such user.
    pub async fn set_password_hash(
        &self,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut inv = self.scripts.1.key(self.key(user_id));
        inv.key(self.generation_key()).arg(password_hash);
        let gen_or_zero: i64 = self.backend.eval("basic_set_hash", &inv).await?;
        Ok(gen_or_zero != 0)
    }

    /// Removes (revokes) `user_id`. `false` if there was no such user.
    pub async fn remove(&self, user_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self
            .backend
            .query("basic_remove", redis::cmd("DEL").arg(self.key(user_id)))
            .await?;
        Ok(n > 0)
    }
}

#[async_trait]
impl CredentialStore for RedisCredentialStore {
    async fn get(&self, user_id: &str) -> Result<Option<CredentialRecord>, StoreError> {
        let fields: Vec<Option<String>> = self
            .backend
            .query(
                "basic_get",
                redis::cmd("HMGET")
                    .arg(self.key(user_id))
                    .arg(&["uid", "subject", "phc", "scopes", "gen", "tenant"]),
            )
            .await?;
        let corrupt = || StoreError::Unavailable("redis: unreadable user record".into());
        let [uid, subject, phc, scopes, generation, tenant] =
            <[Option<String>; 6]>::try_from(fields).map_err(|_| corrupt())?;
        let (Some(uid), Some(subject), Some(phc)) = (uid, subject, phc) else {
            return Ok(None);
        };
        // Long ids are hashed into keys; the stored id settles any doubt.
        if uid != user_id {
            return Ok(None);
        }
        let scopes = ScopeSet::parse(scopes.as_deref().unwrap_or("")).map_err(|_| corrupt())?;
        let generation = generation
            .and_then(|g| g.parse::<u64>().ok())
            .ok_or_else(corrupt)?;
        let mut record = CredentialRecord::new(subject, phc)
            .scopes(scopes)
            .generation(generation);
        if let Some(t) = tenant {
            record = record.tenant(t);
        }
        Ok(Some(record))
    }
}
