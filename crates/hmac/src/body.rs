//! Buffering a request body within a limit and a process-wide byte budget, and putting the
//! same bytes back.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use apiauth_core::AuthError;
use axum::body::{Body, HttpBody};
use bytes::{Bytes, BytesMut};
use http::Request;
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget every verifier uses unless given another: 64 MiB.
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;
/// How long a client refused for want of budget is asked to wait (RFC 9110 §10.2.3).
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(5);

/// A cap on the bytes held for bodies that are not yet authenticated, shared by every
/// verifier given the same budget (and, by default, by all of them in the process).
///
/// A signed request or webhook delivery must be read whole before its signature can be
/// checked, so each per-request limit alone lets many slow senders hold `limit × senders`
/// bytes. The budget bounds the sum: a body that would take more than what is left is refused
/// with 503 and `Retry-After` (fail closed; 413 stays for one body over the per-request
/// limit). A declared `Content-Length` is reserved before a byte is read; a body without one
/// reserves as it arrives. The reservation is released when the buffered body is dropped, by
/// the handler or on an error.
///
/// ```
/// use apiauth_hmac::{BodyBudget, HttpSignatureVerifier, MemoryHmacKeyStore};
///
/// // 8 MiB for all signed requests together.
/// let budget = BodyBudget::new(8 * 1024 * 1024);
/// let verifier = HttpSignatureVerifier::builder(MemoryHmacKeyStore::new())
///     .body_budget(budget.clone())
///     .build()
///     .unwrap();
/// assert_eq!(budget.available(), 8 * 1024 * 1024);
/// # drop(verifier);
/// ```
#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    /// A budget of `bytes` (at most `Semaphore::MAX_PERMITS`, about 2^61).
    pub fn new(bytes: usize) -> Self {
        let total = bytes.min(Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// The process-wide budget of [`DEFAULT_BODY_BUDGET`] bytes that verifiers share when
    /// none is configured.
    pub fn global() -> Self {
        static GLOBAL: OnceLock<BodyBudget> = OnceLock::new();
        GLOBAL
            .get_or_init(|| BodyBudget::new(DEFAULT_BODY_BUDGET))
            .clone()
    }

    /// The whole budget in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Reserves `n` more bytes into `held`, or refuses with 503.
    fn reserve(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Result<(), AuthError> {
        if n == 0 {
            return Ok(());
        }
        let permit = u32::try_from(n)
            .ok()
            .and_then(|n| Arc::clone(&self.bytes).try_acquire_many_owned(n).ok())
            .ok_or_else(busy)?;
        match held {
            Some(h) => h.merge(permit),
            None => *held = Some(permit),
        }
        Ok(())
    }
}

impl Default for BodyBudget {
    fn default() -> Self {
        Self::global()
    }
}

impl fmt::Debug for BodyBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyBudget")
            .field("total", &self.total)
            .field("available", &self.available())
            .finish()
    }
}

fn busy() -> AuthError {
    AuthError::unavailable("body_budget_exhausted")
        .with_detail("The server is receiving too many request bodies; retry later.")
        .with_retry_after(BUSY_RETRY_AFTER)
}

/// The buffered bytes, holding their share of the budget until the body is dropped.
struct Budgeted {
    data: Option<Bytes>,
    _held: Option<OwnedSemaphorePermit>,
}

impl HttpBody for Budgeted {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

enum Failure {
    TooLarge,
    Busy(AuthError),
    Read,
}

/// Reads `body` whole, reserving each byte from `budget` first.
async fn collect(
    mut body: Body,
    limit: usize,
    budget: &BodyBudget,
    mut held: Option<OwnedSemaphorePermit>,
    reserved: usize,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Failure> {
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    let mut len = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame.map_err(|_| Failure::Read)?.into_data() else {
            continue; // trailers are not part of the content
        };
        let new_len = len.saturating_add(data.len());
        if new_len > limit {
            return Err(Failure::TooLarge);
        }
        if new_len > reserved {
            budget
                .reserve(&mut held, new_len - len.max(reserved))
                .map_err(Failure::Busy)?;
        }
        len = new_len;
        // One frame (a body in memory) is handed on without a copy; a declared length is
        // allocated once, so the buffer never grows past what was reserved for it.
        match first.take() {
            None if rest.is_empty() && data.len() < reserved => {
                rest.reserve(reserved);
                rest.extend_from_slice(&data);
            }
            None if rest.is_empty() => first = Some(data),
            None => rest.extend_from_slice(&data),
            Some(f) => {
                rest.reserve(f.len() + data.len());
                rest.extend_from_slice(&f);
                rest.extend_from_slice(&data);
            }
        }
    }
    Ok((first.unwrap_or_else(|| rest.freeze()), held))
}

/// Reads the whole body, at most `limit` bytes (413 beyond), within `budget` (503 when the
/// budget is spent) and within `timeout` (408 past it: a slow client cannot hold the check
/// open), then
/// puts the same bytes back for the handler.
pub(crate) async fn buffer(
    req: &mut Request<Body>,
    limit: usize,
    timeout: Duration,
    budget: &BodyBudget,
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
    // A declared length is reserved whole before reading, so a sender that stalls after
    // the head holds no more than it was granted.
    let declared = declared.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let mut held = None;
    budget.reserve(&mut held, declared)?;
    let body = std::mem::take(req.body_mut());
    let mut collect = pin!(collect(body, limit, budget, held, declared));
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
    let (bytes, held) = match collected {
        Err(_) => return Err(AuthError::request_timeout()),
        Ok(Err(Failure::TooLarge)) => return Err(AuthError::payload_too_large()),
        Ok(Err(Failure::Busy(e))) => return Err(e),
        Ok(Err(Failure::Read)) => {
            return Err(
                AuthError::invalid_request("The request body could not be read.")
                    .with_reason("body_read_error"),
            );
        }
        Ok(Ok(c)) => c,
    };
    *req.body_mut() = Body::new(Budgeted {
        data: (!bytes.is_empty()).then(|| bytes.clone()),
        _held: held,
    });
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use http_body_util::BodyExt;

    fn request(body: Body) -> Request<Body> {
        Request::post("/").body(body).unwrap()
    }

    fn budget() -> BodyBudget {
        BodyBudget::new(1024)
    }

    #[tokio::test]
    async fn a_body_in_memory_is_read_and_put_back() {
        let b = budget();
        let mut req = request(Body::from("hello"));
        let got = buffer(&mut req, 10, Duration::from_secs(1), &b)
            .await
            .unwrap();
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
        let got = buffer(&mut req, 10, Duration::from_secs(5), &budget())
            .await
            .unwrap();
        assert_eq!(got, "late");
    }

    #[tokio::test]
    async fn several_frames_are_joined_in_order() {
        let parts =
            stream::iter(["ab", "cd", "ef"].map(|s| Ok::<_, std::io::Error>(Bytes::from(s))));
        let mut req = request(Body::from_stream(parts));
        let got = buffer(&mut req, 10, Duration::from_secs(5), &budget())
            .await
            .unwrap();
        assert_eq!(got, "abcdef");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_408_and_one_too_large_is_413() {
        let b = budget();
        let never = stream::pending::<Result<Bytes, std::io::Error>>();
        let mut req = request(Body::from_stream(never));
        let err = buffer(&mut req, 10, Duration::from_millis(30), &b)
            .await
            .unwrap_err();
        assert!(format!("{err:?}").contains("body_timeout"), "{err:?}");
        assert_eq!(err.kind().status(), 408);
        let res = axum::response::IntoResponse::into_response(err);
        assert_eq!(res.headers()[http::header::CONNECTION], "close");
        let mut big = request(Body::from("0123456789abc"));
        let err = buffer(&mut big, 10, Duration::from_secs(1), &b)
            .await
            .unwrap_err();
        assert_eq!(err.kind().status(), 413);
        // Nothing stays reserved after either failure.
        assert_eq!(b.available(), 1024);
    }

    fn declared(n: usize, body: Body) -> Request<Body> {
        Request::post("/")
            .header(http::header::CONTENT_LENGTH, n)
            .body(body)
            .unwrap()
    }

    #[tokio::test]
    async fn a_declared_body_past_the_remaining_budget_is_503_with_retry_after() {
        let b = budget();
        // A stalled sender holds what it declared...
        let mut slow = declared(
            800,
            Body::from_stream(stream::pending::<Result<Bytes, std::io::Error>>()),
        );
        let mut stalled = Box::pin(buffer(&mut slow, 1000, Duration::from_secs(60), &b));
        assert!(
            stalled
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_pending()
        );
        assert_eq!(b.available(), 224);
        // ...so the next one, within its own limit, does not fit: 503, not 413.
        let mut next = declared(300, Body::from(vec![0u8; 300]));
        let err = buffer(&mut next, 1000, Duration::from_secs(1), &b)
            .await
            .unwrap_err();
        assert_eq!(err.kind().status(), 503);
        let res = axum::response::IntoResponse::into_response(err);
        assert!(res.headers().contains_key(http::header::RETRY_AFTER));
        // One that fits is read.
        let mut small = declared(200, Body::from(vec![1u8; 200]));
        assert!(
            buffer(&mut small, 1000, Duration::from_secs(1), &b)
                .await
                .is_ok()
        );
        assert_eq!(b.available(), 24);
        // The stalled sender gives up: its share returns.
        drop(stalled);
        assert_eq!(b.available(), 824);
        // The handler drops the body it was handed: the rest returns.
        drop(small);
        assert_eq!(b.available(), 1024);
    }

    #[tokio::test]
    async fn an_undeclared_body_reserves_as_it_arrives_and_is_refused_when_the_budget_runs_out() {
        let b = BodyBudget::new(100);
        let held = Bytes::from(vec![0u8; 60]);
        let mut first = request(Body::from(held.clone()));
        buffer(&mut first, 80, Duration::from_secs(1), &b)
            .await
            .unwrap();
        assert_eq!(b.available(), 40);
        let chunks =
            stream::iter([20usize, 30].map(|n| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; n]))));
        let mut second = request(Body::from_stream(chunks));
        let err = buffer(&mut second, 80, Duration::from_secs(1), &b)
            .await
            .unwrap_err();
        assert_eq!(err.kind().status(), 503);
        assert_eq!(
            b.available(),
            40,
            "the refused body's first chunk is released"
        );
        drop(first);
        assert_eq!(b.available(), 100);
    }

    #[test]
    fn the_default_budget_is_one_process_wide_64_mib() {
        let (a, b) = (BodyBudget::default(), BodyBudget::global());
        assert!(Arc::ptr_eq(&a.bytes, &b.bytes));
        assert_eq!(a.total(), DEFAULT_BODY_BUDGET);
        assert!(!format!("{a:?}").is_empty());
    }
}
