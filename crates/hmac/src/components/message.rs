//! The request as the signature base sees it: method, scheme, normalised authority, path,
//! query and fields (RFC 9421 §2.2).

use std::borrow::Cow;

use http::{HeaderMap, Method};

use super::BaseError;

/// The parts of a request the base is built from, after scheme and authority were settled.
pub(crate) struct Message<'a> {
    pub(crate) method: &'a Method,
    pub(crate) scheme: Option<&'a str>,
    pub(crate) authority: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
}

impl Message<'_> {
    pub(super) fn scheme(&self) -> Result<&str, BaseError> {
        self.scheme.ok_or(BaseError("unknown_scheme"))
    }
    pub(super) fn authority(&self) -> Result<&str, BaseError> {
        self.authority.ok_or(BaseError("unknown_authority"))
    }
}

/// Normalizes an authority for `@authority` (RFC 9421 §2.2.3, RFC 9110 §4.2.3): lowercase
/// host, no default port, no userinfo. Borrows when there is nothing to change.
pub(crate) fn normalize_authority<'a>(
    authority: &'a str,
    scheme: Option<&str>,
) -> Option<Cow<'a, str>> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme {
        Some("http") => Some(":80"),
        Some("https") => Some(":443"),
        _ => None,
    };
    let kept = match default_port {
        Some(p) => authority.strip_suffix(p).unwrap_or(authority),
        None => authority,
    };
    Some(if kept.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(kept.to_ascii_lowercase())
    } else {
        Cow::Borrowed(kept)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_is_normalized_for_the_base() {
        assert_eq!(
            normalize_authority("Example.COM:443", Some("https")).as_deref(),
            Some("example.com")
        );
        assert_eq!(
            normalize_authority("example.com:8443", Some("https")).as_deref(),
            Some("example.com:8443")
        );
        assert_eq!(normalize_authority("u@example.com", Some("https")), None);
    }
}
