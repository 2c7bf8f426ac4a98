//! A query-string extractor whose rejections speak the envelope: a 422
//! `validation_error` naming the parameter, instead of axum's plain text.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use palisade_domain::{limits, optional_text, MAX_LIST_ITEMS};
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

/// An optional free-text filter (`search`, `tag`, `product`, …): trimmed,
/// blank meaning absent; otherwise at most 200 characters without control
/// characters (the domain's text rule with [`limits::FILTER`]), or a 422
/// naming `field`. Unbounded, a `LIKE` pattern of 50,000 characters made
/// SQLite fail ("LIKE or GLOB pattern too complex").
pub fn filter_text(field: &str, value: Option<&str>) -> Result<Option<String>, ApiError> {
    optional_text(field, value, limits::FILTER)
        .map_err(|problem| ApiError::validation(vec![problem.into()]))
}

/// The values of a multi-value filter, each a [`filter_text`] (blank ones
/// skipped), duplicates collapsed (first kept), at most
/// [`MAX_FILTER_VALUES`] distinct ones or a 422 naming `field`. Unbounded,
/// each value was one bound parameter of an `IN` list: 32 requests of
/// 32,000 values held every pooled connection.
pub fn filter_values<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, ApiError> {
    let mut distinct: Vec<String> = Vec::new();
    for value in values {
        let Some(value) = filter_text(field, Some(value))? else {
            continue;
        };
        if distinct.contains(&value) {
            continue;
        }
        if distinct.len() == MAX_FILTER_VALUES {
            return Err(ApiError::invalid_field(
                field,
                format!("at most {MAX_FILTER_VALUES} distinct values"),
            ));
        }
        distinct.push(value);
    }
    Ok(distinct)
}

/// Most distinct values of one multi-value filter, REST and GraphQL.
pub const MAX_FILTER_VALUES: usize = MAX_LIST_ITEMS;

/// A comma-separated list parameter ([`filter_values`]), each item parsed;
/// empty means "any".
pub fn comma_list<T>(field: &str, value: &Option<String>) -> Result<Vec<T>, ApiError>
where
    T: std::str::FromStr<Err = String>,
{
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    filter_values(field, value.split(','))?
        .iter()
        .map(|item| {
            item.parse::<T>()
                .map_err(|m| ApiError::invalid_field(field, m))
        })
        .collect()
}

/// A comma-separated list of free-text values ([`filter_values`]).
pub fn comma_texts(field: &str, value: &Option<String>) -> Result<Vec<String>, ApiError> {
    match value {
        Some(value) => filter_values(field, value.split(',')),
        None => Ok(Vec::new()),
    }
}

/// An optional text parameter that is not free text (a sort key, a
/// number, a time, a cursor), trimmed, parsed further by the caller. Given
/// blank, it stays blank, so the caller refuses it (422) as `page=` and
/// `consistency=` always were: only free-text filters read blank as absent.
pub fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).map(str::to_string)
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
