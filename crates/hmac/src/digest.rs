//! RFC 9530 `Content-Digest`: computing it (signer) and checking it (verifier).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::convert::Infallible;

#[cfg(test)]
use http::HeaderMap;
use http::HeaderValue;
use http::header::GetAll;
use sfv::KeyRef;
use sfv::visitor::{DictionaryVisitor, EntryVisitor};
use sha2::{Digest, Sha256, Sha512};

use crate::components::{BaseError, ByteMember, Engine, with_field};

/// `Content-Digest` (RFC 9530 §2).
pub const CONTENT_DIGEST: http::HeaderName = http::HeaderName::from_static("content-digest");

/// A digest algorithm from the RFC 9530 §5 registry that this crate computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DigestAlgorithm {
    /// `sha-256`.
    #[default]
    Sha256,
    /// `sha-512`.
    Sha512,
}

impl DigestAlgorithm {
    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha512 => "sha-512",
        }
    }

    fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Sha256 => Sha256::digest(body).to_vec(),
            DigestAlgorithm::Sha512 => Sha512::digest(body).to_vec(),
        }
    }

    /// The `Content-Digest` field value for `body`: `sha-256=:<base64>:`.
    pub fn header_value(self, body: &[u8]) -> String {
        format!("{}=:{}:", self.name(), BASE64.encode(self.digest(body)))
    }

    /// Whether `given` is this algorithm's digest of `body` (constant time).
    fn matches(self, body: &[u8], given: &[u8]) -> bool {
        match self {
            DigestAlgorithm::Sha256 => apiauth_core::token::ct_eq(&Sha256::digest(body), given),
            DigestAlgorithm::Sha512 => apiauth_core::token::ct_eq(&Sha512::digest(body), given),
        }
    }
}

/// Checks `Content-Digest` against `body`. Every supported algorithm present must match and
/// at least one must be present; unknown algorithms are ignored (RFC 9530 §2, §5).
#[cfg(test)]
pub(crate) fn check(headers: &HeaderMap, body: &[u8]) -> Result<(), BaseError> {
    check_field(&headers.get_all(CONTENT_DIGEST), body)
}

/// [`check`] with the field lines of `Content-Digest` already looked up.
pub(crate) fn check_field(lines: &GetAll<'_, HeaderValue>, body: &[u8]) -> Result<(), BaseError> {
    // RFC 9530 §2: a dictionary; only the members of known algorithms are kept.
    let parsed = with_field(lines, 4096, |b| {
        Engine::Hand.dictionary(b, DigestVisitor::default())
    })?;
    let Some(parsed) = parsed else {
        return Err(BaseError("missing_content_digest"));
    };
    let found = parsed?;
    let mut checked = false;
    for (alg, slot) in [
        (DigestAlgorithm::Sha256, &found.sha256),
        (DigestAlgorithm::Sha512, &found.sha512),
    ] {
        let given = match slot {
            ByteMember::Absent => continue,
            // A digest is a byte sequence (RFC 9530 §2).
            ByteMember::InnerList | ByteMember::NotBytes => {
                return Err(BaseError("malformed_content_digest"));
            }
            ByteMember::Bytes(b) => b,
        };
        if !alg.matches(body, given) {
            return Err(BaseError("content_digest_mismatch"));
        }
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(BaseError("unsupported_digest_algorithm"))
    }
}

/// Whether both parsers read the same digests from `bytes` as `Content-Digest`.
#[cfg(any(test, feature = "differential"))]
pub(crate) fn readings_agree(bytes: &[u8]) -> bool {
    Engine::Hand.dictionary(bytes, DigestVisitor::default())
        == Engine::Sfv.dictionary(bytes, DigestVisitor::default())
}

/// The `sha-256` and `sha-512` members of `Content-Digest`.
#[derive(Default, Debug, PartialEq, Eq)]
struct DigestVisitor {
    sha256: ByteMember,
    sha512: ByteMember,
}

impl<'de> DictionaryVisitor<'de> for DigestVisitor {
    type Out = Self;
    type Error = Infallible;

    fn entry(&mut self, key: &'de KeyRef) -> Result<impl EntryVisitor<'de>, Self::Error> {
        // RFC 8941 §4.2.2: a repeated member replaces the earlier one.
        Ok(match key.as_str() {
            "sha-256" => Some(&mut self.sha256),
            "sha-512" => Some(&mut self.sha512),
            _ => None,
        })
    }

    fn finish(self) -> Result<Self::Out, Self::Error> {
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9530_examples() {
        // RFC 9530 Appendix B.1 / RFC 9421 Appendix B test-request body.
        let body = br#"{"hello": "world"}"#;
        assert_eq!(
            DigestAlgorithm::Sha512.header_value(body),
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
        );
        assert_eq!(
            DigestAlgorithm::Sha256.header_value(body),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
    }

    #[test]
    fn unknown_only_or_malformed_fails_and_known_mismatch_fails() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_DIGEST, "md5=:AAAA:".parse().unwrap());
        assert!(check(&h, b"x").is_err());
        h.insert(CONTENT_DIGEST, "sha-256=abc".parse().unwrap());
        assert!(check(&h, b"x").is_err());
        h.insert(
            CONTENT_DIGEST,
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, md5=:AA==:"
                .parse()
                .unwrap(),
        );
        assert!(check(&h, br#"{"hello": "world"}"#).is_ok());
        assert!(check(&h, br#"{"hello": "world!"}"#).is_err());
    }
}
