//! Helpers shared by the fuzz targets: one runtime per thread and reading what a client sees.

use std::future::Future;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::response::Response;
use http_body_util::BodyExt;

thread_local! {
    // One current-thread runtime, reused: building one per input would dominate the run.
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime always builds");
}

/// Runs `f` to completion on this thread's runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    RT.with(|rt| rt.block_on(f))
}

/// A fixed "now" for every target, so that inputs reproduce.
pub fn epoch_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

/// What a client sees: status, every header as text, and the body.
pub struct Seen {
    /// The status code.
    pub status: u16,
    /// `name: value` lines.
    pub headers: String,
    /// The body, lossily as text.
    pub body: String,
}

impl Seen {
    /// Whether `needle` appears anywhere in what the client sees.
    pub fn shows(&self, needle: &str) -> bool {
        !needle.is_empty() && (self.headers.contains(needle) || self.body.contains(needle))
    }
}

/// Reads a response completely.
pub async fn seen(res: Response) -> Seen {
    let (parts, body) = res.into_parts();
    let mut headers = String::new();
    for (k, v) in &parts.headers {
        headers.push_str(k.as_str());
        headers.push_str(": ");
        headers.push_str(&String::from_utf8_lossy(v.as_bytes()));
        headers.push('\n');
    }
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    Seen {
        status: parts.status.as_u16(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// An empty-bodied GET with the given `Authorization` value, or `None` if `value` is not a
/// valid header value (the HTTP layer would have refused it before any of our code ran).
pub fn get_with_authorization(value: &[u8], uri: &str) -> Option<http::Request<Body>> {
    let v = http::HeaderValue::from_bytes(value).ok()?;
    http::Request::get(uri)
        .header(http::header::AUTHORIZATION, v)
        .body(Body::empty())
        .ok()
}
