//! RFC 9457 problem details for what the router itself refuses: a path it does not serve, a
//! method the path does not take, a body that is not the JSON a handler expects. The auth
//! layers refuse with the same shape (apiauth's `AuthError`), so a client reads one kind of
//! error body whatever refused it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// The media type of every error body (RFC 9457 §3).
pub const MEDIA_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem details object, with the extension members (§3.2) this API uses.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type; `about:blank` when the status says it all
    /// (RFC 9457 §4.2.1).
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub type_uri: &'static str,
    /// The status code's reason phrase.
    #[schema(example = "Unauthorized")]
    pub title: &'static str,
    /// The HTTP status code of this answer.
    #[schema(example = 401)]
    pub status: u16,
    /// What went wrong, for a person; never which part of a secret failed.
    pub detail: String,
    /// The refusing scheme's own error code, only where that scheme defines one: RFC 6750
    /// §3.1 for Bearer tokens (`invalid_request`, `invalid_token`, `insufficient_scope`), the
    /// API key scheme's (`invalid_request`, `invalid_key`, `insufficient_scope`). Absent where
    /// the scheme defines none (Basic, HTTP Message Signatures) and from refusals that no
    /// authentication scheme made (unknown route, bad JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// With `insufficient_scope`: the scope that would have sufficed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// With an unknown plan at key creation: the plans this deployment knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_plans: Option<Box<[String]>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            error: None,
            scope: None,
            known_plans: None,
        }
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_string(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, MEDIA_TYPE)], body).into_response()
    }
}

/// The router's fallback: no route has this path.
pub async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "No resource has this path.")
}

/// A route has this path, not this method. axum adds the `Allow` header that RFC 9110
/// §15.5.6 requires.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "This resource does not take this method; `Allow` lists those it takes.",
    )
}

/// A JSON request body whose rejection is a problem, not axum's plain-text one.
///
/// The details are fixed sentences: serde's messages can quote the client's input back.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "The request body must be sent as `Content-Type: application/json`."
        }
        JsonRejection::JsonSyntaxError(_) => "The request body is not well-formed JSON.",
        JsonRejection::JsonDataError(_) => {
            "The JSON body lacks a required member or has one of the wrong type."
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            "The request body is too large."
        }
        _ => "The request body could not be read.",
    };
    Problem::new(rejection.status(), detail)
}
