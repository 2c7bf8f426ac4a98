//! `/v1/secrets`: the secret store, on Vault KV v2's paths. Values and
//! metadata are read with `secrets:read`; every change needs
//! `secrets:write`. `{path}` is the secret's path and may hold `/`
//! (`app/db/password`). Metadata answers carry the secret's version as
//! `ETag`; `PATCH` takes `If-Match`.
//!
//! A value appears only in the answer of `GET /v1/secrets/data/{path}`,
//! which is recorded in the audit trail before it is answered.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::ApiQuery;
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::app::auth::{SecretsRead, SecretsWrite, TenantAdmin};
use crate::app::leakage::{self, LeakCheckRequest};
use crate::app::secrets::{
    self, CompareRequest, DeleteVersionsRequest, RollbackRequest, SecretDetail,
    SecretsConfigRequest, UpdateMetadataRequest, VersionRequest, VersionsAction, VersionsRequest,
    WriteSecretRequest,
};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::secrets::{
    ComparisonView, LeakCheckView, SecretActivityView, SecretMetadataView, SecretStatsView,
    SecretSummaryView, SecretValueView, SecretWrittenView, SecretsConfigView,
};

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (the body is kept as a keyed fingerprint, never in clear)";

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(write_secret, read_secret))
        .routes(routes!(list_secrets))
        .routes(routes!(get_metadata, update_metadata, delete_secret))
        .routes(routes!(delete_versions))
        .routes(routes!(undelete_versions))
        .routes(routes!(destroy_versions))
        .routes(routes!(rollback))
        .routes(routes!(deprecate))
        .routes(routes!(compare))
        .routes(routes!(secret_audit))
        .routes(routes!(secret_stats))
        .routes(routes!(leak_check))
        .routes(routes!(get_config, set_config))
}

fn detail(detail: SecretDetail) -> Envelope<SecretMetadataView> {
    let version = usize::try_from(detail.found.secret.version).unwrap_or(0);
    Envelope::ok(SecretMetadataView::from(detail)).with_etag(version)
}

/// The query of `GET /v1/secrets/data/{path}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// The version to read; the current one when absent.
    #[param(value_type = Option<u32>)]
    version: Option<String>,
}

#[utoipa::path(put, path = "/v1/secrets/data/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Writes the next version (creating the secret). With cas, only when cas is the current version (0: only when the secret does not exist); 409 cas_mismatch names the current version. A secret with cas_required refuses writes without cas (422 cas_required). Past max_versions the oldest versions are destroyed. The value is sealed in its own table; events carry only its size and keyed fingerprint.",
    params(("path" = String, Path, description = "The secret's path: /-separated segments of A-Z a-z 0-9 . _ - (at most 512 characters)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = WriteSecretRequest,
    responses((status = 200, description = "The version written", body = Success<SecretWrittenView>), KeyErrors, BodyErrors,
              (status = 409, description = "cas_mismatch: the current version is another", body = ErrorEnvelope)))]
pub async fn write_secret(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiJson(request): ApiJson<WriteSecretRequest>,
) -> Result<Envelope<SecretWrittenView>, ApiError> {
    let written = secrets::write(&state.app, &caller, &path, request).await?;
    Ok(Envelope::ok(written.into()))
}

#[utoipa::path(get, path = "/v1/secrets/data/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. A version's value (the current one by default). Every read is recorded (a SecretRead event: version, reader, request id) before the value is answered. A deleted or destroyed version is 404 with details naming its state and deletion_time.",
    params(("path" = String, Path, description = "The secret's path"), ReadQuery),
    responses((status = 200, description = "The value", body = Success<SecretValueView>), KeyErrors, ReadErrors,
              (status = 404, description = "No such secret or version, or the version is deleted or destroyed", body = ErrorEnvelope)))]
pub async fn read_secret(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiQuery(query): ApiQuery<ReadQuery>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let version =
        match query.version.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
                ApiError::invalid_field("version", "must be a whole number from 1")
            })?),
        };
    let read = secrets::read(&state.app, &caller, &path, version).await?;
    // A value is never kept by a cache on the way.
    let no_store = [
        (axum::http::header::CACHE_CONTROL, "no-store"),
        (axum::http::header::PRAGMA, "no-cache"),
    ];
    Ok((no_store, Envelope::<SecretValueView>::ok(read.into())))
}

/// The query of `GET /v1/secrets/metadata`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Paths that start with this (`app/`).
    prefix: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/secrets/metadata", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. The caller's environment's secrets by path (never values).",
    params(ListQuery),
    responses((status = 200, description = "A page of secrets", body = Success<Vec<SecretSummaryView>>), KeyErrors, ReadErrors))]
pub async fn list_secrets(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<SecretSummaryView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = secrets::list(&state.app, &caller, query.prefix.as_deref(), paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/secrets/metadata/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. The secret's metadata and every version's state (never values).",
    params(("path" = String, Path, description = "The secret's path")),
    responses((status = 200, description = "The metadata", body = Success<SecretMetadataView>, headers(("ETag" = String, description = "The secret's version"))), KeyErrors, ReadErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope)))]
pub async fn get_metadata(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    _: Consistency,
) -> Result<Envelope<SecretMetadataView>, ApiError> {
    Ok(detail(secrets::metadata(&state.app, &caller, &path).await?))
}

#[utoipa::path(patch, path = "/v1/secrets/metadata/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. max_versions (lowering it destroys the excess at once), cas_required, delete_version_after, custom_metadata.",
    params(("path" = String, Path, description = "The secret's path"),
           ("If-Match" = Option<String>, Header, description = "The secret version (ETag) this command requires; 412 when it differs"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdateMetadataRequest,
    responses((status = 200, description = "The metadata afterwards", body = Success<SecretMetadataView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope),
              (status = 412, description = "If-Match does not match", body = ErrorEnvelope)))]
pub async fn update_metadata(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    IfMatch(expected): IfMatch,
    ApiJson(request): ApiJson<UpdateMetadataRequest>,
) -> Result<Envelope<SecretMetadataView>, ApiError> {
    Ok(detail(
        secrets::update_metadata(&state.app, &caller, &path, request, expected).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/secrets/metadata/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Destroys every version, deletes the secret's data key and removes its metadata; the path is free again. Its audit stays. Answers the secret as it was.",
    params(("path" = String, Path, description = "The secret's path"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The secret as it was", body = Success<SecretMetadataView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope)))]
pub async fn delete_secret(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<Envelope<SecretMetadataView>, ApiError> {
    let was = secrets::delete_all(&state.app, &caller, &path).await?;
    Ok(Envelope::ok(was.into()))
}

macro_rules! versions_command {
    ($name:ident, $path:literal, $action:expr, $request:ty, $description:literal) => {
        #[utoipa::path(post, path = $path, tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
            description = $description,
            params(("path" = String, Path, description = "The secret's path"),
                   ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
            request_body = $request,
            responses((status = 200, description = "The metadata afterwards", body = Success<SecretMetadataView>), KeyErrors, BodyErrors,
                      (status = 404, description = "No such secret", body = ErrorEnvelope)))]
        pub async fn $name(
            caller: Authorized<SecretsWrite>,
            State(state): State<AppState>,
            Path(path): Path<String>,
            ApiJson(request): ApiJson<$request>,
        ) -> Result<Envelope<SecretMetadataView>, ApiError> {
            Ok(detail(
                secrets::change_versions(&state.app, &caller, &path, $action, request.versions)
                    .await?,
            ))
        }
    };
}

versions_command!(delete_versions, "/v1/secrets/delete/{*path}", VersionsAction::Delete, DeleteVersionsRequest,
    "Scope secrets:write. Soft-deletes versions (the current one when versions is absent or empty); undelete restores them. Versions already deleted or destroyed, and versions the secret never had, are left as they are.");
versions_command!(
    undelete_versions,
    "/v1/secrets/undelete/{*path}",
    VersionsAction::Undelete, VersionsRequest,
    "Scope secrets:write. Restores soft-deleted versions; a destroyed version is never restored. Versions the secret never had are left out."
);
versions_command!(destroy_versions, "/v1/secrets/destroy/{*path}", VersionsAction::Destroy, VersionsRequest,
    "Scope secrets:write. Destroys versions for good: their sealed rows are deleted (on SQLite the freed pages are zeroed and the log truncated).");

#[utoipa::path(post, path = "/v1/secrets/rollback/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Writes a new version with the value of `version`, which must be readable (active or deprecated).",
    params(("path" = String, Path, description = "The secret's path"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = RollbackRequest,
    responses((status = 200, description = "The version written", body = Success<SecretWrittenView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope),
              (status = 409, description = "The version is deleted or destroyed", body = ErrorEnvelope)))]
pub async fn rollback(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiJson(request): ApiJson<RollbackRequest>,
) -> Result<Envelope<SecretWrittenView>, ApiError> {
    Ok(Envelope::ok(
        secrets::rollback(&state.app, &caller, &path, request)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/secrets/deprecate/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Flags a version as deprecated: still readable, shown as such.",
    params(("path" = String, Path, description = "The secret's path"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = VersionRequest,
    responses((status = 200, description = "The metadata afterwards", body = Success<SecretMetadataView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope),
              (status = 409, description = "The version is deleted or destroyed", body = ErrorEnvelope)))]
pub async fn deprecate(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiJson(request): ApiJson<VersionRequest>,
) -> Result<Envelope<SecretMetadataView>, ApiError> {
    Ok(detail(
        secrets::deprecate(&state.app, &caller, &path, request).await?,
    ))
}

#[utoipa::path(post, path = "/v1/secrets/compare/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. Whether two versions hold the same value, from their keyed fingerprints (no value is read or recorded).",
    params(("path" = String, Path, description = "The secret's path")),
    request_body = CompareRequest,
    responses((status = 200, description = "The comparison", body = Success<ComparisonView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope)))]
pub async fn compare(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiJson(request): ApiJson<CompareRequest>,
) -> Result<Envelope<ComparisonView>, ApiError> {
    Ok(Envelope::ok(
        secrets::compare(&state.app, &caller, &path, request)
            .await?
            .into(),
    ))
}

/// The query of `GET /v1/secrets/audit/{path}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/secrets/audit/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. The secret's events, oldest first: created, read, deprecated, deleted, undeleted, destroyed, rolled_back, metadata_updated, secret_deleted, with actor and time.",
    params(("path" = String, Path, description = "The secret's path"), AuditQuery),
    responses((status = 200, description = "A page of the secret's activity", body = Success<Vec<SecretActivityView>>), KeyErrors, ReadErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope)))]
pub async fn secret_audit(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiQuery(query): ApiQuery<AuditQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<SecretActivityView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = secrets::audit(&state.app, &caller, &path, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/secrets/stats", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. Secrets and versions in the caller's environment, versions by state.",
    responses((status = 200, description = "The counts", body = Success<SecretStatsView>), KeyErrors, ReadErrors))]
pub async fn secret_stats(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    _: Consistency,
) -> Result<Envelope<SecretStatsView>, ApiError> {
    Ok(Envelope::ok(
        secrets::stats(&state.app, &caller).await?.into(),
    ))
}

#[utoipa::path(post, path = "/v1/secrets/leak-check/{*path}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. Whether a candidate (text found somewhere) is one of the secret's values: its keyed fingerprint is compared with every version's in constant time; the candidate is never stored or logged. A match with an active version opens a leakage incident (one per version while it is open).",
    params(("path" = String, Path, description = "The secret's path"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = LeakCheckRequest,
    responses((status = 200, description = "Whether it matched", body = Success<LeakCheckView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such secret", body = ErrorEnvelope)))]
pub async fn leak_check(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(path): Path<String>,
    ApiJson(request): ApiJson<LeakCheckRequest>,
) -> Result<Envelope<LeakCheckView>, ApiError> {
    Ok(Envelope::ok(
        leakage::leak_check(&state.app, &caller, &path, request)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/v1/secrets/config", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. The secret store's defaults in the caller's environment.",
    responses((status = 200, description = "The defaults", body = Success<SecretsConfigView>), KeyErrors, ReadErrors))]
pub async fn get_config(
    caller: Authorized<SecretsRead>,
) -> Result<Envelope<SecretsConfigView>, ApiError> {
    Ok(Envelope::ok(secrets::config(&caller).into()))
}

#[utoipa::path(patch, path = "/v1/secrets/config", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope tenant:admin. Sets the defaults of the caller's environment: with cas_required, every write there needs cas (as Vault's engine-wide cas_required). In force before the answer.",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = SecretsConfigRequest,
    responses((status = 200, description = "The defaults afterwards", body = Success<SecretsConfigView>), KeyErrors, BodyErrors))]
pub async fn set_config(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SecretsConfigRequest>,
) -> Result<Envelope<SecretsConfigView>, ApiError> {
    Ok(Envelope::ok(
        secrets::configure(&state.app, &caller, request)
            .await?
            .into(),
    ))
}
