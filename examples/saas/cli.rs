//! Command line and environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// The apiauth example SaaS API: a data-enrichment API guarded by every method of the suite.
#[derive(Parser, Debug, Clone)]
#[command(name = "saas", version)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "SAAS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// The URL clients use, when it is not the listening address (behind a load balancer or
    /// proxy). It names the OAuth issuer and audience, so instances behind one URL accept
    /// each other's tokens.
    #[arg(long, env = "SAAS_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Keep all shared state in Redis (several instances then act as one).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Where to write the demo tenant's credentials (JSON).
    #[arg(long, default_value = "target/saas-demo-credentials.json")]
    pub credentials_out: PathBuf,

    /// Derive the demo credentials from this seed, so instances sharing Redis agree.
    /// Without it, a random seed is used.
    #[arg(long, env = "SAAS_DEMO_SEED")]
    pub demo_seed: Option<String>,

    /// Seconds a rotated API key stays valid beside its successor.
    #[arg(long, default_value_t = 3600)]
    pub rotation_grace: u64,

    /// Override a plan's quota: PLAN=BURST:PER_SECOND (repeatable), e.g. free=20:0.333;
    /// PLAN `default` is the quota of callers without a plan (OAuth clients, partner keys),
    /// `anonymous` the per-client-address quota of requests without a valid credential.
    #[arg(long = "quota", value_parser = parse_quota)]
    pub quotas: Vec<(String, u32, f64)>,

    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost (development only).
    #[arg(long, conflicts_with = "tls_cert")]
    pub dev_tls: bool,

    /// Trust the reverse proxies at these addresses or CIDR ranges (comma-separated; alone,
    /// the flag trusts loopback: 127.0.0.0/8,::1). From them only, the client address
    /// (lock-outs, the anonymous quota, audit) is read from --forwarded-header and the scheme
    /// from X-Forwarded-Proto / Forwarded `proto=`; from any other peer both are ignored.
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        num_args = 0..,
        default_missing_values = ["127.0.0.0/8", "::1"]
    )]
    pub trust_forwarded: Option<Vec<String>>,

    /// The header the trusted proxies write the client address into.
    #[arg(long, default_value = "x-forwarded-for", value_parser = ["x-forwarded-for", "forwarded"])]
    pub forwarded_header: String,

    /// Refuse (400) plain-HTTP requests that carry credentials.
    #[arg(long)]
    pub require_https: bool,

    /// Log format: text or json (audit events as JSON lines).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

fn parse_quota(s: &str) -> Result<(String, u32, f64), String> {
    let (plan, rest) = s.split_once('=').ok_or("expected PLAN=BURST:PER_SECOND")?;
    let (burst, rate) = rest
        .split_once(':')
        .ok_or("expected PLAN=BURST:PER_SECOND")?;
    let burst: u32 = burst.parse().map_err(|_| "BURST must be a whole number")?;
    let rate: f64 = rate.parse().map_err(|_| "PER_SECOND must be a number")?;
    if plan.is_empty() || burst == 0 || !(rate > 0.0 && rate.is_finite()) {
        return Err("PLAN must be named, BURST ≥ 1 and PER_SECOND > 0".into());
    }
    Ok((plan.to_owned(), burst, rate))
}
