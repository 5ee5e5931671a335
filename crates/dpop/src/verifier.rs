//! The proof verifier: every check of RFC 9449 §4.3 on one `DPoP` header value.

use std::sync::Arc;
use std::time::Duration;

use apiauth_core::clock::{SharedClock, SystemClock, unix_seconds};
use aws_lc_rs::constant_time;
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::Method;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::alg::{DpopAlgorithm, is_none_or_symmetric};
use crate::error::{DpopConfigError, DpopRefusal};
use crate::htu;
use crate::jwk::{JwkError, JwkObject, PublicJwk};
use crate::nonce::DpopNonces;
use crate::store::{DpopReplayStore, MemoryDpopReplayStore};

/// Default bound on a proof's length, checked before any decoding.
pub const DEFAULT_MAX_PROOF_LEN: usize = 8 * 1024;
/// Default age after which a proof's `iat` is too old.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
/// Default tolerance for a client clock ahead of ours.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(5);
/// Default bound on a `jti`'s length, in bytes.
pub const DEFAULT_MAX_JTI_LEN: usize = 256;

/// Verifies DPoP proofs (RFC 9449 §4.3) for one public origin. Cheap to clone.
///
/// Secure defaults: ES256 and EdDSA only (RS256 and PS256 are one
/// [`algorithms`](DpopVerifierBuilder::algorithms) call away), `iat` at most 60 s old and
/// 5 s ahead, proofs up to 8 KiB, `jti` up to 256 bytes, an in-memory replay store, no
/// server nonce.
#[derive(Clone)]
pub struct DpopVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    algorithms: Vec<DpopAlgorithm>,
    algs_param: String,
    max_age: Duration,
    max_skew: Duration,
    max_proof_len: usize,
    max_jti_len: usize,
    replay: Arc<dyn DpopReplayStore>,
    nonces: Option<Arc<dyn DpopNonces>>,
    clock: SharedClock,
}

/// Builder for [`DpopVerifier`].
#[must_use]
pub struct DpopVerifierBuilder {
    base: String,
    algorithms: Vec<DpopAlgorithm>,
    max_age: Duration,
    max_skew: Duration,
    max_proof_len: usize,
    max_jti_len: usize,
    replay: Option<Arc<dyn DpopReplayStore>>,
    nonces: Option<Arc<dyn DpopNonces>>,
    clock: SharedClock,
}

impl DpopVerifierBuilder {
    /// The algorithms accepted, in the order the `algs` challenge parameter lists them.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = DpopAlgorithm>) -> Self {
        self.algorithms = Vec::new();
        for a in algs {
            if !self.algorithms.contains(&a) {
                self.algorithms.push(a);
            }
        }
        self
    }

    /// How old a proof's `iat` may be (default 60 s). Its `jti` is remembered this long
    /// plus the clock skew.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// How far ahead of this server's clock a proof's `iat` may be (default 5 s).
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_skew = skew;
        self
    }

    /// The longest `DPoP` header accepted, in bytes (default 8 KiB).
    pub fn max_proof_len(mut self, len: usize) -> Self {
        self.max_proof_len = len;
        self
    }

    /// The longest `jti` accepted, in bytes (default 256).
    pub fn max_jti_len(mut self, len: usize) -> Self {
        self.max_jti_len = len.max(1);
        self
    }

    /// Where used proofs are remembered. Default: a [`MemoryDpopReplayStore`], right for a
    /// single instance only.
    pub fn replay_store(mut self, store: Arc<dyn DpopReplayStore>) -> Self {
        self.replay = Some(store);
        self
    }

    /// Requires a server nonce in every proof (RFC 9449 §8–9), issued and checked by
    /// `nonces` (for example [`HmacDpopNonces`](crate::HmacDpopNonces)).
    pub fn require_nonce(mut self, nonces: Arc<dyn DpopNonces>) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// The clock `iat` is judged by (tests use `ManualClock`).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<DpopVerifier, DpopConfigError> {
        if self.algorithms.is_empty() {
            return Err(DpopConfigError::NoAlgorithms);
        }
        let url = url::Url::parse(&self.base).map_err(|_| DpopConfigError::InvalidBaseUrl)?;
        if url.query().is_some()
            || url.fragment().is_some()
            || self.base.contains('?')
            || self.base.contains('#')
        {
            return Err(DpopConfigError::InvalidBaseUrl);
        }
        let normalised = htu::normalise(&self.base).ok_or(DpopConfigError::InvalidBaseUrl)?;
        // Request paths start with `/`; a base path is a prefix without its final `/`.
        let base = normalised.trim_end_matches('/').to_owned();
        let algs_param = self
            .algorithms
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(DpopVerifier {
            inner: Arc::new(Inner {
                base,
                algorithms: self.algorithms,
                algs_param,
                max_age: self.max_age,
                max_skew: self.max_skew,
                max_proof_len: self.max_proof_len,
                max_jti_len: self.max_jti_len,
                replay: self
                    .replay
                    .unwrap_or_else(|| Arc::new(MemoryDpopReplayStore::new())),
                nonces: self.nonces,
                clock: self.clock,
            }),
        })
    }
}

/// A proof that passed the checks of [`DpopVerifier::check`].
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    jkt: String,
    jti: String,
    alg: DpopAlgorithm,
    iat: i64,
    nonce: Option<String>,
}

impl VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key: what a bound token's `cnf.jkt` must be.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
    /// The proof's `jti`.
    pub fn jti(&self) -> &str {
        &self.jti
    }
    /// The algorithm the proof was signed with.
    pub fn algorithm(&self) -> DpopAlgorithm {
        self.alg
    }
    /// The proof's `iat`, seconds since the epoch.
    pub fn issued_at(&self) -> i64 {
        self.iat
    }
    /// The proof's `nonce`, if any.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
}

/// The JOSE header members read; serde refuses any of them twice.
#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<JwkObject>,
    crit: Option<IgnoredAny>,
}

/// The claims read (RFC 9449 §4.2); serde refuses any of them twice or wrongly typed.
#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Decodes one base64url part into a JSON object's bytes: strict base64url, and the first
/// non-space byte `{` (serde would read a derived struct from an array too).
fn object_part(part: &str) -> Result<Vec<u8>, DpopRefusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| DpopRefusal::Malformed)?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(bytes),
        _ => Err(DpopRefusal::Malformed),
    }
}

/// base64url(SHA-256(token)), the `ath` of RFC 9449 §4.2.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

impl DpopVerifier {
    /// A verifier for proofs sent to `public_base_url`: the scheme and authority (and any
    /// path prefix) clients use to reach this service, as they put it in `htu`. Behind a
    /// proxy that is the proxy's public URL, not the `Host` the service sees, which is
    /// never trusted for this.
    pub fn builder(public_base_url: impl Into<String>) -> DpopVerifierBuilder {
        DpopVerifierBuilder {
            base: public_base_url.into(),
            algorithms: vec![DpopAlgorithm::Es256, DpopAlgorithm::EdDsa],
            max_age: DEFAULT_MAX_AGE,
            max_skew: DEFAULT_MAX_CLOCK_SKEW,
            max_proof_len: DEFAULT_MAX_PROOF_LEN,
            max_jti_len: DEFAULT_MAX_JTI_LEN,
            replay: None,
            nonces: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The accepted algorithms, as the `algs` challenge parameter lists them (§7.1).
    pub fn algs_param(&self) -> &str {
        &self.inner.algs_param
    }

    /// The accepted algorithms, for `dpop_signing_alg_values_supported` (RFC 9449 §5.1).
    pub fn algorithms(&self) -> &[DpopAlgorithm] {
        &self.inner.algorithms
    }

    /// The target URI a request to `path` has, as clients name it in `htu`.
    pub fn target_uri(&self, path: &str) -> String {
        format!("{}{}", self.inner.base, path)
    }

    /// A fresh nonce for `DPoP-Nonce`, when nonces are required.
    pub fn issue_nonce(&self) -> Option<String> {
        self.inner.nonces.as_ref().map(|n| n.issue())
    }

    /// The stateless checks of RFC 9449 §4.3 on `proof`, sent with a request of `method` to
    /// `path` (the path as the public URL has it, below the base path), and, when a token
    /// came with it, `access_token` (step 12's `ath`). Nonce and replay are
    /// [`check_nonce`](Self::check_nonce) and [`spend`](Self::spend), kept apart so that a
    /// request refused for another reason uses up nothing.
    pub fn check(
        &self,
        proof: &str,
        method: &Method,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<VerifiedProof, DpopRefusal> {
        let cfg = &*self.inner;
        if proof.len() > cfg.max_proof_len {
            return Err(DpopRefusal::ProofTooLarge);
        }
        // Step 2: one compact JWS, three base64url parts.
        let mut parts = proof.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopRefusal::Malformed);
        };
        let header_bytes = object_part(h64)?;
        let header: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| DpopRefusal::Malformed)?;
        let payload_bytes = object_part(p64)?;
        let claims: Claims =
            serde_json::from_slice(&payload_bytes).map_err(|_| DpopRefusal::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| DpopRefusal::Malformed)?;

        // Step 4: explicit typing (media types compare case-insensitively).
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
        {
            return Err(DpopRefusal::WrongType);
        }
        // Step 5: an asymmetric algorithm we support and allow.
        let alg_name = header.alg.as_deref().ok_or(DpopRefusal::Malformed)?;
        if is_none_or_symmetric(alg_name) {
            return Err(DpopRefusal::SymmetricOrNoneAlgorithm);
        }
        let alg = DpopAlgorithm::from_name(alg_name)
            .filter(|a| cfg.algorithms.contains(a))
            .ok_or(DpopRefusal::AlgorithmNotAllowed)?;
        if header.crit.is_some() {
            return Err(DpopRefusal::CriticalHeader);
        }
        // Step 7 (before the key is used at all): a public key only.
        let jwk = header.jwk.ok_or(DpopRefusal::KeyMissing)?;
        let key = PublicJwk::from_object(jwk).map_err(|e| match e {
            JwkError::PrivateMaterial => DpopRefusal::PrivateKey,
            JwkError::Malformed => DpopRefusal::Malformed,
            _ => DpopRefusal::InvalidKey,
        })?;
        if !key.fits(alg) {
            return Err(DpopRefusal::KeyAlgorithmMismatch);
        }
        // Step 6: the signature over the first two parts as sent.
        let signed_len = h64.len() + 1 + p64.len();
        let signed = proof.get(..signed_len).ok_or(DpopRefusal::Malformed)?;
        if !key.verify(alg, signed.as_bytes(), &sig) {
            return Err(DpopRefusal::BadSignature);
        }

        // Step 3: the required claims.
        let (Some(jti), Some(htm), Some(htu), Some(iat)) =
            (claims.jti, claims.htm, claims.htu, claims.iat)
        else {
            return Err(DpopRefusal::MissingClaim);
        };
        // Step 8: the method, case-sensitively (RFC 9110 §9.1).
        if htm != method.as_str() {
            return Err(DpopRefusal::MethodMismatch);
        }
        // Step 9: the target URI, without query and fragment, both sides normalised.
        let expected = htu::normalise(&self.target_uri(path));
        match (htu::normalise(&htu), expected) {
            (Some(got), Some(want)) if got == want => {}
            _ => return Err(DpopRefusal::UriMismatch),
        }
        // Step 11: created within the window. NumericDate may be fractional (RFC 7519 §2).
        let iat = iat
            .as_i64()
            .or_else(|| {
                iat.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .ok_or(DpopRefusal::Malformed)?;
        // Whole seconds on both sides: `iat` has one-second resolution, so a fraction of our
        // clock must not push a proof made exactly `max_age` ago out of the window.
        let now = i64::try_from(unix_seconds(cfg.clock.now())).unwrap_or(i64::MAX);
        let age = now.saturating_sub(iat);
        if age > i64::try_from(cfg.max_age.as_secs()).unwrap_or(i64::MAX) {
            return Err(DpopRefusal::IssuedTooLongAgo);
        }
        if age.saturating_neg() > i64::try_from(cfg.max_skew.as_secs()).unwrap_or(i64::MAX) {
            return Err(DpopRefusal::IssuedInFuture);
        }
        if jti.is_empty() || jti.len() > cfg.max_jti_len {
            return Err(DpopRefusal::InvalidJti);
        }
        // Step 12: bound to the presented token.
        if let Some(token) = access_token {
            let ath = claims.ath.as_deref().ok_or(DpopRefusal::AthMissing)?;
            if !same(ath, &access_token_hash(token)) {
                return Err(DpopRefusal::AthMismatch);
            }
        }
        Ok(VerifiedProof {
            jkt: key.thumbprint().to_owned(),
            jti,
            alg,
            iat,
            nonce: claims.nonce,
        })
    }

    /// Step 10: when nonces are required, the proof carries one the server accepts.
    pub fn check_nonce(&self, proof: &VerifiedProof) -> Result<(), DpopRefusal> {
        let Some(nonces) = &self.inner.nonces else {
            return Ok(());
        };
        match proof.nonce.as_deref() {
            None => Err(DpopRefusal::NonceMissing),
            Some(n) if nonces.accepts(n) => Ok(()),
            Some(_) => Err(DpopRefusal::NonceInvalid),
        }
    }

    /// Step 11 / §11.1: records the proof as used; a second use within the window is
    /// [`DpopRefusal::Replayed`]. Call it last, once everything else has passed.
    pub async fn spend(&self, proof: &VerifiedProof) -> Result<(), DpopRefusal> {
        let cfg = &*self.inner;
        // Key and jti, length-prefixed so that no two pairs share a digest input.
        let mut input = Vec::with_capacity(proof.jkt.len() + proof.jti.len() + 8);
        input.extend_from_slice(&(proof.jkt.len() as u64).to_be_bytes());
        input.extend_from_slice(proof.jkt.as_bytes());
        input.extend_from_slice(proof.jti.as_bytes());
        let key = URL_SAFE_NO_PAD.encode(digest(&SHA256, &input));
        // Long enough to outlive the proof: it is acceptable until iat + max_age, and iat
        // is at most max_skew ahead.
        let ttl = cfg.max_age + cfg.max_skew + Duration::from_secs(1);
        match cfg.replay.first_use(&key, ttl).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(DpopRefusal::Replayed),
            Err(e) => Err(DpopRefusal::Store(e)),
        }
    }

    /// Every check of RFC 9449 §4.3 at once: [`check`](Self::check),
    /// [`check_nonce`](Self::check_nonce), [`spend`](Self::spend). For a token endpoint
    /// (no access token yet), pass `None` as `access_token`.
    pub async fn verify(
        &self,
        proof: &str,
        method: &Method,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<VerifiedProof, DpopRefusal> {
        let checked = self.check(proof, method, path, access_token)?;
        self.check_nonce(&checked)?;
        self.spend(&checked).await?;
        Ok(checked)
    }
}

impl std::fmt::Debug for DpopVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopVerifier")
            .field("base", &self.inner.base)
            .field("algorithms", &self.inner.algorithms)
            .field("max_age", &self.inner.max_age)
            .field("max_clock_skew", &self.inner.max_skew)
            .field("nonce_required", &self.inner.nonces.is_some())
            .finish_non_exhaustive()
    }
}
