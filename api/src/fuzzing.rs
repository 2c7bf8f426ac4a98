//! Entry points for coverage-guided fuzzing (the `fuzz/` crate, run by
//! `scripts/fuzz`): untrusted bytes through the same extractors and
//! parsers the routes use, without a database. Whatever the input, each
//! ends in a value or a client error (4xx) — never a panic, a hang or a
//! 5xx. Later parsers (scanner reports) add their entry points here.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;

use crate::app::api_keys::IssueApiKeyRequest;
use crate::app::findings::{BulkIngestRequest, IngestFindingRequest};
use crate::app::tenants::CreateTenantRequest;
use crate::rest::findings::{
    AcceptRiskRequest, AssignRequest, CommentRequest, DismissRequest, FindingsQuery, ReopenRequest,
    SeverityRequest, TicketRequest,
};
use crate::rest::pagination::PageQuery;
use crate::rest::query::ApiQuery;
use crate::rest::{ApiError, ApiJson};

/// Runs a future that needs no I/O (an extractor over an in-memory body).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("an extractor over an in-memory body waited"),
    }
}

fn client_error<T>(result: Result<T, ApiError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            assert!(
                error.status.is_client_error(),
                "{} {}: {}",
                error.status,
                error.code,
                error.message
            );
            None
        }
    }
}

/// `data` as the JSON body of a POST to `path`, through [`ApiJson`].
fn body<T: serde::de::DeserializeOwned>(path: &str, data: &[u8]) -> Option<T> {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(data.to_vec()))
        .expect("a request");
    client_error(now(ApiJson::<T>::from_request(request, &())).map(|ApiJson(value)| value))
}

/// A JSON request body: the first byte chooses the route's body type, the
/// rest is the body. Ingest bodies are also parsed into the domain's
/// details, as the ingest does before any I/O.
pub fn json_body(data: &[u8]) {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    match choice % 11 {
        0 => {
            if let Some(request) = body::<IngestFindingRequest>("/v1/findings", data) {
                let partition = palisade_infra::readmodel::Partition {
                    tenant_id: "ten_fuzz".into(),
                    environment: palisade_domain::Environment::Live,
                };
                client_error(
                    request
                        .parse(&partition, chrono::Utc::now())
                        .map_err(ApiError::from),
                );
            }
        }
        1 => {
            body::<BulkIngestRequest>("/v1/findings/bulk", data);
        }
        2 => {
            body::<IssueApiKeyRequest>("/v1/api-keys", data);
        }
        3 => {
            body::<CreateTenantRequest>("/v1/admin/tenants", data);
        }
        4 => {
            body::<DismissRequest>("/v1/findings/x/dismiss", data);
        }
        5 => {
            body::<AcceptRiskRequest>("/v1/findings/x/accept-risk", data);
        }
        6 => {
            body::<ReopenRequest>("/v1/findings/x/reopen", data);
        }
        7 => {
            body::<AssignRequest>("/v1/findings/x/assign", data);
        }
        8 => {
            body::<SeverityRequest>("/v1/findings/x/severity", data);
        }
        9 => {
            body::<TicketRequest>("/v1/findings/x/ticket", data);
        }
        _ => {
            body::<CommentRequest>("/v1/findings/x/comments", data);
        }
    }
}

/// `data` as a query string (lossily UTF-8, as a URI would carry it after
/// percent-decoding), through [`ApiQuery`] and the findings list's and
/// pagination's parsers.
pub fn query_string(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let encoded: String = text
        .chars()
        .flat_map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '&' | '=' | '%' | '+' | ',' | '-' | '_' | '.' => {
                vec![c.to_string()]
            }
            other => other
                .to_string()
                .bytes()
                .map(|b| format!("%{b:02X}"))
                .collect(),
        })
        .collect();
    let Ok(uri) = format!("/v1/findings?{encoded}").parse::<axum::http::Uri>() else {
        return;
    };
    let (mut parts, ()) = Request::get(uri).body(()).expect("a request").into_parts();
    if let Some(ApiQuery(query)) = client_error(now(ApiQuery::<FindingsQuery>::from_request_parts(
        &mut parts,
        &(),
    ))) {
        client_error(query.parse());
    }
    if let Some(ApiQuery(query)) = client_error(now(ApiQuery::<PageQuery>::from_request_parts(
        &mut parts,
        &(),
    ))) {
        client_error(query.parse());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_points_take_anything() {
        for data in [
            &b""[..],
            b"\x00{\"product\":\"p\",\"category\":\"c\",\"title\":\"t\",\"severity\":\"high\",\"asset_identifier\":\"a\"}",
            b"\x01{\"findings\":[0,0,0]}",
            b"\x02not json",
            b"\x0a{\"body\":\"\\u0000\"}",
        ] {
            super::json_body(data);
        }
        for data in [
            &b""[..],
            b"severity=high,low&page=0",
            b"search=%00&per_page=999999999999",
        ] {
            super::query_string(data);
        }
    }
}
