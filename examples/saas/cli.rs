//! Command line and environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

    /// Keep records (API keys, OAuth clients, revocations, usage, signing keys) in this
    /// database: `postgres://…` or `sqlite:path` (default `sqlite:target/saas.db`, unless
    /// --redis-url alone keeps everything in Redis). See examples/saas/stores.rs.
    #[arg(long, env = "SAAS_DATABASE_URL", conflicts_with = "in_memory")]
    pub database_url: Option<String>,

    /// The authorization server's P-256 signing key from this PEM file (PKCS#8 or SEC1)
    /// instead of the key kept sealed in the database: it stays in the file, never in a
    /// store. Instances given the same file accept each other's tokens.
    #[arg(long, env = "SAAS_SIGNING_KEY_PEM")]
    pub signing_key_pem: Option<PathBuf>,

    /// Keep all state in this process's memory (lost at exit), as before databases.
    #[arg(long, env = "SAAS_IN_MEMORY")]
    pub in_memory: bool,

    /// Key-encryption key sealing the signing keys in the database (32 bytes, 64 hex digits
    /// or base64), the same on every instance. Required with PostgreSQL; with SQLite it
    /// defaults to a key generated once into `<database file>.kek` (mode 0600).
    #[arg(long, env = "APIAUTH_KEK", hide_env_values = true)]
    pub kek: Option<String>,

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

    /// Override a plan's rate limit: PLAN=BURST:PER_SECOND (repeatable), e.g. free=20:0.333;
    /// it applies to every credential of the plan's tenants, who share one bucket. PLAN
    /// `default` is the quota of callers no plan resolves for, `anonymous` the
    /// per-client-address quota of requests without a valid credential.
    #[arg(long = "quota", value_parser = parse_quota)]
    pub quotas: Vec<(String, u32, f64)>,

    /// Override a plan's monthly credit allowance: PLAN=N (repeatable), e.g. free=10.
    #[arg(long = "credits", value_parser = crate::plans::parse_credits)]
    pub credits: Vec<(String, u64)>,

    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost (development only).
    #[arg(long, conflicts_with = "tls_cert")]
    pub dev_tls: bool,

    /// Ask TLS clients for a certificate issued by this CA (PEM), without requiring one
    /// (RFC 8705): a token requested over a connection with a certificate is bound to it
    /// (`cnf.x5t#S256`) and then accepted only over connections presenting it. Needs
    /// --tls-cert/--tls-key or --dev-tls.
    #[arg(long)]
    pub mtls_ca: Option<PathBuf>,

    /// Believe the RFC 9440 `Client-Cert` header (the client certificate a TLS-terminating
    /// proxy verified) from peers in these CIDR ranges only (comma-separated); it is removed
    /// from everyone else's requests.
    #[arg(long, value_delimiter = ',')]
    pub trusted_cert_proxy: Option<Vec<String>>,

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

    /// Refuse (400) plain-HTTP requests that carry credentials: in a header, or in the body
    /// at the OAuth token, revocation and introspection endpoints (RFC 6749 §2.3.1, §3.2).
    #[arg(long)]
    pub require_https: bool,

    /// Seconds a connection may take to deliver a whole request head (after its TLS
    /// handshake); slower ones are closed.
    #[arg(long, default_value = "10", value_parser = parse_secs, value_name = "SECS")]
    pub header_timeout: Duration,

    /// Seconds a TLS handshake may take.
    #[arg(long, default_value = "10", value_parser = parse_secs, value_name = "SECS")]
    pub tls_handshake_timeout: Duration,

    /// Seconds a connection may stay open with no request in flight (keep-alive).
    #[arg(long, default_value = "60", value_parser = parse_secs, value_name = "SECS")]
    pub idle_timeout: Duration,

    /// Seconds a request may take to be answered; past it, 503 with Retry-After.
    #[arg(long, default_value = "60", value_parser = parse_secs, value_name = "SECS")]
    pub request_timeout: Duration,

    /// Seconds a whole request body may take to arrive after its head; past it, 408.
    #[arg(long, default_value = "30", value_parser = parse_secs, value_name = "SECS")]
    pub body_timeout: Duration,

    /// Most connections open at once. At the cap a new connection takes the slot of the one
    /// idle longest, or is closed when every slot has a request in flight. Keep it below the
    /// process's file limit.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Bytes that bodies being read for signature checks (RFC 9421, webhooks) may hold
    /// together, e.g. 64MiB, 512KiB or 1000000; past it, 503 with Retry-After.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "BYTES")]
    pub body_budget: usize,

    /// Require a server nonce in every DPoP proof (RFC 9449 §8–9), at the token endpoint and
    /// on the API: a proof without a current one is answered `use_dpop_nonce` with a fresh
    /// value in `DPoP-Nonce`. Nonces derive from the demo seed, so instances sharing it agree.
    #[arg(long, env = "SAAS_DPOP_NONCE")]
    pub dpop_nonce: bool,

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

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| "expected seconds, e.g. 10 or 0.5")?;
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err("expected a positive number of seconds".into()),
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().map_err(|_| "expected a size, e.g. 64MiB")?;
    let scale: usize = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" => 1 << 20,
        "GiB" | "G" => 1 << 30,
        _ => return Err("units: B, KiB, MiB, GiB".into()),
    };
    match n.checked_mul(scale) {
        Some(b) if b > 0 => Ok(b),
        _ => Err("expected a positive size that fits in memory".into()),
    }
}
