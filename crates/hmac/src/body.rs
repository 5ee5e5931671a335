//! Buffering a request body within a limit, and putting the same bytes back.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
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
    let mut collect = pin!(Limited::new(body, limit).collect());
    // A body already in memory (or fully received) is complete on the first poll: no
    // timer is needed for it. Polling with a no-op waker is sound because the timed wait
    // below polls again, with the task's waker, before anything waits.
    let first = collect
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()));
    let collected = match first {
        Poll::Ready(done) => Ok(done),
        Poll::Pending => tokio::time::timeout(timeout, collect).await,
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn request(body: Body) -> Request<Body> {
        Request::post("/").body(body).unwrap()
    }

    #[tokio::test]
    async fn a_body_in_memory_is_read_and_put_back() {
        let mut req = request(Body::from("hello"));
        let got = buffer(&mut req, 10, Duration::from_secs(1)).await.unwrap();
        assert_eq!(got, "hello");
        let again = req.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(again, "hello");
    }

    #[tokio::test]
    async fn a_body_that_arrives_later_is_waited_for() {
        let late = stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"late"))
        });
        let mut req = request(Body::from_stream(late));
        let got = buffer(&mut req, 10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got, "late");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out_and_one_too_large_is_413() {
        let never = stream::pending::<Result<Bytes, std::io::Error>>();
        let mut req = request(Body::from_stream(never));
        let err = buffer(&mut req, 10, Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("body_timeout"), "{err:?}");
        let mut big = request(Body::from("0123456789abc"));
        let err = buffer(&mut big, 10, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(!format!("{err:?}").contains("body_timeout"), "{err:?}");
    }
}
