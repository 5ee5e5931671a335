//! The RFC 9421 verifier: an [`Authenticator`] for `Signature-Input` / `Signature`.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{SharedClock, SystemClock};
use apiauth_core::{
    AuthError, AuthMethod, Authenticator, Challenge, MemoryReplayStore, Principal, ReplayStore,
};
use axum::body::Body;
use http::{HeaderName, Request};

use crate::body::BodyBudget;
use crate::components::{
    BaseError, Component, Kind, Message, SfType, SignatureInput, StructuredFields,
    normalize_authority, parse_signature, parse_signature_input, valid_key, with_field,
};
use crate::error::HttpSigConfigError;
use crate::secret::{Match, matches_any};
use crate::store::{HmacKey, HmacKeyStore};
use crate::{ALG, SIGNATURE, SIGNATURE_INPUT, digest};

/// Longest `Signature-Input` / `Signature` accepted (all field lines together).
const MAX_FIELD_LEN: usize = 8 * 1024;
/// Longest nonce accepted; the replay store keeps it for the whole window.
const MAX_NONCE_LEN: usize = 128;

/// What a signature must cover to be accepted.
///
/// The default ([`CoveragePolicy::recommended`]) requires `@method`; `@target-uri`, or
/// `@authority` with `@path` and `@query`; and `content-digest` whenever the request has a
/// body. The `created` parameter is always required.
#[derive(Clone, Debug)]
#[must_use]
pub struct CoveragePolicy {
    method_and_target: bool,
    body_digest: bool,
    extra: Vec<Component>,
}

impl Default for CoveragePolicy {
    fn default() -> Self {
        Self::recommended()
    }
}

impl CoveragePolicy {
    /// The recommended policy (see the type docs).
    pub fn recommended() -> Self {
        Self {
            method_and_target: true,
            body_digest: true,
            extra: Vec::new(),
        }
    }

    /// Requires only what is added with [`require`](Self::require) (and `created`). A
    /// signature that covers little can be moved to another request (RFC 9421 §7.2.1).
    pub fn dangerous_minimal() -> Self {
        Self {
            method_and_target: false,
            body_digest: false,
            extra: Vec::new(),
        }
    }

    /// Also requires `component` (for example `Component::field(http::header::DATE)`).
    pub fn require(mut self, component: Component) -> Self {
        self.extra.push(component);
        self
    }

    fn check(&self, input: &SignatureInput) -> Result<(), BaseError> {
        if self.method_and_target {
            // The same as `covers(&Component::method())` etc., without building them.
            if !input.covers_plain_derived(Kind::Method) {
                return Err(BaseError("method_not_covered"));
            }
            let whole = input.covers_plain_derived(Kind::TargetUri);
            let parts = input.covers_plain_derived(Kind::Authority)
                && input.covers_plain_derived(Kind::Path)
                && input.covers_plain_derived(Kind::Query);
            if !whole && !parts {
                return Err(BaseError("target_not_covered"));
            }
        }
        if self.extra.iter().any(|c| !input.covers(c)) {
            return Err(BaseError("required_component_not_covered"));
        }
        Ok(())
    }
}

/// Verifies RFC 9421 HTTP Message Signatures made with `hmac-sha256`.
///
/// Wrap it in [`AuthLayer`](apiauth_core::AuthLayer). Build it with
/// [`HttpSignatureVerifier::builder`].
pub struct HttpSignatureVerifier {
    store: Arc<dyn HmacKeyStore>,
    replay: Arc<dyn ReplayStore>,
    clock: SharedClock,
    policy: CoveragePolicy,
    max_age: Duration,
    skew: Duration,
    require_nonce: bool,
    max_body: usize,
    body_timeout: Duration,
    body_budget: BodyBudget,
    scheme: Option<String>,
    authority: Option<String>,
    label: Option<String>,
    structured: StructuredFields,
    realm: String,
}

impl fmt::Debug for HttpSignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSignatureVerifier")
            .field("policy", &self.policy)
            .field("max_age", &self.max_age)
            .field("skew", &self.skew)
            .field("require_nonce", &self.require_nonce)
            .field("max_body", &self.max_body)
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Builder for [`HttpSignatureVerifier`], with safe defaults.
#[must_use]
pub struct HttpSignatureVerifierBuilder {
    store: Arc<dyn HmacKeyStore>,
    replay: Option<Arc<dyn ReplayStore>>,
    clock: SharedClock,
    policy: CoveragePolicy,
    max_age: Duration,
    skew: Duration,
    require_nonce: bool,
    max_body: usize,
    body_timeout: Duration,
    body_budget: BodyBudget,
    scheme: Option<String>,
    authority: Option<String>,
    label: Option<String>,
    structured: StructuredFields,
    realm: String,
}

impl HttpSignatureVerifier {
    /// Starts a verifier that looks keys up in `store`.
    ///
    /// Defaults: [`CoveragePolicy::recommended`], `created` at most 5 minutes old and at most
    /// 30 seconds in the future, nonce required and checked against an in-memory replay
    /// store, bodies up to 1 MiB read within 30 seconds
    /// and within the process-wide [`BodyBudget`], scheme from the request URI (else
    /// `http`), authority from the URI (HTTP/2) or `Host` (HTTP/1.1).
    pub fn builder(store: impl HmacKeyStore) -> HttpSignatureVerifierBuilder {
        HttpSignatureVerifierBuilder {
            store: Arc::new(store),
            replay: None,
            clock: Arc::new(SystemClock),
            policy: CoveragePolicy::recommended(),
            max_age: Duration::from_secs(300),
            skew: Duration::from_secs(30),
            require_nonce: true,
            max_body: 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            body_budget: BodyBudget::global(),
            scheme: None,
            authority: None,
            label: None,
            structured: StructuredFields::default(),
            realm: "api".to_owned(),
        }
    }
}

impl HttpSignatureVerifierBuilder {
    /// What signatures must cover.
    pub fn policy(mut self, policy: CoveragePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The oldest `created` accepted (default 5 minutes). Also how long nonces are kept.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far `created` may be in the future and `expires` in the past (default 30 s).
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Where nonces are recorded (default: in memory, per process). Use a shared store when
    /// several instances serve the same clients.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replay = Some(Arc::new(store));
        self
    }

    /// Accepts signatures without a `nonce`. Such a signature can be replayed until its
    /// `created` is older than the maximum age.
    pub fn dangerous_without_nonce(mut self) -> Self {
        self.require_nonce = false;
        self
    }

    /// The clock for `created`/`expires` checks and the default replay store.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The largest body read to check its digest (default 1 MiB); larger ones get 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body = limit;
        self
    }

    /// How long reading the body may take (default 30 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// The bytes all bodies being read for verification may hold together (default: the
    /// process-wide [`BodyBudget::global`], 64 MiB); past it a request gets 503.
    pub fn body_budget(mut self, budget: BodyBudget) -> Self {
        self.body_budget = budget;
        self
    }

    /// The scheme for `@scheme` and `@target-uri`, for example `https` behind a
    /// TLS-terminating proxy, where the request line does not carry it.
    pub fn scheme(mut self, scheme: &str) -> Self {
        self.scheme = Some(scheme.to_ascii_lowercase());
        self
    }

    /// The authority for `@authority` and `@target-uri`, instead of the request's, for a
    /// proxy that rewrites `Host`.
    pub fn authority(mut self, authority: &str) -> Self {
        self.authority = Some(authority.to_owned());
        self
    }

    /// Verifies only the signature with this label (default: the first in `Signature-Input`).
    pub fn label(mut self, label: &str) -> Self {
        self.label = Some(label.to_owned());
        self
    }

    /// Declares the structured type of a field so it can be covered with `;sf` or `;key`.
    pub fn structured_field(mut self, name: HeaderName, ty: SfType) -> Self {
        self.structured.add(name, ty);
        self
    }

    /// The realm of the challenge sent when a signature is required but absent.
    pub fn realm(mut self, realm: &str) -> Self {
        self.realm = realm.to_owned();
        self
    }

    /// Builds the verifier.
    pub fn build(self) -> Result<HttpSignatureVerifier, HttpSigConfigError> {
        if let Some(l) = &self.label
            && !valid_key(l)
        {
            return Err(HttpSigConfigError::InvalidParameter(l.clone()));
        }
        if let Some(s) = &self.scheme
            && !matches!(s.as_str(), "http" | "https")
        {
            return Err(HttpSigConfigError::InvalidParameter(s.clone()));
        }
        let replay = match self.replay {
            Some(r) => r,
            None => Arc::new(MemoryReplayStore::with_clock(self.clock.clone())),
        };
        Ok(HttpSignatureVerifier {
            store: self.store,
            replay,
            clock: self.clock,
            policy: self.policy,
            max_age: self.max_age,
            skew: self.skew,
            require_nonce: self.require_nonce,
            max_body: self.max_body,
            body_timeout: self.body_timeout,
            body_budget: self.body_budget,
            scheme: self.scheme,
            authority: self.authority,
            label: self.label,
            structured: self.structured,
            realm: self.realm,
        })
    }
}

/// A signature found on a request: its label, parsed input and signature bytes.
pub struct PresentedSignature {
    label: String,
    input: SignatureInput,
    signature: Vec<u8>,
}

impl fmt::Debug for PresentedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signature is a MAC, not a secret, but there is no reason to print it.
        f.debug_struct("PresentedSignature")
            .field("label", &self.label)
            .field("keyid", &self.input.keyid())
            .finish_non_exhaustive()
    }
}

/// Facts about the accepted signature, attached to the [`Principal`] as an attribute.
#[derive(Clone)]
pub struct VerifiedSignature {
    /// The signature label.
    pub label: String,
    /// The `created` parameter, seconds since the Unix epoch.
    pub created: i64,
    /// The verified `Signature-Input` member, moved here whole: the covered identifiers are
    /// read from it when asked for, not copied on every request.
    input: SignatureInput,
}

impl VerifiedSignature {
    /// The covered components, serialized (`"@method"`, `"@query-param";name="x"`, …), in
    /// the order they were signed.
    pub fn covered(&self) -> impl Iterator<Item = &str> {
        self.input.covered_ids()
    }
}

impl fmt::Debug for VerifiedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedSignature")
            .field("label", &self.label)
            .field("covered", &self.covered().collect::<Vec<_>>())
            .field("created", &self.created)
            .finish()
    }
}

fn malformed(reason: &'static str) -> AuthError {
    AuthError::invalid_request("The Signature-Input or Signature header is malformed.")
        .with_reason(reason)
}

/// Every mismatch answers the same 401; only the audit event says why.
fn mismatch(reason: &'static str) -> AuthError {
    AuthError::invalid_credentials(reason)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl HttpSignatureVerifier {
    /// Checks the signature over the request's headers (already turned into `base`), without
    /// reading the body: the key that signed it.
    async fn check_signature(
        &self,
        sig: &PresentedSignature,
        base: Result<Vec<u8>, BaseError>,
        now: SystemTime,
    ) -> Result<HmacKey, AuthError> {
        let input = &sig.input;
        // RFC 9421 §3.2 step 6: the algorithm, if named, must be the one the key uses.
        if input.alg().is_some_and(|a| a != ALG) {
            return Err(mismatch("unsupported_alg"));
        }
        let Some(keyid) = input.keyid() else {
            return Err(mismatch("missing_keyid"));
        };
        self.policy.check(input).map_err(|e| mismatch(e.0))?;
        // §3.2 step 8 and §7.2.4: the verifier decides how old a signature may be.
        let now_s = unix(now);
        let Some(created) = input.created else {
            return Err(mismatch("missing_created"));
        };
        if created > now_s.saturating_add(secs(self.skew)) {
            return Err(mismatch("created_in_future"));
        }
        if created < now_s.saturating_sub(secs(self.max_age)) {
            return Err(mismatch("stale_created"));
        }
        if input
            .expires
            .is_some_and(|e| now_s > e.saturating_add(secs(self.skew)))
        {
            return Err(mismatch("expired"));
        }
        if self.require_nonce && input.nonce().is_none() {
            return Err(mismatch("missing_nonce"));
        }
        // RFC 9421 §2.3: a nonce is "a random unique value generated for this signature";
        // the empty string is neither, and every empty nonce of a key would be one replay key.
        if input.nonce().is_some_and(str::is_empty) {
            return Err(mismatch("empty_nonce"));
        }
        if input.nonce().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
            return Err(mismatch("nonce_too_long"));
        }
        if sig.signature.len() != 32 {
            return Err(mismatch("bad_signature_length"));
        }

        let base = base.map_err(|e| mismatch(e.0));
        let key = self.store.key(keyid).await?;
        let Some(key) = key else {
            // Do the same HMAC work as for a known key before answering.
            let _ = crate::secret::dummy_mac(&[&base.unwrap_or_default()]);
            return Err(mismatch("unknown_key"));
        };
        let base = base?;
        match matches_any(&key.secrets, now, &[&base], &sig.signature) {
            Match::Yes => {}
            Match::No => return Err(mismatch("bad_signature")),
            Match::NoLiveSecret => return Err(mismatch("no_live_secret")),
        }
        Ok(key)
    }

    /// The principal of an accepted signature; the signature's input moves into its
    /// [`VerifiedSignature`] attribute.
    fn principal(key: HmacKey, sig: PresentedSignature) -> Principal {
        let PresentedSignature { label, input, .. } = sig;
        let principal = Principal::builder(key.subject, AuthMethod::HTTP_SIGNATURE)
            .credential_id(input.keyid().unwrap_or_default())
            .scopes(key.scopes);
        let principal = match key.tenant {
            Some(t) => principal.tenant(t),
            None => principal,
        };
        principal
            .attribute(VerifiedSignature {
                label,
                // `check_signature` refused a signature without `created`.
                created: input.created.unwrap_or_default(),
                input,
            })
            .build()
    }

    fn base(&self, input: &SignatureInput, req: &Request<Body>) -> Result<Vec<u8>, BaseError> {
        let uri = req.uri();
        // Behind a TLS terminator the request line has no scheme: configure it (see docs).
        // Borrowed unless the URI's scheme needs lowercasing.
        let scheme: Cow<'_, str> = match (&self.scheme, uri.scheme_str()) {
            (Some(s), _) => Cow::Borrowed(s),
            (None, Some(s)) if s.bytes().any(|b| b.is_ascii_uppercase()) => {
                Cow::Owned(s.to_ascii_lowercase())
            }
            (None, Some(s)) => Cow::Borrowed(s),
            (None, None) => Cow::Borrowed("http"),
        };
        // HTTP/2 carries the authority in the URI (`:authority`), HTTP/1.1 in `Host`
        // (RFC 9110 §7.2); both give the same `@authority`.
        let raw_authority = match &self.authority {
            Some(a) => Some(a.as_str()),
            None => match uri.authority() {
                Some(a) => Some(a.as_str()),
                None => {
                    let mut hosts = req.headers().get_all(http::header::HOST).iter();
                    match (hosts.next(), hosts.next()) {
                        (Some(h), None) => h.to_str().ok(),
                        _ => None,
                    }
                }
            },
        };
        let authority = raw_authority.and_then(|a| normalize_authority(a, Some(&scheme)));
        let path = match uri.path() {
            "" => "/",
            p => p,
        };
        let msg = Message {
            method: req.method(),
            scheme: Some(&scheme),
            authority: authority.as_deref(),
            path,
            query: uri.query(),
            headers: req.headers(),
        };
        input.base(&msg, &self.structured)
    }

    fn replay_key(keyid: &str, nonce: &str) -> String {
        // Length-prefixed so no (keyid, nonce) pair can collide with another:
        // `httpsig:<len(keyid)>:<keyid>:<nonce>`, built without the formatting machinery.
        let mut k = String::with_capacity(32 + keyid.len() + nonce.len());
        k.push_str("httpsig:");
        let _ = write!(k, "{}", keyid.len());
        k.push(':');
        k.push_str(keyid);
        k.push(':');
        k.push_str(nonce);
        k
    }
}

impl Authenticator for HttpSignatureVerifier {
    type Credential = PresentedSignature;

    fn method(&self) -> AuthMethod {
        AuthMethod::HTTP_SIGNATURE
    }

    fn challenge(&self) -> Challenge {
        Challenge::new("Signature").param("realm", self.realm.clone())
    }

    fn extract(&self, req: &Request<Body>) -> Result<Option<PresentedSignature>, AuthError> {
        let h = req.headers();
        let (inputs, signatures) = (h.get_all(&SIGNATURE_INPUT), h.get_all(&SIGNATURE));
        if inputs.iter().next().is_none() && signatures.iter().next().is_none() {
            return Ok(None);
        }
        // RFC 9421 §3.2 step 1: pick the signature to verify, by label (default: the
        // first). Only that member of each field is kept; the others are parsed for syntax
        // (RFC 8941 §4.2), so a malformed field fails as a whole.
        let picked = with_field(&inputs, MAX_FIELD_LEN, |b| {
            parse_signature_input(b, self.label.as_deref())
        })
        .map_err(|e| malformed(e.0))?
        .ok_or_else(|| malformed("missing_signature_input"))?
        .map_err(|e| malformed(e.0))?;
        let signature = with_field(&signatures, MAX_FIELD_LEN, |b| {
            parse_signature(b, picked.label.as_deref())
        })
        .map_err(|e| malformed(e.0))?
        .ok_or_else(|| malformed("missing_signature"))?
        .map_err(|e| malformed(e.0))?;
        let Some(label) = picked.label else {
            return Err(malformed(
                picked.input.err().map_or("label_not_found", |e| e.0),
            ));
        };
        let input = picked.input.map_err(|e| malformed(e.0))?;
        let signature = signature.map_err(|e| malformed(e.0))?;
        Ok(Some(PresentedSignature {
            label,
            input,
            signature,
        }))
    }

    async fn verify(
        &self,
        sig: PresentedSignature,
        req: &mut Request<Body>,
    ) -> Result<Principal, AuthError> {
        let now = self.clock.now();
        // Headers first: a request that is not validly signed never gets its body read.
        let base = self.base(&sig.input, req);
        let key = self.check_signature(&sig, base, now).await?;

        let body =
            crate::body::buffer(req, self.max_body, self.body_timeout, &self.body_budget).await?;
        if self.policy.body_digest
            && !body.is_empty()
            && !sig.input.covers_plain_field("content-digest")
        {
            return Err(mismatch("content_digest_not_covered"));
        }
        // RFC 9530: a digest that is sent is checked, covered or not.
        let digests = req.headers().get_all(&digest::CONTENT_DIGEST);
        if digests.iter().next().is_some() {
            digest::check_field(&digests, &body).map_err(|e| mismatch(e.0))?;
        }

        // Last, once everything else holds: burn the nonce (§7.2.2).
        if let Some(nonce) = sig.input.nonce() {
            let keyid = sig.input.keyid().unwrap_or_default();
            let ttl = self.max_age + self.skew;
            if !self
                .replay
                .insert_if_absent(&Self::replay_key(keyid, nonce), ttl)
                .await?
            {
                return Err(mismatch("replayed_nonce"));
            }
        }
        Ok(Self::principal(key, sig))
    }
}
