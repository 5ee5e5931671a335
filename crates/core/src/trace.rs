//! Request URIs for logs, without what a query can carry.
//!
//! A query may hold credentials (`?api_key=…`, `?access_token=…`, `client_secret=…`) even
//! where the service refuses them: the refusal comes after the request was logged. tower-http's
//! default request span records the whole URI, so such a value reaches the log at `DEBUG`.
//! [`RedactedUri`] shows the path and the query's parameter names only; [`request_span`] is a
//! request span that uses it, for your own `TraceLayer`.
//!
//! ```
//! use apiauth_core::trace::{RedactedUri, request_span};
//! use axum::{Router, routing::get};
//! use tower_http::trace::TraceLayer;
//!
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "ok" }))
//!     .layer(TraceLayer::new_for_http().make_span_with(request_span));
//!
//! let uri: http::Uri = "/v1/items?api_key=sk_live_secret&page=2".parse().unwrap();
//! assert_eq!(RedactedUri::new(&uri).to_string(), "/v1/items?api_key=*&page=*");
//! ```

use std::fmt;

use http::{Request, Uri};

/// The longest path shown; longer ones end in `…`.
pub const MAX_PATH_LEN: usize = 256;
/// The most query parameters shown; more are summarised as `&…`.
pub const MAX_PARAMS: usize = 16;
/// The longest parameter name shown; a longer one (a pasted secret?) is replaced too.
const MAX_NAME_LEN: usize = 32;
/// What stands for a value, or for a name that might not be one.
const PLACEHOLDER: &str = "*";

/// A URI as it may be logged: the path, then the query with every value replaced by `*`.
///
/// Names are kept when they look like names (at most 32 characters of letters, digits and
/// `_ - . [ ]`); anything else, such as a bare `?<token>`, is replaced as a value is. The
/// output is bounded ([`MAX_PATH_LEN`], [`MAX_PARAMS`]) and never contains the raw query.
/// The scheme and authority are left out (a `user:password@` could be in the authority).
#[derive(Clone, Copy)]
pub struct RedactedUri<'a>(&'a Uri);

impl<'a> RedactedUri<'a> {
    /// Wraps `uri` for display.
    pub fn new(uri: &'a Uri) -> Self {
        Self(uri)
    }
}

fn name_like(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

impl fmt::Display for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = match self.0.path() {
            "" => "/",
            p => p,
        };
        // `http::Uri` paths are ASCII, so any byte index is a character boundary; `get`
        // keeps this panic-free whatever the input.
        match path.get(..MAX_PATH_LEN) {
            Some(head) if head.len() < path.len() => write!(f, "{head}…")?,
            _ => f.write_str(path)?,
        }
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_str("?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i == MAX_PARAMS {
                return f.write_str("&…");
            }
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((name, _)) if name_like(name) => write!(f, "{name}={PLACEHOLDER}")?,
                _ => f.write_str(PLACEHOLDER)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for RedactedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A `DEBUG` span named `request` with `method`, `uri` (as [`RedactedUri`]) and `version`:
/// tower-http's default request span without the query values. Pass it to
/// `TraceLayer::make_span_with`.
pub fn request_span<B>(req: &Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        uri = %RedactedUri::new(req.uri()),
        version = ?req.version(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(uri: &str) -> String {
        RedactedUri::new(&uri.parse().unwrap()).to_string()
    }

    #[test]
    fn values_are_replaced_and_names_kept() {
        assert_eq!(show("/v1/companies/acme.com"), "/v1/companies/acme.com");
        assert_eq!(
            show("/v1/companies/acme.com?api_key=sk_live_abc&access_token=eyJ.x.y"),
            "/v1/companies/acme.com?api_key=*&access_token=*"
        );
        assert_eq!(
            show("/oauth/token?client_id=a&client_secret=s3cret"),
            "/oauth/token?client_id=*&client_secret=*"
        );
        assert_eq!(show("/?a=&b"), "/?a=*&*");
        assert_eq!(show("/?"), "/?*");
        assert_eq!(show("https://user:pw@api.example/x?k=v"), "/x?k=*");
    }

    #[test]
    fn a_name_that_may_be_a_secret_is_replaced_too() {
        assert_eq!(show("/x?sk_live_0123456789abcdefghijklmnopqrstuv"), "/x?*");
        let long = "n".repeat(MAX_NAME_LEN + 1);
        assert_eq!(show(&format!("/x?{long}=1")), "/x?*");
        assert_eq!(show("/x?a%20b=1&c+d=2"), "/x?*&*");
    }

    #[test]
    fn output_is_bounded_and_never_holds_the_raw_query() {
        let path = format!("/{}", "p".repeat(1000));
        let query: Vec<String> = (0..100).map(|i| format!("k{i}=secret{i}")).collect();
        let uri = format!("{path}?{}", query.join("&"));
        let shown = show(&uri);
        assert!(
            shown.len() < MAX_PATH_LEN + MAX_PARAMS * 12 + 16,
            "{}",
            shown.len()
        );
        assert!(shown.ends_with("&…"));
        assert!(!shown.contains("secret"));
        assert_eq!(
            format!("{:?}", RedactedUri::new(&uri.parse().unwrap())),
            shown
        );
    }

    #[test]
    fn the_request_span_records_the_redacted_uri() {
        use apiauth_testkit::LogCapture;
        let capture = LogCapture::start();
        let req = Request::get("/x?api_key=sk_live_topsecret")
            .body(())
            .unwrap();
        let span = request_span(&req);
        span.in_scope(|| tracing::debug!("inside"));
        let log = capture.text();
        assert!(log.contains("api_key=*"), "{log}");
        assert!(!log.contains("topsecret"), "{log}");
    }
}
