//! The `application/x-www-form-urlencoded` codec `@query-param` needs (RFC 9421 §2.2.8).

use std::borrow::Cow;

/// The name/value pairs of a query, decoded as RFC 9421 §2.2.8 step 1 asks (HTML URL §5.1:
/// split on `&`, empty sequences skipped, name and value split at the first `=`, `+` read as
/// a space, then percent-decoded).
///
/// The pairs stay bytes: §5.1 would go on to decode them as UTF-8 with U+FFFD for invalid
/// sequences, which maps different queries (`%FF`, `%FE`) to one component value; kept as
/// bytes, a covered value pins the exact bytes sent. Valid UTF-8 reads the same either way.
pub(super) fn form_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(name), form_decode(value))
    })
}

/// `+` as a space, then `%XX` as the byte (an `%` without two hex digits stays as it is).
pub(super) fn form_decode(s: &str) -> Vec<u8> {
    let spaced: Cow<'_, [u8]> = if s.contains('+') {
        Cow::Owned(
            s.bytes()
                .map(|b| if b == b'+' { b' ' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(s.as_bytes())
    };
    percent_encoding::percent_decode(&spaced).collect()
}

/// Percent-encodes every byte outside the `application/x-www-form-urlencoded` safe set
/// (ASCII alphanumerics and `*-._`, HTML URL §5.2), the space as `%20` rather than `+`, as
/// RFC 9421 §2.2.8's examples do (`this%20is%20a%20big%0Avalue`).
pub(super) fn form_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    // `byte_serialize` writes a `+` of the input as `%2B`, so each `+` it yields is a space.
    for piece in form_urlencoded::byte_serialize(b) {
        out.push_str(if piece == "+" { "%20" } else { piece });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_rfc9421_examples() {
        // RFC 9421 §2.2.8 examples.
        let q = "param=value&foo=bar&baz=batman&qux=&var=this%20is%20a%20big%0Avalue&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something";
        let got: Vec<(String, String)> = form_pairs(q)
            .map(|(n, v)| (form_encode(&n), form_encode(&v)))
            .collect();
        assert!(got.contains(&("var".into(), "this%20is%20a%20big%0Avalue".into())));
        assert!(got.contains(&("bar".into(), "with%20plus%20whitespace".into())));
        assert!(got.contains(&("fa%C3%A7ade%22%3A%20".into(), "something".into())));
        assert!(got.contains(&("qux".into(), "".into())));
    }

    #[test]
    fn form_decode_never_panics_on_truncated_escapes() {
        for s in ["%", "%4", "%zz", "a%", "%%%", "%C3"] {
            let _ = form_decode(s);
        }
        assert_eq!(form_decode("%41%"), b"A%");
    }

    #[test]
    fn query_bytes_are_kept_exactly_and_encoded_back_the_same() {
        // Not UTF-8 once decoded: kept as the byte, so `%FF` and `%FE` stay different values.
        assert_eq!(form_encode(&form_decode("%FF")), "%FF");
        assert_ne!(
            form_encode(&form_decode("%FE")),
            form_encode(&form_decode("%FF"))
        );
        // A literal `+` was sent as `%2B` and stays one; a `+` is a space.
        assert_eq!(form_encode(&form_decode("a%2Bb+c")), "a%2Bb%20c");
        assert_eq!(form_encode(b"*-._~"), "*-._%7E");
    }
}
