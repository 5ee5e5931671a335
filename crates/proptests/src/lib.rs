//! # apiauth-proptests
//!
//! Property tests and fuzz reproducers for the apiauth method crates, kept in one workspace
//! member so that `cargo test --workspace` runs them. The tests live in `tests/`; this library
//! holds the few helpers they share: reading what a client sees, and single-byte mutation.
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

use axum::body::Body;
use axum::response::Response;
use http_body_util::BodyExt;

/// What a client sees of a response.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The status code.
    pub status: u16,
    /// Every header, as `name: value` lines.
    pub headers: String,
    /// The body, as text (lossy).
    pub body: String,
}

impl Seen {
    /// Whether `needle` appears in a header or the body.
    pub fn shows(&self, needle: &str) -> bool {
        !needle.is_empty() && (self.headers.contains(needle) || self.body.contains(needle))
    }
}

/// Reads a whole response.
pub async fn seen(res: Response<Body>) -> Seen {
    let (parts, body) = res.into_parts();
    let mut headers = String::new();
    for (k, v) in &parts.headers {
        headers.push_str(k.as_str());
        headers.push_str(": ");
        headers.push_str(&String::from_utf8_lossy(v.as_bytes()));
        headers.push('\n');
    }
    // A body that fails to arrive reads as empty: the assertions on it then fail loudly.
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Seen {
        status: parts.status.as_u16(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

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
