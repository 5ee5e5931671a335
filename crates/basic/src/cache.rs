//! Remembers successful verifications for a short time, so a client repeating the same
//! credentials does not cost one argon2 run per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use apiauth_core::Principal;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of the presented credentials under a per-process random key. The cache is
/// keyed by this, never by the credentials: a dump of the process's cache reveals nothing
/// that can be replayed or cracked offline, and keys differ between processes.
pub(crate) type Fingerprint = [u8; 32];

struct Entry {
    generation: u64,
    expires: SystemTime,
    principal: Principal,
}

pub(crate) struct VerificationCache {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<Fingerprint, Entry>>,
}

/// A cached verification: valid only while the user's record still has `generation`.
pub(crate) struct Hit {
    pub(crate) generation: u64,
    pub(crate) principal: Principal,
}

impl VerificationCache {
    pub(crate) fn new(key: [u8; 32], ttl: Duration, capacity: usize) -> Self {
        Self {
            key,
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn fingerprint(&self, credentials: &str) -> Fingerprint {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => return [0; 32],
        };
        mac.update(credentials.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The live entry for `fp`, if any. The map lookup is not constant-time, which is fine:
    /// the keys are HMAC outputs under a secret key, so their timing says nothing about a
    /// password.
    pub(crate) fn get(&self, fp: &Fingerprint, now: SystemTime) -> Option<Hit> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(fp) {
            Some(e) if e.expires > now => Some(Hit {
                generation: e.generation,
                principal: e.principal.clone(),
            }),
            Some(_) => {
                entries.remove(fp);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(
        &self,
        fp: Fingerprint,
        generation: u64,
        principal: Principal,
        now: SystemTime,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&fp) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop an arbitrary one (hash order is random per
                // process). The cache only saves work, so losing an entry is harmless.
                if let Some(victim) = entries.keys().next().copied() {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(
            fp,
            Entry {
                generation,
                expires: now + self.ttl,
                principal,
            },
        );
    }

    pub(crate) fn remove(&self, fp: &Fingerprint) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(fp);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiauth_core::AuthMethod;

    #[test]
    fn fingerprints_depend_on_the_process_key() {
        let a = VerificationCache::new([1; 32], Duration::from_secs(1), 4);
        let b = VerificationCache::new([2; 32], Duration::from_secs(1), 4);
        assert_eq!(a.fingerprint("x"), a.fingerprint("x"));
        assert_ne!(a.fingerprint("x"), a.fingerprint("y"));
        assert_ne!(a.fingerprint("x"), b.fingerprint("x"));
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let c = VerificationCache::new([1; 32], Duration::from_secs(60), 8);
        let now = SystemTime::now();
        for i in 0..100 {
            let p = Principal::builder("u", AuthMethod::BASIC).build();
            c.insert(c.fingerprint(&i.to_string()), 1, p, now);
            assert!(c.len() <= 8);
        }
    }
}
