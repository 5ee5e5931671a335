//! Compact JWS parsing and the header rules, before any key is touched.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use apiauth_core::AuthError;

/// Longest `kid` looked up; longer ones are refused before any lookup or refresh.
pub(crate) const MAX_KID_LEN: usize = 256;

/// A compact JWS split and decoded, its signature not yet checked.
pub(crate) struct Parsed<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
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
    let header =
        crate::json::parse_object(&decode_part(h)?).ok_or_else(|| invalid("malformed_header"))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => algorithm(a)?,
        _ => return Err(invalid("malformed_header")),
    };
    if sig.is_empty() {
        return Err(invalid("unsigned"));
    }
    // RFC 8725 §3.10: never fetch or trust a key the token points at or carries. A token that
    // tries is refused outright rather than silently half-honoured.
    for name in ["jku", "x5u", "jwk", "x5c"] {
        if header.contains_key(name) {
            return Err(invalid("key_reference_header"));
        }
    }
    // RFC 7515 §4.1.11: a recipient that does not understand a listed extension MUST reject
    // the JWS. This verifier understands none.
    if header.contains_key("crit") {
        return Err(invalid("unsupported_crit"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => Some(k.clone()),
        Some(_) => return Err(invalid("malformed_kid")),
    };
    match header.get("typ") {
        None | Some(Value::String(_)) => {}
        Some(_) => return Err(invalid("malformed_typ")),
    }
    // RFC 8725 §3.11 / RFC 7519 §5.2: nested JWTs are not supported.
    match header.get("cty") {
        None => {}
        Some(Value::String(c)) if !c.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(invalid("nested_jwt")),
    }
    let claims =
        crate::json::parse_object(&decode_part(p)?).ok_or_else(|| invalid("malformed_claims"))?;
    // Both parts came from splitting `token` on '.', so this prefix always exists; `get`
    // keeps it that way without an index that could panic.
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| invalid("malformed_jws"))?;
    Ok(Parsed {
        alg,
        kid,
        header,
        claims,
        signing_input,
        signature: sig,
    })
}

/// Whether `typ` names `expected` (RFC 7515 §4.1.9: media types compare case-insensitively
/// and `application/` may be omitted, so `at+jwt` and `application/at+jwt` are one type).
pub(crate) fn typ_matches(typ: &str, expected: &str) -> bool {
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        match lower.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => lower,
        }
    };
    strip(typ) == strip(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
