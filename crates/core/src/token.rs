//! Prefixed, checksummed secrets (API keys, opaque tokens) and their hashes at rest.
//!
//! Layout: `<prefix><id: 12 base62><secret: 30 base62><checksum: 6 base62>`.
//!
//! - the prefix says what the secret is (`sk_live_`), so secret scanners can find leaks;
//! - the id is public and random; stores look records up by it, never by scanning;
//! - the secret part carries 30 × log2(62) ≈ 178 bits from the OS CSPRNG;
//! - the checksum is CRC32 of everything before it, so a mistyped or made-up value is refused
//!   without a store lookup;
//! - at rest only the SHA-256 of the whole value is kept ([`SecretHash`]); it is compared in
//!   constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of the public id part.
pub const ID_LEN: usize = 12;
/// Length of the secret part.
pub const SECRET_LEN: usize = 30;
/// Length of the checksum part.
pub const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = ID_LEN + SECRET_LEN + CHECKSUM_LEN;

/// A secret string that never shows itself in `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(s: impl Into<Box<str>>) -> Self {
        Self(s.into())
    }

    /// The secret itself: call only to hand it to its owner.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

/// SHA-256 of a high-entropy secret: what stores keep instead of the secret.
#[derive(Clone, Copy)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Hashes `secret`.
    pub fn of(secret: &[u8]) -> Self {
        Self(Sha256::digest(secret).into())
    }

    /// Wraps stored digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex of the digest.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses lowercase or uppercase hex.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Constant-time comparison of two byte strings (length is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A prefix that is not lowercase ASCII letters, digits and `_`, ending in `_`, at most 16
/// characters long.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token prefix must be 2 to 16 characters of [a-z0-9_] ending in '_'")]
pub struct InvalidPrefix;

/// Why a presented value is not a well-formed token. For audit events only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// Another prefix, or none.
    #[error("wrong_prefix")]
    WrongPrefix,
    /// Wrong length or a character outside base62.
    #[error("malformed")]
    Malformed,
    /// The checksum does not match.
    #[error("bad_checksum")]
    BadChecksum,
}

impl TokenFormatError {
    /// The audit reason word.
    pub fn reason(self) -> &'static str {
        match self {
            TokenFormatError::WrongPrefix => "wrong_prefix",
            TokenFormatError::Malformed => "malformed",
            TokenFormatError::BadChecksum => "bad_checksum",
        }
    }
}

/// A freshly generated token: shown once to its owner, then only its hash is kept.
#[derive(Debug, Clone)]
pub struct GeneratedToken {
    /// The whole token, to hand to the owner once.
    pub token: SecretString,
    /// The public id part.
    pub id: String,
    /// SHA-256 of the whole token, to store.
    pub hash: SecretHash,
}

/// A token that passed the format and checksum checks.
#[derive(Debug, Clone, Copy)]
pub struct ParsedToken<'a> {
    /// The public id part.
    pub id: &'a str,
    whole: &'a str,
}

impl ParsedToken<'_> {
    /// SHA-256 of the whole token, to compare with the stored hash.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(self.whole.as_bytes())
    }
}

/// The format of one family of tokens, identified by its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormat {
    prefix: Box<str>,
}

impl TokenFormat {
    /// A format with `prefix` (for example `sk_live_`).
    pub fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let ok = (2..=16).contains(&prefix.len())
            && prefix.ends_with('_')
            && prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self {
                prefix: prefix.into(),
            })
        } else {
            Err(InvalidPrefix)
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Total length of a token of this format.
    pub fn token_len(&self) -> usize {
        self.prefix.len() + BODY_LEN
    }

    /// Generates a token from the OS CSPRNG.
    ///
    /// # Panics
    /// If the operating system cannot supply randomness, which no caller can recover from
    /// safely.
    pub fn generate(&self) -> GeneratedToken {
        let mut s = String::with_capacity(self.token_len());
        s.push_str(&self.prefix);
        push_random_base62(&mut s, ID_LEN + SECRET_LEN);
        let checksum = crc32fast::hash(s.as_bytes());
        push_base62_fixed(&mut s, checksum);
        let id = s[self.prefix.len()..self.prefix.len() + ID_LEN].to_owned();
        let hash = SecretHash::of(s.as_bytes());
        GeneratedToken {
            token: SecretString::from(s),
            id,
            hash,
        }
    }

    /// Derives a token deterministically from `seed`: the same seed gives the same token.
    ///
    /// For reproducible demos and tests only (several instances of a demo agreeing on its
    /// credentials): the token is exactly as secret as the seed. Use [`generate`](Self::generate)
    /// for real credentials.
    pub fn derive_from_seed(&self, seed: &[u8]) -> GeneratedToken {
        let mut s = String::with_capacity(self.token_len());
        s.push_str(&self.prefix);
        let mut counter = 0u32;
        let mut pushed = 0;
        while pushed < ID_LEN + SECRET_LEN {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(self.prefix.as_bytes());
            h.update(counter.to_be_bytes());
            counter += 1;
            for b in h.finalize() {
                if b < 248 && pushed < ID_LEN + SECRET_LEN {
                    s.push(BASE62[usize::from(b % 62)] as char);
                    pushed += 1;
                }
            }
        }
        let checksum = crc32fast::hash(s.as_bytes());
        push_base62_fixed(&mut s, checksum);
        let id = s[self.prefix.len()..self.prefix.len() + ID_LEN].to_owned();
        let hash = SecretHash::of(s.as_bytes());
        GeneratedToken {
            token: SecretString::from(s),
            id,
            hash,
        }
    }

    /// Checks prefix, length, alphabet and checksum, with no store lookup.
    pub fn parse<'a>(&self, token: &'a str) -> Result<ParsedToken<'a>, TokenFormatError> {
        let Some(body) = token.strip_prefix(&*self.prefix) else {
            return Err(TokenFormatError::WrongPrefix);
        };
        if body.len() != BODY_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenFormatError::Malformed);
        }
        let (signed, checksum) = token.split_at(token.len() - CHECKSUM_LEN);
        let mut expected = String::with_capacity(CHECKSUM_LEN);
        push_base62_fixed(&mut expected, crc32fast::hash(signed.as_bytes()));
        if expected != checksum {
            return Err(TokenFormatError::BadChecksum);
        }
        Ok(ParsedToken {
            id: &body[..ID_LEN],
            whole: token,
        })
    }
}

fn push_random_base62(out: &mut String, n: usize) {
    let mut pushed = 0;
    let mut buf = [0u8; 64];
    while pushed < n {
        getrandom::fill(&mut buf).expect("the OS random number generator failed");
        for &b in &buf {
            // Rejection sampling: 248 = 4 × 62, so `b % 62` is uniform below it.
            if b < 248 && pushed < n {
                out.push(BASE62[usize::from(b % 62)] as char);
                pushed += 1;
            }
        }
    }
}

fn push_base62_fixed(out: &mut String, mut v: u32) {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    out.extend(digits.iter().map(|&b| b as char));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_to_the_stored_hash() {
        let f = TokenFormat::new("sk_test_").unwrap();
        let g = f.generate();
        assert_eq!(g.token.expose_secret().len(), f.token_len());
        let p = f.parse(g.token.expose_secret()).unwrap();
        assert_eq!(p.id, g.id);
        assert!(p.hash().ct_eq(&g.hash));
        assert!(!format!("{g:?}").contains(g.token.expose_secret()));
    }

    #[test]
    fn any_single_character_change_fails_the_checksum_or_format() {
        let f = TokenFormat::new("sk_test_").unwrap();
        let g = f.generate();
        let t = g.token.expose_secret();
        for i in f.prefix().len()..t.len() {
            let mut bytes = t.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let mutated = String::from_utf8(bytes).unwrap();
            assert!(f.parse(&mutated).is_err(), "accepted mutation at {i}");
        }
    }

    #[test]
    fn wrong_prefix_and_length_are_refused() {
        let f = TokenFormat::new("sk_live_").unwrap();
        let g = TokenFormat::new("sk_test_").unwrap().generate();
        assert_eq!(
            f.parse(g.token.expose_secret()).unwrap_err(),
            TokenFormatError::WrongPrefix
        );
        assert_eq!(
            f.parse("sk_live_abc").unwrap_err(),
            TokenFormatError::Malformed
        );
        assert!(TokenFormat::new("Bad").is_err());
        assert!(TokenFormat::new("no-dash_").is_err());
    }

    #[test]
    fn derived_tokens_are_deterministic_valid_and_seed_dependent() {
        let f = TokenFormat::new("sk_demo_").unwrap();
        let a = f.derive_from_seed(b"seed-1");
        let b = f.derive_from_seed(b"seed-1");
        let c = f.derive_from_seed(b"seed-2");
        assert_eq!(a.token, b.token);
        assert_ne!(a.token, c.token);
        assert_eq!(f.parse(a.token.expose_secret()).unwrap().id, a.id);
    }

    #[test]
    fn hex_round_trip() {
        let h = SecretHash::of(b"x");
        assert!(SecretHash::from_hex(&h.to_hex()).unwrap().ct_eq(&h));
        assert!(SecretHash::from_hex("zz").is_none());
    }
}
