//! One error type for the request path: status, RFC 7235 challenges, RFC 9457 body.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Extensions, HeaderName, HeaderValue, StatusCode};

/// What went wrong, coarsely: this alone decides the status and the RFC 6750 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No credentials where some are required: 401 without an error code (RFC 6750 §3).
    MissingCredentials,
    /// Malformed request or credentials of two methods at once: 400 `invalid_request`.
    InvalidRequest,
    /// Credentials present but not valid (unknown, wrong, expired, revoked): 401 `invalid_token`.
    InvalidCredentials,
    /// Authenticated but lacking a scope: 403 `insufficient_scope` (RFC 6750 §3.1).
    InsufficientScope,
    /// Authenticated, but not strongly or recently enough for this route: 401
    /// `insufficient_user_authentication` (RFC 9470 §3), with `acr_values` and/or `max_age`.
    InsufficientUserAuthentication,
    /// Authenticated but refused for another reason (claims that do not fit, a tenant
    /// mismatch): 403 with no RFC 6750 error code.
    Forbidden,
    /// The body is larger than the layer will buffer to verify it: 413.
    PayloadTooLarge,
    /// The body the layer must read to verify it did not arrive in time: 408 (RFC 9110
    /// §15.5.9), with `Connection: close`.
    RequestTimeout,
    /// Too many requests or too many failed attempts: 429 with `Retry-After`.
    TooManyRequests,
    /// An upstream needed to decide (JWKS, introspection, a store) failed: 503 with
    /// `Retry-After`. Never a 401 and never a pass.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind.
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorKind::MissingCredentials
            | ErrorKind::InvalidCredentials
            | ErrorKind::InsufficientUserAuthentication => StatusCode::UNAUTHORIZED,
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::InsufficientScope | ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 §3.1 error code, where one applies. This is Bearer's vocabulary; a
    /// scheme answers with its own through [`ErrorCodes`].
    pub const fn code(self) -> Option<&'static str> {
        match self {
            ErrorKind::InvalidRequest => Some("invalid_request"),
            ErrorKind::InvalidCredentials => Some("invalid_token"),
            ErrorKind::InsufficientScope => Some("insufficient_scope"),
            // RFC 9470 §3 registers it for the Bearer scheme.
            ErrorKind::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
            _ => None,
        }
    }

    const fn default_detail(self) -> &'static str {
        match self {
            ErrorKind::MissingCredentials => "Authentication is required to access this resource.",
            ErrorKind::InvalidRequest => "The request is malformed.",
            ErrorKind::InvalidCredentials => "The credentials are not valid.",
            ErrorKind::InsufficientScope => "The credentials do not grant the required scope.",
            ErrorKind::InsufficientUserAuthentication => {
                "A stronger or more recent authentication is required."
            }
            ErrorKind::Forbidden => "The credentials do not grant access to this resource.",
            ErrorKind::PayloadTooLarge => "The request body is too large.",
            ErrorKind::RequestTimeout => "The request body was not received in time.",
            ErrorKind::TooManyRequests => "Too many requests; retry later.",
            ErrorKind::Unavailable => "Authentication is temporarily unavailable; retry later.",
        }
    }
}

/// The `error` vocabulary of one authentication scheme: the code an [`ErrorKind`] is answered
/// with in the challenge's `error` attribute and in the problem body's `error` member.
///
/// Codes belong to the scheme that defines them: `invalid_token` is Bearer's (RFC 6750 §3.1),
/// Basic (RFC 7617) and HTTP Message Signatures (RFC 9421) define none, so their answers carry
/// no `error` member at all rather than one borrowed from Bearer.
///
/// ```
/// use apiauth_core::{ErrorCodes, ErrorKind};
/// assert_eq!(ErrorCodes::RFC6750.code(ErrorKind::InvalidCredentials), Some("invalid_token"));
/// assert_eq!(ErrorCodes::NONE.code(ErrorKind::InvalidCredentials), None);
/// ```
#[derive(Clone, Copy)]
pub struct ErrorCodes(fn(ErrorKind) -> Option<&'static str>);

impl ErrorCodes {
    /// No vocabulary: answers carry no `error` code.
    pub const NONE: ErrorCodes = ErrorCodes(|_| None);
    /// RFC 6750 §3.1: `invalid_request`, `invalid_token`, `insufficient_scope`.
    pub const RFC6750: ErrorCodes = ErrorCodes(ErrorKind::code);

    /// A scheme's own vocabulary.
    pub const fn custom(codes: fn(ErrorKind) -> Option<&'static str>) -> Self {
        ErrorCodes(codes)
    }

    /// The code for `kind`, if this vocabulary has one.
    pub fn code(self, kind: ErrorKind) -> Option<&'static str> {
        (self.0)(kind)
    }

    fn is_none(self) -> bool {
        self == ErrorCodes::NONE
    }
}

impl PartialEq for ErrorCodes {
    fn eq(&self, other: &Self) -> bool {
        // Vocabularies are compared by what they answer, not by function address (which the
        // compiler may merge or duplicate).
        const KINDS: [ErrorKind; 10] = [
            ErrorKind::MissingCredentials,
            ErrorKind::InvalidRequest,
            ErrorKind::InvalidCredentials,
            ErrorKind::InsufficientScope,
            ErrorKind::InsufficientUserAuthentication,
            ErrorKind::Forbidden,
            ErrorKind::PayloadTooLarge,
            ErrorKind::RequestTimeout,
            ErrorKind::TooManyRequests,
            ErrorKind::Unavailable,
        ];
        KINDS.iter().all(|k| self.code(*k) == other.code(*k))
    }
}

impl Eq for ErrorCodes {}

impl fmt::Debug for ErrorCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == ErrorCodes::NONE {
            f.write_str("ErrorCodes::NONE")
        } else if *self == ErrorCodes::RFC6750 {
            f.write_str("ErrorCodes::RFC6750")
        } else {
            f.write_str("ErrorCodes::custom(..)")
        }
    }
}

/// One RFC 7235 challenge: a scheme and its auth-params, rendered into `WWW-Authenticate`.
///
/// ```
/// use apiauth_core::Challenge;
/// let c = Challenge::basic("admin");
/// assert_eq!(c.to_string(), r#"Basic realm="admin", charset="UTF-8""#);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    scheme: Cow<'static, str>,
    params: Vec<(Cow<'static, str>, Cow<'static, str>)>,
    codes: ErrorCodes,
}

impl Challenge {
    /// A challenge for `scheme` with no parameters.
    pub fn new(scheme: impl Into<Cow<'static, str>>) -> Self {
        Self {
            scheme: scheme.into(),
            params: Vec::new(),
            codes: ErrorCodes::NONE,
        }
    }

    /// `Bearer realm="…"`; errors add RFC 6750 `error`, `error_description` and `scope`.
    pub fn bearer(realm: impl Into<Cow<'static, str>>) -> Self {
        Self::new("Bearer")
            .param("realm", realm)
            .with_error_codes(ErrorCodes::RFC6750)
    }

    /// `Basic realm="…", charset="UTF-8"` (RFC 7617 §2.1).
    pub fn basic(realm: impl Into<Cow<'static, str>>) -> Self {
        Self::new("Basic")
            .param("realm", realm)
            .param("charset", "UTF-8")
    }

    /// Makes errors on this challenge carry RFC 6750's `error` attributes, as a scheme that
    /// shares Bearer's vocabulary (RFC 9449's `DPoP`) does.
    pub fn with_error_attributes(self) -> Self {
        self.with_error_codes(ErrorCodes::RFC6750)
    }

    /// Makes errors on this challenge carry `error`, `error_description` and (for
    /// `insufficient_scope`) `scope` attributes, with codes from `codes`.
    pub fn with_error_codes(mut self, codes: ErrorCodes) -> Self {
        self.codes = codes;
        self
    }

    /// The scheme's `error` vocabulary ([`ErrorCodes::NONE`] unless set).
    pub fn error_codes(&self) -> ErrorCodes {
        self.codes
    }

    /// Adds an auth-param. The value is sent as a quoted-string; control characters are dropped.
    pub fn param(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// The auth-scheme.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The value of the first auth-param called `name` (case-insensitive, RFC 7235 §2.1).
    pub fn get_param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The challenge as it answers `error` (RFC 6750 §3): the error code, its description and,
    /// for `insufficient_scope`, the scope attribute.
    pub fn for_error(&self, error: &AuthError) -> Challenge {
        let mut c = self.clone();
        if !c.codes.is_none() {
            if let Some(code) = error.code_in(c.codes) {
                c.params.push(("error".into(), code.to_owned().into()));
                c.params
                    .push(("error_description".into(), error.0.detail.clone()));
            }
            if let Some(scope) = &error.0.required_scope {
                c.params.push(("scope".into(), scope.clone().into()));
            }
            // RFC 9470 §3: what would satisfy the route.
            if let Some(acr) = &error.0.acr_values {
                c.params.push(("acr_values".into(), acr.clone().into()));
            }
            if let Some(max_age) = error.0.max_age {
                c.params
                    .push(("max_age".into(), max_age.to_string().into()));
            }
        }
        c
    }

    /// The challenge as a header value.
    pub fn to_header_value(&self) -> HeaderValue {
        // Every byte we write is visible ASCII or space, so this cannot fail; fall back to the
        // bare scheme rather than panic if a caller smuggled something odd into the scheme.
        HeaderValue::from_str(&self.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("Unknown"))
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            f.write_str(name)?;
            f.write_str("=\"")?;
            // RFC 7230 quoted-string: escape `"` and `\`, drop controls and non-ASCII.
            for ch in value.chars() {
                match ch {
                    '"' | '\\' => {
                        f.write_str("\\")?;
                        fmt::Write::write_char(f, ch)?;
                    }
                    ' '..='~' => fmt::Write::write_char(f, ch)?,
                    _ => {}
                }
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Challenge({self})")
    }
}

/// The error of every authentication and authorization decision on the request path.
///
/// It carries two texts: a public `detail` for the response body, identical for every kind of
/// credential mismatch, and a private `reason` (`unknown_key`, `revoked`, …) that only the audit
/// event sees. Neither ever holds a secret.
#[derive(Clone)]
pub struct AuthError(Box<ErrorInner>);

#[derive(Clone)]
struct ErrorInner {
    kind: ErrorKind,
    detail: Cow<'static, str>,
    reason: Cow<'static, str>,
    challenges: Vec<Challenge>,
    codes: Option<ErrorCodes>,
    required_scope: Option<String>,
    acr_values: Option<String>,
    max_age: Option<u64>,
    retry_after: Option<Duration>,
    headers: Vec<(HeaderName, HeaderValue)>,
    subject: Option<Box<str>>,
    credential_id: Option<Box<str>>,
    code: Option<Cow<'static, str>>,
}

impl AuthError {
    /// An error of `kind` with the default public detail.
    pub fn new(kind: ErrorKind) -> Self {
        Self(Box::new(ErrorInner {
            kind,
            detail: Cow::Borrowed(kind.default_detail()),
            reason: Cow::Borrowed(""),
            challenges: Vec::new(),
            codes: None,
            required_scope: None,
            acr_values: None,
            max_age: None,
            retry_after: match kind {
                ErrorKind::Unavailable | ErrorKind::TooManyRequests => Some(Duration::from_secs(1)),
                _ => None,
            },
            headers: Vec::new(),
            subject: None,
            credential_id: None,
            code: None,
        }))
    }

    /// 401 with no error code: nothing was presented.
    pub fn missing_credentials() -> Self {
        Self::new(ErrorKind::MissingCredentials).with_reason("missing_credentials")
    }

    /// 400 `invalid_request`; `detail` is shown to the caller.
    pub fn invalid_request(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidRequest)
            .with_detail(detail)
            .with_reason("invalid_request")
    }

    /// 401 `invalid_token`. `reason` goes to the audit event only; the body is the same for
    /// every reason so the caller cannot tell which part of a credential failed.
    pub fn invalid_credentials(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidCredentials).with_reason(reason)
    }

    /// 403 `insufficient_scope`, naming the scope that would have sufficed.
    pub fn insufficient_scope(required: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorKind::InsufficientScope).with_reason("insufficient_scope");
        e.0.required_scope = Some(required.into());
        e
    }

    /// 401 `insufficient_user_authentication` (RFC 9470 §3): the caller must authenticate
    /// again, with one of `acr_values` (space-separated, in order of preference) and/or no
    /// longer than `max_age` seconds ago.
    pub fn insufficient_user_authentication(
        acr_values: Option<String>,
        max_age: Option<u64>,
    ) -> Self {
        let mut e = Self::new(ErrorKind::InsufficientUserAuthentication)
            .with_reason("insufficient_user_authentication");
        e.0.acr_values = acr_values;
        e.0.max_age = max_age;
        e
    }

    /// 403 without an RFC 6750 error code; `detail` is shown to the caller.
    pub fn forbidden(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Forbidden)
            .with_detail(detail)
            .with_reason("forbidden")
    }

    /// 408 with `Connection: close`: the body the layer must read did not arrive in time. The
    /// server SHOULD close the connection (RFC 9110 §15.5.9), as the rest of the body may
    /// still come.
    pub fn request_timeout() -> Self {
        Self::new(ErrorKind::RequestTimeout)
            .with_reason("body_timeout")
            .with_header(http::header::CONNECTION, HeaderValue::from_static("close"))
    }

    /// 413: the body is larger than the layer will read.
    pub fn payload_too_large() -> Self {
        Self::new(ErrorKind::PayloadTooLarge).with_reason("payload_too_large")
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Self::new(ErrorKind::TooManyRequests)
            .with_reason("too_many_requests")
            .with_retry_after(retry_after)
    }

    /// 503 with `Retry-After`: an upstream needed for the decision failed. `reason` is for the
    /// audit event (e.g. `jwks_unreachable`).
    pub fn unavailable(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unavailable).with_reason(reason)
    }

    /// Replaces the public detail (shown in the body and `error_description`).
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.0.detail = detail.into();
        self
    }

    /// Replaces the private audit reason.
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.0.reason = reason.into();
        self
    }

    /// Adds a challenge to the `WWW-Authenticate` answer.
    pub fn with_challenge(mut self, challenge: Challenge) -> Self {
        self.0.challenges.push(challenge);
        self
    }

    /// Answers with `codes` in the problem body's `error` member. Without it, the vocabulary
    /// is the first challenge's that has one; the authentication layer sets its method's.
    pub fn with_error_codes(mut self, codes: ErrorCodes) -> Self {
        self.0.codes = Some(codes);
        self
    }

    /// The `error` code of the answer: the one set with
    /// [`with_error_code`](Self::with_error_code), else the kind in the vocabulary of the
    /// scheme answering ([`with_error_codes`](Self::with_error_codes), else the first
    /// challenge with a vocabulary). `None` when the scheme defines no codes.
    pub fn error_code(&self) -> Option<&str> {
        if let Some(code) = self.0.code.as_deref() {
            return Some(code);
        }
        let codes = self.0.codes.or_else(|| {
            self.0
                .challenges
                .iter()
                .map(Challenge::error_codes)
                .find(|c| !c.is_none())
        })?;
        codes.code(self.0.kind)
    }

    /// The code a challenge speaking `codes` answers this error with.
    fn code_in(&self, codes: ErrorCodes) -> Option<&str> {
        self.0.code.as_deref().or_else(|| codes.code(self.0.kind))
    }

    pub(crate) fn has_error_codes(&self) -> bool {
        self.0.codes.is_some()
    }

    /// Sets `Retry-After` (rounded up to whole seconds, at least 1).
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Adds a response header (for example RateLimit fields on a 429).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Replaces the error code of the kind (`invalid_token`, …) in the body and in
    /// challenges with error attributes, for one error of a scheme that has codes beyond its
    /// vocabulary's kinds on the same status (RFC 9449 §7.1 `invalid_dpop_proof`, §9 `use_dpop_nonce`). The kind
    /// still decides the status.
    pub fn with_error_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.0.code = Some(code.into());
        self
    }

    /// Names the subject the rejected credential claimed (a user id, a key owner), for the
    /// audit event only: it never reaches the response.
    pub fn with_subject(mut self, subject: impl Into<Box<str>>) -> Self {
        self.0.subject = Some(subject.into());
        self
    }

    /// Names the public id of the rejected credential (key id, `kid`, `keyid`), for the audit
    /// event only.
    pub fn with_credential_id(mut self, id: impl Into<Box<str>>) -> Self {
        self.0.credential_id = Some(id.into());
        self
    }

    /// The subject named for the audit event, if any.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// The credential id named for the audit event, if any.
    pub fn credential_id(&self) -> Option<&str> {
        self.0.credential_id.as_deref()
    }

    /// Extra response headers added with [`with_header`](Self::with_header), for custom
    /// [`ErrorResponder`]s that must keep them (RateLimit fields, for example).
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.0.headers
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.0.kind.status()
    }

    /// The public detail.
    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    /// The private reason, for audit events and metrics.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The challenges to send.
    pub fn challenges(&self) -> &[Challenge] {
        &self.0.challenges
    }

    /// The scope that would have sufficed, for `insufficient_scope`.
    pub fn required_scope(&self) -> Option<&str> {
        self.0.required_scope.as_deref()
    }

    /// When to retry, for 429 and 503.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// Renders the error with the user's [`ErrorResponder`] if one is in `extensions`, else
    /// with the default rendering ([`IntoResponse`]).
    pub fn render(self, extensions: &Extensions) -> Response {
        match extensions.get::<ErrorResponder>() {
            Some(responder) => (responder.0)(&self),
            None => self.into_response(),
        }
    }

    /// The RFC 9457 problem document for this error.
    pub fn problem_json(&self) -> serde_json::Value {
        let status = self.status();
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.0.detail,
        });
        if let Some(map) = body.as_object_mut() {
            if let Some(code) = self.error_code() {
                map.insert("error".into(), code.into());
            }
            if let Some(scope) = &self.0.required_scope {
                map.insert("scope".into(), scope.clone().into());
            }
            if let Some(acr) = &self.0.acr_values {
                map.insert("acr_values".into(), acr.clone().into());
            }
            if let Some(max_age) = self.0.max_age {
                map.insert("max_age".into(), max_age.into());
            }
        }
        body
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthError")
            .field("kind", &self.0.kind)
            .field("reason", &self.0.reason)
            .field("detail", &self.0.detail)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.kind)?;
        if !self.0.reason.is_empty() {
            write!(f, " ({})", self.0.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for AuthError {}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let body = self.problem_json().to_string();
        let mut res = Response::new(axum::body::Body::from(body));
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // Error answers about credentials must not be cached by intermediaries.
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for c in &self.0.challenges {
            h.append(WWW_AUTHENTICATE, c.for_error(&self).to_header_value());
        }
        if let Some(after) = self.0.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        for (name, value) in self.0.headers {
            h.append(name, value);
        }
        res
    }
}

/// A user-supplied rendering of [`AuthError`], replacing the default problem+json answer.
///
/// Install it as an extension on the router; every layer and extractor of the suite uses it:
///
/// ```
/// use apiauth_core::{AuthError, ErrorResponder};
/// use axum::{Extension, Router, response::IntoResponse};
///
/// let app: Router = Router::new().layer(Extension(ErrorResponder::new(|e: &AuthError| {
///     (e.status(), format!("denied: {}", e.detail())).into_response()
/// })));
/// ```
#[derive(Clone)]
pub struct ErrorResponder(Arc<dyn Fn(&AuthError) -> Response + Send + Sync>);

impl ErrorResponder {
    /// Wraps a rendering function.
    pub fn new(f: impl Fn(&AuthError) -> Response + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for ErrorResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorResponder")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_string_escapes_and_drops_controls() {
        let c = Challenge::new("X").param("realm", "a\"b\\c\r\nd\u{e9}");
        assert_eq!(c.to_string(), r#"X realm="a\"b\\cd""#);
    }

    #[test]
    fn problem_error_member_speaks_the_scheme_vocabulary() {
        let e = AuthError::invalid_credentials("unknown");
        // No scheme answering: no code borrowed from Bearer.
        assert!(e.problem_json().get("error").is_none());
        let basic = e.clone().with_challenge(Challenge::basic("r"));
        assert!(basic.problem_json().get("error").is_none());
        assert_eq!(
            Challenge::basic("r").for_error(&basic).to_string(),
            r#"Basic realm="r", charset="UTF-8""#
        );
        let bearer = e.clone().with_challenge(Challenge::bearer("r"));
        assert_eq!(bearer.problem_json()["error"], "invalid_token");
        const OWN: ErrorCodes = ErrorCodes::custom(|k| match k {
            ErrorKind::InvalidCredentials => Some("invalid_key"),
            _ => None,
        });
        let own = e.with_error_codes(OWN);
        assert_eq!(own.problem_json()["error"], "invalid_key");
        assert_eq!(own.error_code(), Some("invalid_key"));
        assert_ne!(OWN, ErrorCodes::RFC6750);
    }

    #[test]
    fn bearer_challenge_carries_rfc6750_attributes_on_error() {
        let e = AuthError::insufficient_scope("a b");
        let c = Challenge::bearer("api").for_error(&e);
        assert_eq!(
            c.to_string(),
            r#"Bearer realm="api", error="insufficient_scope", error_description="The credentials do not grant the required scope.", scope="a b""#
        );
        // Basic never grows RFC 6750 attributes.
        assert_eq!(
            Challenge::basic("x").for_error(&e).to_string(),
            r#"Basic realm="x", charset="UTF-8""#
        );
    }

    #[test]
    fn a_scheme_specific_error_code_replaces_the_kinds_in_body_and_challenge() {
        let e = AuthError::invalid_credentials("x").with_error_code("invalid_dpop_proof");
        let c = Challenge::new("DPoP")
            .param("algs", "ES256")
            .with_error_attributes()
            .for_error(&e);
        assert_eq!(
            c.to_string(),
            r#"DPoP algs="ES256", error="invalid_dpop_proof", error_description="The credentials are not valid.""#
        );
        assert_eq!(e.problem_json()["error"], "invalid_dpop_proof");
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn retry_after_rounds_up() {
        let r = AuthError::unavailable("x")
            .with_retry_after(Duration::from_millis(1500))
            .into_response();
        assert_eq!(r.headers()[RETRY_AFTER], "2");
        assert_eq!(r.status(), 503);
    }
}
