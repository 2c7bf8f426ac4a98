//! `/v1/api-keys`: scope `tenant:admin`. Values are shown once, at creation.

use axum::extract::{Path, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::pagination::PageQuery;
use super::query::ApiQuery;
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::app::api_keys::{self, IssueApiKeyRequest};
use crate::app::auth::TenantAdmin;
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::tenants::{ApiKeyView, IssuedApiKey};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(get_api_key, revoke_api_key))
}

/// Responses about a key carry the tenant's version as `ETag`: keys are part
/// of the Tenant aggregate.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. The key value is in this answer only: it is never stored, and an idempotent replay shows it as `[redacted]` (with `Idempotent-Redacted: true`). A test key can issue only test keys.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")), request_body = IssueApiKeyRequest,
    responses((status = 201, description = "The new key, with its value", body = Success<IssuedApiKey>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              KeyErrors, BodyErrors, (status = 412, description = "If-Match does not match the tenant's version", body = ErrorEnvelope)))]
pub async fn create_api_key(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    IfMatch(expected): IfMatch,
    ApiJson(request): ApiJson<IssueApiKeyRequest>,
) -> Result<Envelope<IssuedApiKey>, ApiError> {
    let (issued, version) = api_keys::issue(&state.app, &caller, request, expected).await?;
    let key = IssuedApiKey::from(issued);
    let value = key.key.clone();
    Ok(Envelope::created(key)
        .with_etag(version)
        .with_secret(&value))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. Values are never shown. A test key sees only the tenant's test keys.", params(PageQuery),
    responses((status = 200, description = "The tenant's keys, newest first", body = Success<Vec<ApiKeyView>>), KeyErrors, ReadErrors))]
pub async fn list_api_keys(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<ApiKeyView>>, ApiError> {
    let paging = query.paging()?;
    let page = api_keys::list(&state.app, &caller, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

/// Another tenant's key is a 404, like an unknown one.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. A live key is 404 to a test key.",
    params(("id" = String, Path, description = "API key id (apk_…)")),
    responses((status = 200, description = "The key (never its value)", body = Success<ApiKeyView>, headers(("ETag" = String, description = "The tenant aggregate's version"))), KeyErrors, ReadErrors))]
pub async fn get_api_key(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<ApiKeyView>, ApiError> {
    let (key, version) = api_keys::get(&state.app, &caller, &id).await?;
    Ok(Envelope::ok(ApiKeyView::from(key)).with_etag(version))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. Answered once in effect (503 `unavailable` when the views have not applied it within 10 s: it is recorded, and a retry confirms it), so the key fails from its next request on; its open GraphQL websockets close at their next operation, idle ones within 15 s. A test key can revoke only test keys (a live key is 404 to it).",
    params(("id" = String, Path, description = "API key id (apk_…)"), ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")),
    responses((status = 200, description = "The revoked key", body = Success<ApiKeyView>, headers(("ETag" = String, description = "The tenant aggregate's version"))), KeyErrors, BodyErrors, (status = 404, description = "No such key in this tenant", body = ErrorEnvelope), (status = 412, description = "If-Match does not match the tenant's version", body = ErrorEnvelope), (status = 503, description = "unavailable: recorded, but the views have not applied it within 10 s; retry to confirm", body = ErrorEnvelope)))]
pub async fn revoke_api_key(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> Result<Envelope<ApiKeyView>, ApiError> {
    let (key, version) = api_keys::revoke(&state.app, &caller, &id, expected).await?;
    Ok(Envelope::ok(ApiKeyView::from(key)).with_etag(version))
}
