//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! the interactive reference. The router is built from the same
//! registrations (utoipa-axum), so every served route is documented.

use std::sync::Arc;

use axum::response::{Html, IntoResponse};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// A successful answer: `data` holds the route's result.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    pub meta: MetaDoc,
}

/// `meta` of every answer; lists add the pagination fields.
#[derive(Serialize, ToSchema)]
pub struct MetaDoc {
    /// The request id (`X-Request-Id`, echoed or `req_…`).
    pub request_id: String,
    /// When the answer was made (RFC 3339).
    pub timestamp: String,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    pub total: Option<i64>,
    pub pages: Option<i64>,
}

/// Every error: `{"success": false, "error": {…}, "meta": {…}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDoc,
    pub meta: MetaDoc,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDoc {
    /// Machine-readable: `bad_request`, `missing_api_key`, `invalid_api_key`,
    /// `missing_admin_token`, `invalid_admin_token`, `quota_exceeded`,
    /// `forbidden`, `tenant_suspended`, `not_found`, `method_not_allowed`,
    /// `conflict`, `precondition_failed`, `payload_too_large`,
    /// `unsupported_media_type`, `validation_error`, `idempotency_key_reused`,
    /// `idempotency_response_lost`, `invalid_transition`, `rate_limit_exceeded`,
    /// `too_many_streams`, `internal_error`, `unavailable`, `consistency_timeout`
    /// (and on `POST /graphql`: `batch_not_supported`, `too_many_root_fields`).
    pub code: String,
    pub message: String,
    /// Per-field problems (422).
    pub details: Option<Vec<FieldErrorDoc>>,
    /// Seconds until a retry may succeed (429).
    pub retry_after: Option<u64>,
}

/// The errors any route behind an API key may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum KeyErrors {
    #[response(
        status = 401,
        description = "Missing, unknown, revoked or expired API key"
    )]
    Unauthorized(ErrorEnvelope),
    #[response(
        status = 402,
        description = "The tenant's monthly quota is spent (live keys; each request reserves its place atomically)"
    )]
    QuotaExceeded(ErrorEnvelope),
    #[response(status = 403, description = "Missing scope, or tenant suspended")]
    Forbidden(ErrorEnvelope),
    #[response(
        status = 422,
        description = "Invalid input, naming each field or parameter"
    )]
    Invalid(ErrorEnvelope),
    #[response(
        status = 429,
        description = "The tenant's rate limit is exceeded (every key of the tenant shares the plan's limits)"
    )]
    RateLimited(ErrorEnvelope),
}

/// What a read may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    #[response(
        status = 404,
        description = "No such resource in this tenant and environment"
    )]
    NotFound(ErrorEnvelope),
    #[response(
        status = 504,
        description = "consistency=strong could not be met in time (consistency_timeout)"
    )]
    ConsistencyTimeout(ErrorEnvelope),
}

/// What a command on an existing finding may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CommandErrors {
    #[response(
        status = 404,
        description = "No such finding in this tenant and environment"
    )]
    NotFound(ErrorEnvelope),
    #[response(
        status = 409,
        description = "invalid_transition (naming the current status), or a concurrent change"
    )]
    Conflict(ErrorEnvelope),
    #[response(
        status = 412,
        description = "If-Match does not match the finding's version"
    )]
    PreconditionFailed(ErrorEnvelope),
}

#[derive(Serialize, ToSchema)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (pal_live_… or pal_test_…); also accepted as Authorization: Bearer",
            ))),
        );
        components.add_security_scheme(
            "bearer_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key as a bearer token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (PALISADE_ADMIN_TOKEN or data/admin-token)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Palisade",
        description = "Event-sourced security backend: REST commands and queries. Every answer uses the envelope described by `Success` and `ErrorEnvelope`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "health", description = "Liveness"),
        (name = "admin", description = "Platform administration (admin token)"),
        (name = "api-keys", description = "A tenant's API keys"),
        (name = "usage", description = "Requests, rate limits and quota"),
        (name = "findings", description = "Findings: ingest, deduplication, triage (scopes findings:read / findings:write)"),
        (name = "assets", description = "Assets derived from findings (findings:read)"),
        (name = "risk", description = "Risk scores, overview and history (findings:read; recalculate needs findings:write)"),
        (name = "timeline", description = "Every change, newest first (findings:read)"),
        (name = "audit", description = "The audit trail: every event, redacted and hash-chained; live over SSE (audit:read)"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// The document as served, shared with the handler.
#[derive(Clone)]
pub struct Document(pub Arc<utoipa::openapi::OpenApi>);

/// `GET /v1/openapi.json`: this document (no auth).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    Json(document.0.as_ref().clone())
}

/// `GET /docs`: an interactive reference over `/v1/openapi.json`.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
