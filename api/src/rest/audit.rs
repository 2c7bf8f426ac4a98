//! The audit trail: `GET /v1/audit/events` (pages, oldest first),
//! `GET /v1/audit/stream` (SSE, live) and `GET /v1/audit/verify` (the hash
//! chain). Scope `audit:read`; only the key's tenant and environment.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use palisade_domain::Scope;
use palisade_infra::readmodel::{list_audit, verify_audit_chain, AuditFilter, ChainReport};
use palisade_projections::AuditRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{comma_texts, filter_text, time, whole, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::audit::{follow, Follow};
use crate::auth::Principal;
use crate::server::AppState;

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
    /// Only records after this seq (`data.next_after` of the previous page).
    #[param(value_type = Option<i64>)]
    after: Option<String>,
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

/// One audit record: an event, redacted and hash-chained.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "AuditEvent")]
pub struct AuditEventView {
    /// Dense per tenant environment: 1, 2, 3 …
    pub seq: i64,
    pub id: String,
    pub occurred_at: String,
    pub tenant_id: String,
    /// `live` or `test`.
    pub environment: String,
    pub actor: String,
    /// `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub summary: String,
    /// The event's fields; secrets removed, identifying values
    /// `hmac-sha256:…`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub prev_hash: String,
    /// SHA-256(prev_hash ‖ canonical JSON of the record without hash).
    pub hash: String,
}

impl From<AuditRecord> for AuditEventView {
    fn from(r: AuditRecord) -> Self {
        Self {
            seq: r.seq,
            id: r.id,
            occurred_at: r.occurred_at,
            tenant_id: r.tenant_id,
            environment: r.environment.as_str().into(),
            actor: r.actor,
            actor_type: r.actor_type.as_str().into(),
            api_key_id: r.api_key_id,
            request_id: r.request_id,
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            event_type: r.event_type,
            summary: r.summary,
            data: r.data,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
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

/// A page of audit records and where the next one starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

/// The filters both endpoints share.
pub fn audit_filter(
    aggregate_type: &Option<String>,
    aggregate_id: &Option<String>,
    event_type: &Option<String>,
    actor: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<AuditFilter, ApiError> {
    let filter = AuditFilter {
        aggregate_type: filter_text("aggregate_type", aggregate_type.as_deref())?,
        aggregate_id: filter_text("aggregate_id", aggregate_id.as_deref())?,
        event_types: comma_texts("event_type", event_type)?,
        actor: filter_text("actor", actor.as_deref())?,
        since: time("since", since)?,
        until: time("until", until)?,
    };
    check_window(&filter)?;
    Ok(filter)
}

/// `until`, when given with `since`, must come after it (REST and GraphQL).
pub fn check_window(filter: &AuditFilter) -> Result<(), ApiError> {
    match (filter.since, filter.until) {
        (Some(since), Some(until)) if until <= since => {
            Err(ApiError::invalid_field("until", "must be after since"))
        }
        _ => Ok(()),
    }
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
    responses((status = 200, description = "Audit records, oldest first", body = Success<AuditPage>), KeyErrors, ReadErrors))]
pub async fn events(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AuditEventsQuery>,
    _: Consistency,
) -> Result<Envelope<AuditPage>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let filter = audit_filter(
        &query.aggregate_type,
        &query.aggregate_id,
        &query.event_type,
        &query.actor,
        &query.since,
        &query.until,
    )?;
    let after = seq("after", query.after.as_deref())?;
    let limit = whole("limit", &query.limit, 100, 1, 500)?;
    let mut records = list_audit(
        state.app.store.read_pool(),
        &caller.partition(),
        &filter,
        after,
        limit + 1,
    )
    .await
    .map_err(ApiError::internal)?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_after = more.then(|| records.last().map(|r| r.seq)).flatten();
    Ok(Envelope::ok(AuditPage {
        events: records.into_iter().map(AuditEventView::from).collect(),
        next_after,
    }))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("consistency" = Option<String>, Query, description = "`strong` waits until the views reflect every earlier write")),
    responses((status = 200, description = "Whether the tenant environment's chain is intact", body = Success<ChainReportView>), KeyErrors, ReadErrors))]
pub async fn verify(
    caller: Principal,
    State(state): State<AppState>,
    _: Consistency,
) -> Result<Envelope<ChainReportView>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let report = verify_audit_chain(state.app.store.read_pool(), &caller.partition())
        .await
        .map_err(ApiError::internal)?;
    Ok(Envelope::ok(report.into()))
}

/// The result of walking the chain.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "AuditVerification")]
pub struct ChainReportView {
    /// True when every record is present, in order, and unchanged.
    pub verified: bool,
    /// The last seq of the chain (0 when empty).
    pub last_seq: i64,
    /// The first record that does not fit; null when intact.
    pub first_broken_seq: Option<i64>,
}

impl From<ChainReport> for ChainReportView {
    fn from(r: ChainReport) -> Self {
        Self {
            verified: r.verified,
            last_seq: r.last_seq,
            first_broken_seq: r.first_broken_seq,
        }
    }
}

#[utoipa::path(get, path = "/v1/audit/stream", tag = "audit", security(("api_key" = []), ("bearer_api_key" = [])),
    params(AuditStreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this seq (what the last `id:` said)")),
    responses((status = 200, description = "Server-sent events: `id: <seq>`, `event: <event_type>`, `data: <record>`; a `: heartbeat` comment every 15 s (`PALISADE_SSE_HEARTBEAT_MS`) when idle; a last `event: error` frame with the error envelope when the stream ends on an error (its key revoked or expired, its tenant suspended, a failed read). A key holds at most 10 streams at once (SSE and GraphQL subscriptions, per server process): one more is 429 `too_many_streams`", content_type = "text/event-stream", body = AuditStreamEvent),
        KeyErrors, ReadErrors))]
pub async fn stream(
    caller: Principal,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<AuditStreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Scope::AuditRead)?;
    let filter = audit_filter(
        &query.aggregate_type,
        &query.aggregate_id,
        &query.event_type,
        &query.actor,
        &query.since,
        &query.until,
    )?;
    // `after` is checked even when Last-Event-ID overrides it.
    let after_query = seq("after", query.after.as_deref())?;
    let after =
        match headers.get("last-event-id") {
            Some(value) => seq(
                "Last-Event-ID",
                Some(value.to_str().map_err(|_| {
                    ApiError::invalid_field("Last-Event-ID", "must be an audit seq")
                })?),
            )?,
            None => after_query,
        };
    let records = follow(
        state.app.clone(),
        Follow {
            partition: caller.partition(),
            filter,
            after,
            key_id: caller.key_id,
        },
        state.draining.clone(),
    )?;
    let events = records.filter_map(|record| async move {
        match record {
            Ok(record) => {
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
            // The stream's last frame: the error envelope. After a failed
            // read the client resumes with Last-Event-ID; a refused key
            // (401 `invalid_api_key`, 403 `tenant_suspended`) needs another.
            Err(error) => Some(Ok(Event::default().event("error").data(error.envelope()))),
        }
    });
    let heartbeat = KeepAlive::new()
        .interval(state.app.sse_heartbeat)
        .text("heartbeat");
    Ok(Sse::new(events).keep_alive(heartbeat))
}
