//! The JWS algorithms a DPoP proof may be signed with.

use std::fmt;

/// An asymmetric JWS algorithm this crate verifies DPoP proofs with (RFC 9449 §4.3 step 5:
/// no `none`, no MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DpopAlgorithm {
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    Es256,
    /// Ed25519 (RFC 8037 §3.1).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3).
    Rs256,
    /// RSASSA-PSS with SHA-256 (RFC 7518 §3.5).
    Ps256,
}

impl DpopAlgorithm {
    /// The JWS `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DpopAlgorithm::Es256 => "ES256",
            DpopAlgorithm::EdDsa => "EdDSA",
            DpopAlgorithm::Rs256 => "RS256",
            DpopAlgorithm::Ps256 => "PS256",
        }
    }

    /// The algorithm a JWS `alg` names, if it is one of ours (names are case-sensitive,
    /// RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "ES256" => DpopAlgorithm::Es256,
            "EdDSA" => DpopAlgorithm::EdDsa,
            "RS256" => DpopAlgorithm::Rs256,
            "PS256" => DpopAlgorithm::Ps256,
            _ => return None,
        })
    }
}

impl fmt::Display for DpopAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `alg` names no signature or a MAC: never acceptable for a proof, whatever the
/// allowlist says (RFC 9449 §4.3 step 5).
pub(crate) fn is_none_or_symmetric(alg: &str) -> bool {
    alg.eq_ignore_ascii_case("none") || alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS"))
}
