//! A timeline entry as the API shows it.

use palisade_projections::TimelineEntry;
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;

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
