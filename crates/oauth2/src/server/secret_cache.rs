//! Client secrets verified a moment ago, so a valid client does not pay one argon2 run per
//! request, nor wait behind a flood of wrong secrets for a verification slot.

use std::time::{Duration, SystemTime};

use apiauth_core::ttl::TtlMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of the client id and the presented secret under a per-process random key:
/// the cache never holds anything that could be replayed or cracked offline.
pub(crate) type Fingerprint = [u8; 32];

struct Entry {
    /// SHA-256 of the PHC string the secret was verified against: a rotated secret (a new
    /// hash) or a removed client (no hash) ends the entry at once, on every instance.
    verified_against: [u8; 32],
}

/// Bounded: at most `capacity` entries, each for at most `ttl` (core's [`TtlMap`] rule: when
/// full of live entries, a new verification is not cached).
pub(crate) struct SecretCache {
    key: [u8; 32],
    ttl: Duration,
    entries: TtlMap<Fingerprint, Entry>,
}

impl SecretCache {
    pub(crate) fn new(key: [u8; 32], ttl: Duration, capacity: usize) -> Self {
        Self {
            key,
            ttl,
            entries: TtlMap::new(capacity),
        }
    }

    pub(crate) fn fingerprint(&self, client_id: &str, secret: &str) -> Fingerprint {
        // HMAC takes keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return [0; 32];
        };
        // Length-prefixed, so no (id, secret) pair can be shifted into another.
        mac.update(&(client_id.len() as u64).to_be_bytes());
        mac.update(client_id.as_bytes());
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `fp` was verified against `phc` (the client's current hash) and is still live.
    /// The map lookup is keyed by a MAC under a secret key, so its timing tells nothing about
    /// a secret; the hash comparison is constant-time anyway.
    pub(crate) fn hit(&self, fp: &Fingerprint, phc: &str, now: SystemTime) -> bool {
        let current: [u8; 32] = Sha256::digest(phc.as_bytes()).into();
        let same = self
            .entries
            .get_with(fp, now, |e| bool::from(e.verified_against.ct_eq(&current)));
        match same {
            Some(true) => true,
            Some(false) => {
                // Rotated or removed: the entry is gone at once.
                self.entries.remove(fp);
                false
            }
            None => false,
        }
    }

    pub(crate) fn insert(&self, fp: Fingerprint, phc: &str, now: SystemTime) {
        let entry = Entry {
            verified_against: Sha256::digest(phc.as_bytes()).into(),
        };
        // Full of live entries: not cached. The cache only saves work.
        let _ = self.entries.insert(fp, entry, now + self.ttl, now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_same_hash_and_a_live_entry() {
        let c = SecretCache::new([7; 32], Duration::from_secs(60), 8);
        let now = SystemTime::now();
        let fp = c.fingerprint("client", "secret");
        assert_ne!(fp, c.fingerprint("clien", "tsecret"));
        assert!(!c.hit(&fp, "$argon2id$old", now));
        c.insert(fp, "$argon2id$old", now);
        assert!(c.hit(&fp, "$argon2id$old", now));
        // Rotated: the record's hash changed, the entry is gone.
        assert!(!c.hit(&fp, "$argon2id$new", now));
        assert!(!c.hit(&fp, "$argon2id$old", now));
        c.insert(fp, "$argon2id$old", now);
        assert!(!c.hit(&fp, "$argon2id$old", now + Duration::from_secs(61)));
    }

    #[test]
    fn capacity_is_a_hard_bound() {
        let c = SecretCache::new([7; 32], Duration::from_secs(60), 8);
        let now = SystemTime::now();
        for i in 0..100 {
            c.insert(c.fingerprint("client", &i.to_string()), "h", now);
            assert!(c.len() <= 8);
        }
    }
}
