//! Startup errors ([`DpopConfigError`]) and the per-request refusals ([`DpopRefusal`]).

use std::borrow::Cow;

use apiauth_core::AuthError;
use apiauth_core::store::StoreError;

/// A DPoP configuration that cannot work; reported when it is built, never per request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopConfigError {
    /// The public base URL is not an absolute `http`/`https` URL without query or fragment.
    #[error("the public base URL must be an absolute http(s) URL without query or fragment")]
    InvalidBaseUrl,
    /// The algorithm allowlist is empty.
    #[error("at least one DPoP signing algorithm must be allowed")]
    NoAlgorithms,
    /// A nonce secret shorter than 32 bytes.
    #[error("the DPoP nonce secret must be at least 32 bytes")]
    NonceSecretTooShort,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// The `error` codes of RFC 9449 §7.1 and §9 (RFC 6750's `invalid_token` for the token).
pub const INVALID_DPOP_PROOF: &str = "invalid_dpop_proof";
/// The `error` code asking the client to retry with the server's nonce (RFC 9449 §9).
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";

/// Why a request's DPoP proof, or the pairing of proof and token, was refused.
///
/// One variant per check of RFC 9449 §4.3 (the step is named on each), so a test or an
/// audit event can tell them apart; clients see one public text per error code.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DpopRefusal {
    /// §4.3 step 1: no `DPoP` header with a `DPoP` token.
    ProofMissing,
    /// §4.3 step 1: more than one `DPoP` header.
    MultipleProofs,
    /// Longer than the configured bound; refused before any decoding.
    ProofTooLarge,
    /// §4.3 step 2: not one compact JWS of three base64url parts with JSON object header and
    /// payload (a member twice, a value of the wrong type, non-canonical base64url…).
    Malformed,
    /// §4.3 step 4: `typ` is not `dpop+jwt`.
    WrongType,
    /// §4.3 step 5: `alg` is `none` or a MAC (`HS*`): never a proof, whatever the allowlist.
    SymmetricOrNoneAlgorithm,
    /// §4.3 step 5: an asymmetric `alg` that is not on this server's allowlist.
    AlgorithmNotAllowed,
    /// RFC 7515 §4.1.11: a `crit` header; no extension is understood.
    CriticalHeader,
    /// §4.2: no `jwk` header.
    KeyMissing,
    /// §4.3 step 7: the `jwk` carries private or symmetric key material.
    PrivateKey,
    /// §4.3 step 6: the `jwk` is not a usable public key (type, curve, size, encoding).
    InvalidKey,
    /// §4.3 step 6: the key is not of the family `alg` names (an RSA key under ES256).
    KeyAlgorithmMismatch,
    /// §4.3 step 6: the signature does not verify with the `jwk`.
    BadSignature,
    /// §4.3 step 3: `jti`, `htm`, `htu` or `iat` missing.
    MissingClaim,
    /// §4.3 step 8: `htm` is not the request method.
    MethodMismatch,
    /// §4.3 step 9: `htu` is not the request's target URI (after normalisation).
    UriMismatch,
    /// §4.3 step 11: `iat` older than the window.
    IssuedTooLongAgo,
    /// §4.3 step 11: `iat` further in the future than the allowed clock skew.
    IssuedInFuture,
    /// §4.2 / §11.1: `jti` empty or longer than the bound.
    InvalidJti,
    /// §4.3 step 11, §11.1: this proof (`jti` under this key) was used already.
    Replayed,
    /// §4.3 step 12: a token was presented and the proof has no `ath`.
    AthMissing,
    /// §4.3 step 12: `ath` is not the hash of the presented token.
    AthMismatch,
    /// §4.3 step 10, §9: the server requires a nonce and the proof has none.
    NonceMissing,
    /// §4.3 step 10, §9: the nonce is not one the server issued, or has expired.
    NonceInvalid,
    /// §4.3 step 12: the token's `cnf.jkt` is not the proof key's thumbprint.
    KeyBindingMismatch,
    /// §7.1: a token without `cnf.jkt` presented with the `DPoP` scheme.
    TokenNotBound,
    /// RFC 7800 §3.1: the token's `cnf` (or `cnf.jkt`) is not of the right JSON type.
    MalformedConfirmation,
    /// §7.1: a DPoP-bound token presented as `Bearer`: always refused.
    BoundTokenAsBearer,
    /// §7.2: a route that requires DPoP was sent a `Bearer` token.
    BearerNotAccepted,
    /// The replay store could not answer: 503, never a pass.
    Store(StoreError),
}

impl DpopRefusal {
    /// The audit reason: a fixed word per variant, never client data.
    pub fn reason(&self) -> &'static str {
        use DpopRefusal::*;
        match self {
            ProofMissing => "dpop_proof_missing",
            MultipleProofs => "dpop_multiple_proofs",
            ProofTooLarge => "dpop_proof_too_large",
            Malformed => "dpop_proof_malformed",
            WrongType => "dpop_wrong_typ",
            SymmetricOrNoneAlgorithm => "dpop_symmetric_or_none_alg",
            AlgorithmNotAllowed => "dpop_alg_not_allowed",
            CriticalHeader => "dpop_crit_header",
            KeyMissing => "dpop_jwk_missing",
            PrivateKey => "dpop_private_jwk",
            InvalidKey => "dpop_invalid_jwk",
            KeyAlgorithmMismatch => "dpop_jwk_alg_mismatch",
            BadSignature => "dpop_bad_signature",
            MissingClaim => "dpop_missing_claim",
            MethodMismatch => "dpop_htm_mismatch",
            UriMismatch => "dpop_htu_mismatch",
            IssuedTooLongAgo => "dpop_iat_too_old",
            IssuedInFuture => "dpop_iat_in_future",
            InvalidJti => "dpop_invalid_jti",
            Replayed => "dpop_proof_replayed",
            AthMissing => "dpop_ath_missing",
            AthMismatch => "dpop_ath_mismatch",
            NonceMissing => "dpop_nonce_missing",
            NonceInvalid => "dpop_nonce_invalid",
            KeyBindingMismatch => "dpop_key_binding_mismatch",
            TokenNotBound => "dpop_token_not_bound",
            MalformedConfirmation => "dpop_malformed_cnf",
            BoundTokenAsBearer => "dpop_bound_token_as_bearer",
            BearerNotAccepted => "dpop_bearer_not_accepted",
            Store(_) => "store_unavailable",
        }
    }

    /// The error the request is answered with. `nonce` is the fresh value a
    /// `use_dpop_nonce` answer hands out in `DPoP-Nonce`.
    pub(crate) fn into_auth_error(self, nonce: Option<String>) -> AuthError {
        use DpopRefusal::*;
        let reason: Cow<'static, str> = Cow::Borrowed(self.reason());
        match self {
            Store(e) => AuthError::from(e),
            NonceMissing | NonceInvalid => {
                let mut e = AuthError::invalid_credentials(reason)
                    .with_error_code(USE_DPOP_NONCE)
                    .with_detail("Use the server nonce from DPoP-Nonce in the DPoP proof.");
                if let Some(value) = nonce.and_then(|n| http::HeaderValue::from_str(&n).ok()) {
                    e = e.with_header(http::HeaderName::from_static("dpop-nonce"), value);
                }
                e
            }
            // Token-side failures are RFC 6750's invalid_token (RFC 9449 §7.1).
            KeyBindingMismatch | TokenNotBound | MalformedConfirmation | BoundTokenAsBearer => {
                AuthError::invalid_credentials(reason)
            }
            BearerNotAccepted => AuthError::invalid_credentials(reason)
                .with_detail("This resource accepts only DPoP-bound access tokens."),
            _ => AuthError::invalid_credentials(reason)
                .with_error_code(INVALID_DPOP_PROOF)
                .with_detail("The DPoP proof is not valid."),
        }
    }
}

impl std::fmt::Display for DpopRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DpopRefusal {}
