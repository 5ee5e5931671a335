//! The portal's browser defences: security headers on every answer, the session cookie,
//! and the CSRF check every form post passes.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

/// The cookie that carries the session id.
pub const COOKIE: &str = "portal_session";

/// Scripts, styles and images from this origin only (no inline script or style), forms to
/// this origin only, and no framing by anyone (clickjacking).
pub const CSP: &str = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; \
                       base-uri 'none'; object-src 'none'";

/// Adds the security headers. `Referrer-Policy: same-origin`, not `no-referrer`: with the
/// latter a browser sends `Origin: null` on the portal's own posts. Pages are never cached (they show per-session data, and a
/// new key once); the static files under `/portal/static/` may be.
pub async fn headers(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_static = path.starts_with("/static/") || path.starts_with("/portal/static/");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let cache = if is_static {
        "public, max-age=3600"
    } else {
        "no-store"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    res
}

/// The session id the request's cookies carry, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for session `id`: not readable by scripts, never sent on cross-site
/// requests, only to the portal's paths, and only over TLS when the server has TLS.
pub fn set_cookie(id: &str, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let max_age = super::session::ABSOLUTE.as_secs();
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}=; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether a posted token matches the session's, in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Whether the request's `Origin`, when sent, is this server's own (`scheme://Host`). A
/// browser sends it on every cross-origin post; its absence alone proves nothing.
pub fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let scheme = if tls { "https" } else { "http" };
    origin
        .to_str()
        .is_ok_and(|o| o == format!("{scheme}://{host}"))
}
