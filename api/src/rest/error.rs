//! One error type for the HTTP layer, mapped to the envelope once:
//! `{"success": false, "error": {"code", "message", "details"?}, "meta"}`.
//! [`app::Error`](crate::app::Error) becomes one here, in one `match` that
//! gives each error code its status; the rest are the HTTP layer's own
//! refusals (a body too large, a path that does not decode, …). Internal
//! errors are logged under the request id and answered with a bare 500.

use std::fmt::Display;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::Meta;

use crate::app;
pub use crate::views::FieldError;

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

    /// Logs the cause; the client learns nothing internal (503 when the
    /// cause says the database could not be reached: see
    /// [`app::Error::internal`]).
    pub fn internal<E: Display + 'static>(cause: E) -> Self {
        app::Error::internal(cause).into()
    }

    /// 503 `unavailable` with `Retry-After: 1`: the database does not
    /// answer (the circuit is open, or a request met the outage).
    pub fn store_unavailable() -> Self {
        app::Error::Unavailable.into()
    }
}

/// The status each application error code answers with.
fn status_of(error: &app::Error) -> StatusCode {
    use app::Error as E;
    match error {
        E::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::BadRequest(_) => StatusCode::BAD_REQUEST,
        E::MissingApiKey(_) | E::InvalidApiKey => StatusCode::UNAUTHORIZED,
        E::Forbidden(_) | E::TenantSuspended | E::SelfReview(_) => StatusCode::FORBIDDEN,
        E::NoPolicy(_) | E::UnsafeWebhookUrl(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Conflict(_) | E::InvalidTransition(_) | E::KeyDisabled(_) | E::KeyPendingDeletion(_) => {
            StatusCode::CONFLICT
        }
        E::KeyDestroyed(_) => StatusCode::GONE,
        E::CasMismatch { .. } => StatusCode::CONFLICT,
        E::CasRequired { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::VersionGone { .. } => StatusCode::NOT_FOUND,
        E::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        E::KeyVersionTooOld(_)
        | E::KeyVersionUnknown(_)
        | E::DecryptionFailed
        | E::UnsupportedOperation(_) => StatusCode::UNPROCESSABLE_ENTITY,
        E::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
        E::QuotaExceeded(_) => StatusCode::PAYMENT_REQUIRED,
        E::RateLimited { .. } | E::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
        E::ConsistencyTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        E::NotInEffect(_) | E::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        E::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<app::Error> for ApiError {
    fn from(error: app::Error) -> Self {
        Self {
            status: status_of(&error),
            code: error.code(),
            message: error.to_string(),
            details: error.problems().iter().map(FieldError::from).collect(),
            retry_after: error.retry_after(),
        }
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
