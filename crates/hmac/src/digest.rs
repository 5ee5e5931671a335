//! RFC 9530 `Content-Digest`: computing it (signer) and checking it (verifier).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::HeaderMap;
use sfv::{BareItem, ListEntry};
use sha2::{Digest, Sha256, Sha512};

use crate::components::{BaseError, parse_dictionary_field};

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
}

/// Checks `Content-Digest` against `body`. Every supported algorithm present must match and
/// at least one must be present; unknown algorithms are ignored (RFC 9530 §2, §5).
pub(crate) fn check(headers: &HeaderMap, body: &[u8]) -> Result<(), BaseError> {
    let Some(dict) = parse_dictionary_field(headers, &CONTENT_DIGEST, 4096)? else {
        return Err(BaseError("missing_content_digest"));
    };
    let mut checked = false;
    for alg in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
        let Some(entry) = dict.get(alg.name()) else {
            continue;
        };
        let ListEntry::Item(item) = entry else {
            return Err(BaseError("malformed_content_digest"));
        };
        let BareItem::ByteSequence(given) = &item.bare_item else {
            return Err(BaseError("malformed_content_digest"));
        };
        if !apiauth_core::token::ct_eq(&alg.digest(body), given) {
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
