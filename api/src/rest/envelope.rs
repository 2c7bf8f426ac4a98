//! `{"success": true, "data": …, "meta": {…}}`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::{current_request_id, ApiError};

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
    /// retry's replay shows it redacted ([`crate::idempotency::Secrets`]).
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

    /// A page of a list: `meta.page`, `per_page`, `total` and `pages`.
    pub fn page(data: T, page: u32, per_page: u32, total: i64) -> Self {
        let mut envelope = Self::ok(data);
        envelope.meta.page = Some(page);
        envelope.meta.per_page = Some(per_page);
        envelope.meta.total = Some(total);
        envelope.meta.pages = Some((total + i64::from(per_page) - 1) / i64::from(per_page.max(1)));
        envelope
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
                .insert(crate::idempotency::Secrets(self.secrets));
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
