//! Compact JWS parsing and the header rules, before any key is touched.

use apiauth_core::AuthError;
use std::cell::RefCell;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;

use crate::json::{KnownMembers, Member, Members, Wanted, known_members};

known_members! {
    /// The header members read; every other member is checked (valid JSON, no repeated
    /// names) and dropped.
    struct HeaderMembers {
        alg: "alg",
        kid: "kid",
        typ: "typ",
        cty: "cty",
        crit: "crit",
        // RFC 8725 §3.10: members that name or carry a key.
        jku: "jku",
        x5u: "x5u",
        jwk: "jwk",
        x5c: "x5c",
    }
}

impl HeaderMembers<'_> {
    /// Whether the header names or carries a key (RFC 8725 §3.10).
    fn references_a_key(&self) -> bool {
        self.jku.is_some() || self.x5u.is_some() || self.jwk.is_some() || self.x5c.is_some()
    }
}
/// Stack space for the decoded header; longer headers are decoded on the heap.
const HEADER_BUF: usize = 384;

/// Longest `kid` looked up; longer ones are refused before any lookup or refresh.
pub(crate) const MAX_KID_LEN: usize = 256;

/// A compact JWS split and decoded, its signature not yet checked. The header has been read
/// in full; the payload is decoded, and read by [`Parsed::claims`].
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<Arc<str>>,
    /// The `typ` header (a string when present).
    pub(crate) typ: Option<Arc<str>>,
    /// The decoded payload, a JSON object with no repeated names (checked by `claims`).
    pub(crate) payload: Vec<u8>,
    /// `BASE64URL(header) '.' BASE64URL(payload)`, what the signature covers (RFC 7515 §5.2).
    pub(crate) signing_input: &'a str,
    pub(crate) signature: &'a str,
}

fn invalid(reason: &'static str) -> AuthError {
    AuthError::invalid_credentials(reason)
}

/// The algorithm named by `alg`, compared case-sensitively (RFC 7515 §4.1.1). `none` in any
/// casing is refused by name, so the audit trail shows the attempt.
fn algorithm(name: &str) -> Result<Algorithm, AuthError> {
    if name.eq_ignore_ascii_case("none") {
        return Err(invalid("alg_none"));
    }
    Ok(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return Err(invalid("unsupported_alg")),
    })
}

fn decode_part(part: &str) -> Result<Vec<u8>, AuthError> {
    // RFC 7515 §2: base64url without padding. The engine also refuses non-canonical trailing
    // bits, so one token has exactly one encoding.
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| invalid("malformed_base64"))
}

/// What the verifier keeps of a header that passed every rule.
#[derive(Clone)]
struct Header {
    alg: Algorithm,
    kid: Option<Arc<str>>,
    typ: Option<Arc<str>>,
}

/// Decodes and reads the header `h` of a token whose signature part is `sig`, applying the
/// header rules in order.
fn read_header(h: &str, sig: &str) -> Result<Header, AuthError> {
    // Headers are short: decoded on the stack when they fit.
    let mut buf = [0u8; HEADER_BUF];
    let heap;
    let header_bytes: &[u8] = if h.len() <= HEADER_BUF / 3 * 4 {
        let n = URL_SAFE_NO_PAD
            .decode_slice(h, &mut buf)
            .map_err(|_| invalid("malformed_base64"))?;
        buf.get(..n).ok_or_else(|| invalid("malformed_base64"))?
    } else {
        heap = decode_part(h)?;
        &heap
    };
    let header =
        crate::json::scan_object::<HeaderMembers<'_>>(header_bytes, Wanted { extra: &|_| false })
            .ok_or_else(|| invalid("malformed_header"))?;
    let alg = match &header.alg {
        Some(Member::Str(a)) => algorithm(a)?,
        _ => return Err(invalid("malformed_header")),
    };
    if sig.is_empty() {
        return Err(invalid("unsigned"));
    }
    // RFC 8725 §3.10: never fetch or trust a key the token points at or carries. A token that
    // tries is refused outright rather than silently half-honoured.
    if header.references_a_key() {
        return Err(invalid("key_reference_header"));
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension MUST reject
    // the JWS. This verifier understands none.
    if header.crit.is_some() {
        return Err(invalid("unsupported_crit"));
    }
    let kid = match &header.kid {
        None => None,
        Some(Member::Str(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => Some(Arc::from(&**k)),
        Some(_) => return Err(invalid("malformed_kid")),
    };
    let typ = match &header.typ {
        None => None,
        Some(Member::Str(t)) => Some(Arc::from(&**t)),
        Some(_) => return Err(invalid("malformed_typ")),
    };
    // RFC 8725 §3.11 / RFC 7519 §5.2: nested JWTs are not supported.
    match &header.cty {
        None => {}
        Some(Member::Str(c)) if !c.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(invalid("nested_jwt")),
    }
    Ok(Header { alg, kid, typ })
}

/// Longest header segment remembered.
const MEMO_MAX: usize = 512;

/// The last header segment read on this thread, with what was read from it. Tokens of one
/// issuer usually share their header byte for byte, so the next token's header is compared
/// instead of decoded and parsed again. Only a header that passed every rule is kept, and
/// `read_header` depends on nothing but the segment (and whether a signature follows, which
/// is checked again on every hit), so a hit gives exactly what reading would.
struct HeaderMemo;

thread_local! {
    static LAST_HEADER: RefCell<Option<(Box<str>, Header)>> = const { RefCell::new(None) };
}

impl HeaderMemo {
    fn get(h: &str) -> Option<Header> {
        LAST_HEADER
            .try_with(|m| {
                let m = m.try_borrow().ok()?;
                let (seg, header) = m.as_ref()?;
                (**seg == *h).then(|| header.clone())
            })
            .ok()
            .flatten()
    }

    fn put(h: &str, header: &Header) {
        if h.len() > MEMO_MAX {
            return;
        }
        let _ = LAST_HEADER.try_with(|m| {
            if let Ok(mut m) = m.try_borrow_mut() {
                *m = Some((Box::from(h), header.clone()));
            }
        });
    }
}

/// Splits and decodes a compact JWS, enforcing the length bound first and the header rules.
pub(crate) fn parse(token: &str, max_len: usize) -> Result<Parsed<'_>, AuthError> {
    // Checked before any decoding, so the work per request is bounded by the limit.
    if token.len() > max_len {
        return Err(invalid("token_too_large"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // Five parts would be a JWE (RFC 7516), which is not supported.
        return Err(invalid("malformed_jws"));
    };
    if h.is_empty() || p.is_empty() {
        return Err(invalid("malformed_jws"));
    }
    let header = match HeaderMemo::get(h) {
        // The same header as the last token on this thread, read in full then: only the
        // check that depends on the rest of the token is left.
        Some(_) if sig.is_empty() => return Err(invalid("unsigned")),
        Some(header) => header,
        None => {
            let header = read_header(h, sig)?;
            HeaderMemo::put(h, &header);
            header
        }
    };
    let payload = decode_part(p)?;
    // Both parts came from splitting `token` on '.', so this prefix always exists; `get`
    // keeps it that way without an index that could panic.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| invalid("malformed_jws"))?;
    Ok(Parsed {
        alg: header.alg,
        kid: header.kid,
        typ: header.typ,
        payload,
        signing_input,
        signature: sig,
    })
}

impl Parsed<'_> {
    /// The claims the verifier reads (names for which `wanted` is true), after checking the
    /// whole payload: one JSON object, no repeated name at any depth (RFC 7519 §4).
    pub(crate) fn claims<'p, K: KnownMembers<'p>>(
        &'p self,
        wanted: Wanted<'_>,
    ) -> Result<Members<'p, K>, AuthError> {
        crate::json::scan_object(&self.payload, wanted).ok_or_else(|| invalid("malformed_claims"))
    }
}

/// Whether `typ` names `expected` (RFC 7515 §4.1.9: media types compare case-insensitively
/// and `application/` may be omitted, so `at+jwt` and `application/at+jwt` are one type).
pub(crate) fn typ_matches(typ: &str, expected: &str) -> bool {
    fn strip(s: &str) -> &str {
        const APPLICATION: &str = "application/";
        match s.get(..APPLICATION.len()) {
            Some(p) if p.eq_ignore_ascii_case(APPLICATION) => {
                s.get(APPLICATION.len()..).unwrap_or(s)
            }
            _ => s,
        }
    }
    strip(typ).eq_ignore_ascii_case(strip(expected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn typ_compares_case_insensitively_with_optional_application_prefix() {
        for t in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            assert!(typ_matches(t, "at+jwt"), "{t}");
        }
        assert!(!typ_matches("JWT", "at+jwt"));
        assert!(!typ_matches("application/jwt", "at+jwt"));
    }

    #[test]
    fn rfc7515_a5_unsecured_jws_is_refused() {
        let v: Value =
            serde_json::from_str(include_str!("../tests/data/rfc7515_appendix_a_jws.json"))
                .unwrap();
        let t = v["A.5"]["a.5.compact"].as_str().unwrap();
        assert_eq!(parse(t, 8192).err().unwrap().reason(), "alg_none");
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        // "e30" is "{}"; "e31" decodes to the same bytes only if trailing bits are ignored.
        let sig = "AAAA";
        let h = b64(r#"{"alg":"HS256"}"#);
        let ok = format!("{h}.e30.{sig}");
        assert!(parse(&ok, 8192).is_ok());
        let bad = format!("{h}.e31.{sig}");
        assert_eq!(
            parse(&bad, 8192).err().unwrap().reason(),
            "malformed_base64"
        );
        let padded = format!("{h}.e30=.{sig}");
        assert_eq!(
            parse(&padded, 8192).err().unwrap().reason(),
            "malformed_base64"
        );
    }

    #[test]
    fn a_remembered_header_gives_what_reading_it_gives() {
        let h = b64(r#"{"alg":"HS256","kid":"k1","typ":"at+jwt"}"#);
        for _ in 0..2 {
            let t = format!("{h}.e30.AAAA");
            let p = parse(&t, 8192).ok().unwrap();
            assert_eq!(p.alg, Algorithm::HS256);
            assert_eq!(p.kid.as_deref(), Some("k1"));
            assert_eq!(p.typ.as_deref(), Some("at+jwt"));
        }
        // Same header, no signature: still refused, by the same rule.
        let err = parse(&format!("{h}.e30."), 8192).err().unwrap();
        assert_eq!(err.reason(), "unsigned");
        // Still remembered; the payload is read every time.
        let err = parse(&format!("{h}.e31.AAAA"), 8192).err().unwrap();
        assert_eq!(err.reason(), "malformed_base64");
        // A refused header is never remembered.
        let bad = b64(r#"{"alg":"HS256","jku":"https://x.example"}"#);
        for _ in 0..2 {
            let err = parse(&format!("{bad}.e30.AAAA"), 8192).err().unwrap();
            assert_eq!(err.reason(), "key_reference_header");
        }
        let other = b64(r#"{"alg":"ES256"}"#);
        let t = format!("{other}.e30.AAAA");
        let p = parse(&t, 8192).ok().unwrap();
        assert_eq!(p.alg, Algorithm::ES256);
        assert!(p.kid.is_none() && p.typ.is_none());
    }
}
