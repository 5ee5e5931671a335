//! A bounded cache of verified tokens, so signature cost is paid once per token.

use std::time::{Duration, SystemTime};

use apiauth_core::Principal;
use apiauth_core::ttl::TtlMap;
use sha2::{Digest, Sha256};

pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) jti: Option<String>,
}

/// Keyed by SHA-256 of the token, so the cache holds no token and a lookup by hash reveals
/// nothing about one. Bounded by core's [`TtlMap`] rule: when full of live entries a new
/// token is not cached (it is verified again next time).
pub(crate) struct TokenCache {
    map: TtlMap<[u8; 32], Entry>,
    max_ttl: Duration,
}

pub(crate) fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, max_ttl: Duration) -> Self {
        Self {
            map: TtlMap::new(capacity),
            max_ttl,
        }
    }

    /// A live entry: its lifetime never reaches past the token's `exp`.
    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        now: SystemTime,
    ) -> Option<(Principal, Option<String>)> {
        self.map
            .get_with(key, now, |e| (e.principal.clone(), e.jti.clone()))
    }

    pub(crate) fn insert(
        &self,
        key: [u8; 32],
        principal: Principal,
        jti: Option<String>,
        exp: SystemTime,
        now: SystemTime,
    ) {
        let valid_until = exp.min(now + self.max_ttl);
        // Full of live entries: this token is simply verified again next time.
        let _ = self
            .map
            .insert(key, Entry { principal, jti }, valid_until, now);
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
