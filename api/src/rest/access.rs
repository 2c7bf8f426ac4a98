//! `/v1/access`: just-in-time access (`docs/access.md`). Policies need
//! `tenant:admin`; requests `access:request`; reviews, revocations and
//! statistics `access:approve`. Reads, checks, grants and simulations take
//! either scope: `access:approve` for any principal of the environment,
//! `access:request` for the caller's own.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::{comma_list, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope};
use crate::app::access::{
    self, AccessReader, CheckRequest, CreateAccessRequest, CreatePolicyRequest, RequestQuery,
    ReviewRequest, RevokeRequest, SimulateRequest, UpdatePolicyRequest,
};
use crate::app::auth::{AccessApprover, AccessRequester, TenantAdmin};
use crate::app::input::filter_text;
use crate::app::{Authorized, RequestContext};
use crate::state::AppState;
use crate::views::access::{AccessRequestView, CheckView, PolicyView, SimulationView, StatsView};

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_policy, list_policies))
        .routes(routes!(get_policy, update_policy))
        .routes(routes!(create_request, list_requests))
        .routes(routes!(get_request))
        .routes(routes!(review_request))
        .routes(routes!(withdraw_request))
        .routes(routes!(revoke_request))
        .routes(routes!(check))
        .routes(routes!(grants))
        .routes(routes!(stats))
        .routes(routes!(simulate))
}

/// A caller with `access:request` or `access:approve` (403 otherwise).
impl FromRequestParts<AppState> for AccessReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let context = RequestContext::from_request_parts(parts, state).await?;
        Ok(access::reader(&context)?)
    }
}

/// The query of the access lists: a page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PagingQuery {
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(post, path = "/v1/access/policies", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope tenant:admin. Who may approve access to which resource types, for how long, and when a request approves itself (a time window, a maximum asset risk). An enabled resource type belongs to one enabled policy (409 otherwise); an environment holds at most 100 policies.",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = CreatePolicyRequest,
    responses((status = 201, description = "The policy", body = Success<PolicyView>), KeyErrors, BodyErrors,
              (status = 409, description = "Another enabled policy covers one of the resource types, or the environment holds 100 policies", body = ErrorEnvelope)))]
pub async fn create_policy(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreatePolicyRequest>,
) -> Result<Envelope<PolicyView>, ApiError> {
    let policy = access::create_policy(&state.app, &caller, request).await?;
    Ok(Envelope::created(policy.into()))
}

#[utoipa::path(get, path = "/v1/access/policies", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope tenant:admin. The environment's policies, oldest first.",
    params(PagingQuery),
    responses((status = 200, description = "A page of policies", body = Success<Vec<PolicyView>>), KeyErrors, ReadErrors))]
pub async fn list_policies(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PagingQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<PolicyView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = access::list_access_policies(&state.app, &caller, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/access/policies/{id}", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope tenant:admin. One policy.",
    params(("id" = String, Path, description = "Policy id (acp_…)")),
    responses((status = 200, description = "The policy", body = Success<PolicyView>), KeyErrors, ReadErrors))]
pub async fn get_policy(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<PolicyView>, ApiError> {
    Ok(Envelope::ok(
        access::access_policy(&state.app, &caller, &id)
            .await?
            .into(),
    ))
}

#[utoipa::path(patch, path = "/v1/access/policies/{id}", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope tenant:admin. Absent fields stay as they are; `auto_approve: null` turns auto-approval off, `enabled: false` disables the policy. Requests made earlier keep the terms they were made under.",
    params(("id" = String, Path, description = "Policy id (acp_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdatePolicyRequest,
    responses((status = 200, description = "The policy afterwards", body = Success<PolicyView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such policy", body = ErrorEnvelope)))]
pub async fn update_policy(
    caller: Authorized<TenantAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdatePolicyRequest>,
) -> Result<Envelope<PolicyView>, ApiError> {
    Ok(Envelope::ok(
        access::update_policy(&state.app, &caller, &id, request)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/access/requests", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:request. Asks for access for the key's principal. 422 `no_policy` when no enabled policy covers the resource type; 422 when the duration exceeds the policy's maximum. Approved at once by `system:auto-approve` when the policy's auto-approval conditions hold (the reason says which).",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = CreateAccessRequest,
    responses((status = 201, description = "The request", body = Success<AccessRequestView>), KeyErrors, BodyErrors))]
pub async fn create_request(
    caller: Authorized<AccessRequester>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateAccessRequest>,
) -> Result<Envelope<AccessRequestView>, ApiError> {
    let made = access::request_access(&state.app, &caller, request).await?;
    Ok(Envelope::created(made.into()))
}

/// The query of `GET /v1/access/requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    /// Comma list of `pending`, `approved`, `denied`, `withdrawn`,
    /// `expired`, `ended`, `revoked` (as of now).
    status: Option<String>,
    /// A principal (only one's own without `access:approve`).
    requester: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/access/requests", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve (every principal) or access:request (one's own). Requests, newest first.",
    params(RequestsQuery),
    responses((status = 200, description = "A page of requests", body = Success<Vec<AccessRequestView>>), KeyErrors, ReadErrors))]
pub async fn list_requests(
    caller: AccessReader,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RequestsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<AccessRequestView>>, ApiError> {
    let request_query = RequestQuery {
        statuses: comma_list("status", &query.status)?,
        requester: filter_text("requester", query.requester.as_deref())?,
        resource_type: filter_text("resource_type", query.resource_type.as_deref())?,
        resource_id: filter_text("resource_id", query.resource_id.as_deref())?,
    };
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = access::requests(&state.app, &caller, request_query, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/access/requests/{id}", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve or access:request (one's own). One request with its reviews.",
    params(("id" = String, Path, description = "Request id (acr_…)")),
    responses((status = 200, description = "The request", body = Success<AccessRequestView>), KeyErrors, ReadErrors))]
pub async fn get_request(
    caller: AccessReader,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<AccessRequestView>, ApiError> {
    Ok(Envelope::ok(
        access::access_request(&state.app, &caller, &id)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/access/requests/{id}/review", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve, and an approver of the request's policy. The requester never reviews their own request (403 `self_review`); each reviewer reviews once; a deny decides at once; the request is approved when the policy's N distinct approvals are in. A review of a decided request, or one that lost a race with another, is 409.",
    params(("id" = String, Path, description = "Request id (acr_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = ReviewRequest,
    responses((status = 200, description = "The request afterwards", body = Success<AccessRequestView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such request", body = ErrorEnvelope)))]
pub async fn review_request(
    caller: Authorized<AccessApprover>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> Result<Envelope<AccessRequestView>, ApiError> {
    Ok(Envelope::ok(
        access::review(&state.app, &caller, &id, request)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/access/requests/{id}/withdraw", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:request. The requester withdraws a pending request (403 for anyone else, 409 once decided).",
    params(("id" = String, Path, description = "Request id (acr_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The request afterwards", body = Success<AccessRequestView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such request", body = ErrorEnvelope)))]
pub async fn withdraw_request(
    caller: Authorized<AccessRequester>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<AccessRequestView>, ApiError> {
    Ok(Envelope::ok(
        access::withdraw(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(post, path = "/v1/access/requests/{id}/revoke", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve. Ends an active grant at once: the next check is false.",
    params(("id" = String, Path, description = "Request id (acr_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = RevokeRequest,
    responses((status = 200, description = "The request afterwards", body = Success<AccessRequestView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such request", body = ErrorEnvelope)))]
pub async fn revoke_request(
    caller: Authorized<AccessApprover>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<RevokeRequest>,
) -> Result<Envelope<AccessRequestView>, ApiError> {
    Ok(Envelope::ok(
        access::revoke(&state.app, &caller, &id, request)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/v1/access/check", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve (any principal) or access:request (one's own). Whether the principal holds an active grant for the permission on the resource now: one indexed read of the access view, `expires_at` compared with the clock, so a grant is refused from the instant it ends, before the scheduler records its end. Never reads the event store.",
    request_body = CheckRequest,
    responses((status = 200, description = "The answer", body = Success<CheckView>), KeyErrors, BodyErrors))]
pub async fn check(
    caller: AccessReader,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CheckRequest>,
) -> Result<Envelope<CheckView>, ApiError> {
    Ok(Envelope::ok(
        access::check(&state.app, &caller, request).await?.into(),
    ))
}

/// The query of `GET /v1/access/grants`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantsQuery {
    /// The principal (default: the caller's own; another needs
    /// `access:approve`).
    principal: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/access/grants", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve or access:request (one's own). A principal's active grants, newest first.",
    params(GrantsQuery),
    responses((status = 200, description = "A page of active grants", body = Success<Vec<AccessRequestView>>), KeyErrors, ReadErrors))]
pub async fn grants(
    caller: AccessReader,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<GrantsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<AccessRequestView>>, ApiError> {
    let principal = filter_text("principal", query.principal.as_deref())?;
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = access::grants(&state.app, &caller, principal.as_deref(), paging).await?;
    Ok(Envelope::of_page(page, paging))
}

/// The query of `GET /v1/access/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// `24h` (default), `7d` or `30d`.
    period: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/access/stats", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve. Requests made in the period: how many, approved, denied, expired, the mean time to approval, the most requested resource types; and the grants active now.",
    params(StatsQuery),
    responses((status = 200, description = "The figures", body = Success<StatsView>), KeyErrors, ReadErrors))]
pub async fn stats(
    caller: Authorized<AccessApprover>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StatsQuery>,
    _: Consistency,
) -> Result<Envelope<StatsView>, ApiError> {
    let name = query.period.as_deref().unwrap_or("24h").to_string();
    let period = access::period(Some(&name))?;
    let figures = access::stats(&state.app, &caller, period).await?;
    Ok(Envelope::ok(StatsView::of(&name, figures)))
}

#[utoipa::path(post, path = "/v1/access/simulate", tag = "access", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope access:approve (any principal) or access:request (one's own). Which policy would apply, whether the request would be auto-approved and why, and who could approve it; nothing is recorded.",
    request_body = SimulateRequest,
    responses((status = 200, description = "The simulation", body = Success<SimulationView>), KeyErrors, BodyErrors))]
pub async fn simulate(
    caller: AccessReader,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SimulateRequest>,
) -> Result<Envelope<SimulationView>, ApiError> {
    Ok(Envelope::ok(
        access::simulate(&state.app, &caller, request).await?.into(),
    ))
}
