//! Form bodies, RFC 6749 §5.2 error answers and client authentication (§2.3.1).

use std::collections::HashMap;

use apiauth_basic::{BasicCredentials, CredentialEncoding, parse_authorization_with};
use apiauth_core::audit::TARGET;
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
        }
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
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
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
}

/// Reads the Basic credentials and the form body of an endpoint request.
pub(crate) async fn read(req: Request<Body>) -> Result<(Presented, Form), OAuthError> {
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
    Ok((Presented { basic }, Form(params)))
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
    let found = state.clients.find(&client_id).await?;
    let hash = found
        .as_ref()
        .map_or(state.dummy_hash.as_str(), RegisteredClient::secret_hash);
    // A bounded wait for a bounded number of argon2 runs: saturation is 503, not a queue
    // that grows with the attack.
    let permit = tokio::time::timeout(
        state.secret_check_wait,
        state.secret_checks.clone().acquire_owned(),
    )
    .await
    .map_err(|_| OAuthError::unavailable("secret_checks_saturated"))?
    .map_err(|_| OAuthError::unavailable("secret_checks_closed"))?;
    let hash = hash.to_owned();
    // The check runs in its own task holding the permit, so a client that hangs up cannot
    // free the permit while its argon2 run still occupies a thread.
    let check = tokio::spawn(async move {
        let result = apiauth_basic::verify_password(&hash, &secret).await;
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
        Some(client) if matches => Ok(client),
        Some(_) => {
            audit_client_failure(Some(&client_id), "wrong_client_secret");
            Err(OAuthError::invalid_client("wrong_client_secret"))
        }
        None => {
            // An unknown id may be a pasted secret: keep it out of the log.
            audit_client_failure(None, "unknown_client");
            Err(OAuthError::invalid_client("unknown_client"))
        }
    }
}

fn audit_client_failure(client_id: Option<&str>, reason: &'static str) {
    // A registered client id is public; the secret never reaches a log line.
    tracing::warn!(target: TARGET, outcome = "reject", method = "oauth2_client", subject = client_id, reason);
}
