//! A bounded cache of verified tokens, so signature cost is paid once per token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use apiauth_core::Principal;
use sha2::{Digest, Sha256};

pub(crate) struct Entry {
    pub(crate) principal: Principal,
    pub(crate) jti: Option<String>,
    valid_until: SystemTime,
}

/// Keyed by SHA-256 of the token, so the cache holds no token and a lookup by hash reveals
/// nothing about one.
pub(crate) struct TokenCache {
    map: Mutex<HashMap<[u8; 32], Entry>>,
    capacity: usize,
    max_ttl: Duration,
}

pub(crate) fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, max_ttl: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            capacity,
            max_ttl,
        }
    }

    /// A live entry: its lifetime never reaches past the token's `exp`.
    pub(crate) fn get(
        &self,
        key: &[u8; 32],
        now: SystemTime,
    ) -> Option<(Principal, Option<String>)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|e| now < e.valid_until)
            .map(|e| (e.principal.clone(), e.jti.clone()))
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
        if valid_until <= now || self.capacity == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, e| now < e.valid_until);
        }
        if map.len() >= self.capacity {
            // Still full of live entries: drop one to stay bounded. Any one will do; a dropped
            // token is simply verified again.
            if let Some(k) = map.keys().next().copied() {
                map.remove(&k);
            }
        }
        map.insert(
            key,
            Entry {
                principal,
                jti,
                valid_until,
            },
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
