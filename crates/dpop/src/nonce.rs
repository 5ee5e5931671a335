//! Server-provided nonces (RFC 9449 §8 and §9): a proof must carry a recent value the server
//! chose, which bounds how far ahead a client could have made proofs.

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{SharedClock, SystemClock, unix_seconds};
use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::DpopConfigError;

/// Issues and checks the nonces a server asks DPoP proofs to carry.
///
/// A nonce the check refuses (or a proof without one) is answered `401` with
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"` and a fresh value in `DPoP-Nonce`, so the
/// client retries once with it (RFC 9449 §9).
pub trait DpopNonces: Send + Sync + 'static {
    /// A nonce to hand out now (RFC 9449 §8.1 syntax: `1*NQCHAR`).
    fn issue(&self) -> String;
    /// Whether `nonce` is one this server issued and still accepts.
    fn accepts(&self, nonce: &str) -> bool;
}

/// Default rotation period of [`HmacDpopNonces`].
pub const DEFAULT_NONCE_PERIOD: Duration = Duration::from_secs(300);

/// Stateless nonces: the number of the current period and an HMAC-SHA256 tag over it,
/// base64url. A nonce is accepted during its period and the next one, so one lives between
/// one and two periods; nothing is stored, and instances that share the secret accept each
/// other's nonces.
pub struct HmacDpopNonces {
    key: hmac::Key,
    period: u64,
    clock: SharedClock,
}

/// Tag bytes kept in a nonce: 128 bits, beyond guessing within a period.
const TAG_LEN: usize = 16;

impl HmacDpopNonces {
    /// Nonces under a random per-process key: fine for one instance. Instances behind one
    /// URL need [`with_secret`](Self::with_secret) with one shared secret.
    pub fn new() -> Result<Self, DpopConfigError> {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret).map_err(|_| DpopConfigError::Random)?;
        Self::with_secret(&secret)
    }

    /// Nonces under `secret` (at least 32 bytes), shared by every instance that must accept
    /// the others' nonces.
    pub fn with_secret(secret: &[u8]) -> Result<Self, DpopConfigError> {
        if secret.len() < 32 {
            return Err(DpopConfigError::NonceSecretTooShort);
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            period: DEFAULT_NONCE_PERIOD.as_secs(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Sets the rotation period (at least one second; default 5 minutes).
    #[must_use]
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period.as_secs().max(1);
        self
    }

    /// Sets the clock (tests).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn index(&self) -> u64 {
        unix_seconds(self.clock.now()) / self.period
    }

    fn nonce_for(&self, index: u64) -> String {
        let tag = hmac::sign(&self.key, &index.to_be_bytes());
        let mut raw = [0u8; 8 + TAG_LEN];
        raw[..8].copy_from_slice(&index.to_be_bytes());
        raw[8..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(raw)
    }
}

impl std::fmt::Debug for HmacDpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacDpopNonces")
            .field("period_secs", &self.period)
            .finish_non_exhaustive()
    }
}

impl DpopNonces for HmacDpopNonces {
    fn issue(&self) -> String {
        self.nonce_for(self.index())
    }

    fn accepts(&self, nonce: &str) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Ok(raw) = <[u8; 8 + TAG_LEN]>::try_from(raw.as_slice()) else {
            return false;
        };
        let mut index = [0u8; 8];
        index.copy_from_slice(&raw[..8]);
        let index = u64::from_be_bytes(index);
        let now = self.index();
        if index != now && index.checked_add(1) != Some(now) {
            return false;
        }
        let tag = hmac::sign(&self.key, &index.to_be_bytes());
        constant_time::verify_slices_are_equal(&tag.as_ref()[..TAG_LEN], &raw[8..]).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apiauth_core::clock::ManualClock;

    #[test]
    fn a_nonce_lives_one_to_two_periods_then_is_refused() {
        let clock = ManualClock::starting_now();
        let nonces = HmacDpopNonces::with_secret(&[7; 32])
            .unwrap()
            .period(Duration::from_secs(60))
            .clock(Arc::new(clock.clone()));
        let n = nonces.issue();
        assert!(nonces.accepts(&n));
        clock.advance(Duration::from_secs(60));
        assert!(nonces.accepts(&n), "still good in the next period");
        assert_ne!(nonces.issue(), n, "rotated");
        clock.advance(Duration::from_secs(60));
        assert!(!nonces.accepts(&n), "two periods on: refused");
    }

    #[test]
    fn forged_or_foreign_nonces_are_refused() {
        let a = HmacDpopNonces::with_secret(&[1; 32]).unwrap();
        let b = HmacDpopNonces::with_secret(&[2; 32]).unwrap();
        let n = a.issue();
        assert!(!b.accepts(&n), "another secret's nonce");
        let mut forged = URL_SAFE_NO_PAD.decode(&n).unwrap();
        forged[10] ^= 1;
        assert!(!a.accepts(&URL_SAFE_NO_PAD.encode(&forged)));
        for junk in ["", "x", "!!!!", &"A".repeat(32)] {
            assert!(!a.accepts(junk), "{junk}");
        }
        assert!(HmacDpopNonces::with_secret(&[0; 31]).is_err());
    }
}
