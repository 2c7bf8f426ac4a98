//! A query-string extractor whose rejections speak the envelope: a 422
//! `validation_error` naming the parameter, instead of axum's plain text.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;

pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(Self)
            .map_err(|e| ApiError::invalid_field("query", e.to_string()))
    }
}

/// A comma-separated list parameter, each item parsed; empty means "any".
pub fn comma_list<T>(field: &str, value: &Option<String>) -> Result<Vec<T>, ApiError>
where
    T: std::str::FromStr<Err = String>,
{
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<T>()
                .map_err(|m| ApiError::invalid_field(field, m))
        })
        .collect()
}

/// An optional non-empty text parameter.
pub fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// An optional number within `min..=max`.
pub fn number(
    field: &str,
    value: &Option<String>,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    let Some(text) = text(value) else {
        return Ok(None);
    };
    text.parse::<f64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid_field(field, format!("must be a number from {min} to {max}"))
        })
}

/// An optional whole number within `min..=max`, or `default`.
pub fn whole(
    field: &str,
    value: &Option<String>,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(text) = text(value) else {
        return Ok(default);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::invalid_field(field, format!("must be a whole number from {min} to {max}"))
        })
}

/// An optional RFC 3339 time.
pub fn time(
    field: &str,
    value: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    text(value)
        .map(|t| crate::findings::parse_time(field, &t))
        .transpose()
}
