//! The loopback twin (issue 20): one process serving the same handler twice, bare on one
//! port and behind the example's whole stack on another, so that `wrk` can load both in one
//! run and their throughput and latency be compared as ratios.
//!
//! The guarded twin is [`apiauth_bench::full_stack`] (API key, bearer JWT ES256 with its
//! cache, RFC 9421, `QuotaLayer` with the usage meter, `RequireScopes`), wrapped as
//! `examples/saas/app.rs` wraps its router: `TraceLayer` with `apiauth_core::trace::request_span`,
//! the sensitive-headers layer and the client-address layer, under the example's subscriber
//! (`AuthMetricsLayer`, an `EnvFilter` from `RUST_LOG`, default `warn`, and the fmt layer).
//!
//! ```sh
//! loopback-twin 127.0.0.1:18181 127.0.0.1:18182 creds.env   # bare, stack, credentials
//! ```
//!
//! The credentials file gets `API_KEY=…` and `JWT=…` lines. Serves until killed. With
//! `TWIN_UNWRAPPED=1` the guarded twin is the stack alone, without the example's outer layers.

use std::net::SocketAddr;

use apiauth_bench::{bare_router, full_stack};
use apiauth_core::audit::sensitive_headers_layer;
use apiauth_core::client_addr::TrustedProxies;
use axum::Router;
use tower_http::trace::TraceLayer;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bare_addr: SocketAddr = args.next().unwrap_or("127.0.0.1:18181".into()).parse()?;
    let stack_addr: SocketAddr = args.next().unwrap_or("127.0.0.1:18182".into()).parse()?;
    let creds = args.next().unwrap_or("loopback-twin.env".into());

    // As examples/saas/main.rs installs it.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(apiauth_quota::AuthMetricsLayer::new())
        .with(filter)
        .with(tracing_subscriber::fmt::layer())
        .init();

    // A multi-thread runtime with one worker per core, as `#[tokio::main]` in the example.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let stack = full_stack().await?;
        // TWIN_UNWRAPPED=1 leaves the example's outer layers off, to measure them apart.
        let guarded = if std::env::var_os("TWIN_UNWRAPPED").is_some() {
            stack.router.clone()
        } else {
            wrap(stack.router.clone())
        };
        let bare = bare_router();
        std::fs::write(
            &creds,
            format!("API_KEY={}\nJWT={}\n", stack.api_key, stack.jwt),
        )?;
        let (b, s) = (
            tokio::net::TcpListener::bind(bare_addr).await?,
            tokio::net::TcpListener::bind(stack_addr).await?,
        );
        let serve = |l, r: Router| {
            axum::serve(l, r.into_make_service_with_connect_info::<SocketAddr>()).into_future()
        };
        let (r1, r2) = tokio::join!(serve(b, bare), serve(s, guarded));
        r1?;
        r2?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

/// The layers `examples/saas/app.rs` puts around every route (its transport policy, which
/// refuses plain HTTP off loopback, aside).
fn wrap(router: Router) -> Router {
    router
        .layer(TraceLayer::new_for_http().make_span_with(apiauth_core::trace::request_span))
        .layer(sensitive_headers_layer())
        .layer(TrustedProxies::none().layer())
}
