//! The signing half, for clients: the same component rules as the verifier.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_core::clock::{SharedClock, SystemClock};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::components::{
    Component, Message, SfType, SignatureInput, StructuredFields, normalize_authority, valid_key,
    valid_sf_string,
};
use crate::digest::{CONTENT_DIGEST, DigestAlgorithm};
use crate::error::{HttpSigConfigError, SignError};
use crate::secret::HmacSecret;
use crate::{SIGNATURE, SIGNATURE_INPUT};

/// Signs requests with one key id and secret (RFC 9421 §3.1, `hmac-sha256`).
///
/// By default it covers `@method`, `@authority`, `@path`, `@query` and, when there is a body,
/// `content-digest` (adding a `sha-256` `Content-Digest` if the request has none); it sets
/// `created`, a random `nonce`, `keyid` and `alg`, under the label `sig1`.
pub struct Signer {
    key_id: String,
    secret: HmacSecret,
    label: String,
    components: Vec<Component>,
    nonce: bool,
    expires_in: Option<Duration>,
    tag: Option<String>,
    digest: DigestAlgorithm,
    clock: SharedClock,
    structured: StructuredFields,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .field("secret", &self.secret)
            .field("label", &self.label)
            .field("components", &self.components)
            .finish_non_exhaustive()
    }
}

/// Builder for [`Signer`].
#[must_use]
pub struct SignerBuilder {
    inner: Signer,
}

impl Signer {
    /// Starts a signer for `key_id` with `secret`.
    pub fn builder(key_id: &str, secret: HmacSecret) -> SignerBuilder {
        SignerBuilder {
            inner: Signer {
                key_id: key_id.to_owned(),
                secret,
                label: "sig1".to_owned(),
                components: vec![
                    Component::method(),
                    Component::authority(),
                    Component::path(),
                    Component::query(),
                ],
                nonce: true,
                expires_in: None,
                tag: None,
                digest: DigestAlgorithm::Sha256,
                clock: Arc::new(SystemClock),
                structured: StructuredFields::default(),
            },
        }
    }

    /// Signs `req` in place: adds `Content-Digest` (when there is a body and none is set),
    /// `Signature-Input` and `Signature`.
    pub fn sign<B: AsRef<[u8]>>(&self, req: &mut http::Request<B>) -> Result<(), SignError> {
        let (method, uri) = (req.method().clone(), req.uri().clone());
        // Take the headers out so the body can be borrowed while they are written.
        let mut headers = std::mem::take(req.headers_mut());
        let result = self.sign_raw(&method, &uri, &mut headers, req.body().as_ref());
        *req.headers_mut() = headers;
        result
    }

    /// Signs the parts of a request whose body is `body`.
    pub fn sign_parts(
        &self,
        parts: &mut http::request::Parts,
        body: &[u8],
    ) -> Result<(), SignError> {
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        self.sign_raw(&method, &uri, &mut parts.headers, body)
    }

    pub(crate) fn sign_raw(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        body: &[u8],
    ) -> Result<(), SignError> {
        let digest_component = Component::field(CONTENT_DIGEST);
        let mut components = self.components.clone();
        if !body.is_empty() && !components.contains(&digest_component) {
            components.push(digest_component.clone());
        }
        if components.contains(&digest_component) && !headers.contains_key(&CONTENT_DIGEST) {
            let v = HeaderValue::from_str(&self.digest.header_value(body))?;
            headers.insert(CONTENT_DIGEST, v);
        }

        let now = self
            .clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(SignError::Clock)?;
        // Seconds since 1970 fit an i64 for the next 292 billion years.
        let created = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let expires = self
            .expires_in
            .map(|d| created.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
        let nonce = self.nonce.then(new_nonce);
        let input = SignatureInput::new(
            &components,
            created,
            expires,
            nonce.as_deref(),
            &self.key_id,
            self.tag.as_deref(),
        )?;

        let scheme = uri.scheme_str().map(str::to_ascii_lowercase);
        let raw_authority = match uri.authority() {
            Some(a) => Some(a.as_str().to_owned()),
            None => headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned),
        };
        let authority = raw_authority
            .as_deref()
            .and_then(|a| normalize_authority(a, scheme.as_deref()));
        let path = match uri.path() {
            "" => "/",
            p => p,
        };
        let msg = Message {
            method,
            scheme: scheme.as_deref(),
            authority: authority.as_deref(),
            path,
            query: uri.query(),
            headers,
        };
        let base = input
            .base(&msg, &self.structured)
            .map_err(|e| SignError::CannotSign(e.0))?;
        let tag = self.secret.mac(&[&base]);

        let sig_input = format!("{}={}", self.label, input.serialized());
        let sig = format!("{}=:{}:", self.label, BASE64.encode(tag));
        headers.append(SIGNATURE_INPUT, HeaderValue::from_str(&sig_input)?);
        headers.append(SIGNATURE, HeaderValue::from_str(&sig)?);
        Ok(())
    }

    /// The key id sent as `keyid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn new_nonce() -> String {
    let mut b = [0u8; 18];
    // A nonce only needs to be unique; if the OS RNG fails, a time-based value still is
    // unlikely to repeat, and the verifier rejects any repeat anyway.
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..16].copy_from_slice(&t.to_le_bytes());
    }
    URL_SAFE_NO_PAD.encode(b)
}

impl SignerBuilder {
    /// The signature label (default `sig1`).
    pub fn label(mut self, label: &str) -> Self {
        self.inner.label = label.to_owned();
        self
    }

    /// Replaces the covered components. `content-digest` is still added when there is a body.
    pub fn components(mut self, components: impl IntoIterator<Item = Component>) -> Self {
        self.inner.components = components.into_iter().collect();
        self
    }

    /// Adds a covered component (for example `Component::field(http::header::CONTENT_TYPE)`).
    pub fn cover(mut self, component: Component) -> Self {
        self.inner.components.push(component);
        self
    }

    /// Adds `expires` = `created` + `after`.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.inner.expires_in = Some(after);
        self
    }

    /// Adds a `tag` parameter naming the application profile.
    pub fn tag(mut self, tag: &str) -> Self {
        self.inner.tag = Some(tag.to_owned());
        self
    }

    /// Sends no `nonce`; verifiers with default settings refuse such signatures.
    pub fn dangerous_without_nonce(mut self) -> Self {
        self.inner.nonce = false;
        self
    }

    /// The algorithm of the `Content-Digest` added to bodies (default `sha-256`).
    pub fn digest_algorithm(mut self, alg: DigestAlgorithm) -> Self {
        self.inner.digest = alg;
        self
    }

    /// The clock for `created`.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.inner.clock = clock;
        self
    }

    /// Declares the structured type of a field so it can be covered with `;sf` or `;key`.
    pub fn structured_field(mut self, name: HeaderName, ty: SfType) -> Self {
        self.inner.structured.add(name, ty);
        self
    }

    /// Builds the signer.
    pub fn build(self) -> Result<Signer, HttpSigConfigError> {
        let s = &self.inner;
        if !valid_key(&s.label) {
            return Err(HttpSigConfigError::InvalidParameter(s.label.clone()));
        }
        if s.key_id.is_empty() || !valid_sf_string(&s.key_id) {
            return Err(HttpSigConfigError::InvalidParameter(s.key_id.clone()));
        }
        if s.tag.as_deref().is_some_and(|t| !valid_sf_string(t)) {
            return Err(HttpSigConfigError::InvalidParameter("tag".to_owned()));
        }
        let mut seen: Vec<String> = Vec::new();
        for c in &s.components {
            let id = c.to_string();
            if seen.contains(&id) {
                return Err(HttpSigConfigError::InvalidComponent(id));
            }
            seen.push(id);
        }
        Ok(self.inner)
    }
}

/// Signs an `http::Request` with `signer` (see [`Signer::sign`]).
///
/// ```
/// use apiauth_hmac::{HmacSecret, Signer, sign_request};
///
/// let signer = Signer::builder("client-1", HmacSecret::new([7u8; 32]).unwrap()).build().unwrap();
/// let mut req = http::Request::post("https://api.example.com/orders?dry=1")
///     .body(br#"{"qty":1}"#.to_vec())
///     .unwrap();
/// sign_request(&mut req, &signer).unwrap();
/// assert!(req.headers().contains_key("signature-input"));
/// assert!(req.headers().contains_key("content-digest"));
/// ```
pub fn sign_request<B: AsRef<[u8]>>(
    req: &mut http::Request<B>,
    signer: &Signer,
) -> Result<(), SignError> {
    signer.sign(req)
}

/// Signs a `reqwest::Request` with `signer`: build it with `RequestBuilder::build`, sign,
/// then `Client::execute` it. The body must be in memory (not a stream).
#[cfg(feature = "reqwest")]
pub fn sign_reqwest(req: &mut reqwest::Request, signer: &Signer) -> Result<(), SignError> {
    let body = match req.body() {
        None => Vec::new(),
        Some(b) => b.as_bytes().ok_or(SignError::StreamingBody)?.to_vec(),
    };
    let uri: Uri = req.url().as_str().parse().map_err(SignError::Url)?;
    let method = req.method().clone();
    signer.sign_raw(&method, &uri, req.headers_mut(), &body)
}
