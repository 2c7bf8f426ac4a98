//! Admin routes: `Authorization: Bearer <admin token>`.

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use palisade_domain::tenant::{Plan, TenantCommand};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::origin_of;
use super::openapi::{BodyErrors, ErrorEnvelope, Success, TenantCommandErrors};
use super::pagination::PageQuery;
use super::query::ApiQuery;
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::app::tenants::{self, CreateTenantRequest};
use crate::app::Origin;
use crate::state::AppState;
use crate::views::tenants::{CreatedTenant, ProjectionStatusView, TenantView};

/// The routes of the admin API (behind [`require_admin`]).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant))
        .routes(routes!(change_plan))
        .routes(routes!(suspend))
        .routes(routes!(reactivate))
        .routes(routes!(projections))
}

/// Proof that the caller holds the admin token, and where its request came
/// from; only admin handlers take it.
pub struct Admin(pub Origin);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        check_admin(&parts.headers, state)?;
        Ok(Admin(origin_of(parts)))
    }
}

/// Middleware for admin routes: the admin token (idempotency keys are the
/// next layer, scope "admin").
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = check_admin(request.headers(), &state) {
        return error.into_response();
    }
    next.run(request).await
}

/// An administrator's command on the tenant of the path: the admin's
/// origin, the tenant id, and the version `If-Match` requires.
pub struct TenantTarget {
    origin: Origin,
    id: String,
    expected: Option<usize>,
}

impl FromRequestParts<AppState> for TenantTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Admin(origin) = Admin::from_request_parts(parts, state).await?;
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let IfMatch(expected) = IfMatch::from_request_parts(parts, state).await?;
        Ok(Self {
            origin,
            id,
            expected,
        })
    }
}

fn check_admin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_admin_token",
            "Admin routes need Authorization: Bearer <admin token>",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if state.admin_token.matches(token.trim()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_admin_token",
            "The admin token is not valid",
        ))
    }
}

/// `POST /v1/admin/tenants`: the tenant and its owner's first key.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin", security(("admin_token" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)")), request_body = CreateTenantRequest,
    responses((status = 201, description = "The tenant and its owner's first key (shown this once; an idempotent replay shows its value as [redacted])", body = Success<CreatedTenant>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              (status = 401, description = "Missing or invalid admin token", body = ErrorEnvelope), (status = 422, description = "Invalid name or plan", body = ErrorEnvelope), BodyErrors))]
pub async fn create_tenant(
    Admin(origin): Admin,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateTenantRequest>,
) -> Result<Envelope<CreatedTenant>, ApiError> {
    // The owner key works from the first request after this answer.
    let created = tenants::create_in_effect(&state.app, &origin, request, "admin").await?;
    let created = CreatedTenant::from(created);
    let version = created.version;
    let value = created.api_key.key.clone();
    Ok(Envelope::created(created)
        .with_etag(version)
        .with_secret(&value))
}

/// `GET /v1/admin/tenants`: newest first, paginated.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin", security(("admin_token" = [])), params(PageQuery),
    responses((status = 200, description = "Tenants, newest first", body = Success<Vec<TenantView>>), (status = 401, description = "Missing or invalid admin token", body = ErrorEnvelope), (status = 422, description = "Bad page, per_page or consistency", body = ErrorEnvelope)))]
pub async fn list_tenants(
    _: Admin,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<TenantView>>, ApiError> {
    let (page, per_page) = query.parse()?;
    let result = tenants::list(&state.app, page, per_page).await?;
    let tenants = result.tenants.into_iter().map(TenantView::from).collect();
    Ok(Envelope::page(tenants, page, per_page, result.total))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanRequest {
    plan: String,
}

/// `GET /v1/admin/tenants/{id}`, with its version as `ETag`.
#[utoipa::path(get, path = "/v1/admin/tenants/{id}", tag = "admin", security(("admin_token" = [])),
    params(("id" = String, Path, description = "Tenant id (ten_…)")),
    responses((status = 200, description = "The tenant", body = Success<TenantView>, headers(("ETag" = String, description = "The tenant aggregate's version"))), (status = 400, description = "A control character in the path", body = ErrorEnvelope), (status = 401, description = "Missing or invalid admin token", body = ErrorEnvelope), (status = 404, description = "No such tenant", body = ErrorEnvelope), (status = 422, description = "Bad consistency", body = ErrorEnvelope)))]
pub async fn get_tenant(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<TenantView>, ApiError> {
    let row = tenants::get(&state.app, &id).await?;
    let version = usize::try_from(row.version).unwrap_or(0);
    Ok(Envelope::ok(TenantView::from(row)).with_etag(version))
}

/// Runs an administrator's command and answers with the tenant afterwards.
async fn administer(
    state: &AppState,
    target: TenantTarget,
    command: TenantCommand,
) -> Result<Envelope<TenantView>, ApiError> {
    let TenantTarget {
        origin,
        id,
        expected,
    } = target;
    let (tenant, version) =
        tenants::administer(&state.app, &origin, &id, command, expected).await?;
    Ok(Envelope::ok(TenantView::from(tenant)).with_etag(version))
}

/// `POST /v1/admin/tenants/{id}/plan`.
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/plan", tag = "admin", security(("admin_token" = [])), description = "Change the plan",
    params(("id" = String, Path, description = "Tenant id (ten_…)"), ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")), request_body = ChangePlanRequest,
    responses((status = 200, description = "The tenant after the command", body = Success<TenantView>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              TenantCommandErrors, BodyErrors))]
pub async fn change_plan(
    target: TenantTarget,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChangePlanRequest>,
) -> Result<Envelope<TenantView>, ApiError> {
    let plan: Plan = request
        .plan
        .parse()
        .map_err(|message: String| ApiError::invalid_field("plan", message))?;
    let command = TenantCommand::ChangePlan {
        plan,
        at: Utc::now(),
    };
    administer(&state, target, command).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /v1/admin/tenants/{id}/suspend`; the body (`{"reason"}`) is optional.
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/suspend", tag = "admin", security(("admin_token" = [])), description = "Suspend: every key then gets 403 tenant_suspended. Answered once in effect (503 `unavailable` when the views have not applied it within 10 s: it is recorded, and a retry confirms it)",
    params(("id" = String, Path, description = "Tenant id (ten_…)"), ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")), request_body(content = Option<SuspendRequest>, description = "Optional reason"),
    responses((status = 200, description = "The tenant after the command", body = Success<TenantView>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              TenantCommandErrors, BodyErrors))]
pub async fn suspend(
    target: TenantTarget,
    State(state): State<AppState>,
    // `null` is the same as no body (the document allows both).
    body: Option<ApiJson<Option<SuspendRequest>>>,
) -> Result<Envelope<TenantView>, ApiError> {
    let reason = body.and_then(|ApiJson(b)| b).and_then(|b| b.reason);
    let command = TenantCommand::Suspend {
        reason,
        at: Utc::now(),
    };
    administer(&state, target, command).await
}

/// `POST /v1/admin/tenants/{id}/reactivate`.
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/reactivate", tag = "admin", security(("admin_token" = [])), description = "Reactivate",
    params(("id" = String, Path, description = "Tenant id (ten_…)"), ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true; a new key value shows as [redacted], Idempotent-Redacted: true)"), ("If-Match" = Option<String>, Header, description = "The tenant version (ETag) this command requires; 412 when it differs")), 
    responses((status = 200, description = "The tenant after the command", body = Success<TenantView>, headers(("ETag" = String, description = "The tenant aggregate's version"))),
              TenantCommandErrors, BodyErrors))]
pub async fn reactivate(
    target: TenantTarget,
    State(state): State<AppState>,
) -> Result<Envelope<TenantView>, ApiError> {
    let command = TenantCommand::Reactivate { at: Utc::now() };
    administer(&state, target, command).await
}

/// `GET /v1/admin/projections`.
#[utoipa::path(get, path = "/v1/admin/projections", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "Each projection's checkpoint, lag and where it runs", body = Success<Vec<ProjectionStatusView>>), (status = 401, description = "Missing or invalid admin token", body = ErrorEnvelope)))]
pub async fn projections(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Envelope<Vec<ProjectionStatusView>>, ApiError> {
    let statuses = state.app.projection_status().await?;
    let views = statuses
        .into_iter()
        .map(ProjectionStatusView::from)
        .collect();
    Ok(Envelope::ok(views))
}
