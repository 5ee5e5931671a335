//! Buffering a request body within a limit, and putting the same bytes back.

use std::time::Duration;

use apiauth_core::AuthError;
use axum::body::Body;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Reads the whole body, at most `limit` bytes (413 beyond) and within `timeout` (a slow
/// client cannot hold the check open), then puts the same bytes back for the handler.
pub(crate) async fn buffer(
    req: &mut Request<Body>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, AuthError> {
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Refuse before reading a byte.
        return Err(AuthError::payload_too_large());
    }
    let body = std::mem::take(req.body_mut());
    let collected = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    let bytes = match collected {
        Err(_) => {
            return Err(
                AuthError::invalid_request("The request body was not received in time.")
                    .with_reason("body_timeout"),
            );
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(AuthError::payload_too_large());
        }
        Ok(Err(_)) => {
            return Err(
                AuthError::invalid_request("The request body could not be read.")
                    .with_reason("body_read_error"),
            );
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    *req.body_mut() = Body::from(bytes.clone());
    Ok(bytes)
}
