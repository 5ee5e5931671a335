//! Reading `Authorization: Basic <token68>` (RFC 7617 §2), reusable on its own.

use std::fmt;

use apiauth_core::AuthError;
use apiauth_core::header::authorization_token68;
use apiauth_core::token::SecretString;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderValue, Request};
use unicode_normalization::UnicodeNormalization;

use crate::error::BasicError;

/// How the user-id and password are encoded inside the base64 `user-pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CredentialEncoding {
    /// RFC 7617: the UTF-8 octets as they are (`charset="UTF-8"`, §2.1).
    #[default]
    Plain,
    /// RFC 6749 §2.3.1: client id and secret are each `application/x-www-form-urlencoded`
    /// before they are joined by `:` and base64-encoded (OAuth 2.0 client authentication).
    FormUrlEncoded,
}

/// A user-id and password taken from a Basic `Authorization` header.
///
/// `Debug` shows the user-id only; the password is `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    user_id: String,
    password: SecretString,
}

impl BasicCredentials {
    /// Credentials for `user_id` and `password`, for a client to encode.
    pub fn new(user_id: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The user-id (an OAuth client id in [`CredentialEncoding::FormUrlEncoded`] mode).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The password (an OAuth client secret in [`CredentialEncoding::FormUrlEncoded`] mode).
    pub fn password(&self) -> &SecretString {
        &self.password
    }

    /// The `Authorization` field value a client sends: `Basic <base64(user-id ":" password)>`.
    ///
    /// Fails if, in [`CredentialEncoding::Plain`] mode, the user-id contains `:` (RFC 7617 §2
    /// forbids it: the server could not tell where the password begins) or either part
    /// contains a control character.
    pub fn to_header_value(&self, encoding: CredentialEncoding) -> Result<HeaderValue, BasicError> {
        let pass = self.password.expose_secret();
        let user_pass = match encoding {
            CredentialEncoding::Plain => {
                if self.user_id.contains(':') {
                    return Err(BasicError::UnencodableCredentials(
                        "the user-id contains ':'",
                    ));
                }
                if has_ctl(&self.user_id) || has_ctl(pass) {
                    return Err(BasicError::UnencodableCredentials(
                        "the credentials contain a control character",
                    ));
                }
                format!("{}:{pass}", self.user_id)
            }
            CredentialEncoding::FormUrlEncoded => {
                format!("{}:{}", form_urlencode(&self.user_id), form_urlencode(pass))
            }
        };
        let value = format!("Basic {}", STANDARD.encode(user_pass));
        // Base64 output and the scheme are visible ASCII, so this cannot fail.
        HeaderValue::from_str(&value)
            .map_err(|_| BasicError::UnencodableCredentials("not a valid header value"))
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user_id", &self.user_id)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The Basic credentials of `req` in RFC 7617 form.
///
/// - no `Authorization`, or another scheme: `Ok(None)`;
/// - `Basic` (any case, RFC 7235 §2.1) with well-formed credentials: `Ok(Some(..))`;
/// - anything malformed: a 400 [`AuthError`] (`invalid_request`), never a guess.
pub fn parse_authorization<B>(req: &Request<B>) -> Result<Option<BasicCredentials>, AuthError> {
    parse_authorization_with(req, CredentialEncoding::Plain)
}

/// [`parse_authorization`] with a choice of [`CredentialEncoding`]; OAuth 2.0 client
/// authentication uses [`CredentialEncoding::FormUrlEncoded`] (RFC 6749 §2.3.1).
pub fn parse_authorization_with<B>(
    req: &Request<B>,
    encoding: CredentialEncoding,
) -> Result<Option<BasicCredentials>, AuthError> {
    match authorization_token68(req, "Basic")? {
        None => Ok(None),
        Some(token) => decode_credentials(token, encoding).map(Some),
    }
}

fn malformed(detail: &'static str, reason: &'static str) -> AuthError {
    AuthError::invalid_request(detail).with_reason(reason)
}

/// Decodes the token68 of a Basic `Authorization` field into credentials.
///
/// Strict: the standard base64 alphabet with canonical padding (RFC 4648 §4; the URL-safe
/// alphabet, missing padding and non-zero trailing bits are refused), a `:` separating
/// user-id and password (RFC 7617 §2), UTF-8 (the `charset="UTF-8"` we announce, §2.1) and
/// no control characters (RFC 7617 §2). Both parts are put into Unicode Normalization Form C
/// (RFC 7617 §2.1), as [`hash_password`](crate::hash_password) does, so a client that did not
/// normalize still matches.
pub fn decode_credentials(
    token68: &str,
    encoding: CredentialEncoding,
) -> Result<BasicCredentials, AuthError> {
    let bytes = STANDARD.decode(token68).map_err(|_| {
        malformed(
            "The Basic credentials are not valid base64.",
            "malformed_base64",
        )
    })?;
    // RFC 7617 §2: the user-id cannot contain ':', so the first one ends it; the password may
    // contain more.
    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
        return Err(malformed(
            "The Basic credentials lack the ':' between user-id and password.",
            "missing_colon",
        ));
    };
    let (user, pass) = bytes.split_at(colon);
    let pass = pass.get(1..).unwrap_or_default();
    let (user, pass) = match encoding {
        CredentialEncoding::Plain => (user.to_vec(), pass.to_vec()),
        CredentialEncoding::FormUrlEncoded => (form_urldecode(user)?, form_urldecode(pass)?),
    };
    let (Ok(user), Ok(pass)) = (String::from_utf8(user), String::from_utf8(pass)) else {
        return Err(malformed(
            "The Basic credentials are not valid UTF-8.",
            "malformed_utf8",
        ));
    };
    if has_ctl(&user) || has_ctl(&pass) {
        return Err(malformed(
            "The Basic credentials contain a control character.",
            "control_character",
        ));
    }
    Ok(BasicCredentials {
        user_id: nfc(&user),
        password: SecretString::from(nfc(&pass)),
    })
}

/// Unicode Normalization Form C, cheaply skipped for ASCII (which is always NFC).
pub(crate) fn nfc(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        s.nfc().collect()
    }
}

/// RFC 5234 Appendix B.1 `CTL` (%x00-1F / %x7F), forbidden in both parts by RFC 7617 §2.
/// C1 controls are refused as well: no legitimate credential needs them and they upset logs.
fn has_ctl(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `application/x-www-form-urlencoded` decoding of one value (the WHATWG URL standard's
/// urlencoded parser, as RFC 6749 Appendix B points to): `+` is a space, `%XX` a byte.
/// A `%` not followed by two hex digits is refused rather than passed through (as
/// `form_urlencoded::parse` would): a credential is never guessed at.
fn form_urldecode(input: &[u8]) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = [
                    bytes.next().copied().unwrap_or(0),
                    bytes.next().copied().unwrap_or(0),
                ];
                let mut byte = [0u8; 1];
                match hex::decode_to_slice(pair, &mut byte) {
                    Ok(()) => out.push(byte[0]),
                    Err(_) => {
                        return Err(malformed(
                            "The Basic credentials hold a malformed percent-encoding.",
                            "malformed_percent_encoding",
                        ));
                    }
                }
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` encoding of one value: ASCII alphanumerics and
/// `*-._` stay, space becomes `+`, every other byte is `%XX`.
fn form_urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_password() {
        let c = BasicCredentials::new("alice", "hunter2-very-secret");
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2-very-secret"), "{shown}");
    }

    #[test]
    fn form_urlencoding_round_trips_reserved_characters() {
        let c = BasicCredentials::new("client:id é", "s3cr%t+/=");
        let v = c
            .to_header_value(CredentialEncoding::FormUrlEncoded)
            .unwrap();
        let token = v.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let back = decode_credentials(token, CredentialEncoding::FormUrlEncoded).unwrap();
        assert_eq!(back.user_id(), "client:id é");
        assert_eq!(back.password().expose_secret(), "s3cr%t+/=");
    }

    #[test]
    fn plain_encoding_refuses_a_colon_in_the_user_id() {
        assert!(
            BasicCredentials::new("a:b", "c")
                .to_header_value(CredentialEncoding::Plain)
                .is_err()
        );
    }

    #[test]
    fn bad_percent_encoding_is_refused() {
        for bad in ["a%:b", "a%4:b", "a%zz:b", "a:b%"] {
            let token = STANDARD.encode(bad);
            let e = decode_credentials(&token, CredentialEncoding::FormUrlEncoded).unwrap_err();
            assert_eq!(e.status(), 400, "{bad}");
        }
    }
}
