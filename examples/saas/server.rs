//! The serving loop: connections, their cap and every timeout a slow or hostile client meets.
//!
//! hyper-util's `auto::Builder` over a tokio `TcpListener` (TLS through tokio-rustls), with:
//!
//! - **a connection cap** (`--max-connections`): at the cap, a new connection takes the slot
//!   of the connection that has been idle longest (a half-sent head, a TLS handshake or a
//!   keep-alive wait: nothing in flight), so connections that never send a request cannot
//!   keep the service from answering; when every slot has a request in flight, the new
//!   connection is closed at once. The process never holds more sockets than the cap, so a
//!   file limit above it is never reached.
//! - **a header timeout** (`--header-timeout`): a connection that has not delivered a whole
//!   request head that long after it was accepted (after its TLS handshake) is closed, and on
//!   HTTP/1.1 so is a keep-alive connection whose next head takes that long (hyper's
//!   `header_read_timeout`).
//! - **a TLS handshake timeout** (`--tls-handshake-timeout`).
//! - **an idle timeout** (`--idle-timeout`): a connection with no request in flight for that
//!   long is closed (HTTP/2 in particular, which has no header timeout per stream).
//! - **a body timeout** (`--body-timeout`): the whole request body must arrive within that
//!   time of its head, or the answer is 408 and the connection is closed (RFC 9110 §15.5.9:
//!   the server did not receive the complete request in the time it was prepared to wait).
//! - **a request timeout** (`--request-timeout`): a request not answered in that time gets
//!   503 with `Retry-After` (RFC 9110 §15.6.4). Not 408: the request was received, the
//!   delay is the server's (a slow store, a slow handler), and 408 would tell a client its
//!   own request was at fault.
//!
//! Each request gets `ConnectInfo<SocketAddr>` (the socket peer) in its extensions, as
//! `into_make_service_with_connect_info` would add, and over TLS the connection's
//! `ClientCertificate` when the client presented one (RFC 8705, `--mtls-ca`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use apiauth::mtls::ClientCertificate;
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest read buffer of an HTTP/1.1 connection, and so the largest request head.
const READ_BUF_SIZE: usize = 64 * 1024;

/// The serving loop's limits (see the module docs).
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after the shutdown signal.
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests
/// finish (at most `limits.drain`).
pub async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // What hyper buffers per connection (the head, body bytes not yet taken) is bounded
        // by this, so 512 connections hold at most 32 MiB of it (hyper's default: ~400 KiB).
        .max_buf_size(READ_BUF_SIZE);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let limits = Arc::new(limits);
    let slots = Arc::new(Slots::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each connection task holds a sender; when all are gone, every connection has ended.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a
                    // little rather than spin, and go on.
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(conn) = slots.admit() else {
            // Every slot has a request in flight: close at once, holding nothing.
            tracing::debug!("connection cap reached; closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = Task {
            builder: builder.clone(),
            router: router.clone(),
            limits: limits.clone(),
            conn,
            stop: stop_rx.clone(),
            _done: done_tx.clone(),
            peer,
            cert: None,
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut task = task;
            match tls {
                None => task.serve(TokioIo::new(stream)).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(
                        task.limits.tls_handshake_timeout,
                        acceptor.accept(stream),
                    );
                    let tls_stream = tokio::select! {
                        r = handshake => r,
                        () = task.conn.state.evicted.notified() => return,
                    };
                    match tls_stream {
                        Ok(Ok(s)) => {
                            // After the handshake: the peer's verified end-entity certificate.
                            task.cert = ClientCertificate::from_tls_stream(&s);
                            task.serve(TokioIo::new(s)).await
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    if tokio::time::timeout(limits.drain, done_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain period; exiting anyway");
    }
    Ok(())
}

/// What the slots table knows of one connection.
struct ConnState {
    id: u64,
    /// Requests started on this connection.
    started: AtomicU64,
    /// Requests in flight (until their response body is dropped).
    in_flight: AtomicUsize,
    /// When the connection last became idle, in milliseconds since `Slots::epoch`.
    idle_since: AtomicU64,
    /// Told when the connection's slot was given to a newer connection.
    evicted: Notify,
}

/// The connection cap.
struct Slots {
    max: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<Vec<Arc<ConnState>>>,
}

/// A connection's slot, freed when dropped.
struct Slot {
    slots: Arc<Slots>,
    state: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let id = self.state.id;
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.retain(|c| c.id != id);
    }
}

impl Slots {
    fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A slot for a new connection: a free one, else the one idle longest, else none.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            evicted: Notify::new(),
        });
        // Nothing panics while holding the lock; were it poisoned, the table is still sound.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.len() >= self.max {
            let oldest_idle = open
                .iter()
                .enumerate()
                .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                // Ties (one millisecond) go to the older connection.
                .min_by_key(|(_, c)| (c.idle_since.load(Ordering::Relaxed), c.id))
                .map(|(i, _)| i)?;
            let evicted = open.remove(oldest_idle);
            evicted.evicted.notify_one();
        }
        open.push(state.clone());
        Some(Slot {
            slots: self.clone(),
            state,
        })
    }
}

/// Marks a request in flight on its connection until dropped (with the response body).
struct InFlight {
    slots: Arc<Slots>,
    state: Arc<ConnState>,
}

impl InFlight {
    fn begin(slot: &Slot) -> Self {
        slot.state.started.fetch_add(1, Ordering::Relaxed);
        slot.state.in_flight.fetch_add(1, Ordering::AcqRel);
        Self {
            slots: slot.slots.clone(),
            state: slot.state.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.slots.now_ms(), Ordering::Relaxed);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Task {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: Arc<Limits>,
    conn: Slot,
    stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
    peer: SocketAddr,
    /// The TLS client certificate of the connection (RFC 8705), if it presented one.
    cert: Option<ClientCertificate>,
}

impl Task {
    async fn serve<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let slot = Arc::new(self.conn);
        let (router, limits, peer) = (self.router.clone(), self.limits.clone(), self.peer);
        let cert = self.cert.take();
        let svc_slot = slot.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = InFlight::begin(&svc_slot);
            let (router, limits, cert) = (router.clone(), limits.clone(), cert.clone());
            async move { Ok::<_, Infallible>(handle(router, &limits, peer, cert, in_flight, req).await) }
        });
        let conn = self.builder.serve_connection(io, service);
        let mut conn = pin!(conn);
        let state = slot.state.clone();
        let mut watchdog = pin!(watchdog(&state, &slot.slots, &self.limits));
        tokio::select! {
            _ = conn.as_mut() => return,
            // Idle too long, or no request head in time: nothing is in flight, so close.
            () = watchdog.as_mut() => return,
            () = state.evicted.notified() => {
                if state.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                // A request began as the slot was taken: let it finish, then close.
                conn.as_mut().graceful_shutdown();
            }
            _ = self.stop.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
        }
        // Finishing what is in flight; a connection that goes idle meanwhile is closed.
        tokio::select! {
            _ = conn => {}
            () = watchdog => {}
        }
    }
}

/// Completes when the connection should be closed for want of activity: no request head
/// within the header timeout of opening, or nothing in flight for the idle timeout.
async fn watchdog(state: &ConnState, slots: &Slots, limits: &Limits) {
    let opened = Instant::now();
    loop {
        let mut wait = limits.idle_timeout;
        if state.in_flight.load(Ordering::Acquire) == 0 {
            let idle = slots
                .now_ms()
                .saturating_sub(state.idle_since.load(Ordering::Relaxed));
            let idle = Duration::from_millis(idle);
            if idle >= limits.idle_timeout {
                return;
            }
            wait = limits.idle_timeout - idle;
        }
        if state.started.load(Ordering::Relaxed) == 0 {
            let left = limits.header_timeout.saturating_sub(opened.elapsed());
            if left.is_zero() {
                return;
            }
            wait = wait.min(left);
        }
        tokio::time::sleep(wait).await;
    }
}

async fn handle(
    router: Router,
    limits: &Limits,
    peer: SocketAddr,
    cert: Option<ClientCertificate>,
    in_flight: InFlight,
    req: Request<Incoming>,
) -> Response<Body> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    if let Some(cert) = cert {
        parts.extensions.insert(cert);
    }
    let body = Body::new(Deadline {
        inner: body,
        deadline: Instant::now() + limits.body_timeout,
        sleep: None,
        timed_out: timed_out.clone(),
    });
    let answered = tokio::time::timeout(
        limits.request_timeout,
        router.oneshot(Request::from_parts(parts, body)),
    )
    .await;
    let res = if timed_out.load(Ordering::Acquire) {
        // Whoever read the body saw an error and answered as it does; the cause was the
        // client's, so the answer is 408, and the connection is not reused.
        problem(
            StatusCode::REQUEST_TIMEOUT,
            "The request body was not received in time.",
            None,
        )
    } else {
        match answered {
            Ok(Ok(res)) => res,
            Ok(Err(never)) => match never {},
            Err(_) => problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The request could not be answered in time; retry later.",
                Some("5"),
            ),
        }
    };
    res.map(|inner| {
        Body::new(Tracked {
            inner,
            _in_flight: in_flight,
        })
    })
}

fn problem(status: StatusCode, detail: &str, retry_after: Option<&'static str>) -> Response<Body> {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(after) = retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static(after));
    }
    if status == StatusCode::REQUEST_TIMEOUT {
        // RFC 9110 §15.5.9: the server SHOULD send the "close" connection option.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// A request body that must be received whole by a deadline; past it, reading fails and the
/// request is marked timed out.
struct Deadline {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err("request body timed out".into())));
        }
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err("request body timed out".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
