//! The audit trail: `GET /v1/audit/events` (pages, oldest first),
//! `GET /v1/audit/stream` (SSE, live) and `GET /v1/audit/verify` (the hash
//! chain). Scope `audit:read`; only the key's tenant and environment.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use palisade_infra::readmodel::AuditFilter;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{comma_items, time, whole, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::app::audit;
use crate::app::auth::AuditRead;
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::audit::{AuditEventView, ChainReportView};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(stream))
        .routes(routes!(verify))
}

/// The query of `GET /v1/audit/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditEventsQuery {
    /// e.g. `Finding`, `Tenant`.
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    /// Comma list of event types, e.g. `FindingDismissed,ApiKeyRevoked`;
    /// at most 50 distinct values.
    event_type: Option<String>,
    /// The principal that caused the event.
    actor: Option<String>,
    /// Only events at or after this time (RFC 3339).
    since: Option<String>,
    /// Only events before this time (RFC 3339).
    until: Option<String>,
    /// Only records after this seq.
    #[param(value_type = Option<i64>)]
    after: Option<String>,
    /// `meta.next_cursor` of the previous page: a seq, as `after` (given
    /// both, the later one counts).
    #[param(value_type = Option<i64>, minimum = 0)]
    cursor: Option<String>,
    /// 1 to 500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

/// The query of `GET /v1/audit/stream`: the same filters; `after` is
/// overridden by a `Last-Event-ID` header.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditStreamQuery {
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    /// Comma list of event types; at most 50 distinct values.
    event_type: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Start after this seq (default 0: the whole trail, then live).
    #[param(value_type = Option<i64>)]
    after: Option<String>,
}

/// One frame of `GET /v1/audit/stream`, as OpenAPI 3.1 describes a
/// server-sent event (each event, not the stream, is the schema).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditStreamEvent {
    /// The record's seq; absent on the `error` frame.
    #[schema(pattern = "^[0-9]+$")]
    id: Option<String>,
    /// The record's event type, or `error` on a last frame.
    event: Option<String>,
    /// JSON: an `AuditEventView`, or on the `error` frame the error envelope.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The filters both endpoints share (free text is checked by the use case).
fn audit_filter(
    aggregate_type: &Option<String>,
    aggregate_id: &Option<String>,
    event_type: &Option<String>,
    actor: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<AuditFilter, ApiError> {
    Ok(AuditFilter {
        aggregate_type: aggregate_type.clone(),
        aggregate_id: aggregate_id.clone(),
        event_types: comma_items(event_type),
        actor: actor.clone(),
        since: time("since", since)?,
        until: time("until", until)?,
    })
}

/// A seq: a whole number, 0 or more (absent: 0; blank: refused).
fn seq(field: &str, value: Option<&str>) -> Result<i64, ApiError> {
    let Some(value) = value.map(str::trim) else {
        return Ok(0);
    };
    value
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ApiError::invalid_field(field, "must be an audit seq (a whole number, 0 or more)")
        })
}

#[utoipa::path(get, path = "/v1/audit/events", tag = "audit", security(("api_key" = []), ("bearer_api_key" = [])),
    params(AuditEventsQuery),
    responses((status = 200, description = "Audit records, oldest first; `meta.next_cursor` for the next page", body = Success<Vec<AuditEventView>>), KeyErrors, ReadErrors))]
pub async fn events(
    caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditEventsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<AuditEventView>>, ApiError> {
    let filter = audit_filter(
        &query.aggregate_type,
        &query.aggregate_id,
        &query.event_type,
        &query.actor,
        &query.since,
        &query.until,
    )?;
    // Both mean "after this seq"; given both, the later one.
    let after = seq("after", query.after.as_deref())?.max(seq("cursor", query.cursor.as_deref())?);
    let limit = whole("limit", &query.limit, 100, 1, 500)?;
    let page = audit::list(&state.app, &caller, filter, after, limit).await?;
    let records = page.records.into_iter().map(AuditEventView::from).collect();
    let next = page.next_cursor.map(|seq| seq.to_string());
    Ok(Envelope::cursor_page(records, next))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("consistency" = Option<String>, Query, description = "`strong` waits until the views reflect every earlier write")),
    responses((status = 200, description = "Whether the tenant environment's chain is intact", body = Success<ChainReportView>), KeyErrors, ReadErrors))]
pub async fn verify(
    caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    _: Consistency,
) -> Result<Envelope<ChainReportView>, ApiError> {
    Ok(Envelope::ok(
        audit::verify(&state.app, &caller).await?.into(),
    ))
}

#[utoipa::path(get, path = "/v1/audit/stream", tag = "audit", security(("api_key" = []), ("bearer_api_key" = [])),
    params(AuditStreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this seq (what the last `id:` said)")),
    responses((status = 200, description = "Server-sent events: `id: <seq>`, `event: <event_type>`, `data: <record>`; a `: heartbeat` comment every 15 s (`PALISADE_SSE_HEARTBEAT_MS`) when idle; a last `event: error` frame with the error envelope when the stream ends on an error (its key revoked or expired, its tenant suspended, a failed read). A key holds at most 10 streams at once (SSE and GraphQL subscriptions, per server process): one more is 429 `too_many_streams`", content_type = "text/event-stream", body = AuditStreamEvent),
        KeyErrors, ReadErrors))]
pub async fn stream(
    caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuditStreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let filter = audit_filter(
        &query.aggregate_type,
        &query.aggregate_id,
        &query.event_type,
        &query.actor,
        &query.since,
        &query.until,
    )?;
    let after = resume_after(&query, &headers)?;
    let records = audit::follow_for(&state.app, &caller, filter, after, state.draining.clone())?;
    let events = records.filter_map(|record| std::future::ready(frame(record)));
    let heartbeat = KeepAlive::new()
        .interval(state.app.sse_heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(heartbeat))
}

/// Where a stream starts: after `Last-Event-ID` when sent, else `after`
/// (which is checked either way).
fn resume_after(query: &AuditStreamQuery, headers: &HeaderMap) -> Result<i64, ApiError> {
    let after = seq("after", query.after.as_deref())?;
    let Some(value) = headers.get("last-event-id") else {
        return Ok(after);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_field("Last-Event-ID", "must be an audit seq"))?;
    seq("Last-Event-ID", Some(text))
}

/// One record as a server-sent event; an error as the stream's last frame,
/// the error envelope. After a failed read the client resumes with
/// Last-Event-ID; a refused key (401 `invalid_api_key`, 403
/// `tenant_suspended`) needs another.
fn frame(
    record: crate::app::Result<palisade_projections::AuditRecord>,
) -> Option<Result<Event, Infallible>> {
    let record = match record {
        Ok(record) => record,
        Err(error) => {
            let envelope = ApiError::from(error).envelope();
            return Some(Ok(Event::default().event("error").data(envelope)));
        }
    };
    let id = record.seq.to_string();
    let event_type = record.event_type.clone();
    match serde_json::to_string(&AuditEventView::from(record)) {
        Ok(json) => Some(Ok(Event::default().id(id).event(event_type).data(json))),
        Err(error) => {
            tracing::error!(%error, "cannot encode an audit record");
            None
        }
    }
}
