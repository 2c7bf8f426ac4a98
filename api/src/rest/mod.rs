//! REST under `/v1`: the HTTP adapter over the application layer. One
//! envelope for every answer (see `envelope`), request ids, and one file
//! per resource, each with its own `routes()`; this file assembles them
//! with their layers (see `docs/architecture.md`).

mod access;
pub(crate) mod admin;
mod api_keys;
mod assets;
mod audit;
pub(crate) mod auth;
mod consistency;
mod envelope;
mod error;
pub(crate) mod findings;
mod health;
pub(crate) mod idempotency;
pub(crate) mod ingestion;
mod json;
mod keys;
mod kms;
mod leakage;
mod metrics;
pub mod openapi;
pub(crate) mod pagination;
pub(crate) mod query;
mod request_id;
mod risk;
mod secrets;
mod timeline;
mod usage;
mod webhooks;
mod whoami;

pub use consistency::Consistency;
pub use envelope::{precondition_failed, Envelope, IfMatch, Meta};
pub use error::{ApiError, FieldError};
pub use json::ApiJson;
pub use request_id::current_request_id;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// The default request body limit.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The limit for bulk ingests (1,000 findings).
pub const BULK_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The body limit of the route at `path` (GraphQL's is [`BODY_LIMIT`]).
pub fn body_limit(path: &str) -> usize {
    match path {
        "/v1/findings/bulk" => BULK_BODY_LIMIT,
        "/v1/ingestion/upload" => ingestion::UPLOAD_BODY_LIMIT,
        // A batch of up to 100 plaintexts or ciphertexts of up to 64 KiB.
        _ if path.starts_with("/v1/keys/")
            && (path.ends_with("/encrypt")
                || path.ends_with("/decrypt")
                || path.ends_with("/rewrap")) =>
        {
            BULK_BODY_LIMIT
        }
        // A value of up to 1 MiB, JSON-escaped (413 above 1 MiB of value).
        _ if path.starts_with("/v1/secrets/data/") => SECRET_BODY_LIMIT,
        _ => BODY_LIMIT,
    }
}

/// The limit for a secret write: room for a 1 MiB value as escaped JSON.
pub const SECRET_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// Answers 413 at once when the declared length is over the limit, instead
/// of reading the body first. Undeclared (chunked) bodies are cut off as
/// they stream ([`body_limit_for_route`]).
async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(request.uri().path());
    match declared {
        Some(length) if length > limit as u64 => ApiError::payload_too_large(limit).into_response(),
        _ => next.run(request).await,
    }
}

/// One body limit for every route, enforced on the stream: the body is
/// wrapped so that no reader (`Json`, idempotency, GraphQL, any later
/// extractor) can take more than the route's limit, however the body is
/// framed; `Json` answers 413 in the envelope when it is cut off.
async fn body_limit_for_route(request: Request, next: Next) -> Response {
    let limit = body_limit(request.uri().path());
    let mut request =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    DefaultBodyLimit::max(limit).apply(&mut request);
    next.run(request).await
}

/// 400 in the envelope for a path that, percent-decoded, is not UTF-8 or
/// holds a control character (a NUL in an id reached PostgreSQL as a 500):
/// the path extractors would otherwise refuse it in plain text, or pass it on.
async fn refuse_undecodable_paths(request: Request, next: Next) -> Response {
    match decoded_path_problem(request.uri().path()) {
        None => next.run(request).await,
        Some(problem) => ApiError::bad_request(format!("The path {problem}")).into_response(),
    }
}

/// What is wrong with `path` once percent-decoded, if anything.
fn decoded_path_problem(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&high), Some(&low)) if hex(high).is_some() && hex(low).is_some() => {
                let value = hex(high).unwrap_or(0) * 16 + hex(low).unwrap_or(0);
                decoded.push(u8::try_from(value).unwrap_or(0));
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    match std::str::from_utf8(&decoded) {
        Err(_) => Some("is not valid UTF-8 once percent-decoded"),
        Ok(text) if text.chars().any(char::is_control) => {
            Some("must not contain control characters")
        }
        Ok(_) => None,
    }
}

/// The database circuit, shared with the health check: while the store
/// does not answer its probes, every request is 503 `unavailable` with
/// `Retry-After` at once, instead of waiting for a connection. A 500 that
/// coincides with an outage (the probe, asked again, fails) is that 503
/// too. A read (GET) that failed (500, or 503 for a lost connection) while
/// the store still answers (a connection reset by a database restart) is
/// run once more.
async fn store_circuit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let store = &state.app.store;
    let path = request.uri().path();
    // These answer without the database (or say themselves that it is away).
    if matches!(
        path,
        "/v1/health" | "/metrics" | "/v1/openapi.json" | "/docs"
    ) {
        return next.run(request).await;
    }
    if !store.available() {
        return ApiError::store_unavailable().into_response();
    }
    let retry = (request.method() == axum::http::Method::GET)
        .then(|| (request.uri().clone(), request.headers().clone()));
    let again = next.clone();
    let response = next.run(request).await;
    let status = response.status();
    if status != axum::http::StatusCode::INTERNAL_SERVER_ERROR
        && status != axum::http::StatusCode::SERVICE_UNAVAILABLE
    {
        return response;
    }
    if !store.probe(palisade_infra::store::PROBE_TIMEOUT).await {
        return ApiError::store_unavailable().into_response();
    }
    match retry {
        Some((uri, headers)) => {
            let mut request = Request::new(axum::body::Body::empty());
            *request.uri_mut() = uri;
            *request.headers_mut() = headers;
            again.run(request).await
        }
        None => response,
    }
}

/// The REST routes: the documented ones (registered together with their
/// OpenAPI operations, so `/v1/openapi.json` documents every one of them),
/// the reference page and the metrics.
pub fn routes(state: &AppState) -> Router<AppState> {
    let (router, document) = documented_routes(state);
    router
        .route("/docs", get(openapi::docs))
        .route("/metrics", get(metrics::metrics))
        .layer(Extension(openapi::Document(Arc::new(document))))
}

/// `routes` (REST and GraphQL) behind the layers every request passes:
/// the request id (outermost), the database circuit, path and body bounds;
/// and the envelope's 404 and 405.
pub fn with_layers(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(body_limit_for_route))
        .layer(axum::middleware::from_fn(refuse_oversized_bodies))
        .layer(axum::middleware::from_fn(refuse_undecodable_paths))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            store_circuit,
        ))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .with_state(state)
}

/// The documented routes and the OpenAPI document that describes them.
/// A layer added later runs first: authentication (or the admin token),
/// then idempotency, then the handler.
pub fn documented_routes(state: &AppState) -> (Router<AppState>, serde_json::Value) {
    let idempotency = || axum::middleware::from_fn_with_state(state.clone(), idempotency::layer);
    // Every route here needs an API key, within its rate limits and quota.
    let tenant_routes = OpenApiRouter::new()
        .merge(api_keys::routes())
        .merge(usage::routes())
        .merge(whoami::routes())
        .merge(findings::routes())
        .merge(assets::routes())
        .merge(risk::routes())
        .merge(timeline::routes())
        .merge(audit::routes())
        .merge(keys::routes())
        .merge(kms::routes())
        .merge(secrets::routes())
        .merge(leakage::routes())
        .merge(access::routes())
        .merge(ingestion::routes())
        .merge(webhooks::routes())
        .route_layer(idempotency())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_api_key,
        ));
    // Every route here needs the admin token.
    let admin_routes = admin::routes().route_layer(idempotency()).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), admin::require_admin),
    );
    let (router, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(tenant_routes)
        .merge(admin_routes)
        .routes(routes!(health::health))
        .routes(routes!(openapi::openapi_json))
        .split_for_parts();
    (router, openapi::contract(&document))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_must_decode_to_utf8_without_control_characters() {
        let problem = super::decoded_path_problem;
        assert_eq!(problem("/v1/findings/fnd_%41"), None);
        assert_eq!(problem("/v1/findings/%E2%9C%93"), None);
        assert_eq!(problem("/v1/100%"), None);
        assert!(problem("/v1/findings/%FF").is_some());
        assert!(problem("/v1/findings/%00").is_some());
        assert!(problem("/v1/findings/a%0Ab").is_some());
    }
}
