//! One error type for the HTTP layer, mapped to the envelope once:
//! `{"success": false, "error": {"code", "message", "details"?}, "meta"}`.
//! Internal errors are logged under the request id and answered with a bare 500.

use std::fmt::Display;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::Meta;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl From<palisade_domain::FieldProblem> for FieldError {
    fn from(problem: palisade_domain::FieldProblem) -> Self {
        Self {
            field: problem.field,
            message: problem.message,
        }
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldError>,
    /// Seconds until a retry may succeed (429): `error.retry_after` and `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413: the body is over the route's limit ([`super::body_limit`]).
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 with one item per offending field.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => "The request has invalid fields".to_string(),
        };
        Self {
            details,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_error",
                message,
            )
        }
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    /// Logs the cause; the client learns nothing internal. A cause that
    /// says the database could not be reached (see
    /// [`palisade_infra::store::is_transient`]) is 503 `unavailable` with
    /// `Retry-After` instead: the request may succeed when retried.
    pub fn internal<E: Display + 'static>(cause: E) -> Self {
        if palisade_infra::store::is_transient_cause(&cause) {
            return Self::unavailable(cause);
        }
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred; quote the request id when reporting it",
        )
    }

    /// 503 `unavailable` with `Retry-After: 1`: the database could not be
    /// reached; the cause is logged.
    pub fn unavailable(cause: impl Display) -> Self {
        tracing::warn!(error = %cause, "the database could not be reached");
        Self::store_unavailable()
    }

    /// 503 `unavailable` with `Retry-After: 1`: the database does not
    /// answer (the circuit is open, or a request met the outage).
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The database does not answer; retry shortly",
        )
        .with_retry_after(1)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    details: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    success: bool,
    error: ErrorBody<'a>,
    meta: Meta,
}

impl ApiError {
    fn body(&self) -> Body<'_> {
        Body {
            success: false,
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                details: &self.details,
                retry_after: self.retry_after,
            },
            meta: Meta::now(),
        }
    }

    /// The error envelope as JSON text, for answers that are not HTTP
    /// responses (a stream's last frame).
    pub fn envelope(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("No route matches this path")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This route does not accept this method",
    )
}
