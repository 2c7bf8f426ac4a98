//! `{"success": true, "data": …, "meta": {…}}`.
//!
//! Every list answers the same way: `data` is the array of items, and
//! `meta` says where it is in the whole. A paged list (`?page=&per_page=`)
//! carries `meta.page`, `per_page`, `total` and `pages`; a cursor list
//! (newest- or oldest-first streams of records) carries `meta.next_cursor`,
//! to pass back as `?cursor=` (null on the last page).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{current_request_id, ApiError};
use palisade_infra::readmodel::{Page, PageRequest};

#[derive(Debug, Serialize)]
pub struct Meta {
    pub request_id: String,
    pub timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<i64>,
    /// On a paged list: false when more match than are counted
    /// (`readmodel::COUNT_CAP`); `total` is then the cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_exact: Option<bool>,
    /// On a cursor list: where the next page starts (null on the last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Option<String>>,
}

impl Meta {
    pub fn now() -> Self {
        Self {
            request_id: current_request_id(),
            timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            page: None,
            per_page: None,
            total: None,
            pages: None,
            total_exact: None,
            next_cursor: None,
        }
    }
}

/// A successful answer.
pub struct Envelope<T> {
    status: StatusCode,
    data: T,
    meta: Meta,
    etag: Option<usize>,
    secrets: Vec<String>,
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self::with_status(StatusCode::OK, data)
    }

    pub fn created(data: T) -> Self {
        Self::with_status(StatusCode::CREATED, data)
    }

    pub fn with_status(status: StatusCode, data: T) -> Self {
        Self {
            status,
            data,
            meta: Meta::now(),
            etag: None,
            secrets: Vec::new(),
        }
    }

    /// Marks `value` as a secret this answer shows once: an idempotent
    /// retry's replay shows it redacted ([`super::idempotency::Secrets`]).
    pub fn with_secret(mut self, value: &str) -> Self {
        self.secrets.push(value.to_string());
        self
    }

    /// Answers with `ETag: "<version>"`: the aggregate's version, which a
    /// later command may name in `If-Match`.
    pub fn with_etag(mut self, version: usize) -> Self {
        self.etag = Some(version);
        self
    }

    /// A page of a cursor list: `meta.next_cursor`, null on the last page.
    pub fn cursor_page(data: T, next_cursor: Option<String>) -> Self {
        let mut envelope = Self::ok(data);
        envelope.meta.next_cursor = Some(next_cursor);
        envelope
    }

    /// A page of a list whose total is exact: `meta.page`, `per_page`,
    /// `total`, `pages` and `total_exact`.
    pub fn page(data: T, page: u32, per_page: u32, total: i64) -> Self {
        Self::page_counted(data, page, per_page, total, true)
    }

    /// A page of a list whose total may be the count's cap (`exact`
    /// false): `pages` follows the total.
    pub fn page_counted(data: T, page: u32, per_page: u32, total: i64, exact: bool) -> Self {
        let mut envelope = Self::ok(data);
        envelope.meta.page = Some(page);
        envelope.meta.per_page = Some(per_page);
        envelope.meta.total = Some(total);
        envelope.meta.pages = Some((total + i64::from(per_page) - 1) / i64::from(per_page.max(1)));
        envelope.meta.total_exact = Some(exact);
        envelope
    }
}

impl<V: Serialize> Envelope<Vec<V>> {
    /// A page of rows from a read model, each shown as a `V`.
    pub fn of_page<R>(page: Page<R>, paging: PageRequest) -> Self
    where
        V: From<R>,
    {
        let items = page.items.into_iter().map(V::from).collect();
        Self::page_counted(
            items,
            paging.page,
            paging.per_page,
            page.total,
            page.total_exact,
        )
    }
}

#[derive(Serialize)]
struct Body<T> {
    success: bool,
    data: T,
    meta: Meta,
}

impl<T: Serialize> IntoResponse for Envelope<T> {
    fn into_response(self) -> Response {
        let body = Body {
            success: true,
            data: self.data,
            meta: self.meta,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(version) = self.etag {
            if let Ok(value) = HeaderValue::from_str(&format!("\"{version}\"")) {
                response.headers_mut().insert(header::ETAG, value);
            }
        }
        if !self.secrets.is_empty() {
            response
                .extensions_mut()
                .insert(super::idempotency::Secrets(self.secrets));
        }
        response
    }
}

/// `If-Match`: the version a command requires (`None` for `*` or no header).
/// A value that is not an ETag this API issues can never match: it names a
/// version no aggregate reaches, so the command answers 412, but only after
/// the request itself has been validated (a bad body is still 400 or 422).
pub struct IfMatch(pub Option<usize>);

/// The version a malformed `If-Match` stands for: one never reached.
const NO_VERSION: usize = usize::MAX;

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let version = text
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .unwrap_or(NO_VERSION);
        Ok(IfMatch(Some(version)))
    }
}

pub fn precondition_failed(message: String) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        message,
    )
}
