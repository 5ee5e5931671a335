//! Form bodies, RFC 6749 §5.2 error answers and client authentication (§2.3.1).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use apiauth_basic::{
    Admission, AttemptId, BasicCredentials, CredentialEncoding, LockoutKey, LockoutPolicy,
    LockoutStore, parse_authorization_with,
};
use apiauth_core::audit::{self, TARGET};
use apiauth_core::{Challenge, StoreError};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, StatusCode};

use super::State;
use super::registry::RegisteredClient;

/// Largest form body read by any endpoint: ample for a JWT plus credentials.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// An RFC 6749 §5.2 error (also used by RFC 7009 and RFC 7662): the public `error` code and
/// description, plus a private audit reason.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
    pub(crate) reason: &'static str,
    retry_after: Option<Duration>,
    /// One extra response header (`DPoP-Nonce`); boxed, as it is rare.
    header: Option<Box<(http::HeaderName, HeaderValue)>>,
}

impl OAuthError {
    fn new(
        status: StatusCode,
        code: &'static str,
        description: &'static str,
        reason: &'static str,
    ) -> Self {
        Self {
            status,
            code,
            description,
            reason,
            retry_after: None,
            header: None,
        }
    }

    /// RFC 9449 §5: the `DPoP` proof of a token request is missing a requirement or invalid.
    #[cfg(feature = "dpop")]
    pub(crate) fn invalid_dpop_proof(reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_dpop_proof",
            "The DPoP proof is not valid.",
            reason,
        )
    }

    /// RFC 9449 §8: the proof must carry the server's nonce, sent in `DPoP-Nonce`.
    #[cfg(feature = "dpop")]
    pub(crate) fn use_dpop_nonce(reason: &'static str, nonce: Option<String>) -> Self {
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "use_dpop_nonce",
            "Authorization server requires nonce in DPoP proof.",
            reason,
        );
        e.header = nonce
            .and_then(|n| HeaderValue::from_str(&n).ok())
            .map(|v| Box::new((http::HeaderName::from_static("dpop-nonce"), v)));
        e
    }

    pub(crate) fn invalid_request(description: &'static str, reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            description,
            reason,
        )
    }

    /// The same body for an unknown client, a wrong secret and missing credentials, so the
    /// answer does not tell which client ids exist.
    pub(crate) fn invalid_client(reason: &'static str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
            reason,
        )
    }

    pub(crate) fn invalid_grant(reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The client's authorization grant has been revoked.",
            reason,
        )
    }

    pub(crate) fn unauthorized_client(description: &'static str, reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            description,
            reason,
        )
    }

    pub(crate) fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only the client_credentials grant is supported.",
            "unsupported_grant_type",
        )
    }

    /// RFC 8707 §2: the requested resource is invalid, unknown or not one this server issues
    /// tokens for.
    pub(crate) fn invalid_target(description: &'static str, reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            description,
            reason,
        )
    }

    pub(crate) fn invalid_scope(description: &'static str, reason: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            description,
            reason,
        )
    }

    /// 503 with `Retry-After` (RFC 7009 §2.2.1): a store or the signer failed. Fail closed.
    pub(crate) fn unavailable(reason: &'static str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The server is temporarily unable to handle the request; retry later.",
            reason,
        )
    }

    /// 429 (RFC 6585 §4) with `Retry-After`: too many failed client authentications from
    /// this address (for this client, or across clients); the secret was not checked.
    ///
    /// RFC 6749 §5.2 registers no code for throttling. `invalid_client` would tell a client
    /// whose secret is right that it is wrong; `temporarily_unavailable` (§4.1.2.1: "unable
    /// to handle the request due to a temporary overloading") is the registered code that
    /// means "retry later", and the 429 and `Retry-After` say when.
    pub(crate) fn too_many_attempts(retry_after: Duration, reason: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many failed client authentications; retry later.",
            reason,
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The answer; `realm` names this server in the `Basic` challenge of a 401.
    pub(crate) fn respond(self, realm: &str) -> Response {
        let body = serde_json::json!({
            "error": self.code,
            "error_description": self.description,
        });
        let mut res = (self.status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        no_store(h);
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client may use.
            h.insert(
                WWW_AUTHENTICATE,
                Challenge::basic(realm.to_owned()).to_header_value(),
            );
        }
        if let Some(header) = self.header {
            let (name, value) = *header;
            h.insert(name, value);
        }
        if let Some(after) = self.retry_after {
            // RFC 9110 §10.2.3: whole seconds, rounded up so a client never comes back early.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            h.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

impl From<StoreError> for OAuthError {
    fn from(_: StoreError) -> Self {
        Self::unavailable("store_unavailable")
    }
}

/// RFC 6749 §5.1: token and error answers must not be cached.
pub(crate) fn no_store(h: &mut http::HeaderMap) {
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The form parameters of a request, each present at most once.
pub(crate) struct Form(HashMap<String, String>);

impl Form {
    /// A parameter; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// What a request presented to authenticate the client, read before the body is consumed.
pub(crate) struct Presented {
    basic: Option<BasicCredentials>,
    /// The client address (`audit::client`: behind trusted proxies, the one they name).
    client: Option<IpAddr>,
    /// The TLS client certificate of the request (RFC 8705), as the server put it there.
    #[cfg(feature = "mtls")]
    pub(crate) certificate: Option<apiauth_mtls::ClientCertificate>,
}

/// Reads the Basic credentials and the form body of an endpoint request.
pub(crate) async fn read(req: Request<Body>) -> Result<(Presented, Form), OAuthError> {
    let client = audit::client(&req);
    #[cfg(feature = "mtls")]
    let certificate = req
        .extensions()
        .get::<apiauth_mtls::ClientCertificate>()
        .cloned();
    // RFC 6749 §2.3.1: id and secret are form-urlencoded inside the Basic credentials.
    let basic =
        parse_authorization_with(&req, CredentialEncoding::FormUrlEncoded).map_err(|_| {
            OAuthError::invalid_request(
                "The Basic client credentials are malformed.",
                "malformed_basic",
            )
        })?;
    // RFC 6749 §2.3.1: the secret must not travel in the request URI.
    if req
        .uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "client_secret"))
    {
        return Err(OAuthError::invalid_request(
            "Client credentials must not be sent in the URL.",
            "secret_in_query",
        ));
    }
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "The request body must be application/x-www-form-urlencoded.",
            "not_a_form",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| {
            OAuthError::invalid_request("The request body is too large.", "body_too_large")
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    let mut params = HashMap::new();
    for (k, v) in form_urlencoded::parse(&bytes) {
        // RFC 6749 §3.2: parameters must not be included more than once.
        if params.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(OAuthError::invalid_request(
                "A parameter was repeated.",
                "repeated_parameter",
            ));
        }
    }
    Ok((
        Presented {
            basic,
            client,
            #[cfg(feature = "mtls")]
            certificate,
        },
        Form(params),
    ))
}

/// Authenticates the client (RFC 6749 §2.3.1: `client_secret_basic` or `client_secret_post`).
///
/// Unknown ids are checked against a dummy hash so that they cost the same argon2 run as a
/// wrong secret, and both get the same answer.
pub(crate) async fn authenticate(
    state: &State,
    presented: Presented,
    form: &Form,
) -> Result<RegisteredClient, OAuthError> {
    let post_id = form.get("client_id");
    let post_secret = form.get("client_secret");
    // RFC 8705 §2: a `client_id` with neither a secret nor Basic credentials is a client
    // authenticating with its TLS certificate.
    #[cfg(feature = "mtls")]
    if let (true, None, Some(id), None) = (state.mtls, &presented.basic, post_id, post_secret) {
        return authenticate_tls(state, &presented, id).await;
    }
    let (client_id, secret): (String, String) = match (presented.basic, post_id, post_secret) {
        // RFC 6749 §2.3: one authentication method per request.
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use only one client authentication method.",
                "multiple_client_auth",
            ));
        }
        (Some(b), id, None) => {
            // A `client_id` in the body must at least agree with the Basic one.
            if id.is_some_and(|id| id != b.user_id()) {
                return Err(OAuthError::invalid_request(
                    "The client_id parameter does not match the authenticated client.",
                    "client_id_mismatch",
                ));
            }
            (
                b.user_id().to_owned(),
                b.password().expose_secret().to_owned(),
            )
        }
        (None, Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
        (None, Some(_), None) => return Err(OAuthError::invalid_client("no_client_secret")),
        (None, None, _) => return Err(OAuthError::invalid_client("no_client_auth")),
    };
    // Lock-outs first (OWASP Authentication Cheat Sheet; NIST SP 800-63B §5.2.2): a refused
    // attempt costs no registry lookup and no argon2 run. Counted per (client id, address)
    // and per address, never per client id alone, so that nobody elsewhere can lock a
    // client out.
    let mut held = Vec::with_capacity(2);
    if let Some(ip) = presented.client {
        held.push(
            Held::admit(
                state,
                LockoutKey::client_address(ip),
                state.address_lockout,
                "address_locked_out",
            )
            .await?,
        );
        held.push(
            Held::admit(
                state,
                LockoutKey::client_at(&client_id, ip),
                state.client_lockout,
                "client_locked_out",
            )
            .await?,
        );
    }
    let found = state.clients.find(&client_id).await?;
    // RFC 8705 §2: a client registered for certificate authentication has no secret.
    #[cfg(feature = "mtls")]
    if found.as_ref().is_some_and(|c| c.tls_auth().is_some()) {
        audit_client_failure(&client_id, "secret_for_tls_client");
        return Err(OAuthError::invalid_client("secret_for_tls_client"));
    }
    let now = state.clock.now();
    let fingerprint = state.secret_cache.fingerprint(&client_id, &secret);
    // Verified a moment ago against the client's current hash: no argon2 run, and no wait
    // for a slot behind a flood of wrong secrets.
    if let Some(client) = &found
        && state
            .secret_cache
            .hit(&fingerprint, client.secret_hash(), now)
    {
        for h in held {
            h.succeed().await;
        }
        return Ok(client.clone());
    }
    let hash = found
        .as_ref()
        .map_or(state.dummy_hash.as_str(), RegisteredClient::secret_hash);
    // A bounded wait for a bounded number of argon2 runs: saturation is 503 with
    // `Retry-After`, never a 401 and never a queue that grows with the attack.
    let permit = tokio::time::timeout(
        state.secret_check_wait,
        state.secret_checks.clone().acquire_owned(),
    )
    .await
    .map_err(|_| OAuthError::unavailable("secret_checks_saturated"))?
    .map_err(|_| OAuthError::unavailable("secret_checks_closed"))?;
    let phc = hash.to_owned();
    // The check runs in its own task holding the permit, so a client that hangs up cannot
    // free the permit while its argon2 run still occupies a thread.
    let check = tokio::spawn(async move {
        let result = apiauth_basic::verify_password(&phc, &secret).await;
        drop(permit);
        result
    });
    let matches = match check.await {
        Ok(Ok(m)) => m,
        Ok(Err(_)) => {
            tracing::error!(target: TARGET, client_id = found.as_ref().map(RegisteredClient::client_id), "stored client secret hash is not a valid argon2 PHC string");
            return Err(OAuthError::unavailable("malformed_secret_hash"));
        }
        Err(_) => return Err(OAuthError::unavailable("secret_check_aborted")),
    };
    match found {
        Some(client) if matches => {
            state
                .secret_cache
                .insert(fingerprint, client.secret_hash(), state.clock.now());
            for h in held {
                h.succeed().await;
            }
            Ok(client)
        }
        found => {
            let (reason, subject) = match &found {
                Some(_) => ("wrong_client_secret", client_id.clone()),
                // An unknown id may be a pasted secret: only its short hash is logged.
                None => ("unknown_client", LockoutKey::short_hash(&client_id)),
            };
            audit_client_failure(&subject, reason);
            let now = state.clock.now();
            let mut failed = None;
            for h in held {
                match h.fail(now).await {
                    Ok(Some((kind, lockout))) => audit_client_lockout(&subject, kind, lockout),
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
            }
            // A failure that could not be counted is 503 (fail closed), never a 401.
            if let Some(e) = failed {
                return Err(e);
            }
            Err(OAuthError::invalid_client(reason))
        }
    }
}

/// RFC 8705 §2.1.2 / §2.2: the request's certificate is the one the client registered.
#[cfg(feature = "mtls")]
async fn authenticate_tls(
    state: &State,
    presented: &Presented,
    client_id: &str,
) -> Result<RegisteredClient, OAuthError> {
    let Some(cert) = &presented.certificate else {
        return Err(OAuthError::invalid_client("no_client_certificate"));
    };
    let found = state.clients.find(client_id).await?;
    let reason = match &found {
        None => "unknown_client",
        Some(c) => match c.tls_auth() {
            None => "not_a_tls_client",
            Some(auth) if auth.matches(cert) => {
                return Ok(c.clone());
            }
            Some(_) => "client_certificate_mismatch",
        },
    };
    let subject = match found {
        Some(_) => client_id.to_owned(),
        None => LockoutKey::short_hash(client_id),
    };
    audit_client_failure(&subject, reason);
    Err(OAuthError::invalid_client(reason))
}

fn audit_client_failure(subject: &str, reason: &'static str) {
    // A registered client id is public; the secret never reaches a log line.
    tracing::warn!(target: TARGET, outcome = "reject", method = "oauth2_client", subject, reason);
}

fn audit_client_lockout(subject: &str, kind: &'static str, lockout: Duration) {
    tracing::warn!(
        target: TARGET,
        outcome = "lockout",
        method = "oauth2_client",
        lockout = kind,
        subject,
        lockout_secs = lockout.as_secs(),
    );
}

/// One attempt admitted by the lock-out store, settled exactly once: `fail`, `succeed`, or
/// dropped (an outage, a client gone), which releases it without counting a failure.
struct Held {
    store: Arc<dyn LockoutStore>,
    key: LockoutKey,
    id: AttemptId,
    policy: LockoutPolicy,
    kind: &'static str,
    open: bool,
}

impl Held {
    /// Admits one attempt, or answers 429 with `Retry-After` (locked out, or enough
    /// attempts in flight to reach the limit) or 503 (the store cannot answer: fail closed,
    /// and no failure counted).
    async fn admit(
        state: &State,
        key: LockoutKey,
        policy: LockoutPolicy,
        reason: &'static str,
    ) -> Result<Self, OAuthError> {
        let now: SystemTime = state.clock.now();
        match state.lockouts.admit(&key, &policy, now).await {
            Ok(Admission::Admitted(id)) => Ok(Self {
                store: state.lockouts.clone(),
                key,
                id,
                policy,
                kind: reason,
                open: true,
            }),
            Ok(Admission::LockedOut(left)) => Err(OAuthError::too_many_attempts(left, reason)),
            // Checks already under way would reach the limit; they settle within seconds.
            Ok(_) => Err(OAuthError::too_many_attempts(
                Duration::from_secs(1),
                "attempts_in_flight",
            )),
            Err(_) => Err(OAuthError::unavailable("lockout_store_unavailable")),
        }
    }

    async fn succeed(mut self) {
        self.store.release_now(&self.key, self.id).await;
        self.open = false;
    }

    /// Counts a failure: `Some((kind, lockout))` if it started a lock-out.
    async fn fail(
        mut self,
        now: SystemTime,
    ) -> Result<Option<(&'static str, Duration)>, OAuthError> {
        let result = self
            .store
            .record_failure(&self.key, self.id, &self.policy, now)
            .await;
        self.open = false;
        result
            .map(|started| started.map(|d| (self.kind, d)))
            .map_err(|_| OAuthError::unavailable("lockout_store_unavailable"))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.open {
            self.store.release(&self.key, self.id);
        }
    }
}
