//! HMAC secrets and their rotation windows.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::HttpSigConfigError;

/// RFC 2104 §3: keys shorter than the hash output weaken HMAC.
pub const MIN_SECRET_LEN: usize = 32;

/// A shared HMAC secret. `Debug` never shows it.
///
/// Unlike API keys, an HMAC verifier needs the secret itself, not a hash of it: keep it in a
/// secret manager or an encrypted store, never in logs.
#[derive(Clone)]
pub struct HmacSecret(Arc<Keyed>);

/// A secret and its HMAC-SHA256 state after the key block (RFC 2104 §2: `K XOR ipad` and
/// `K XOR opad` hashed once), so each MAC starts from there instead of rehashing the key.
struct Keyed {
    bytes: Box<[u8]>,
    /// `None` never happens: HMAC accepts keys of any length.
    mac: Option<Hmac<Sha256>>,
}

impl Keyed {
    fn new(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.into(),
            mac: <Hmac<Sha256> as Mac>::new_from_slice(bytes).ok(),
        }
    }

    fn mac(&self, data: &[&[u8]]) -> [u8; 32] {
        let Some(mut mac) = self.mac.clone() else {
            return [0; 32];
        };
        for d in data {
            mac.update(d);
        }
        mac.finalize().into_bytes().into()
    }
}

impl HmacSecret {
    /// Wraps a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, HttpSigConfigError> {
        let b = bytes.as_ref();
        if b.len() < MIN_SECRET_LEN {
            return Err(HttpSigConfigError::SecretTooShort {
                min: MIN_SECRET_LEN,
            });
        }
        Ok(Self(Arc::new(Keyed::new(b))))
    }

    /// Wraps a shorter secret (at least one byte), for partners that chose one, such as a
    /// webhook sender. Weaker than [`HmacSecret::new`].
    pub fn dangerous_short(bytes: impl AsRef<[u8]>) -> Result<Self, HttpSigConfigError> {
        let b = bytes.as_ref();
        if b.is_empty() {
            return Err(HttpSigConfigError::SecretTooShort { min: 1 });
        }
        Ok(Self(Arc::new(Keyed::new(b))))
    }

    /// Generates a 32-byte secret from the OS CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot supply randomness.
    pub fn generate() -> Self {
        let mut b = [0u8; MIN_SECRET_LEN];
        getrandom::fill(&mut b).expect("the OS random number generator failed");
        Self(Arc::new(Keyed::new(&b)))
    }

    /// The secret bytes: hand them only to the party that shares the secret.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0.bytes
    }

    /// HMAC-SHA256 of `data` under this secret.
    pub(crate) fn mac(&self, data: &[&[u8]]) -> [u8; 32] {
        self.0.mac(data)
    }
}

/// The key of the stand-in MAC computed when there is no secret to check against (unknown
/// key id, no live secret), so those answers take the same work as a real check.
static DUMMY: LazyLock<Keyed> = LazyLock::new(|| Keyed::new(b"apiauth-hmac-no-secret"));

/// HMAC-SHA256 of `data` under a fixed key nobody holds: the same work as a real check.
pub(crate) fn dummy_mac(data: &[&[u8]]) -> [u8; 32] {
    DUMMY.mac(data)
}

impl fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacSecret([redacted])")
    }
}

/// A secret with the window in which it is accepted, so old and new overlap during rotation.
#[derive(Clone, Debug)]
pub struct RotatingSecret {
    pub(crate) secret: HmacSecret,
    pub(crate) not_before: Option<SystemTime>,
    pub(crate) not_after: Option<SystemTime>,
}

impl RotatingSecret {
    /// A secret valid from now on, with no end.
    pub fn new(secret: HmacSecret) -> Self {
        Self {
            secret,
            not_before: None,
            not_after: None,
        }
    }

    /// Accepted only before `at` (the old secret of a rotation).
    #[must_use]
    pub fn until(mut self, at: SystemTime) -> Self {
        self.not_after = Some(at);
        self
    }

    /// Accepted only from `at` on.
    #[must_use]
    pub fn from(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// The secret.
    pub fn secret(&self) -> &HmacSecret {
        &self.secret
    }

    pub(crate) fn live_at(&self, now: SystemTime) -> bool {
        self.not_before.is_none_or(|t| t <= now) && self.not_after.is_none_or(|t| now < t)
    }
}

impl From<HmacSecret> for RotatingSecret {
    fn from(secret: HmacSecret) -> Self {
        Self::new(secret)
    }
}

/// Compares `tag` with the HMAC of `data` under every live secret, without stopping at the
/// first match, so the time taken does not say which secret (if any) matched.
pub(crate) fn matches_any(
    secrets: &[RotatingSecret],
    now: SystemTime,
    data: &[&[u8]],
    tag: &[u8],
) -> Match {
    let mut live = false;
    let mut ok = false;
    for s in secrets {
        if !s.live_at(now) {
            continue;
        }
        live = true;
        let expected = s.secret.mac(data);
        ok |= apiauth_core::token::ct_eq(&expected, tag);
    }
    if !live {
        // Spend the same work as a real check, so "no live secret" is not a timing signal.
        let expected = dummy_mac(data);
        let _ = apiauth_core::token::ct_eq(&expected, tag);
        return Match::NoLiveSecret;
    }
    if ok { Match::Yes } else { Match::No }
}

/// The outcome of [`matches_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    Yes,
    No,
    NoLiveSecret,
}
