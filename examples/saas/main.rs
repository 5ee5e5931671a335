//! The apiauth example: a B2B data-enrichment API guarded by every method of the suite.
//!
//! ```sh
//! cargo run --example saas                     # state in SQLite at target/saas.db, http://127.0.0.1:8080
//! cargo run --example saas -- --dev-tls        # HTTPS with a self-signed certificate
//! cargo run --example saas -- --database-url postgres://user@host/db --kek <hex>
//! cargo run --example saas -- --redis-url redis://127.0.0.1:6379 --demo-seed demo
//! cargo run --example saas -- --in-memory      # nothing kept after exit
//! ```
//!
//! On start it writes the demo tenant's credentials to `target/saas-demo-credentials.json`.

mod app;
mod cli;
mod data;
mod dpop;
mod openapi;
mod plans;
mod portal;
mod problem;
mod server;
mod stores;
mod transport;

use std::time::Duration;

use apiauth::client_addr::{ForwardedHeader, TrustedProxies};
use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::Args;
use crate::transport::TransportPolicy;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

fn init_tracing(format: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,apiauth::audit=info"));
    // Authentication outcomes become metrics by watching the audit events.
    let registry = tracing_subscriber::registry()
        .with(apiauth::quota::AuthMetricsLayer::new())
        // The portal's audit page reads the recent audit events from this ring.
        .with(portal::AuditRingLayer)
        .with(filter);
    if format == "json" {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .init();
    } else {
        registry.with(tracing_subscriber::fmt::layer()).init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(&args.log_format);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    apiauth::quota::metric::describe();

    let tls = transport::rustls_config(
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
        args.dev_tls,
    )
    .await?
    .map(|config| config.get_inner());
    // RFC 8705: ask for (but do not require) client certificates from the CA's holders.
    let tls = match (&args.mtls_ca, tls) {
        (None, tls) => tls,
        (Some(_), None) => anyhow::bail!("--mtls-ca needs --tls-cert/--tls-key or --dev-tls"),
        (Some(ca), Some(config)) => Some(transport::request_client_certificates(config, ca)?),
    };
    // Bind first, so `--addr 127.0.0.1:0` works and the credentials name the real port.
    let listener = std::net::TcpListener::bind(args.addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if local.ip().is_loopback() {
        "localhost".to_owned()
    } else {
        local.ip().to_string()
    };
    let base_url = match &args.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("{scheme}://{host}:{}", local.port()),
    };

    let proxies = match &args.trust_forwarded {
        None => TrustedProxies::none(),
        Some(ranges) => {
            TrustedProxies::cidrs(ranges)?.header(match args.forwarded_header.as_str() {
                "forwarded" => ForwardedHeader::Forwarded,
                _ => ForwardedHeader::XForwardedFor,
            })
        }
    };
    let policy = TransportPolicy {
        tls: tls.is_some(),
        proxies: std::sync::Arc::new(proxies),
        require_https: args.require_https,
    };
    let built = app::build(&args, &base_url, policy, metrics).await?;

    if let Some(dir) = args.credentials_out.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    write_private(
        &args.credentials_out,
        &serde_json::to_vec_pretty(&built.credentials)?,
    )?;
    tracing::info!(
        "listening on {base_url}; demo credentials written to {}",
        args.credentials_out.display()
    );
    println!(
        "apiauth example listening on {base_url}\ndemo credentials: {}",
        args.credentials_out.display()
    );

    let limits = server::Limits {
        header_timeout: args.header_timeout,
        tls_handshake_timeout: args.tls_handshake_timeout,
        idle_timeout: args.idle_timeout,
        request_timeout: args.request_timeout,
        body_timeout: args.body_timeout,
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        drain: DRAIN,
    };
    server::serve(
        listener,
        tls,
        built.router.clone(),
        limits,
        shutdown_signal(),
    )
    .await?;
    built.shutdown().await;
    Ok(())
}

/// Writes the credentials file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)
}
