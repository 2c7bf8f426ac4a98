//! `/v1/findings`: ingest (deduplicated), bulk ingest, list, get, history
//! and the triage commands. Reads need `findings:read`, commands
//! `findings:write`. Responses about one finding carry its version as `ETag`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use palisade_domain::finding::{FindingCommand, Severity, Status};
use palisade_infra::readmodel::{FindingFilter, FindingSort, Order, PageRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BodyErrors, CommandErrors, KeyErrors, ReadErrors, Success};
use super::pagination::PageQuery;
use super::query::{comma_list, number, text, time, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::app::auth::{FindingsRead, FindingsWrite};
use crate::app::findings::{self, BulkIngestRequest, IngestFindingRequest};
use crate::app::input::parse_time;
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::findings::{BulkIngestResult, FindingView, HistoryEntry, IngestedFinding};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest_finding, list))
        .routes(routes!(ingest_bulk))
        .routes(routes!(get))
        .routes(routes!(history))
        .routes(routes!(confirm))
        .routes(routes!(dismiss))
        .routes(routes!(accept_risk))
        .routes(routes!(remediate))
        .routes(routes!(reopen))
        .routes(routes!(assign))
        .routes(routes!(change_severity))
        .routes(routes!(link_ticket))
        .routes(routes!(comment))
}

fn etag(version: i64) -> usize {
    usize::try_from(version).unwrap_or(0)
}

/// Ingest one finding. A new fingerprint answers 201; a known one (same
/// tenant and environment) re-observes that finding and answers 200 with
/// `"deduplicated": true`.
#[utoipa::path(post, path = "/v1/findings", tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)")),
    request_body = IngestFindingRequest,
    responses((status = 201, description = "Created", body = Success<IngestedFinding>), (status = 200, description = "Deduplicated: the existing finding, re-observed", body = Success<IngestedFinding>), KeyErrors, BodyErrors))]
pub async fn ingest_finding(
    caller: Authorized<FindingsWrite>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<IngestFindingRequest>,
) -> Result<Envelope<IngestedFinding>, ApiError> {
    let ingested = IngestedFinding::from(findings::ingest(&state.app, &caller, request).await?);
    let status = if ingested.deduplicated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let version = etag(ingested.finding.version);
    Ok(Envelope::with_status(status, ingested).with_etag(version))
}

/// Ingest up to 1,000 findings. Each item is validated and ingested on its
/// own: good items are kept whatever happens to the others. An empty list,
/// or a 1,001st item, is a 422 naming `findings`: the body is not parsed
/// past it.
#[utoipa::path(post, path = "/v1/findings/bulk", tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)")),
    request_body = BulkIngestRequest,
    responses((status = 200, description = "One result per item, in order", body = Success<BulkIngestResult>), KeyErrors, BodyErrors))]
pub async fn ingest_bulk(
    caller: Authorized<FindingsWrite>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<BulkIngestRequest>,
) -> Result<Envelope<BulkIngestResult>, ApiError> {
    let outcomes = findings::ingest_bulk(&state.app, &caller, request).await?;
    Ok(Envelope::ok(BulkIngestResult::from_outcomes(outcomes)))
}

/// The query of `GET /v1/findings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FindingsQuery {
    /// At most 200 characters, as every text filter (422 beyond).
    product: Option<String>,
    category: Option<String>,
    /// Comma list, e.g. `critical,high`; at most 50 distinct values.
    severity: Option<String>,
    /// Comma list, e.g. `open,confirmed`; at most 50 distinct values.
    status: Option<String>,
    /// Asset id (`ast_…`) or identifier.
    asset: Option<String>,
    cve: Option<String>,
    assignee: Option<String>,
    tag: Option<String>,
    /// Case-insensitive substring of title or description; at most 200
    /// characters.
    search: Option<String>,
    /// RFC 3339.
    created_after: Option<String>,
    /// RFC 3339.
    created_before: Option<String>,
    /// 0–100.
    #[param(value_type = Option<f64>)]
    min_risk: Option<String>,
    /// `created_at` (default), `updated_at`, `severity`, `risk` or `title`.
    #[param(schema_with = finding_sorts)]
    sort: Option<String>,
    /// `asc` or `desc` (default).
    order: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

fn finding_sorts() -> utoipa::openapi::Object {
    super::openapi::one_of(&["created_at", "updated_at", "severity", "risk", "title"])
}

pub(super) fn parse_order(value: &Option<String>) -> Result<Order, ApiError> {
    match text(value).as_deref() {
        None | Some("desc") => Ok(Order::Desc),
        Some("asc") => Ok(Order::Asc),
        Some(_) => Err(ApiError::invalid_field("order", "must be asc or desc")),
    }
}

pub(super) fn parse_paging(
    page: &Option<String>,
    per_page: &Option<String>,
) -> Result<PageRequest, ApiError> {
    let (page, per_page) = PageQuery::new(page.clone(), per_page.clone()).parse()?;
    Ok(PageRequest { page, per_page })
}

impl FindingsQuery {
    pub(crate) fn parse(
        &self,
    ) -> Result<(FindingFilter, FindingSort, Order, PageRequest), ApiError> {
        // Free text is checked by the use case, as for every adapter.
        let filter = FindingFilter {
            product: self.product.clone(),
            category: self.category.clone(),
            severities: comma_list::<Severity>("severity", &self.severity)?,
            statuses: comma_list::<Status>("status", &self.status)?,
            asset: self.asset.clone(),
            cve: self.cve.clone(),
            assignee: self.assignee.clone(),
            tag: self.tag.clone(),
            search: self.search.clone(),
            created_after: time("created_after", &self.created_after)?,
            created_before: time("created_before", &self.created_before)?,
            min_risk: number("min_risk", &self.min_risk, 0.0, 100.0)?,
        };
        let sort = match text(&self.sort).as_deref() {
            None | Some("created_at") => FindingSort::CreatedAt,
            Some("updated_at") => FindingSort::UpdatedAt,
            Some("severity") => FindingSort::Severity,
            Some("risk") => FindingSort::Risk,
            Some("title") => FindingSort::Title,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "sort",
                    "must be one of created_at, updated_at, severity, risk, title",
                ))
            }
        };
        Ok((
            filter,
            sort,
            parse_order(&self.order)?,
            parse_paging(&self.page, &self.per_page)?,
        ))
    }
}

#[utoipa::path(get, path = "/v1/findings", tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
    params(FindingsQuery),
    responses((status = 200, description = "A page of findings", body = Success<Vec<FindingView>>), KeyErrors, ReadErrors))]
pub async fn list(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<FindingsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<FindingView>>, ApiError> {
    let (filter, sort, order, paging) = query.parse()?;
    let page = findings::list(&state.app, &caller, filter, sort, order, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/findings/{id}", tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Finding id (fnd_…)"), ("consistency" = Option<String>, Query, description = "`strong` waits until the views reflect every earlier write")),
    responses((status = 200, description = "The finding", body = Success<FindingView>, headers(("ETag" = String, description = "The finding's version"))), KeyErrors, ReadErrors))]
pub async fn get(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<FindingView>, ApiError> {
    let row = findings::get(&state.app, &caller, &id).await?;
    let version = etag(row.version);
    Ok(Envelope::ok(FindingView::from(row)).with_etag(version))
}

/// Read from the event store itself, so it is never behind.
#[utoipa::path(get, path = "/v1/findings/{id}/history", tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Finding id (fnd_…)")),
    responses((status = 200, description = "Its events, oldest first, with actor and time", body = Success<Vec<HistoryEntry>>), KeyErrors, ReadErrors))]
pub async fn history(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<Vec<HistoryEntry>>, ApiError> {
    let records = findings::history(&state.app, &caller, &id).await?;
    Ok(Envelope::ok(
        records.into_iter().map(HistoryEntry::from).collect(),
    ))
}

/// Runs one triage command and answers with the finding afterwards.
async fn run(
    state: &AppState,
    caller: &Authorized<FindingsWrite>,
    id: &str,
    expected: Option<usize>,
    command: FindingCommand,
) -> Result<Envelope<FindingView>, ApiError> {
    let row = findings::triage(&state.app, caller, id, command, expected).await?;
    let version = etag(row.version);
    Ok(Envelope::ok(FindingView::from(row)).with_etag(version))
}

/// No fields: the body may be omitted or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissRequest {
    /// Why (required), e.g. "false positive: input is parameterised".
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRiskRequest {
    pub reason: String,
    /// RFC 3339, in the future and within a year; the finding reopens then.
    pub expires_at: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// Who owns the finding now; `null` unassigns.
    pub assignee: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityRequest {
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    /// e.g. `jira`
    pub system: String,
    /// e.g. `SEC-123`
    pub ticket_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentRequest {
    pub body: String,
}

macro_rules! finding_command {
    ($(#[$doc:meta])* $name:ident, $path:literal, $body:ty, |$request:ident| $command:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "findings", security(("api_key" = []), ("bearer_api_key" = [])),
            params(("id" = String, Path, description = "Finding id (fnd_…)"),
                   ("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)"),
                   ("If-Match" = Option<String>, Header, description = "The finding's version (ETag) this command requires; 412 when it differs")),
            request_body = $body,
            responses((status = 200, description = "The finding afterwards", body = Success<FindingView>, headers(("ETag" = String, description = "The finding's version"))), KeyErrors, CommandErrors, BodyErrors))]
        pub async fn $name(
            caller: Authorized<FindingsWrite>,
            State(state): State<AppState>,
            Path(id): Path<String>,
            IfMatch(expected): IfMatch,
            body: Option<ApiJson<$body>>,
        ) -> Result<Envelope<FindingView>, ApiError> {
            let $request: Option<$body> = body.map(|ApiJson(b)| b);
            let command: Result<FindingCommand, ApiError> = $command;
            run(&state, &caller, &id, expected, command?).await
        }
    };
}

fn required<T>(body: Option<T>) -> Result<T, ApiError> {
    body.ok_or_else(|| ApiError::invalid_field("body", "a JSON body is required"))
}

finding_command!(
    /// open → confirmed.
    confirm, "/v1/findings/{id}/confirm", EmptyRequest,
    |request| { let _ = request; Ok(FindingCommand::Confirm { at: Utc::now() }) });
finding_command!(
    /// open or confirmed → dismissed (reason required).
    dismiss, "/v1/findings/{id}/dismiss", DismissRequest,
    |request| required(request).map(|r| FindingCommand::Dismiss { reason: r.reason, at: Utc::now() }));
finding_command!(
/// open or confirmed → risk_accepted until `expires_at`; then it reopens.
accept_risk, "/v1/findings/{id}/accept-risk", AcceptRiskRequest,
|request| {
    required(request).and_then(|r| Ok(FindingCommand::AcceptRisk {
        reason: r.reason,
        expires_at: parse_time("expires_at", &r.expires_at)?,
        at: Utc::now(),
    }))
});
finding_command!(
    /// open, confirmed or risk_accepted → remediated.
    remediate, "/v1/findings/{id}/remediate", EmptyRequest,
    |request| { let _ = request; Ok(FindingCommand::Remediate { at: Utc::now() }) });
finding_command!(
    /// dismissed, risk_accepted or remediated → open.
    reopen, "/v1/findings/{id}/reopen", ReopenRequest,
    |request| Ok(FindingCommand::Reopen { reason: request.and_then(|r| r.reason), at: Utc::now() }));
finding_command!(
    /// Sets or clears the assignee.
    assign, "/v1/findings/{id}/assign", AssignRequest,
    |request| required(request).map(|r| FindingCommand::Assign { assignee: r.assignee, at: Utc::now() }));
finding_command!(
/// Changes the severity (and with it the default risk).
change_severity, "/v1/findings/{id}/severity", SeverityRequest,
|request| {
    required(request).and_then(|r| Ok(FindingCommand::ChangeSeverity {
        severity: r.severity.trim().parse::<Severity>().map_err(|m| ApiError::invalid_field("severity", m))?,
        reason: r.reason,
        at: Utc::now(),
    }))
});
finding_command!(
    /// Links a ticket (`system`, `ticket_id`); linking it again changes nothing.
    link_ticket, "/v1/findings/{id}/ticket", TicketRequest,
    |request| required(request).map(|r| FindingCommand::LinkTicket { system: r.system, ticket_id: r.ticket_id, at: Utc::now() }));
finding_command!(
/// Adds a comment, authored by the key's principal.
comment, "/v1/findings/{id}/comments", CommentRequest,
|request| required(request).map(|r| findings::comment(r.body)));
