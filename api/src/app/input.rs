//! The rules for values in requests, shared by every adapter: free-text
//! filters (the domain's text rule, bounded), multi-value filters, numbers,
//! times and windows. Each refusal is a validation error naming the field.

use chrono::{DateTime, Utc};
use palisade_domain::{limits, optional_text, MAX_LIST_ITEMS};

use super::{Error, Result};

/// An optional free-text filter (`search`, `tag`, `product`, …): trimmed,
/// blank meaning absent; otherwise at most 200 characters without control
/// characters (the domain's text rule with [`limits::FILTER`]), or a 422
/// naming `field`. Unbounded, a `LIKE` pattern of 50,000 characters made
/// SQLite fail ("LIKE or GLOB pattern too complex").
pub fn filter_text(field: &str, value: Option<&str>) -> Result<Option<String>> {
    Ok(optional_text(field, value, limits::FILTER)?)
}

/// The values of a multi-value filter, each a [`filter_text`] (blank ones
/// skipped), duplicates collapsed (first kept), at most
/// [`MAX_FILTER_VALUES`] distinct ones or a 422 naming `field`. Unbounded,
/// each value was one bound parameter of an `IN` list: 32 requests of
/// 32,000 values held every pooled connection.
pub fn filter_values<'a>(
    field: &str,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>> {
    let mut distinct: Vec<String> = Vec::new();
    for value in values {
        let Some(value) = filter_text(field, Some(value))? else {
            continue;
        };
        if distinct.contains(&value) {
            continue;
        }
        if distinct.len() == MAX_FILTER_VALUES {
            return Err(Error::invalid(
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
pub fn comma_list<T>(field: &str, value: &Option<String>) -> Result<Vec<T>>
where
    T: std::str::FromStr<Err = String>,
{
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    filter_values(field, value.split(','))?
        .iter()
        .map(|item| item.parse::<T>().map_err(|m| Error::invalid(field, m)))
        .collect()
}

/// The items of a comma-separated list of free-text values, as given: the
/// use case checks them once ([`filter_values`]), as for every adapter.
pub fn comma_items(value: &Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::to_string)
        .collect()
}

/// An optional text parameter that is not free text (a sort key, a
/// number, a time, a cursor), trimmed, parsed further by the caller. Given
/// blank, it stays blank, so the caller refuses it (422) as `page=` and
/// `consistency=` always were: only free-text filters read blank as absent.
pub fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).map(str::to_string)
}

/// An optional number within `min..=max`.
pub fn number(field: &str, value: &Option<String>, min: f64, max: f64) -> Result<Option<f64>> {
    let Some(text) = text(value) else {
        return Ok(None);
    };
    text.parse::<f64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .map(Some)
        .ok_or_else(|| Error::invalid(field, format!("must be a number from {min} to {max}")))
}

/// A JSON string that holds a secret (a value, a leak-check candidate):
/// zeroized when dropped, and refused with a generic message, since
/// serde's would quote a value that is not a string.
pub fn json_secret_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<zeroize::Zeroizing<String>, D::Error> {
    <String as serde::Deserialize>::deserialize(deserializer)
        .map(zeroize::Zeroizing::new)
        .map_err(|_| serde::de::Error::custom("must be a string"))
}

// ---------------------------------------------------------------- JSON numbers

/// A JSON number that is a whole number in `u32`'s range: `30` or `30.0`
/// (JSON does not tell them apart; JSON Schema's `integer` takes both).
fn whole_number<E: serde::de::Error>(number: serde_json::Number) -> std::result::Result<u32, E> {
    let whole = match number.as_u64() {
        Some(n) => Some(n),
        None => number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= f64::from(u32::MAX))
            .map(|f| f as u64),
    };
    whole.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        E::custom(format!(
            "{number} is not a whole number from 0 to {}",
            u32::MAX
        ))
    })
}

pub fn json_whole<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<u32, D::Error> {
    whole_number(<serde_json::Number as serde::Deserialize>::deserialize(
        deserializer,
    )?)
}

pub fn json_optional_whole<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<u32>, D::Error> {
    <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
        .map(whole_number)
        .transpose()
}

/// A list of [`json_whole`] numbers.
pub fn json_whole_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Vec<u32>, D::Error> {
    <Vec<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
        .into_iter()
        .map(whole_number)
        .collect()
}

/// An optional whole number within `min..=max`, or `default`.
pub fn whole(field: &str, value: &Option<String>, default: u32, min: u32, max: u32) -> Result<u32> {
    let Some(text) = text(value) else {
        return Ok(default);
    };
    text.parse::<u32>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| Error::invalid(field, format!("must be a whole number from {min} to {max}")))
}

/// An optional RFC 3339 time.
pub fn time(field: &str, value: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    text(value).map(|t| parse_time(field, &t)).transpose()
}

/// A time given in a request, for the commands that take one.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::invalid(field, "must be an RFC 3339 time"))
}

/// A number filter within `min..=max`, as given (GraphQL's are typed).
pub fn within(field: &str, value: Option<f64>, min: f64, max: f64) -> Result<Option<f64>> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(Error::invalid(
            field,
            format!("must be a number from {min} to {max}"),
        )),
        other => Ok(other),
    }
}

/// `until`, when given with `since`, must come after it.
pub fn check_window(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> Result<()> {
    match (since, until) {
        (Some(since), Some(until)) if until <= since => {
            Err(Error::invalid("until", "must be after since"))
        }
        _ => Ok(()),
    }
}

/// A number of days back, 1 to 365.
pub fn days(value: Option<i64>) -> Result<u32> {
    let days = value.unwrap_or(30);
    u32::try_from(days)
        .ok()
        .filter(|d| (1..=365).contains(d))
        .ok_or_else(|| Error::invalid("days", "must be from 1 to 365"))
}
