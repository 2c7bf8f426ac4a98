//! `GET /v1/timeline`: every change, newest first, with a cursor for the
//! next page. Scope `findings:read`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{comma_items, text, whole, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::app::auth::FindingsRead;
use crate::app::timeline::{self, TimelineQuery as Query};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::timeline::TimelineEntryView;

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(timeline))
}

/// What the timeline's cursors look like: hex of printable ASCII `<time>`, a
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
    /// `meta.next_cursor` of the previous page (hex of the last entry's
    /// time, sequence and id, one per line).
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/timeline", tag = "timeline", security(("api_key" = []), ("bearer_api_key" = [])),
    params(TimelineQuery),
    responses((status = 200, description = "Entries, newest first; `meta.next_cursor` for the next page", body = Success<Vec<TimelineEntryView>>), KeyErrors, ReadErrors))]
pub async fn timeline(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TimelineQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<TimelineEntryView>>, ApiError> {
    let query = Query {
        days: whole("days", &query.days, 30, 1, 365)?,
        limit: whole("limit", &query.limit, 50, 1, 200)?,
        asset: query.asset,
        finding: query.finding,
        types: comma_items(&query.types),
        cursor: text(&query.cursor),
    };
    let page = timeline::list(&state.app, &caller, query).await?;
    let entries = page
        .entries
        .into_iter()
        .map(TimelineEntryView::from)
        .collect();
    Ok(Envelope::cursor_page(entries, page.next_cursor))
}
