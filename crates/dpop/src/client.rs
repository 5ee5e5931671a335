//! The client side: a key pair and the proofs it signs (RFC 9449 §4.2).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{self, SystemRandom};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::alg::DpopAlgorithm;
use crate::jwk::PublicJwk;
use crate::verifier::access_token_hash;

/// A client's DPoP key pair: ES256 (P-256) or EdDSA (Ed25519).
pub struct DpopKey {
    pair: Pair,
    jwk: Value,
    jkt: String,
}

enum Pair {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key could not be made or read, or a proof not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the DPoP key could not be generated, read or used")]
pub struct DpopKeyError;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    /// A fresh ES256 (P-256) key.
    pub fn generate_es256() -> Result<Self, DpopKeyError> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| DpopKeyError)?;
        Self::from_ecdsa(pair)
    }

    /// An ES256 key from its PKCS#8 DER encoding.
    pub fn es256_from_pkcs8(der: &[u8]) -> Result<Self, DpopKeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| DpopKeyError)?;
        Self::from_ecdsa(pair)
    }

    /// A fresh EdDSA (Ed25519) key.
    pub fn generate_ed25519() -> Result<Self, DpopKeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| DpopKeyError)?;
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref())});
        Self::finish(Pair::Ed25519(pair), jwk)
    }

    fn from_ecdsa(pair: EcdsaKeyPair) -> Result<Self, DpopKeyError> {
        // The uncompressed point: 0x04 ‖ x ‖ y.
        let point = pair.public_key().as_ref();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(DpopKeyError);
        };
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
        Self::finish(Pair::Es256(pair), jwk)
    }

    fn finish(pair: Pair, jwk: Value) -> Result<Self, DpopKeyError> {
        let jkt = PublicJwk::from_value(&jwk)
            .map_err(|_| DpopKeyError)?
            .thumbprint()
            .to_owned();
        Ok(Self { pair, jwk, jkt })
    }

    /// The public key as a JWK (what the proof's `jwk` header carries).
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> DpopAlgorithm {
        match self.pair {
            Pair::Es256(_) => DpopAlgorithm::Es256,
            Pair::Ed25519(_) => DpopAlgorithm::EdDsa,
        }
    }

    /// Starts a proof for a request of `method` to `uri` (query and fragment are dropped, as
    /// `htu` has none).
    pub fn proof(&self, method: impl Into<String>, uri: impl Into<String>) -> DpopProofBuilder<'_> {
        DpopProofBuilder {
            key: self,
            htm: method.into(),
            htu: uri.into(),
            access_token: None,
            nonce: None,
            iat: None,
            jti: None,
        }
    }

    /// Signs `header` and `claims` exactly as given, as a compact JWS under this key's
    /// algorithm. For tests and interop checks that need proofs a well-behaved client would
    /// never make; real clients use [`proof`](Self::proof).
    pub fn sign_jws(&self, header: &Value, claims: &Value) -> Result<String, DpopKeyError> {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match &self.pair {
            Pair::Es256(p) => p
                .sign(&SystemRandom::new(), input.as_bytes())
                .map_err(|_| DpopKeyError)?
                .as_ref()
                .to_vec(),
            Pair::Ed25519(p) => p.sign(input.as_bytes()).as_ref().to_vec(),
        };
        Ok(format!("{input}.{}", b64(&sig)))
    }
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.algorithm())
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// One proof being built: [`DpopKey::proof`], then the optional claims, then
/// [`sign`](Self::sign).
///
/// ```
/// use apiauth_dpop::DpopKey;
///
/// let key = DpopKey::generate_es256().unwrap();
/// let proof = key
///     .proof("GET", "https://api.example/v1/items?page=2")
///     .access_token("eyJ.example.token")
///     .sign()
///     .unwrap();
/// assert_eq!(proof.split('.').count(), 3);
/// ```
#[must_use]
pub struct DpopProofBuilder<'k> {
    key: &'k DpopKey,
    htm: String,
    htu: String,
    access_token: Option<String>,
    nonce: Option<String>,
    iat: Option<i64>,
    jti: Option<String>,
}

impl DpopProofBuilder<'_> {
    /// Binds the proof to `token` (`ath`, RFC 9449 §4.2), as every request to a resource
    /// server must.
    pub fn access_token(mut self, token: &str) -> Self {
        self.access_token = Some(token.to_owned());
        self
    }

    /// Carries the server's nonce (from `DPoP-Nonce`, §8).
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Sets `iat` (default: now).
    pub fn issued_at(mut self, at: SystemTime) -> Self {
        self.iat = Some(
            at.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        );
        self
    }

    /// Sets `jti` (default: 128 random bits, base64url).
    pub fn jti(mut self, jti: impl Into<String>) -> Self {
        self.jti = Some(jti.into());
        self
    }

    /// Signs the proof: the value of the `DPoP` header.
    pub fn sign(self) -> Result<String, DpopKeyError> {
        let jti = match self.jti {
            Some(j) => j,
            None => {
                let mut raw = [0u8; 16];
                rand::fill(&mut raw).map_err(|_| DpopKeyError)?;
                b64(&raw)
            }
        };
        let iat = self.iat.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
        // §4.2: htu without query and fragment.
        let htu = self
            .htu
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut claims = json!({"jti": jti, "htm": self.htm, "htu": htu, "iat": iat});
        if let Some(t) = &self.access_token {
            claims["ath"] = Value::from(access_token_hash(t));
        }
        if let Some(n) = self.nonce {
            claims["nonce"] = Value::from(n);
        }
        let header = json!({
            "typ": "dpop+jwt",
            "alg": self.key.algorithm().as_str(),
            "jwk": self.key.jwk,
        });
        self.key.sign_jws(&header, &claims)
    }
}
