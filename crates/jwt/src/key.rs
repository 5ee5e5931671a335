//! Verification keys, each with its own algorithm allowlist.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::{Map, Value};

use crate::error::JwtConfigError;

/// Shortest HMAC secret accepted: RFC 7518 §3.2 requires a key at least as long as the hash
/// output, 32 bytes for HS256.
pub const MIN_HMAC_SECRET_LEN: usize = 32;

/// One verification key and the algorithms it may verify.
///
/// The allowlist can only name algorithms of the key's own family, so an HMAC algorithm is
/// never tried with a public key (the RS256/HS256 confusion), and `none` is not an algorithm
/// at all here.
///
/// ```
/// use apiauth_jwt::{Algorithm, JwtKey};
/// let key = JwtKey::hmac(b"a shared secret of at least 32 bytes!!").unwrap()
///     .kid("2024-01")
///     .algorithms([Algorithm::HS256, Algorithm::HS512]);
/// assert_eq!(key.allowed_algorithms(), [Algorithm::HS256, Algorithm::HS512]);
/// ```
#[derive(Clone)]
pub struct JwtKey {
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) key: DecodingKey,
    pub(crate) family: AlgorithmFamily,
    pub(crate) algorithms: Vec<Algorithm>,
    /// The one algorithm a key's shape permits, if it permits only one (EC curve, Ed25519).
    fixed: Option<Algorithm>,
}

impl JwtKey {
    fn new(key: DecodingKey, family: AlgorithmFamily, default: Algorithm) -> Self {
        Self {
            kid: None,
            key,
            family,
            algorithms: vec![default],
            fixed: None,
        }
    }

    /// An HMAC secret, allowing HS256. At least [`MIN_HMAC_SECRET_LEN`] bytes.
    ///
    /// A shared secret cannot be stored as a hash (verifying needs the secret itself); it is
    /// kept in memory only, zeroed on drop, and never shown by `Debug`.
    pub fn hmac(secret: impl AsRef<[u8]>) -> Result<Self, JwtConfigError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(JwtConfigError::InvalidKey(
                "HMAC secret shorter than 32 bytes",
            ));
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            AlgorithmFamily::Hmac,
            Algorithm::HS256,
        ))
    }

    /// An RSA public key in PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`), allowing RS256.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, JwtConfigError> {
        let key = DecodingKey::from_rsa_pem(pem.as_ref())
            .map_err(|_| JwtConfigError::InvalidKey("not an RSA public key in PEM"))?;
        Ok(Self::new(key, AlgorithmFamily::Rsa, Algorithm::RS256))
    }

    /// An EC public key in PEM: P-256 allows ES256, P-384 allows ES384.
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, JwtConfigError> {
        let key = DecodingKey::from_ec_pem(pem.as_ref())
            .map_err(|_| JwtConfigError::InvalidKey("not an EC public key in PEM"))?;
        // The decoded key is the SEC1 point: 65 bytes on P-256, 97 on P-384.
        let alg = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65) => Algorithm::ES256,
            Ok(97) => Algorithm::ES384,
            _ => {
                return Err(JwtConfigError::InvalidKey(
                    "EC key is not on P-256 or P-384",
                ));
            }
        };
        let mut k = Self::new(key, AlgorithmFamily::Ec, alg);
        k.fixed = Some(alg);
        Ok(k)
    }

    /// An Ed25519 public key in PEM, allowing EdDSA.
    pub fn ed25519_pem(pem: impl AsRef<[u8]>) -> Result<Self, JwtConfigError> {
        let key = DecodingKey::from_ed_pem(pem.as_ref())
            .map_err(|_| JwtConfigError::InvalidKey("not an Ed25519 public key in PEM"))?;
        let mut k = Self::new(key, AlgorithmFamily::Ed, Algorithm::EdDSA);
        k.fixed = Some(Algorithm::EdDSA);
        Ok(k)
    }

    /// A key in JWK form (RFC 7517). Its `kid` and `alg` are taken over; a symmetric (`oct`)
    /// JWK is accepted here because it is configured locally, never from a fetched set.
    pub fn jwk(json: &str) -> Result<Self, JwtConfigError> {
        let value = crate::json::parse_object(json.as_bytes())
            .ok_or(JwtConfigError::InvalidKey("not a JSON object"))?;
        from_jwk(&value, true).map_err(JwtConfigError::InvalidKey)
    }

    /// Sets the key id that tokens name in their `kid` header.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<Arc<str>>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Replaces the algorithm allowlist. Every algorithm must belong to the key's family (and
    /// to its curve, for EC keys); `build` refuses the configuration otherwise.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The key id, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithms this key may verify.
    pub fn allowed_algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Checks the allowlist against the key's family and shape.
    pub(crate) fn check(&self) -> Result<(), JwtConfigError> {
        if self.algorithms.is_empty() {
            return Err(JwtConfigError::InvalidKey("empty algorithm allowlist"));
        }
        for alg in &self.algorithms {
            let fits = alg.family() == self.family && self.fixed.is_none_or(|f| f == *alg);
            if !fits {
                return Err(JwtConfigError::AlgorithmNotForKey {
                    algorithm: *alg,
                    kid: self.kid.as_deref().map(str::to_owned),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public facts only; the key material (a secret, for HMAC) is never printed.
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

fn alg_of(k: KeyAlgorithm) -> Option<Algorithm> {
    Some(match k {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Builds a key from one JWK object. `allow_symmetric` is false for fetched sets: a JWKS is
/// public, so an `oct` key in one is either a mistake or an attack.
pub(crate) fn from_jwk(
    value: &Map<String, Value>,
    allow_symmetric: bool,
) -> Result<JwtKey, &'static str> {
    // RFC 7517 §4.2 and §4.3: a key meant for encryption, or not for verifying, is not ours.
    match value.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err("JWK is not for signatures"),
    }
    match value.get("key_ops") {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|o| o == "verify") => {}
        Some(_) => return Err("JWK key_ops does not include verify"),
    }
    let kid = match value.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= crate::token::MAX_KID_LEN => {
            Some(Arc::<str>::from(k.as_str()))
        }
        Some(_) => return Err("JWK kid is not a short string"),
    };
    let jwk: Jwk = serde_json::from_value(Value::Object(value.clone()))
        .map_err(|_| "unsupported or malformed JWK")?;
    let declared = match value.get("alg") {
        None => None,
        Some(Value::String(_)) => Some(
            jwk.common
                .key_algorithm
                .and_then(alg_of)
                .ok_or("JWK alg is not a supported signature algorithm")?,
        ),
        Some(_) => return Err("JWK alg is not a string"),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "malformed JWK key parameters")?;
    let (family, fixed, default) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None, Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => {
            let a = match p.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("unsupported EC curve"),
            };
            (AlgorithmFamily::Ec, Some(a), a)
        }
        AlgorithmParameters::OctetKeyPair(p) => {
            if p.curve != EllipticCurve::Ed25519 {
                return Err("unsupported OKP curve");
            }
            (
                AlgorithmFamily::Ed,
                Some(Algorithm::EdDSA),
                Algorithm::EdDSA,
            )
        }
        AlgorithmParameters::OctetKey(_) if allow_symmetric => {
            (AlgorithmFamily::Hmac, None, Algorithm::HS256)
        }
        AlgorithmParameters::OctetKey(_) => return Err("symmetric key in a fetched JWKS"),
        _ => return Err("unsupported key type"),
    };
    if family == AlgorithmFamily::Hmac
        && key.try_get_as_bytes().map_or(0, <[u8]>::len) < MIN_HMAC_SECRET_LEN
    {
        return Err("HMAC secret shorter than 32 bytes");
    }
    let k = JwtKey {
        kid,
        key,
        family,
        algorithms: vec![declared.unwrap_or(default)],
        fixed,
    };
    k.check().map_err(|_| "JWK alg does not fit its key type")?;
    Ok(k)
}
