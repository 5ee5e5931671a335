//! Issuing and managing keys: create, list, revoke, rotate, expire.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::ScopeSet;
use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::token::{SecretString, TokenFormat};

use crate::error::{ApiKeyConfigError, ApiKeyError};
use crate::record::{ApiKeyRecord, KeyChange, KeyStatus, KeySummary};
use crate::store::{ApiKeyStore, KeyFilter};

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "sk_live_";

/// What a new key is for: owner, tenant, scopes, plan and lifetime.
#[derive(Debug, Clone)]
#[must_use]
pub struct NewKey {
    owner: Arc<str>,
    tenant: Option<Arc<str>>,
    scopes: ScopeSet,
    plan: Option<Arc<str>>,
    lifetime: Lifetime,
}

#[derive(Debug, Clone, Copy)]
enum Lifetime {
    Forever,
    For(Duration),
    Until(SystemTime),
}

impl NewKey {
    /// A key acting for `owner`, with no scopes and no expiry.
    pub fn new(owner: impl Into<Arc<str>>) -> Self {
        Self {
            owner: owner.into(),
            tenant: None,
            scopes: ScopeSet::empty(),
            plan: None,
            lifetime: Lifetime::Forever,
        }
    }

    /// The tenant the key belongs to.
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// The scopes the key grants.
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// The plan tier.
    pub fn plan(mut self, plan: impl Into<Arc<str>>) -> Self {
        self.plan = Some(plan.into());
        self
    }

    /// The key expires `ttl` after creation.
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.lifetime = Lifetime::For(ttl);
        self
    }

    /// The key expires at `at`.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.lifetime = Lifetime::Until(at);
        self
    }
}

/// A key just issued: the only time the key itself is available.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The key, to hand to its owner once. Only its digest is stored.
    pub key: SecretString,
    /// The stored facts about it.
    pub summary: KeySummary,
}

/// The management handle over an [`ApiKeyStore`], for admin routes and tooling.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use apiauth_api_key::{ApiKeys, KeyFilter, MemoryApiKeyStore, NewKey};
/// use apiauth_core::ScopeSet;
///
/// let keys = ApiKeys::new(Arc::new(MemoryApiKeyStore::new())).prefix("sk_test_")?;
/// let created = keys
///     .create(NewKey::new("alice").tenant("acme").scopes(ScopeSet::parse("reports:read").unwrap()))
///     .await?;
/// // Show `created.key.expose_secret()` to its owner once; it is not stored.
/// let listed = keys.list(&KeyFilter::all().tenant("acme")).await?;
/// assert_eq!(listed[0].id, created.summary.id);
/// let next = keys.rotate(&created.summary.id, Duration::from_secs(3600)).await?;
/// keys.revoke(&next.summary.id).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiKeys {
    store: Arc<dyn ApiKeyStore>,
    format: TokenFormat,
    clock: SharedClock,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("prefix", &self.format.prefix())
            .finish_non_exhaustive()
    }
}

/// How many fresh ids to try when one is taken (each is 71 random bits, so one retry is
/// already astronomically unlikely).
const ID_ATTEMPTS: usize = 4;

impl ApiKeys {
    /// A handle issuing `sk_live_` keys on the system clock.
    pub fn new(store: Arc<dyn ApiKeyStore>) -> Self {
        Self {
            store,
            format: default_format(),
            clock: Arc::new(SystemClock),
        }
    }

    /// Issues keys with `prefix` (2 to 16 characters of `[a-z0-9_]` ending in `_`).
    pub fn prefix(mut self, prefix: &str) -> Result<Self, ApiKeyConfigError> {
        self.format = TokenFormat::new(prefix)?;
        Ok(self)
    }

    /// Uses `clock` for creation, expiry and rotation times.
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The key format.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ApiKeyStore> {
        &self.store
    }

    pub(crate) fn clock_handle(&self) -> SharedClock {
        self.clock.clone()
    }

    /// An [`ApiKeyAuth`](crate::ApiKeyAuth) builder on the same store, prefix and clock.
    pub fn auth(&self) -> crate::ApiKeyAuth {
        crate::ApiKeyAuth::for_keys(self)
    }

    /// Issues a key. The returned [`CreatedKey::key`] is the only copy; the store keeps its
    /// SHA-256 digest.
    pub async fn create(&self, spec: NewKey) -> Result<CreatedKey, ApiKeyError> {
        self.issue(spec, None).await
    }

    async fn issue(
        &self,
        spec: NewKey,
        rotated_from: Option<Arc<str>>,
    ) -> Result<CreatedKey, ApiKeyError> {
        let now = self.clock.now();
        let expires_at = match spec.lifetime {
            Lifetime::Forever => None,
            Lifetime::For(ttl) => Some(now.checked_add(ttl).ok_or(ApiKeyError::InvalidExpiry)?),
            Lifetime::Until(at) => Some(at),
        };
        for _ in 0..ID_ATTEMPTS {
            let generated = self.format.generate();
            let record = ApiKeyRecord {
                id: generated.id.into(),
                hash: generated.hash,
                owner: spec.owner.clone(),
                tenant: spec.tenant.clone(),
                scopes: spec.scopes.clone(),
                plan: spec.plan.clone(),
                created_at: now,
                expires_at,
                revoked_at: None,
                last_used_at: None,
                rotated_to: None,
                rotated_from: rotated_from.clone(),
                grace_until: None,
            };
            let summary = record.summary(now);
            if self.store.insert(record).await? {
                return Ok(CreatedKey {
                    key: generated.token,
                    summary,
                });
            }
        }
        Err(ApiKeyError::IdCollision)
    }

    /// The key `id`, without secrets.
    pub async fn get(&self, id: &str) -> Result<Option<KeySummary>, ApiKeyError> {
        let now = self.clock.now();
        Ok(self.store.get(id).await?.map(|r| r.summary(now)))
    }

    /// Keys passing `filter`, without secrets.
    pub async fn list(&self, filter: &KeyFilter) -> Result<Vec<KeySummary>, ApiKeyError> {
        let now = self.clock.now();
        Ok(self
            .store
            .list(filter)
            .await?
            .iter()
            .map(|r| r.summary(now))
            .collect())
    }

    /// Revokes `id` now; the next request with it is refused.
    pub async fn revoke(&self, id: &str) -> Result<KeySummary, ApiKeyError> {
        let at = self.clock.now();
        self.change(id, KeyChange::Revoke { at }).await
    }

    /// Sets or clears the expiry of `id`.
    pub async fn set_expiry(
        &self,
        id: &str,
        expires_at: Option<SystemTime>,
    ) -> Result<KeySummary, ApiKeyError> {
        self.change(id, KeyChange::SetExpiry { expires_at }).await
    }

    /// Issues a successor to `id` with the same owner, tenant, scopes, plan and expiry; `id`
    /// keeps working for `grace`, then stops. Only a usable key that has not been rotated
    /// already can be rotated.
    pub async fn rotate(&self, id: &str, grace: Duration) -> Result<CreatedKey, ApiKeyError> {
        let now = self.clock.now();
        let old = self.store.get(id).await?.ok_or(ApiKeyError::NotFound)?;
        if old.status(now) != KeyStatus::Active {
            return Err(ApiKeyError::NotActive(old.status(now)));
        }
        let grace_until = now.checked_add(grace).ok_or(ApiKeyError::InvalidExpiry)?;
        let spec = NewKey {
            owner: old.owner.clone(),
            tenant: old.tenant.clone(),
            scopes: old.scopes.clone(),
            plan: old.plan.clone(),
            lifetime: old.expires_at.map_or(Lifetime::Forever, Lifetime::Until),
        };
        // The successor exists before the old key is told its end, so there is never a
        // moment when the owner holds no working key.
        let created = self.issue(spec, Some(old.id.clone())).await?;
        let change = KeyChange::Rotate {
            successor: created.summary.id.clone(),
            grace_until,
        };
        let outcome = match self.store.update(id, &change).await {
            // Ours is the recorded successor and the old key was not revoked meanwhile.
            Ok(Some(r))
                if r.rotated_to.as_deref() == Some(&*created.summary.id)
                    && matches!(r.status(now), KeyStatus::Rotating | KeyStatus::Rotated) =>
            {
                return Ok(created);
            }
            Ok(Some(r)) => ApiKeyError::NotActive(r.status(now)),
            Ok(None) => ApiKeyError::NotFound,
            Err(e) => e.into(),
        };
        // The old key could not be marked (a concurrent rotation or revocation won, or the
        // store failed): withdraw the successor rather than leave a live key nobody holds.
        let _ = self
            .store
            .update(&created.summary.id, &KeyChange::Revoke { at: now })
            .await;
        Err(outcome)
    }

    async fn change(&self, id: &str, change: KeyChange) -> Result<KeySummary, ApiKeyError> {
        let now = self.clock.now();
        self.store
            .update(id, &change)
            .await?
            .map(|r| r.summary(now))
            .ok_or(ApiKeyError::NotFound)
    }
}

pub(crate) fn default_format() -> TokenFormat {
    // A constant that satisfies TokenFormat's rules (the test below keeps it so), not input.
    TokenFormat::new(DEFAULT_PREFIX).expect("DEFAULT_PREFIX is a valid token prefix")
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_prefix_is_valid() {
        assert!(apiauth_core::token::TokenFormat::new(super::DEFAULT_PREFIX).is_ok());
    }
}
