//! Public JSON Web Keys as a DPoP proof carries them (RFC 7517), their RFC 7638 thumbprints,
//! and signature checks with them.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::alg::DpopAlgorithm;

/// Why a JWK is not a public key this crate can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    /// Not a JSON object of string members, or a member repeated.
    #[error("the JWK is not a well-formed JSON object")]
    Malformed,
    /// A private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`) or a symmetric key (`k`).
    #[error("the JWK holds private or symmetric key material")]
    PrivateMaterial,
    /// A `kty`/`crv` this crate does not verify (only EC P-256, OKP Ed25519 and RSA).
    #[error("the JWK's key type or curve is not supported")]
    Unsupported,
    /// A required member is missing or its value is not a valid encoding of the key.
    #[error("the JWK's key material is invalid")]
    InvalidKey,
}

/// The members of a JWK this crate reads; serde refuses any of them twice.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    // RFC 7518 §6.2.2, §6.3.2 and §6.4: private and symmetric members. Their presence alone
    // refuses the key, whatever their type.
    d: Option<IgnoredAny>,
    p: Option<IgnoredAny>,
    q: Option<IgnoredAny>,
    dp: Option<IgnoredAny>,
    dq: Option<IgnoredAny>,
    qi: Option<IgnoredAny>,
    oth: Option<IgnoredAny>,
    k: Option<IgnoredAny>,
}

/// A JWK that must be a JSON object: serde reads a derived struct from an array too, so the
/// map form is asked for explicitly, keeping serde's refusal of repeated members.
pub(crate) struct JwkObject(RawJwk);

impl<'de> Deserialize<'de> for JwkObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JwkObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JWK object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<JwkObject, A::Error> {
                RawJwk::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(JwkObject)
            }
        }
        d.deserialize_map(V)
    }
}

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A; RFC 7518 §3.3 requires 2048).
const MIN_RSA_BITS: usize = 2048;

/// A public key from a JWK: one of the key types a DPoP proof may be signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicJwk {
    kind: KeyKind,
    thumbprint: String,
}

#[derive(Clone, PartialEq, Eq)]
enum KeyKind {
    /// `kty: EC`, `crv: P-256`; the uncompressed point `04 ‖ x ‖ y`.
    P256 { point: Vec<u8> },
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519 { x: Vec<u8> },
    /// `kty: RSA`.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn decode(s: &str) -> Result<Vec<u8>, JwkError> {
    // Strict: no padding, no non-canonical trailing bits (base64's defaults).
    URL_SAFE_NO_PAD.decode(s).map_err(|_| JwkError::InvalidKey)
}

/// The RFC 7638 §3.2 canonical JSON: the required members only, in lexicographic order, no
/// white space. Every value was checked to be base64url or a curve name, so none needs
/// escaping; serde_json quotes them anyway.
fn canonical(members: &[(&str, &str)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        out.push_str(&serde_json::Value::from(*value).to_string());
    }
    out.push('}');
    out
}

fn sha256_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

impl PublicJwk {
    /// Parses a JWK given as JSON text (one object; a member twice is refused).
    pub fn from_json(json: &str) -> Result<Self, JwkError> {
        let JwkObject(raw) = serde_json::from_str(json).map_err(|_| JwkError::Malformed)?;
        Self::from_raw(raw)
    }

    /// Parses a JWK given as a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, JwkError> {
        let JwkObject(raw) = JwkObject::deserialize(value).map_err(|_| JwkError::Malformed)?;
        Self::from_raw(raw)
    }

    pub(crate) fn from_object(JwkObject(raw): JwkObject) -> Result<Self, JwkError> {
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawJwk) -> Result<Self, JwkError> {
        let private = [
            &raw.d, &raw.p, &raw.q, &raw.dp, &raw.dq, &raw.qi, &raw.oth, &raw.k,
        ];
        if private.iter().any(|m| m.is_some()) {
            return Err(JwkError::PrivateMaterial);
        }
        match (raw.kty.as_deref(), raw.crv.as_deref()) {
            (Some("EC"), Some("P-256")) => {
                let (Some(x), Some(y)) = (raw.x.as_deref(), raw.y.as_deref()) else {
                    return Err(JwkError::InvalidKey);
                };
                let (xb, yb) = (decode(x)?, decode(y)?);
                // RFC 7518 §6.2.1.2: the full coordinate length, 32 bytes for P-256.
                if xb.len() != 32 || yb.len() != 32 {
                    return Err(JwkError::InvalidKey);
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&xb);
                point.extend_from_slice(&yb);
                let thumbprint = sha256_b64(
                    canonical(&[("crv", "P-256"), ("kty", "EC"), ("x", x), ("y", y)]).as_bytes(),
                );
                Ok(Self {
                    kind: KeyKind::P256 { point },
                    thumbprint,
                })
            }
            (Some("OKP"), Some("Ed25519")) => {
                let Some(x) = raw.x.as_deref() else {
                    return Err(JwkError::InvalidKey);
                };
                let xb = decode(x)?;
                if xb.len() != 32 {
                    return Err(JwkError::InvalidKey);
                }
                // RFC 8037 §2: the thumbprint members of an OKP key are crv, kty and x.
                let thumbprint = sha256_b64(
                    canonical(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", x)]).as_bytes(),
                );
                Ok(Self {
                    kind: KeyKind::Ed25519 { x: xb },
                    thumbprint,
                })
            }
            (Some("RSA"), _) => {
                let (Some(n), Some(e)) = (raw.n.as_deref(), raw.e.as_deref()) else {
                    return Err(JwkError::InvalidKey);
                };
                let (nb, eb) = (decode(n)?, decode(e)?);
                let bits = nb
                    .iter()
                    .position(|&b| b != 0)
                    .map_or(0, |i| (nb.len() - i) * 8 - nb[i].leading_zeros() as usize);
                if !(MIN_RSA_BITS..=8192).contains(&bits) || eb.is_empty() || eb.len() > 8 {
                    return Err(JwkError::InvalidKey);
                }
                let thumbprint =
                    sha256_b64(canonical(&[("e", e), ("kty", "RSA"), ("n", n)]).as_bytes());
                Ok(Self {
                    kind: KeyKind::Rsa { n: nb, e: eb },
                    thumbprint,
                })
            }
            (Some("oct"), _) => Err(JwkError::PrivateMaterial),
            _ => Err(JwkError::Unsupported),
        }
    }

    /// The RFC 7638 JWK SHA-256 thumbprint, base64url without padding: the `jkt` a
    /// DPoP-bound token's `cnf` names (RFC 9449 §6.1).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Whether this key is of the family `alg` signs with.
    pub fn fits(&self, alg: DpopAlgorithm) -> bool {
        matches!(
            (&self.kind, alg),
            (KeyKind::P256 { .. }, DpopAlgorithm::Es256)
                | (KeyKind::Ed25519 { .. }, DpopAlgorithm::EdDsa)
                | (
                    KeyKind::Rsa { .. },
                    DpopAlgorithm::Rs256 | DpopAlgorithm::Ps256
                )
        )
    }

    /// Checks a JWS signature (`sig`, raw bytes) over `message` with this key under `alg`.
    pub fn verify(&self, alg: DpopAlgorithm, message: &[u8], sig: &[u8]) -> bool {
        match (&self.kind, alg) {
            (KeyKind::P256 { point }, DpopAlgorithm::Es256) => {
                // RFC 7518 §3.4: R ‖ S, 64 bytes, not DER.
                sig.len() == 64
                    && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(message, sig)
                        .is_ok()
            }
            (KeyKind::Ed25519 { x }, DpopAlgorithm::EdDsa) => {
                UnparsedPublicKey::new(&signature::ED25519, x)
                    .verify(message, sig)
                    .is_ok()
            }
            (KeyKind::Rsa { n, e }, DpopAlgorithm::Rs256 | DpopAlgorithm::Ps256) => {
                let params = if alg == DpopAlgorithm::Rs256 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PSS_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kty = match self.kind {
            KeyKind::P256 { .. } => "EC P-256",
            KeyKind::Ed25519 { .. } => "OKP Ed25519",
            KeyKind::Rsa { .. } => "RSA",
        };
        f.debug_struct("PublicJwk")
            .field("kty", &kty)
            .field("jkt", &self.thumbprint)
            .finish()
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK given as JSON text (EC P-256, OKP Ed25519
/// or RSA), base64url without padding.
///
/// ```
/// // RFC 7638 §3.1.
/// let jwk = r#"{"kty":"RSA","e":"AQAB","alg":"RS256","kid":"2011-04-29",
///   "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}"#;
/// assert_eq!(
///     apiauth_dpop::jwk_thumbprint_sha256(jwk).unwrap(),
///     "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
/// );
/// ```
pub fn jwk_thumbprint_sha256(jwk_json: &str) -> Result<String, JwkError> {
    PublicJwk::from_json(jwk_json).map(|k| k.thumbprint)
}
