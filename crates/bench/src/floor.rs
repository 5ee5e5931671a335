//! The cryptographic work each method cannot avoid, measured beside the layer.

use apiauth_core::token::SecretHash;
use hmac::{Hmac, Mac};
use jsonwebtoken::{DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::{AUDIENCE, BenchError, ISSUER, JwtAlg};

/// SHA-256 of a presented secret compared in constant time with the stored digest: the
/// floor of API keys and opaque tokens (stored only as SHA-256), and of the introspection
/// cache (keyed by SHA-256 of the token).
pub struct Sha256Floor {
    input: Vec<u8>,
    stored: SecretHash,
}

impl Sha256Floor {
    /// The floor for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            input: secret.to_vec(),
            stored: SecretHash::of(secret),
        }
    }

    /// One check; `true` when the digest matches.
    pub fn run(&self) -> bool {
        SecretHash::of(&self.input).ct_eq(&self.stored)
    }
}

/// HMAC-SHA256 of the presented credentials under a secret key: the floor of Basic with a
/// warm cache (its cache is keyed that way, so that the keys say nothing about a password).
pub struct HmacFloor {
    key: [u8; 32],
    input: Vec<u8>,
}

impl HmacFloor {
    /// The floor for `credentials` (`user-id:password`).
    pub fn new(credentials: &[u8]) -> Self {
        Self {
            key: [7; 32],
            input: credentials.to_vec(),
        }
    }

    /// One fingerprint.
    pub fn run(&self) -> [u8; 32] {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return [0; 32],
        };
        mac.update(&self.input);
        mac.finalize().into_bytes().into()
    }
}

/// `jsonwebtoken::decode` of the same token with the same key and the same claim checks
/// (`iss`, `aud`, `exp`, `nbf`): what any JWT layer built on that crate pays.
pub struct JwtFloor {
    token: String,
    key: DecodingKey,
    validation: Validation,
}

impl JwtFloor {
    /// The floor for `token`, signed with `alg`.
    pub fn new(alg: JwtAlg, token: &str) -> Result<Self, BenchError> {
        let mut validation = Validation::new(alg.algorithm());
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.validate_nbf = true;
        let floor = Self {
            token: token.to_owned(),
            key: alg.decoding_key()?,
            validation,
        };
        if !floor.run() {
            return Err(BenchError::Setup("jsonwebtoken refused the token".into()));
        }
        Ok(floor)
    }

    /// One decode; `true` when the token verifies.
    pub fn run(&self) -> bool {
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            &self.token,
            &self.key,
            &self.validation,
        )
        .is_ok()
    }
}

/// HMAC-SHA256 over the RFC 9421 signature base of a signed request, plus SHA-256 of its
/// body (RFC 9530 `Content-Digest`): the floor of `apiauth-hmac`.
pub struct SignatureFloor {
    key: Vec<u8>,
    base: Vec<u8>,
    signature: Vec<u8>,
    body: Vec<u8>,
    digest: [u8; 32],
}

impl SignatureFloor {
    /// The floor for `req`, signed with `secret`. Fails if the base rebuilt here does not
    /// give the request's signature, so the floor is known to hash the same bytes.
    pub fn new(req: &http::Request<Vec<u8>>, secret: &[u8]) -> Result<Self, BenchError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let base = crate::signature_base(req, "sig1").map_err(BenchError::Setup)?;
        let signature = header_bytes(req, "signature", "sig1=:").and_then(|s| {
            b64.decode(s)
                .map_err(|_| BenchError::Setup("signature is not base64".into()))
        })?;
        let digest = header_bytes(req, "content-digest", "sha-256=:").and_then(|s| {
            b64.decode(s)
                .ok()
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| BenchError::Setup("content-digest is not sha-256".into()))
        })?;
        let floor = Self {
            key: secret.to_vec(),
            base: base.into_bytes(),
            signature,
            body: req.body().clone(),
            digest,
        };
        if !floor.run() {
            return Err(BenchError::Setup(
                "rebuilt signature base does not verify".into(),
            ));
        }
        Ok(floor)
    }

    /// One check of signature and digest; `true` when both match.
    pub fn run(&self) -> bool {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return false;
        };
        mac.update(&self.base);
        let sig_ok = mac.verify_slice(&self.signature).is_ok();
        let body: [u8; 32] = Sha256::digest(&self.body).into();
        let digest_ok = apiauth_core::token::ct_eq(&body, &self.digest);
        sig_ok & digest_ok
    }
}

/// The byte sequence between `prefix` and the closing `:` of a header value.
fn header_bytes<'a>(
    req: &'a http::Request<Vec<u8>>,
    name: &str,
    prefix: &str,
) -> Result<&'a str, BenchError> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(prefix))
        .and_then(|v| v.strip_suffix(':'))
        .ok_or_else(|| BenchError::Setup(format!("no {name} of the expected form")))
}

/// ES256 verification of a DPoP proof's signature with the public key in its `jwk` header
/// (aws-lc-rs, the backend apiauth-dpop verifies with): the one piece of cryptography a DPoP
/// request adds to its token's (RFC 9449 §4.3 step 6).
pub struct DpopFloor {
    point: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl DpopFloor {
    /// The floor for `proof`, signed by `key` (ES256).
    pub fn new(key: &apiauth_dpop::DpopKey, proof: &str) -> Result<Self, BenchError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let coord = |name: &str| {
            key.public_jwk()[name]
                .as_str()
                .and_then(|c| b64.decode(c).ok())
                .ok_or_else(|| BenchError::Setup(format!("the DPoP key has no {name}")))
        };
        let mut point = vec![0x04];
        point.extend(coord("x")?);
        point.extend(coord("y")?);
        let (input, signature) = proof
            .rsplit_once('.')
            .ok_or_else(|| BenchError::Setup("the proof is not a compact JWS".into()))?;
        let floor = Self {
            point,
            signing_input: input.as_bytes().to_vec(),
            signature: b64
                .decode(signature)
                .map_err(|_| BenchError::Setup("the proof signature is not base64url".into()))?,
        };
        if !floor.run() {
            return Err(BenchError::Setup("the proof does not verify".into()));
        }
        Ok(floor)
    }

    /// One verification; `true` when the signature is good.
    pub fn run(&self) -> bool {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point)
            .verify(&self.signing_input, &self.signature)
            .is_ok()
    }
}
