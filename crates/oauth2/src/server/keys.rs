//! ES256 signing keys with rotation: the JWKS serves the current and the previous key.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use apiauth_core::clock::SharedClock;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::error::OAuth2ConfigError;

/// When the authorization server replaces its signing key.
///
/// After a rotation the previous key stays in the JWKS until the next one, so tokens it signed
/// keep verifying until they expire; that is why the interval may not be shorter than the
/// token lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    every: Option<Duration>,
}

impl KeyRotation {
    /// A new key once the current one is `interval` old (checked when tokens are issued and
    /// the JWKS is served).
    pub const fn every(interval: Duration) -> Self {
        Self {
            every: Some(interval),
        }
    }

    /// Only when [`AuthorizationServer::rotate_keys`](crate::AuthorizationServer::rotate_keys)
    /// is called.
    pub const fn manual() -> Self {
        Self { every: None }
    }

    /// The interval, if rotation is automatic.
    pub const fn interval(&self) -> Option<Duration> {
        self.every
    }
}

impl Default for KeyRotation {
    /// Daily.
    fn default() -> Self {
        Self::every(Duration::from_secs(24 * 60 * 60))
    }
}

/// One signing key. The private half never leaves this struct and is not in `Debug`.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Jwk,
    created: SystemTime,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    fn generate(now: SystemTime) -> Result<Self, OAuth2ConfigError> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|e| OAuth2ConfigError::key("P-256 key generation failed", e))?;
        Self::from_pkcs8(pkcs8.as_ref(), now)
    }

    /// A configured P-256 private key, PKCS#8 or RFC 5915 DER; checked by aws-lc.
    fn from_der(der: &[u8], now: SystemTime) -> Result<Self, OAuth2ConfigError> {
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| {
                OAuth2ConfigError::key("signing key is not a P-256 private key in DER", e)
            })?;
        let pkcs8 = pair
            .to_pkcs8v1()
            .map_err(|e| OAuth2ConfigError::key("signing key could not be re-encoded", e))?;
        Self::from_pkcs8(pkcs8.as_ref(), now)
    }

    fn from_pkcs8(pkcs8: &[u8], now: SystemTime) -> Result<Self, OAuth2ConfigError> {
        let encoding = EncodingKey::from_ec_der(pkcs8);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|e| OAuth2ConfigError::key("no JWK for the signing key", e))?;
        // RFC 7638 thumbprint as `kid`: stable, unique per key, reveals nothing private.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| OAuth2ConfigError::key("no JWK thumbprint for the signing key", e))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|e| OAuth2ConfigError::key("no verification key for the signing key", e))?;
        Ok(Self {
            kid,
            encoding,
            decoding,
            jwk,
            created: now,
        })
    }
}

struct Ring {
    current: Arc<SigningKey>,
    previous: Option<Arc<SigningKey>>,
}

/// The key ring of one authorization server.
pub(crate) struct Keys {
    ring: RwLock<Ring>,
    rotation: KeyRotation,
    clock: SharedClock,
}

impl Keys {
    /// A ring starting with `configured` (DER) or, without one, a freshly generated key.
    pub(crate) fn new(
        rotation: KeyRotation,
        clock: SharedClock,
        configured: Option<&[u8]>,
    ) -> Result<Self, OAuth2ConfigError> {
        let current = Arc::new(match configured {
            Some(der) => SigningKey::from_der(der, clock.now())?,
            None => SigningKey::generate(clock.now())?,
        });
        Ok(Self {
            ring: RwLock::new(Ring {
                current,
                previous: None,
            }),
            rotation,
            clock,
        })
    }

    /// The key to sign with now, rotating first if the policy says it is due.
    pub(crate) fn current(&self) -> Result<Arc<SigningKey>, OAuth2ConfigError> {
        self.rotate_if_due()?;
        Ok(self
            .ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .current
            .clone())
    }

    /// The current or previous key named `kid`.
    pub(crate) fn find(&self, kid: &str) -> Option<Arc<SigningKey>> {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        std::iter::once(&ring.current)
            .chain(ring.previous.as_ref())
            .find(|k| k.kid == kid)
            .cloned()
    }

    /// The public keys: current first, then previous.
    pub(crate) fn jwks(&self) -> Result<JwkSet, OAuth2ConfigError> {
        self.rotate_if_due()?;
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        Ok(JwkSet {
            keys: std::iter::once(&ring.current)
                .chain(ring.previous.as_ref())
                .map(|k| k.jwk.clone())
                .collect(),
        })
    }

    /// Makes a new current key; the old current becomes previous, the old previous is dropped.
    pub(crate) fn rotate(&self) -> Result<(), OAuth2ConfigError> {
        let fresh = Arc::new(SigningKey::generate(self.clock.now())?);
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut ring.current, fresh);
        ring.previous = Some(old);
        Ok(())
    }

    fn rotate_if_due(&self) -> Result<(), OAuth2ConfigError> {
        let Some(every) = self.rotation.every else {
            return Ok(());
        };
        let now = self.clock.now();
        let due = |ring: &Ring| {
            now.duration_since(ring.current.created)
                .is_ok_and(|age| age >= every)
        };
        if !due(&self.ring.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(());
        }
        let fresh = Arc::new(SigningKey::generate(now)?);
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        // Another request may have rotated while we generated.
        if due(&ring) {
            let old = std::mem::replace(&mut ring.current, fresh);
            ring.previous = Some(old);
        }
        Ok(())
    }
}
