//! REST under `/v1`: one envelope for every answer (DESIGN §5), request ids,
//! and one file per resource.

mod admin;
mod api_keys;
mod envelope;
mod error;
mod health;
mod json;
pub mod openapi;
mod pagination;
mod request_id;
mod usage;

pub use envelope::{precondition_failed, Envelope, IfMatch, Meta};
pub use error::{ApiError, FieldError};
pub use json::ApiJson;
pub use request_id::current_request_id;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::server::AppState;

/// The default request body limit (uploads get their own later).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Answers 413 at once when the declared length is over the limit, instead
/// of reading the body first. Undeclared (chunked) bodies are cut off by
/// `DefaultBodyLimit` as they stream.
async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > BODY_LIMIT as u64 => ApiError::payload_too_large().into_response(),
        _ => next.run(request).await,
    }
}

/// The whole REST surface. Routes are registered together with their
/// OpenAPI operations, so `/v1/openapi.json` documents every one of them.
pub fn router(state: AppState) -> Router {
    let (router, document) = documented_routes(&state);
    router
        .route("/docs", get(openapi::docs))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(Extension(openapi::Document(Arc::new(document))))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(refuse_oversized_bodies))
        .layer(axum::middleware::from_fn(request_id::middleware))
        .with_state(state)
}

/// The documented routes and the OpenAPI document that describes them.
pub fn documented_routes(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Every route here needs an API key, within its rate limits and quota.
    let tenant_routes = OpenApiRouter::new()
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::get_api_key, api_keys::revoke_api_key))
        .routes(routes!(usage::usage))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::require_api_key,
        ));
    // Every route here needs the admin token.
    let admin_routes = OpenApiRouter::new()
        .routes(routes!(admin::create_tenant, admin::list_tenants))
        .routes(routes!(admin::get_tenant))
        .routes(routes!(admin::change_plan))
        .routes(routes!(admin::suspend))
        .routes(routes!(admin::reactivate))
        .routes(routes!(admin::projections))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::require_admin,
        ));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(tenant_routes)
        .merge(admin_routes)
        .routes(routes!(health::health))
        .routes(routes!(openapi::openapi_json))
        .split_for_parts()
}
