//! Remembers successful verifications for a short time, so a client repeating the same
//! credentials does not cost one argon2 run per request.

use std::time::{Duration, SystemTime};

use apiauth_core::Principal;
use apiauth_core::ttl::TtlMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of the presented credentials under a per-process random key. The cache is
/// keyed by this, never by the credentials: a dump of the process's cache reveals nothing
/// that can be replayed or cracked offline, and keys differ between processes.
pub(crate) type Fingerprint = [u8; 32];

struct Entry {
    generation: u64,
    principal: Principal,
}

/// Bounded by core's [`TtlMap`] rule: when full of live entries, new verifications are not
/// cached (the next request runs argon2 again).
pub(crate) struct VerificationCache {
    key: [u8; 32],
    ttl: Duration,
    entries: TtlMap<Fingerprint, Entry>,
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
            entries: TtlMap::new(capacity),
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
        self.entries.get_with(fp, now, |e| Hit {
            generation: e.generation,
            principal: e.principal.clone(),
        })
    }

    pub(crate) fn insert(
        &self,
        fp: Fingerprint,
        generation: u64,
        principal: Principal,
        now: SystemTime,
    ) {
        // Full of live entries: not cached. The cache only saves work.
        let _ = self.entries.insert(
            fp,
            Entry {
                generation,
                principal,
            },
            now + self.ttl,
            now,
        );
    }

    pub(crate) fn remove(&self, fp: &Fingerprint) {
        self.entries.remove(fp);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
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
