//! The `htu` comparison of RFC 9449 §4.3 step 9: scheme, authority and path of the target
//! URI, without query and fragment, after RFC 3986 §6.2.2 syntax-based and §6.2.3
//! scheme-based normalisation.

use url::Url;

/// Largest `htu` looked at; a target URI longer than this is refused rather than parsed.
pub(crate) const MAX_HTU_LEN: usize = 4096;

/// `uri` normalised for comparison, or `None` when it is not an absolute `http`/`https` URI.
///
/// The WHATWG parser in `url` already lowercases scheme and host (§6.2.2.1), drops the
/// scheme's default port and makes an empty path `/` (§6.2.3), and removes dot segments
/// (§6.2.2.3). What it leaves is done here: percent-encodings get upper-case hex digits
/// (§6.2.2.1) and those of unreserved characters are decoded (§6.2.2.2). Query and fragment
/// are dropped (§4.3 step 9).
pub(crate) fn normalise(uri: &str) -> Option<String> {
    if uri.len() > MAX_HTU_LEN {
        return None;
    }
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    // Userinfo has no place in a target URI (RFC 9110 §4.2.4).
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(url.scheme());
    out.push_str("://");
    out.push_str(url.host_str()?);
    if let Some(port) = url.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    normalise_percent(url.path(), &mut out);
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn normalise_percent(path: &str, out: &mut String) {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            let v = h * 16 + l;
            if is_unreserved(v) {
                out.push(char::from(v));
            } else {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(h)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(l)]));
            }
            i += 3;
            continue;
        }
        // `url` serialises paths as ASCII, so every byte here is one char.
        out.push(char::from(b));
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn rfc3986_equivalent_forms_normalise_alike() {
        let want = normalise("https://example.com/path").unwrap();
        for same in [
            "HTTPS://Example.COM:443/path",
            "https://example.com/path?query=1#frag",
            "https://example.com/a/../path",
            "https://example.com/./path",
            "https://example.com/%70ath",
        ] {
            assert_eq!(normalise(same).unwrap(), want, "{same}");
        }
        assert_eq!(
            normalise("http://example.com").unwrap(),
            normalise("http://example.com:80/").unwrap()
        );
        assert_eq!(
            normalise("https://example.com/a%2fb").unwrap(),
            normalise("https://example.com/a%2Fb").unwrap()
        );
    }

    #[test]
    fn different_targets_stay_different() {
        let want = normalise("https://example.com/path").unwrap();
        for other in [
            "http://example.com/path",
            "https://example.com:8443/path",
            "https://example.org/path",
            "https://example.com/Path",
            "https://example.com/path/",
            "https://example.com/a%2Fpath",
        ] {
            assert_ne!(normalise(other).unwrap(), want, "{other}");
        }
        assert_ne!(
            normalise("https://example.com/a%2Fb").unwrap(),
            normalise("https://example.com/a/b").unwrap(),
            "an encoded slash is not a separator"
        );
    }

    #[test]
    fn non_http_or_relative_uris_are_refused() {
        for bad in [
            "/path",
            "ftp://example.com/x",
            "https://user@example.com/x",
            "mailto:a@b",
            "",
        ] {
            assert!(normalise(bad).is_none(), "{bad}");
        }
    }
}
