//! Reading credentials out of `Authorization` (RFC 7235 §2.1, §4.2).

use http::Request;
use http::header::AUTHORIZATION;

use crate::error::AuthError;

/// Whether `s` matches RFC 7235 `token68`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
pub fn is_token68(s: &str) -> bool {
    let b = s.as_bytes();
    // One pass: the token68 characters, then only `=` padding (this runs on every token).
    let body = b
        .iter()
        .take_while(|c| {
            matches!(c, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
        .count();
    body > 0
        && b.get(body..)
            .is_some_and(|pad| pad.iter().all(|&c| c == b'='))
}

/// The `token68` credentials of `Authorization: <scheme> <token68>`, if the request uses
/// `scheme` (compared case-insensitively, RFC 7235 §2.1).
///
/// - no `Authorization`, or another scheme: `Ok(None)`, the credential is not this method's;
/// - more than one `Authorization` field: 400, the request is ambiguous;
/// - this scheme with a missing or malformed token68 (spaces, commas, non-ASCII): 400.
pub fn authorization_token68<'a, B>(
    req: &'a Request<B>,
    scheme: &str,
) -> Result<Option<&'a str>, AuthError> {
    let mut values = req.headers().get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(
            AuthError::invalid_request("Send exactly one Authorization header.")
                .with_reason("multiple_authorization_headers"),
        );
    }
    let bytes = value.as_bytes();
    let scheme_len = bytes.iter().position(|&c| c == b' ').unwrap_or(bytes.len());
    if !bytes[..scheme_len].eq_ignore_ascii_case(scheme.as_bytes()) {
        return Ok(None);
    }
    let rest = &bytes[scheme_len..];
    let token = rest
        .iter()
        .position(|&c| c != b' ')
        .map_or(&[][..], |i| &rest[i..]);
    match std::str::from_utf8(token) {
        Ok(t) if is_token68(t) => Ok(Some(t)),
        _ => Err(
            AuthError::invalid_request("The Authorization header is malformed.")
                .with_reason("malformed_authorization"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(values: &[&[u8]]) -> Request<()> {
        let mut b = Request::builder();
        for v in values {
            b = b.header(AUTHORIZATION, http::HeaderValue::from_bytes(v).unwrap());
        }
        b.body(()).unwrap()
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for s in [&b"Bearer abc"[..], b"bearer abc", b"BEARER   abc"] {
            assert_eq!(
                authorization_token68(&req(&[s]), "Bearer").unwrap(),
                Some("abc")
            );
        }
    }

    #[test]
    fn other_schemes_and_absence_are_not_ours() {
        assert_eq!(
            authorization_token68(&req(&[b"Basic abc"]), "Bearer").unwrap(),
            None
        );
        assert_eq!(
            authorization_token68(&req(&[b"Bearerx abc"]), "Bearer").unwrap(),
            None
        );
        assert_eq!(authorization_token68(&req(&[]), "Bearer").unwrap(), None);
    }

    #[test]
    fn malformed_token68_is_400() {
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer a,b",
            b"Bearer =abc",
            b"Bearer ab=c",
            b"Bearer \xff\xfe",
        ] {
            let e = authorization_token68(&req(&[bad]), "Bearer").unwrap_err();
            assert_eq!(e.status(), 400, "{bad:?}");
        }
    }

    #[test]
    fn two_authorization_fields_are_400() {
        let e = authorization_token68(&req(&[b"Bearer a", b"Bearer b"]), "Bearer").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn token68_grammar() {
        assert!(is_token68("aZ09-._~+/=="));
        assert!(!is_token68(""));
        assert!(!is_token68("=="));
        assert!(!is_token68("a=b"));
    }
}
