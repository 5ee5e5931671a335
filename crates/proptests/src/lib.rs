//! # apiauth-proptests
//!
//! Property tests and fuzz reproducers for the apiauth method crates, kept in one workspace
//! member so that `cargo test --workspace` runs them. The tests live in `tests/`; this library
//! holds the few helpers they share: single-byte mutation, and (from `apiauth-testkit`) sending a
//! request and reading what a client sees.
//!
//! ```
//! use apiauth_proptests::mutate_byte;
//!
//! let original = b"sk_live_abc";
//! let (changed, at) = mutate_byte(original, 3, 7);
//! assert_ne!(changed, original);
//! assert_eq!(changed.len(), original.len());
//! assert_ne!(changed[at], original[at]);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use apiauth_testkit::{Seen, send};

/// `bytes` with the byte at `index % len` replaced by another byte derived from `delta`
/// (never the same one). Returns the copy and the index changed. `bytes` must not be empty.
pub fn mutate_byte(bytes: &[u8], index: usize, delta: u8) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    if out.is_empty() {
        return (out, 0);
    }
    let at = index % out.len();
    // A non-zero XOR always changes the byte.
    out[at] ^= delta.max(1);
    (out, at)
}

/// `bytes` with the character at `index % len` replaced by a different character of
/// `alphabet`, so that the result stays in the alphabet (a header value stays valid, a base62
/// key stays base62). `alphabet` must hold at least two distinct characters.
pub fn mutate_within(bytes: &[u8], index: usize, pick: usize, alphabet: &[u8]) -> (Vec<u8>, usize) {
    let mut out = bytes.to_vec();
    if out.is_empty() || alphabet.len() < 2 {
        return (out, 0);
    }
    let at = index % out.len();
    let mut c = alphabet[pick % alphabet.len()];
    if c == out[at] {
        c = alphabet[(pick + 1) % alphabet.len()];
    }
    out[at] = c;
    (out, at)
}
