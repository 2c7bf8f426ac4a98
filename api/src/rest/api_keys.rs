//! `/v1/api-keys`: scope `tenant:admin`. Values are shown once, at creation.

use axum::extract::{Path, State};
use palisade_domain::Scope;

use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::pagination::PageQuery;
use super::query::ApiQuery;
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::api_keys::{find, issue, list, revoke, IssueApiKeyRequest};
use crate::auth::Principal;
use crate::server::AppState;
#[allow(unused_imports)]
use crate::tenants::ApiKeyView as _ApiKeyViewDoc;
use crate::tenants::{find_tenant, ApiKeyView, IssuedApiKey};

/// Responses about a key carry the tenant's version as `ETag`: keys are part
/// of the Tenant aggregate.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. The key value is in this answer only: it is never stored, and an idempotent replay shows it as `[redacted]` (with `Idempotent-Redacted: true`). A test key can issue only test keys.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")), request_body = IssueApiKeyRequest,
    responses((status = 201, description = "The new key, with its value", body = Success<IssuedApiKey>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              KeyErrors, BodyErrors, (status = 412, description = "If-Match does not match the tenant's version", body = ErrorEnvelope)))]
pub async fn create_api_key(
    caller: Principal,
    State(state): State<AppState>,
    IfMatch(expected): IfMatch,
    ApiJson(request): ApiJson<IssueApiKeyRequest>,
) -> Result<Envelope<IssuedApiKey>, ApiError> {
    caller.require(Scope::TenantAdmin)?;
    let (key, version) = issue(&state.app, &caller, request, expected).await?;
    let value = key.key.clone();
    Ok(Envelope::created(key)
        .with_etag(version)
        .with_secret(&value))
}

#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. Values are never shown. A test key sees only the tenant's test keys.", params(PageQuery),
    responses((status = 200, description = "The tenant's keys, newest first", body = Success<Vec<ApiKeyView>>), KeyErrors, ReadErrors))]
pub async fn list_api_keys(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<ApiKeyView>>, ApiError> {
    caller.require(Scope::TenantAdmin)?;
    let (page, per_page) = query.parse()?;
    let window = palisade_infra::readmodel::PageRequest { page, per_page }.into();
    let (keys, total) = list(&state.app, &caller, window).await?;
    Ok(Envelope::page(keys, page, per_page, total))
}

/// Another tenant's key is a 404, like an unknown one.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. A live key is 404 to a test key.",
    params(("id" = String, Path, description = "API key id (apk_…)")),
    responses((status = 200, description = "The key (never its value)", body = Success<ApiKeyView>, headers(("ETag" = String, description = "The tenant aggregate's version"))), KeyErrors, ReadErrors))]
pub async fn get_api_key(
    caller: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<ApiKeyView>, ApiError> {
    caller.require(Scope::TenantAdmin)?;
    let tenant_id = caller.tenant_id.to_string();
    let key = find(&state.app, &caller, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key not found"))?;
    let tenant = find_tenant(&state.app, &tenant_id).await?;
    let version = usize::try_from(tenant.version).unwrap_or(0);
    Ok(Envelope::ok(ApiKeyView::from(key)).with_etag(version))
}

#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Scope tenant:admin. Answered once in effect (503 `unavailable` when the views have not applied it within 10 s: it is recorded, and a retry confirms it), so the key fails from its next request on; its open GraphQL websockets close at their next operation, idle ones within 15 s. A test key can revoke only test keys (a live key is 404 to it).",
    params(("id" = String, Path, description = "API key id (apk_…)"), ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")),
    responses((status = 200, description = "The revoked key", body = Success<ApiKeyView>, headers(("ETag" = String, description = "The tenant aggregate's version"))), KeyErrors, BodyErrors, (status = 404, description = "No such key in this tenant", body = ErrorEnvelope), (status = 412, description = "If-Match does not match the tenant's version", body = ErrorEnvelope), (status = 503, description = "unavailable: recorded, but the views have not applied it within 10 s; retry to confirm", body = ErrorEnvelope)))]
pub async fn revoke_api_key(
    caller: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
) -> Result<Envelope<ApiKeyView>, ApiError> {
    caller.require(Scope::TenantAdmin)?;
    let (key, version) = revoke(&state.app, &caller, &id, expected).await?;
    Ok(Envelope::ok(key).with_etag(version))
}
