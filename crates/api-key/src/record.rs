//! What a store keeps for one key: never the key, only its SHA-256 digest.

use std::sync::Arc;
use std::time::SystemTime;

use apiauth_core::ScopeSet;
use apiauth_core::token::SecretHash;
use serde::{Deserialize, Serialize};

/// One API key as stored: public facts and the SHA-256 digest of the whole key.
///
/// Cheap to clone (shared strings). Serialises to JSON with timestamps as Unix seconds and the
/// digest as lowercase hex, so a networked store can keep it as a document. Nothing in it can
/// be turned back into the key: the key carries about 178 random bits, so its digest cannot be
/// brute-forced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public key id (the 12 characters after the prefix).
    pub id: Arc<str>,
    /// SHA-256 of the whole key.
    #[serde(with = "hex_hash")]
    pub hash: SecretHash,
    /// Who the key acts for: the principal's subject.
    pub owner: Arc<str>,
    /// The tenant (organisation, account) the key belongs to.
    #[serde(default)]
    pub tenant: Option<Arc<str>>,
    /// The scopes the key grants.
    #[serde(default)]
    pub scopes: ScopeSet,
    /// The plan tier (`free`, `pro`, …), for quotas.
    #[serde(default)]
    pub plan: Option<Arc<str>>,
    /// When the key was created.
    #[serde(with = "unix")]
    pub created_at: SystemTime,
    /// When the key stops working by itself.
    #[serde(default, with = "opt_unix")]
    pub expires_at: Option<SystemTime>,
    /// When the key was revoked; it stops working from that instant.
    #[serde(default, with = "opt_unix")]
    pub revoked_at: Option<SystemTime>,
    /// Last accepted use, updated in batches (at most once per resolution period per key).
    #[serde(default, with = "opt_unix")]
    pub last_used_at: Option<SystemTime>,
    /// The key that replaced this one by rotation.
    #[serde(default)]
    pub rotated_to: Option<Arc<str>>,
    /// The key this one replaced by rotation.
    #[serde(default)]
    pub rotated_from: Option<Arc<str>>,
    /// End of the rotation grace period: the key stops working then.
    #[serde(default, with = "opt_unix")]
    pub grace_until: Option<SystemTime>,
}

/// Whether a key may be used at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyStatus {
    /// Usable.
    Active,
    /// Rotated, and still usable until the grace period ends.
    Rotating,
    /// Revoked.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Rotated and past the grace period.
    Rotated,
}

impl KeyStatus {
    /// Whether a key in this status is accepted.
    pub const fn is_usable(self) -> bool {
        matches!(self, KeyStatus::Active | KeyStatus::Rotating)
    }

    /// The audit reason word for an unusable status (`revoked`, `expired`, `rotated`).
    pub const fn reason(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Rotating => "rotating",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
            KeyStatus::Rotated => "rotated",
        }
    }
}

/// An atomic change to one record, applied by [`ApiKeyRecord::apply`].
///
/// Stores receive changes rather than whole records so that a concurrent revoke and rotate
/// cannot overwrite each other: a networked store applies the change inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyChange {
    /// Revoke at `at`; an earlier revocation stands.
    Revoke {
        /// When the key stops working.
        #[serde(with = "unix")]
        at: SystemTime,
    },
    /// Mark as replaced by `successor`, usable until `grace_until`. A key is rotated once:
    /// on a key that already has a successor this changes nothing, so of two concurrent
    /// rotations exactly one wins (the caller sees whose successor was recorded).
    Rotate {
        /// The new key's id.
        successor: Arc<str>,
        /// When the old key stops working; an earlier end stands.
        #[serde(with = "unix")]
        grace_until: SystemTime,
    },
    /// Set or clear the expiry.
    SetExpiry {
        /// The new expiry; `None` for a key that does not expire.
        #[serde(default, with = "opt_unix")]
        expires_at: Option<SystemTime>,
    },
}

impl ApiKeyRecord {
    /// The status at `now`. Revocation wins over expiry, expiry over rotation.
    pub fn status(&self, now: SystemTime) -> KeyStatus {
        if self.revoked_at.is_some_and(|t| now >= t) {
            KeyStatus::Revoked
        } else if self.expires_at.is_some_and(|t| now >= t) {
            KeyStatus::Expired
        } else if self.grace_until.is_some_and(|t| now >= t) {
            KeyStatus::Rotated
        } else if self.rotated_to.is_some() {
            KeyStatus::Rotating
        } else {
            KeyStatus::Active
        }
    }

    /// The instant the key stops working by itself: the earlier of expiry and grace end.
    pub fn valid_until(&self) -> Option<SystemTime> {
        match (self.expires_at, self.grace_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies `change`. Every store applies changes with this one function, so they agree.
    pub fn apply(&mut self, change: &KeyChange) {
        match change {
            KeyChange::Revoke { at } => {
                self.revoked_at = Some(self.revoked_at.map_or(*at, |t| t.min(*at)));
            }
            KeyChange::Rotate {
                successor,
                grace_until,
            } => {
                if self.rotated_to.is_none() {
                    self.rotated_to = Some(successor.clone());
                    self.grace_until = Some(*grace_until);
                }
            }
            KeyChange::SetExpiry { expires_at } => self.expires_at = *expires_at,
        }
    }

    /// Records a use at `at`, keeping the latest.
    pub fn touch(&mut self, at: SystemTime) {
        self.last_used_at = Some(self.last_used_at.map_or(at, |t| t.max(at)));
    }

    /// The public view: everything but the digest.
    pub fn summary(&self, now: SystemTime) -> KeySummary {
        KeySummary {
            id: self.id.clone(),
            owner: self.owner.clone(),
            tenant: self.tenant.clone(),
            scopes: self.scopes.clone(),
            plan: self.plan.clone(),
            status: self.status(now),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            rotated_to: self.rotated_to.clone(),
            rotated_from: self.rotated_from.clone(),
            grace_until: self.grace_until,
        }
    }
}

/// A key as shown to administrators: no secret and no digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct KeySummary {
    /// The public key id.
    pub id: Arc<str>,
    /// The owner subject.
    pub owner: Arc<str>,
    /// The tenant.
    pub tenant: Option<Arc<str>>,
    /// The granted scopes.
    pub scopes: ScopeSet,
    /// The plan tier.
    pub plan: Option<Arc<str>>,
    /// The status when the summary was made.
    pub status: KeyStatus,
    /// Creation time (Unix seconds in JSON).
    #[serde(with = "unix")]
    pub created_at: SystemTime,
    /// Expiry.
    #[serde(with = "opt_unix")]
    pub expires_at: Option<SystemTime>,
    /// Revocation time.
    #[serde(with = "opt_unix")]
    pub revoked_at: Option<SystemTime>,
    /// Last recorded use.
    #[serde(with = "opt_unix")]
    pub last_used_at: Option<SystemTime>,
    /// Successor by rotation.
    pub rotated_to: Option<Arc<str>>,
    /// Predecessor by rotation.
    pub rotated_from: Option<Arc<str>>,
    /// End of the rotation grace period.
    #[serde(with = "opt_unix")]
    pub grace_until: Option<SystemTime>,
}

mod hex_hash {
    use apiauth_core::token::SecretHash;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(h: &SecretHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretHash, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        SecretHash::from_hex(&s).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}

/// Timestamps as whole Unix seconds, the common JSON form; sub-second precision is dropped,
/// which only ever moves an expiry earlier.
mod unix {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(apiauth_core::clock::unix_seconds(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let secs = u64::deserialize(d)?;
        // `checked_add`: a corrupt record must not panic the process.
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(|| D::Error::custom("timestamp out of range"))
    }
}

mod opt_unix {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::unix::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::unix")] SystemTime);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record() -> ApiKeyRecord {
        ApiKeyRecord {
            id: "AbCdEfGhIjKl".into(),
            hash: SecretHash::of(b"k"),
            owner: "alice".into(),
            tenant: Some("acme".into()),
            scopes: ScopeSet::parse("a b").unwrap(),
            plan: Some("pro".into()),
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
            rotated_from: None,
            grace_until: None,
        }
    }

    #[test]
    fn json_round_trip_keeps_every_field_and_only_the_digest() {
        let mut r = record();
        r.expires_at = Some(r.created_at + Duration::from_secs(60));
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(&SecretHash::of(b"k").to_hex()));
        assert!(json.contains("\"created_at\":1700000000"));
        let back: ApiKeyRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert!(back.hash.ct_eq(&r.hash));
    }

    #[test]
    fn out_of_range_timestamps_are_an_error_not_a_panic() {
        let json = serde_json::to_string(&record())
            .unwrap()
            .replace("1700000000", "18446744073709551615");
        assert!(serde_json::from_str::<ApiKeyRecord>(&json).is_err());
    }

    #[test]
    fn earlier_revocation_stands_and_a_key_is_rotated_once() {
        let mut r = record();
        let t = r.created_at;
        r.apply(&KeyChange::Revoke { at: t });
        r.apply(&KeyChange::Revoke {
            at: t + Duration::from_secs(9),
        });
        assert_eq!(r.revoked_at, Some(t));
        r.apply(&KeyChange::Rotate {
            successor: "x".into(),
            grace_until: t,
        });
        r.apply(&KeyChange::Rotate {
            successor: "y".into(),
            grace_until: t + Duration::from_secs(9),
        });
        assert_eq!(r.grace_until, Some(t));
        assert_eq!(r.rotated_to.as_deref(), Some("x"));
    }
}
