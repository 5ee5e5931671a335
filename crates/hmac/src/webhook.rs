//! Webhook signatures from partners: `t=<ts>,v1=<hex>` and `sha256=<hex>` styles.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::{
    AuthError, AuthMethod, Authenticator, Challenge, Principal, ReplayStore, ScopeSet,
};
use axum::body::Body;
use http::{HeaderName, Request};
use sha2::{Digest, Sha256};

use crate::body::BodyBudget;
use crate::error::HttpSigConfigError;
use crate::secret::{HmacSecret, Match, RotatingSecret, matches_any};

/// Longest signature header accepted.
const MAX_HEADER_LEN: usize = 2048;
/// Most `v1=` signatures read from one header (several during a rotation).
const MAX_SIGNATURES: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Style {
    /// `t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">[,v1=…]`.
    Timestamped,
    /// `<prefix><hex HMAC of body>`.
    PrefixedHex(String),
}

/// How a webhook sender signs: which header, which format.
///
/// ```
/// use apiauth_hmac::{HmacSecret, WebhookProfile};
///
/// // GitHub's documented example.
/// let secret = HmacSecret::dangerous_short("It's a Secret to Everybody").unwrap();
/// assert_eq!(
///     WebhookProfile::github().sign(&secret, 0, b"Hello, World!"),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookProfile {
    header: HeaderName,
    style: Style,
}

impl WebhookProfile {
    /// `Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, with
    /// several `v1=` allowed while secrets rotate. The timestamp is signed, so old
    /// deliveries are refused after the tolerance.
    pub fn timestamped() -> Self {
        Self {
            header: HeaderName::from_static("webhook-signature"),
            style: Style::Timestamped,
        }
    }

    /// GitHub's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`. Nothing
    /// time-dependent is signed: add a replay store to refuse repeats.
    pub fn github() -> Self {
        Self {
            header: HeaderName::from_static("x-hub-signature-256"),
            style: Style::PrefixedHex("sha256=".to_owned()),
        }
    }

    /// `<header>: <prefix><hex HMAC-SHA256 of the raw body>`, for example
    /// `X-Signature: sha256=…`.
    pub fn prefixed_hex(header: HeaderName, prefix: &str) -> Result<Self, HttpSigConfigError> {
        if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HttpSigConfigError::InvalidParameter(prefix.to_owned()));
        }
        Ok(Self {
            header,
            style: Style::PrefixedHex(prefix.to_owned()),
        })
    }

    /// The same format under another header (for example `Stripe-Signature` for the
    /// timestamped style).
    #[must_use]
    pub fn with_header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// The header the signature travels in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The header value a sender puts on `body` at `timestamp` (Unix seconds; ignored by the
    /// prefixed style). For senders and tests.
    pub fn sign(&self, secret: &HmacSecret, timestamp: u64, body: &[u8]) -> String {
        match &self.style {
            Style::Timestamped => {
                let t = timestamp.to_string();
                let mac = secret.mac(&[t.as_bytes(), b".", body]);
                format!("t={t},v1={}", hex(&mac))
            }
            Style::PrefixedHex(prefix) => format!("{prefix}{}", hex(&secret.mac(&[body]))),
        }
    }
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// The 64 lowercase hex digits of an HMAC-SHA256, exactly. Uppercase, a sign (`+`, which
/// `from_str_radix` would take) and whitespace are refused, so one MAC has one spelling: the
/// one [`WebhookProfile::sign`] and the documented senders write.
fn unhex32(s: &str) -> Option<[u8; 32]> {
    // The charset first: `hex` alone would also take uppercase digits.
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// A webhook signature read from its header.
pub struct PresentedWebhook {
    timestamp: Option<u64>,
    signatures: Vec<[u8; 32]>,
}

impl fmt::Debug for PresentedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresentedWebhook")
            .field("timestamp", &self.timestamp)
            .field("signatures", &self.signatures.len())
            .finish()
    }
}

/// Verifies webhook deliveries from one partner. An [`Authenticator`] (method
/// [`AuthMethod::WEBHOOK`]): wrap it in [`AuthLayer`](apiauth_core::AuthLayer).
pub struct WebhookVerifier {
    profile: WebhookProfile,
    subject: Arc<str>,
    tenant: Option<Arc<str>>,
    scopes: ScopeSet,
    secrets: Vec<RotatingSecret>,
    tolerance: Duration,
    clock: SharedClock,
    max_body: usize,
    body_timeout: Duration,
    body_budget: BodyBudget,
    replay: Option<Arc<dyn ReplayStore>>,
}

impl fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("profile", &self.profile)
            .field("subject", &self.subject)
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

/// Builder for [`WebhookVerifier`].
#[must_use]
pub struct WebhookVerifierBuilder {
    inner: WebhookVerifier,
}

impl WebhookVerifier {
    /// Starts a verifier for deliveries signed per `profile`; accepted requests get a
    /// [`Principal`] with `subject` (the partner). Defaults: 5 minutes tolerance, bodies up
    /// to 1 MiB read within 30 seconds and within the process-wide [`BodyBudget`], no
    /// replay store.
    pub fn builder(profile: WebhookProfile, subject: &str) -> WebhookVerifierBuilder {
        WebhookVerifierBuilder {
            inner: WebhookVerifier {
                profile,
                subject: subject.into(),
                tenant: None,
                scopes: ScopeSet::empty(),
                secrets: Vec::new(),
                tolerance: Duration::from_secs(300),
                clock: Arc::new(SystemClock),
                max_body: 1024 * 1024,
                body_timeout: Duration::from_secs(30),
                body_budget: BodyBudget::global(),
                replay: None,
            },
        }
    }
}

impl WebhookVerifierBuilder {
    /// Adds an accepted secret; add the new one before retiring the old (rotation).
    pub fn secret(mut self, secret: impl Into<RotatingSecret>) -> Self {
        self.inner.secrets.push(secret.into());
        self
    }

    /// How far the signed timestamp may be from now, either way (default 5 minutes).
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.inner.tolerance = tolerance;
        self
    }

    /// The clock.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.inner.clock = clock;
        self
    }

    /// The largest body read (default 1 MiB); larger ones get 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.inner.max_body = limit;
        self
    }

    /// How long reading the body may take (default 30 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.inner.body_timeout = timeout;
        self
    }

    /// The bytes all bodies being read for verification may hold together (default: the
    /// process-wide [`BodyBudget::global`], 64 MiB); past it a delivery gets 503.
    pub fn body_budget(mut self, budget: BodyBudget) -> Self {
        self.inner.body_budget = budget;
        self
    }

    /// Refuses a delivery seen before (same signed payload) within the tolerance window.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.inner.replay = Some(Arc::new(store));
        self
    }

    /// The tenant of the principal.
    pub fn tenant(mut self, tenant: &str) -> Self {
        self.inner.tenant = Some(tenant.into());
        self
    }

    /// The scopes of the principal.
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.inner.scopes = scopes;
        self
    }

    /// Builds the verifier; at least one secret is required.
    pub fn build(self) -> Result<WebhookVerifier, HttpSigConfigError> {
        if self.inner.secrets.is_empty() {
            return Err(HttpSigConfigError::Missing("webhook secret"));
        }
        Ok(self.inner)
    }
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::invalid_request("The webhook signature header is malformed.").with_reason(reason)
}

impl Authenticator for WebhookVerifier {
    type Credential = PresentedWebhook;

    fn method(&self) -> AuthMethod {
        AuthMethod::WEBHOOK
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("Webhook").param("header", self.profile.header.as_str().to_owned())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<PresentedWebhook>, AuthError> {
        let mut values = req.headers().get_all(&self.profile.header).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(malformed("multiple_signature_headers"));
        }
        if value.len() > MAX_HEADER_LEN {
            return Err(malformed("signature_header_too_long"));
        }
        let value = value
            .to_str()
            .map_err(|_| malformed("non_ascii_signature"))?;
        match &self.profile.style {
            Style::PrefixedHex(prefix) => {
                let sig = value
                    .trim()
                    .strip_prefix(prefix.as_str())
                    .and_then(unhex32)
                    .ok_or_else(|| malformed("bad_signature_format"))?;
                Ok(Some(PresentedWebhook {
                    timestamp: None,
                    signatures: vec![sig],
                }))
            }
            Style::Timestamped => {
                let mut timestamp = None;
                let mut signatures = Vec::new();
                for part in value.split(',') {
                    let (k, v) = part
                        .trim()
                        .split_once('=')
                        .ok_or_else(|| malformed("bad_signature_format"))?;
                    match k {
                        "t" => {
                            if timestamp.is_some()
                                || v.is_empty()
                                || v.len() > 19
                                || !v.bytes().all(|b| b.is_ascii_digit())
                            {
                                return Err(malformed("bad_timestamp"));
                            }
                            timestamp = v.parse::<u64>().ok();
                        }
                        "v1" => {
                            if signatures.len() >= MAX_SIGNATURES {
                                return Err(malformed("too_many_signatures"));
                            }
                            signatures
                                .push(unhex32(v).ok_or_else(|| malformed("bad_signature_format"))?);
                        }
                        // Other schemes (`v0`, future versions) are not ours to judge.
                        _ => {}
                    }
                }
                if timestamp.is_none() {
                    return Err(malformed("missing_timestamp"));
                }
                if signatures.is_empty() {
                    return Err(malformed("missing_v1_signature"));
                }
                Ok(Some(PresentedWebhook {
                    timestamp,
                    signatures,
                }))
            }
        }
    }

    async fn verify(
        &self,
        cred: PresentedWebhook,
        req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        let ts_text = cred.timestamp.map(|t| t.to_string());
        if let Some(t) = cred.timestamp {
            let now_s = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now_s.abs_diff(t) > self.tolerance.as_secs() {
                return Err(AuthError::invalid_credentials("timestamp_out_of_tolerance"));
            }
        }
        // The signature covers the body, so it must be read first; the limit bounds it.
        let body =
            crate::body::buffer(req, self.max_body, self.body_timeout, &self.body_budget).await?;
        let data: Vec<&[u8]> = match &ts_text {
            Some(t) => vec![t.as_bytes(), b".", &body],
            None => vec![&body],
        };
        let mut matched = false;
        let mut live = false;
        for sig in &cred.signatures {
            match matches_any(&self.secrets, now, &data, sig) {
                Match::Yes => {
                    matched = true;
                    live = true;
                }
                Match::No => live = true,
                Match::NoLiveSecret => {}
            }
        }
        if !matched {
            let reason = if live {
                "bad_signature"
            } else {
                "no_live_secret"
            };
            return Err(AuthError::invalid_credentials(reason));
        }
        if let Some(replay) = &self.replay {
            let mut h = Sha256::new();
            for d in &data {
                h.update(d);
            }
            let key = format!("webhook:{}:{}", self.subject, hex(&h.finalize()));
            let ttl = self.tolerance * 2;
            if !replay.insert_if_absent(&key, ttl).await? {
                return Err(AuthError::invalid_credentials("replayed_delivery"));
            }
        }
        let mut p = Principal::builder(self.subject.clone(), AuthMethod::WEBHOOK)
            .scopes(self.scopes.clone());
        if let Some(t) = &self.tenant {
            p = p.tenant(t.clone());
        }
        Ok(p.build())
    }
}

#[cfg(test)]
mod tests {
    use super::{hex, unhex32};

    #[test]
    fn hex_signatures_are_exactly_64_lowercase_digits() {
        let mac: [u8; 32] = std::array::from_fn(|i| (i * 37 + 5) as u8);
        let good = hex(&mac);
        assert_eq!(unhex32(&good), Some(mac));
        assert_eq!(unhex32(&"0f".repeat(32)), Some([0x0f; 32]));
        // One spelling per MAC: no uppercase, no sign, no whitespace, no other length.
        for bad in [
            good.to_ascii_uppercase(),
            format!("+f{}", &good[2..]),
            format!("-0{}", &good[2..]),
            format!(" {}", &good[1..]),
            format!("{} ", &good[..63]),
            format!("{}\t0", &good[..62]),
            good[..62].to_owned(),
            format!("{good}00"),
            format!("{}g", &good[..63]),
            format!("{}é", &good[..62]),
            String::new(),
        ] {
            assert_eq!(unhex32(&bad), None, "{bad:?}");
        }
    }
}
