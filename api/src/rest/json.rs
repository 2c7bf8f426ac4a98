//! A JSON body extractor whose rejections speak the envelope: 415 without a
//! JSON content type, 400 for malformed JSON (saying where), 422 for
//! well-formed JSON of the wrong shape, 413 over the body limit.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = super::body_limit(request.uri().path());
        match <Json<T> as FromRequest<S>>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Expected Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::bad_request(format!("Malformed JSON: {}", source_text(&e)))
                }
                JsonRejection::JsonDataError(e) => data_error(&e),
                JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::payload_too_large(limit)
                }
                other => ApiError::bad_request(other.body_text()),
            }),
        }
    }
}

/// An optional body: a request without one (no `Content-Length`, or 0, and
/// no `Transfer-Encoding`) is `None`; any body is validated as above.
impl<S, T> OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let headers = request.headers();
        let length = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let chunked = headers.contains_key(header::TRANSFER_ENCODING);
        if !chunked && length.unwrap_or(0) == 0 {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

/// Well-formed JSON of the wrong shape: a 422 naming the field where it
/// went wrong (`findings`, `tags[2]`), or `body` for the whole of it.
fn data_error(error: &(dyn std::error::Error + 'static)) -> ApiError {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(located) = cause.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>()
        {
            let path = located.path().to_string();
            let field = if path == "." { "body" } else { path.as_str() };
            return ApiError::invalid_field(field, located.inner().to_string());
        }
        source = cause.source();
    }
    ApiError::invalid_field("body", source_text(error))
}

/// serde's own message ("missing field `name` at line 1 column 2").
fn source_text(error: &dyn std::error::Error) -> String {
    let mut source = error.source();
    let mut text = error.to_string();
    while let Some(inner) = source {
        text = inner.to_string();
        source = inner.source();
    }
    text
}
