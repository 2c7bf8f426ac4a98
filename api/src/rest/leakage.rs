//! `/v1/leakage/incidents`: reported leaks of secrets, with their
//! timelines. Reads need `secrets:read`; reports and updates
//! `secrets:write`. A leak check (`POST /v1/secrets/leak-check/{path}`)
//! that matches an active version opens one too.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::{comma_list, time, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope};
use crate::app::auth::{SecretsRead, SecretsWrite};
use crate::app::leakage::{self, IncidentQuery, ReportIncidentRequest, UpdateIncidentRequest};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::secrets::IncidentView;

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report_incident, list_incidents))
        .routes(routes!(get_incident, update_incident))
}

#[utoipa::path(post, path = "/v1/leakage/incidents", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Reports a leak of the secret at `path`; the secret shows `leaked: true` until a version is written after it.",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = ReportIncidentRequest,
    responses((status = 201, description = "The incident", body = Success<IncidentView>), KeyErrors, BodyErrors,
              (status = 404, description = "No secret at this path", body = ErrorEnvelope)))]
pub async fn report_incident(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ReportIncidentRequest>,
) -> Result<Envelope<IncidentView>, ApiError> {
    let incident = leakage::report_incident(&state.app, &caller, request).await?;
    Ok(Envelope::created(incident.into()))
}

/// The query of `GET /v1/leakage/incidents`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Comma list of `open`, `investigating`, `resolved`, `false_positive`.
    status: Option<String>,
    /// Comma list of `critical`, `high`, `medium`, `low`, `info`.
    severity: Option<String>,
    /// Reported at or after this time (RFC 3339).
    since: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/leakage/incidents", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. The caller's environment's incidents, newest first.",
    params(IncidentsQuery),
    responses((status = 200, description = "A page of incidents", body = Success<Vec<IncidentView>>), KeyErrors, ReadErrors))]
pub async fn list_incidents(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<IncidentsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<IncidentView>>, ApiError> {
    let incident_query = IncidentQuery {
        status: comma_list("status", &query.status)?,
        severity: comma_list("severity", &query.severity)?,
        since: time("since", &query.since)?,
    };
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = leakage::incidents(&state.app, &caller, incident_query, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/leakage/incidents/{id}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:read. One incident with its timeline.",
    params(("id" = String, Path, description = "Incident id (lki_…)")),
    responses((status = 200, description = "The incident", body = Success<IncidentView>), KeyErrors, ReadErrors,
              (status = 404, description = "No such incident", body = ErrorEnvelope)))]
pub async fn get_incident(
    caller: Authorized<SecretsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<IncidentView>, ApiError> {
    Ok(Envelope::ok(
        leakage::incident(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(patch, path = "/v1/leakage/incidents/{id}", tag = "secrets", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope secrets:write. Status (investigating, resolved, false_positive; closing needs a resolution), resolution, notes. A closed incident no longer changes (409).",
    params(("id" = String, Path, description = "Incident id (lki_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdateIncidentRequest,
    responses((status = 200, description = "The incident afterwards", body = Success<IncidentView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such incident", body = ErrorEnvelope),
              (status = 409, description = "The incident is closed", body = ErrorEnvelope)))]
pub async fn update_incident(
    caller: Authorized<SecretsWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateIncidentRequest>,
) -> Result<Envelope<IncidentView>, ApiError> {
    Ok(Envelope::ok(
        leakage::update_incident(&state.app, &caller, &id, request)
            .await?
            .into(),
    ))
}
