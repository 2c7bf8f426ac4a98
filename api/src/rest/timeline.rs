//! `GET /v1/timeline`: every change, newest first, with a cursor for the
//! next page. Scope `findings:read`.

use axum::extract::State;
use chrono::{Duration, Utc};
use palisade_domain::Scope;
use palisade_infra::readmodel::{get_asset, list_timeline, timeline_timestamp, TimelineFilter};
use palisade_projections::TimelineEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{comma_texts, filter_text, text, whole, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::auth::Principal;
use crate::server::AppState;
use crate::tenants::format_time;

/// What [`decode_cursor`] accepts: hex of printable ASCII `<time>`, a
/// newline, the sequence (at most 18 digits), a newline, `<id>`.
fn cursor_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(
            "^([2-7][0-9a-fA-F])*0[aA](2[bBdD])?(3[0-9]){1,18}0[aA]([2-7][0-9a-fA-F])*$",
        ))
        .build()
}

/// The query of `GET /v1/timeline`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TimelineQuery {
    /// How far back, 1 to 365 (default 30).
    #[param(value_type = Option<u32>)]
    days: Option<String>,
    /// 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Only this asset's entries: id (`ast_…`) or identifier.
    asset: Option<String>,
    /// Only this finding's entries (`fnd_…`).
    finding: Option<String>,
    /// Comma list of event types, e.g. `FindingIngested,FindingDismissed`;
    /// at most 50 distinct values.
    types: Option<String>,
    /// `data.next_cursor` of the previous page (hex of the last entry's
    /// time, sequence and id, one per line).
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

/// One timeline entry.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "TimelineEntry")]
pub struct TimelineEntryView {
    /// `<aggregate id>:<sequence>`
    pub id: String,
    /// The event type, e.g. `FindingDismissed`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: String,
    pub actor: String,
    /// `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub summary: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub finding_id: Option<String>,
    pub asset_id: Option<String>,
}

impl From<TimelineEntry> for TimelineEntryView {
    fn from(e: TimelineEntry) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            occurred_at: format_time(&e.occurred_at),
            actor: e.actor,
            actor_type: e.actor_type.as_str().into(),
            summary: e.summary,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.aggregate_id,
            finding_id: e.finding_id,
            asset_id: e.asset_id,
        }
    }
}

/// A page of the timeline and where the next one starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntryView>,
    /// Pass as `cursor` for older entries; null on the last page.
    pub next_cursor: Option<String>,
}

pub(crate) fn encode_cursor(entry: &TimelineEntry) -> String {
    hex::encode(format!(
        "{}\n{}\n{}",
        timeline_timestamp(&entry.occurred_at),
        entry.sequence,
        entry.id
    ))
}

pub(crate) fn decode_cursor(cursor: &str) -> Result<(String, i64, String), ApiError> {
    let invalid = || ApiError::invalid_field("cursor", "is not a cursor this API issued");
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (Some(at), Some(sequence), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let sequence = sequence.parse::<i64>().map_err(|_| invalid())?;
    Ok((at.to_string(), sequence, id.to_string()))
}

#[utoipa::path(get, path = "/v1/timeline", tag = "timeline", security(("api_key" = []), ("bearer_api_key" = [])),
    params(TimelineQuery),
    responses((status = 200, description = "Entries, newest first", body = Success<TimelinePage>), KeyErrors, ReadErrors))]
pub async fn timeline(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TimelineQuery>,
    _: Consistency,
) -> Result<Envelope<TimelinePage>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    let days = whole("days", &query.days, 30, 1, 365)?;
    let limit = whole("limit", &query.limit, 50, 1, 200)?;
    let pool = state.app.store.read_pool();
    let partition = caller.partition();
    let asset_id = match filter_text("asset", query.asset.as_deref())? {
        Some(asset) => match get_asset(pool, &partition, &asset)
            .await
            .map_err(ApiError::internal)?
        {
            Some(asset) => Some(asset.id),
            None => return Err(ApiError::not_found("Asset not found")),
        },
        None => None,
    };
    let filter = TimelineFilter {
        since: Some(Utc::now() - Duration::days(i64::from(days))),
        asset_id,
        finding_id: filter_text("finding", query.finding.as_deref())?,
        types: comma_texts("types", &query.types)?,
        after: text(&query.cursor).map(|c| decode_cursor(&c)).transpose()?,
    };
    let entries = list_timeline(pool, &partition, &filter, limit + 1)
        .await
        .map_err(ApiError::internal)?;
    let more = entries.len() > limit as usize;
    let entries: Vec<TimelineEntry> = entries.into_iter().take(limit as usize).collect();
    let next_cursor = more.then(|| entries.last().map(encode_cursor)).flatten();
    Ok(Envelope::ok(TimelinePage {
        entries: entries.into_iter().map(TimelineEntryView::from).collect(),
        next_cursor,
    }))
}
