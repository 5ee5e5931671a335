//! Verification keys, each with its own algorithm allowlist.

use std::fmt;
use std::sync::Arc;

use std::sync::OnceLock;

use aws_lc_rs::{hmac, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
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
    /// For an HMAC secret, the keys prepared once for each hash, so a verification hashes
    /// the token only (the secret's padded blocks are hashed here, not per request).
    hmac: Option<Arc<HmacKeys>>,
    /// For a public key, the key parsed by aws-lc-rs once per algorithm it verifies, on
    /// first use, instead of once per token.
    public: Arc<PublicKeys>,
}

/// Slots of [`PublicKeys`], one per public-key algorithm.
const PUBLIC_ALGS: usize = 9;

fn public_slot(alg: Algorithm) -> Option<usize> {
    Some(match alg {
        Algorithm::ES256 => 0,
        Algorithm::ES384 => 1,
        Algorithm::RS256 => 2,
        Algorithm::RS384 => 3,
        Algorithm::RS512 => 4,
        Algorithm::PS256 => 5,
        Algorithm::PS384 => 6,
        Algorithm::PS512 => 7,
        Algorithm::EdDSA => 8,
        _ => return None,
    })
}

#[derive(Default)]
struct PublicKeys([OnceLock<Option<signature::ParsedPublicKey>>; PUBLIC_ALGS]);

/// The key parsed for `alg` exactly as jsonwebtoken's aws-lc-rs verifiers parse it for each
/// token (the same verification algorithms, the same key encodings), or `None` if it does
/// not parse, which jsonwebtoken reports as a failed verification.
fn parse_public(key: &DecodingKey, alg: Algorithm) -> Option<signature::ParsedPublicKey> {
    use signature as s;
    let raw = |a: &'static dyn s::VerificationAlgorithm| {
        s::ParsedPublicKey::new(a, key.try_get_as_bytes().ok()?).ok()
    };
    let rsa = |p: &'static s::RsaParameters| match key.kind() {
        DecodingKeyKind::SecretOrDer(der) => s::ParsedPublicKey::new(p, der).ok(),
        DecodingKeyKind::RsaModulusExponent { n, e } => s::RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(p)
            .ok(),
    };
    match alg {
        Algorithm::ES256 => raw(&s::ECDSA_P256_SHA256_FIXED),
        Algorithm::ES384 => raw(&s::ECDSA_P384_SHA384_FIXED),
        Algorithm::RS256 => rsa(&s::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => rsa(&s::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => rsa(&s::RSA_PKCS1_2048_8192_SHA512),
        Algorithm::PS256 => rsa(&s::RSA_PSS_2048_8192_SHA256),
        Algorithm::PS384 => rsa(&s::RSA_PSS_2048_8192_SHA384),
        Algorithm::PS512 => rsa(&s::RSA_PSS_2048_8192_SHA512),
        Algorithm::EdDSA => raw(&s::ED25519),
        _ => None,
    }
}

/// An HMAC secret prepared for HS256, HS384 and HS512 (aws-lc-rs, the backend jsonwebtoken
/// is built with here).
struct HmacKeys {
    hs256: hmac::Key,
    hs384: hmac::Key,
    hs512: hmac::Key,
}

impl HmacKeys {
    fn new(secret: &[u8]) -> Arc<Self> {
        Arc::new(Self {
            hs256: hmac::Key::new(hmac::HMAC_SHA256, secret),
            hs384: hmac::Key::new(hmac::HMAC_SHA384, secret),
            hs512: hmac::Key::new(hmac::HMAC_SHA512, secret),
        })
    }
}

/// Longest base64url HMAC tag: 64 bytes (HS512) are 86 characters.
const MAX_HMAC_TAG_B64: usize = 86;

impl JwtKey {
    fn new(key: DecodingKey, family: AlgorithmFamily, default: Algorithm) -> Self {
        let hmac = match family {
            AlgorithmFamily::Hmac => key.try_get_as_bytes().ok().map(HmacKeys::new),
            _ => None,
        };
        Self {
            kid: None,
            key,
            family,
            algorithms: vec![default],
            fixed: None,
            hmac,
            public: Arc::default(),
        }
    }

    /// RFC 7515 §5.2 step 8: whether `signature` (base64url, as received) is a valid
    /// signature of `signing_input` under this key with `alg`, which the caller has checked
    /// against this key's allowlist.
    fn verify_public(&self, alg: Algorithm, signing_input: &[u8], signature: &str) -> bool {
        let Some(slot) = public_slot(alg).and_then(|i| self.public.0.get(i)) else {
            return false;
        };
        let Some(key) = slot.get_or_init(|| parse_public(&self.key, alg)) else {
            return false;
        };
        // The same canonical base64url jsonwebtoken decodes with.
        let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        key.verify_sig(signing_input, &sig).is_ok()
    }

    pub(crate) fn verify(&self, alg: Algorithm, signing_input: &[u8], signature: &str) -> bool {
        // Never an algorithm of another family (an HMAC algorithm with a public key).
        if alg.family() != self.family {
            return false;
        }
        let Some(h) = &self.hmac else {
            return self.verify_public(alg, signing_input, signature);
        };
        let key = match alg {
            Algorithm::HS256 => &h.hs256,
            Algorithm::HS384 => &h.hs384,
            Algorithm::HS512 => &h.hs512,
            // Never an HMAC secret with another family's algorithm.
            _ => return false,
        };
        if signature.len() > MAX_HMAC_TAG_B64 {
            return false;
        }
        // The same canonical base64url jsonwebtoken decodes with (no padding, no stray bits).
        let mut tag = [0u8; 66];
        let Ok(n) = URL_SAFE_NO_PAD.decode_slice(signature, &mut tag) else {
            return false;
        };
        // Compares in constant time (`CRYPTO_memcmp`), after checking the length.
        tag.get(..n)
            .is_some_and(|tag| hmac::verify(key, signing_input, tag).is_ok())
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
    let mut k = JwtKey::new(key, family, declared.unwrap_or(default));
    k.kid = kid;
    k.fixed = fixed;
    k.check().map_err(|_| "JWK alg does not fit its key type")?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_hmac_keys_agree_with_jsonwebtoken() {
        let secret = b"0123456789abcdef0123456789abcdef-and-more";
        let key = JwtKey::hmac(secret).unwrap().algorithms([
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
        ]);
        let enc = jsonwebtoken::EncodingKey::from_secret(secret);
        let input = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0";
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let sig = jsonwebtoken::crypto::sign(input, &enc, alg).unwrap();
            assert!(key.verify(alg, input, &sig), "{alg:?}");
            let mut tampered = input.to_vec();
            tampered[3] ^= 1;
            let bad = [
                (input.to_vec(), format!("{sig}A")),
                (input.to_vec(), format!("{sig}==")),
                (input.to_vec(), sig[1..].to_owned()),
                (input.to_vec(), String::new()),
                (input.to_vec(), "A".repeat(200)),
                (input.to_vec(), format!("{}!", &sig[..sig.len() - 1])),
                (tampered, sig.clone()),
            ];
            for (msg, s) in bad {
                assert!(!key.verify(alg, &msg, &s), "{alg:?} {s}");
                assert!(
                    !jsonwebtoken::crypto::verify(&s, &msg, &key.key, alg).unwrap_or(false),
                    "{alg:?} {s}"
                );
            }
            // Another algorithm's tag does not verify.
            let other = if alg == Algorithm::HS256 {
                Algorithm::HS512
            } else {
                Algorithm::HS256
            };
            assert!(!key.verify(other, input, &sig));
        }
        // A non-canonical last character (stray bits) is refused, as jsonwebtoken does.
        let sig = jsonwebtoken::crypto::sign(input, &enc, Algorithm::HS256).unwrap();
        let last = sig.chars().last().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
        let stray = char::from(alphabet[pos | 1]);
        if stray != last {
            let s = format!("{}{stray}", &sig[..sig.len() - 1]);
            assert!(!key.verify(Algorithm::HS256, input, &s));
        }
        // Never with a public-key algorithm.
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert!(!key.verify(alg, input, &sig));
        }
    }

    #[test]
    fn symmetric_jwks_get_prepared_keys() {
        let k = JwtKey::jwk(
            r#"{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY","alg":"HS384"}"#,
        )
        .unwrap();
        assert!(k.hmac.is_some());
        let enc = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let sig = jsonwebtoken::crypto::sign(b"a.b", &enc, Algorithm::HS384).unwrap();
        assert!(k.verify(Algorithm::HS384, b"a.b", &sig));
    }

    #[test]
    fn parsed_public_keys_agree_with_jsonwebtoken() {
        use jsonwebtoken::EncodingKey;
        let data = |f: &str| {
            std::fs::read(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        let rsa_pem = data("rsa_public.pem");
        let rsa_priv = EncodingKey::from_rsa_pem(&data("rsa_private.pem")).unwrap();
        let rsa = JwtKey::rsa_pem(&rsa_pem).unwrap();
        // The same key as RSA components (n, e), as a JWK gives it.
        let (n, e) = (jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER
            .key_utils
            .rsa_pub_components_from_public_key)(
            rsa.key.try_get_as_bytes().unwrap()
        )
        .unwrap();
        let rsa_ne = JwtKey::new(
            DecodingKey::from_rsa_raw_components(&n, &e),
            AlgorithmFamily::Rsa,
            Algorithm::RS256,
        );
        let ec = JwtKey::ec_pem(data("ec_public.pem")).unwrap();
        let ec_priv = EncodingKey::from_ec_pem(&data("ec_private.pem")).unwrap();
        let ed = JwtKey::ed25519_pem(data("ed_public.pem")).unwrap();
        let ed_priv = EncodingKey::from_ed_pem(&data("ed_private.pem")).unwrap();
        let cases = [
            (&rsa, &rsa_priv, Algorithm::RS256),
            (&rsa, &rsa_priv, Algorithm::RS512),
            (&rsa, &rsa_priv, Algorithm::PS256),
            (&rsa_ne, &rsa_priv, Algorithm::RS256),
            (&rsa_ne, &rsa_priv, Algorithm::PS384),
            (&ec, &ec_priv, Algorithm::ES256),
            (&ed, &ed_priv, Algorithm::EdDSA),
        ];
        let input = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0";
        for (key, private, alg) in cases {
            let sig = jsonwebtoken::crypto::sign(input, private, alg).unwrap();
            let mut tampered = input.to_vec();
            tampered[5] ^= 1;
            let mut flipped = sig.clone().into_bytes();
            flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
            let flipped = String::from_utf8(flipped).unwrap();
            for (msg, s) in [
                (&input[..], sig.clone()),
                (&tampered[..], sig.clone()),
                (&input[..], flipped),
                (&input[..], format!("{sig}A")),
                (&input[..], format!("{sig}==")),
                (&input[..], String::new()),
            ] {
                let theirs = jsonwebtoken::crypto::verify(&s, msg, &key.key, alg).unwrap_or(false);
                // Twice: the first use parses the key, the second reuses it.
                assert_eq!(key.verify(alg, msg, &s), theirs, "{alg:?} {s}");
                assert_eq!(key.verify(alg, msg, &s), theirs, "{alg:?} {s}");
            }
            assert!(key.verify(alg, input, &sig), "{alg:?}");
            // An HMAC algorithm with a public key, whatever the signature.
            let hs = jsonwebtoken::crypto::sign(
                input,
                &EncodingKey::from_secret(key.key.try_get_as_bytes().unwrap_or(b"x")),
                Algorithm::HS256,
            )
            .unwrap();
            assert!(!key.verify(Algorithm::HS256, input, &hs), "{alg:?}");
        }
    }
}
