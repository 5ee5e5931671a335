//! What a client sees of a response, and the one way tests send a request to a router.

use std::fmt;

use axum::Router;
use axum::body::{Body, HttpBody};
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// A response as a client sees it: status, headers and the body as text (lossy UTF-8).
#[derive(Clone)]
pub struct Seen {
    /// The status code.
    pub status: StatusCode,
    /// Every header.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// Reads a whole response: an in-process one (`Router::oneshot`), or one from a real
    /// socket (`http::Response::from(reqwest_response)`). A body that fails to arrive reads as
    /// empty, so the assertions on it fail loudly.
    pub async fn read<B>(res: Response<B>) -> Self
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (parts, body) = res.into_parts();
        let bytes = Body::new(body)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `(status, headers, body)`, for tests that destructure the answer.
    pub fn into_parts(self) -> (StatusCode, HeaderMap, String) {
        (self.status, self.headers, self.body)
    }

    /// The body as JSON. Panics, showing the body, when it is not JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// The first value of header `name`, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Retry-After` in seconds, if present and a number.
    pub fn retry_after(&self) -> Option<u64> {
        self.header(header::RETRY_AFTER.as_str())?.parse().ok()
    }

    /// Every `WWW-Authenticate` value, in order.
    pub fn challenges(&self) -> Vec<String> {
        self.headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// Every header as `name: value` lines.
    pub fn header_text(&self) -> String {
        let mut text = String::new();
        for (k, v) in &self.headers {
            text.push_str(k.as_str());
            text.push_str(": ");
            text.push_str(&String::from_utf8_lossy(v.as_bytes()));
            text.push('\n');
        }
        text
    }

    /// Whether `needle` appears in a header or the body (the empty needle never does).
    pub fn shows(&self, needle: &str) -> bool {
        !needle.is_empty() && (self.header_text().contains(needle) || self.body.contains(needle))
    }
}

impl fmt::Debug for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Seen")
            .field("status", &self.status)
            .field("headers", &self.header_text())
            .field("body", &self.body)
            .finish()
    }
}

/// Sends `req` through `app` in process (`oneshot`, no socket) and reads the whole answer.
/// Tests of behaviour that crosses the network start a server and read with [`Seen::read`].
pub async fn send(app: &Router, req: Request<Body>) -> Seen {
    let res = match app.clone().oneshot(req).await {
        Ok(res) => res,
        Err(never) => match never {},
    };
    Seen::read(res).await
}
