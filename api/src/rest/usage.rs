//! `GET /v1/usage`: this month's requests in the key's environment, by day
//! and by endpoint group, and the quota. Any valid key may ask.

use axum::extract::State;
use chrono::Utc;
use palisade_domain::tenant::Plan;
use palisade_domain::Environment;
use palisade_infra::usage::{month_end, month_of};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::{ApiError, Consistency, Envelope};
use crate::app::{usage, RequestContext};
use crate::state::AppState;
use crate::views::format_time;

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(usage))
}

#[derive(Serialize, ToSchema)]
pub struct Usage {
    period: Period,
    #[schema(value_type = String, example = "pro")]
    plan: Plan,
    #[schema(value_type = String, example = "live")]
    environment: Environment,
    /// `null` on the unlimited plan.
    quota: Option<Quota>,
    requests: u64,
    by_day: Vec<DayUsage>,
    by_endpoint_group: Vec<GroupUsage>,
}

#[derive(Serialize, ToSchema)]
struct Period {
    start: String,
    end: String,
}

#[derive(Serialize, ToSchema)]
struct Quota {
    limit: u64,
    used: u64,
    remaining: u64,
    /// Test keys never count against the quota.
    counts_this_key: bool,
}

#[derive(Serialize, ToSchema)]
struct DayUsage {
    day: String,
    requests: u64,
}

#[derive(Serialize, ToSchema)]
struct GroupUsage {
    group: String,
    requests: u64,
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("api_key" = []), ("bearer_api_key" = [])), description = "Any valid key.",
    responses((status = 200, description = "This month's usage in the key's environment", body = Success<Usage>), KeyErrors, ReadErrors))]
pub async fn usage(
    context: RequestContext,
    State(state): State<AppState>,
    _: Consistency,
) -> Result<Envelope<Usage>, ApiError> {
    let now = Utc::now();
    let caller = &context.principal;
    let usage::Usage { report, quota } = usage::report(&state.app, &context, now).await?;
    let quota = quota.map(|(limit, used)| Quota {
        limit,
        used,
        remaining: limit.saturating_sub(used),
        counts_this_key: caller.environment == Environment::Live,
    });
    let (first, _) = month_of(now);
    Ok(Envelope::ok(Usage {
        period: Period {
            start: first.to_string(),
            end: format_time(&month_end(now)),
        },
        plan: caller.plan,
        environment: caller.environment,
        quota,
        requests: report.by_day.iter().map(|(_, n)| n).sum(),
        by_day: report
            .by_day
            .into_iter()
            .map(|(day, requests)| DayUsage { day, requests })
            .collect(),
        by_endpoint_group: report
            .by_endpoint_group
            .into_iter()
            .map(|(group, requests)| GroupUsage { group, requests })
            .collect(),
    }))
}
