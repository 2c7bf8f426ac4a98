//! `/v1/overview`, `/v1/risk/recalculate` and `/v1/risk/history`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{BodyErrors, KeyErrors, ReadErrors, Success};
use super::query::{whole, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope};
use crate::app::auth::FindingsRead;
use crate::app::{risk, Authorized, RequestContext};
use crate::state::AppState;
use crate::views::risk::{Overview, Recalculation, RiskPoint};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(recalculate))
        .routes(routes!(history))
}

/// The query of reads that take only `consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/overview", tag = "risk", security(("api_key" = []), ("bearer_api_key" = [])),
    params(ConsistencyQuery),
    responses((status = 200, description = "Risk, counts and the riskiest assets", body = Success<Overview>), KeyErrors, ReadErrors))]
pub async fn overview(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(_query): ApiQuery<ConsistencyQuery>,
    _: Consistency,
) -> Result<Envelope<Overview>, ApiError> {
    let overview = risk::overview(&state.app, &caller).await?;
    Ok(Envelope::ok(Overview::of(overview, &caller.principal)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecalculateRequest {
    /// Compute and compare only; record nothing. Default false.
    #[serde(default)]
    pub dry_run: bool,
}

/// Recomputes the tenant's risk from its findings, from scratch. Without
/// `dry_run` it records `RiskScoreRecalculated`, and the views replace
/// their incremental scores with recomputed ones. Scope `findings:write`,
/// or `findings:read` for a dry run.
#[utoipa::path(post, path = "/v1/risk/recalculate", tag = "risk", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)")),
    request_body = RecalculateRequest,
    responses((status = 200, description = "The incremental and the recomputed score", body = Success<Recalculation>), KeyErrors, BodyErrors))]
pub async fn recalculate(
    caller: RequestContext,
    State(state): State<AppState>,
    body: Option<ApiJson<RecalculateRequest>>,
) -> Result<Envelope<Recalculation>, ApiError> {
    // A command that records must say so: no body is not a recalculation.
    let Some(ApiJson(body)) = body else {
        return Err(ApiError::invalid_field(
            "body",
            "is required: {\"dry_run\": true} to compare only, {\"dry_run\": false} (or {}) to record",
        ));
    };
    let recalculated = risk::recalculate(&state.app, &caller, body.dry_run).await?;
    Ok(Envelope::ok(recalculated.into()))
}

/// The query of `GET /v1/risk/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1 to 365 (default 30).
    #[param(value_type = Option<u32>)]
    days: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/risk/history", tag = "risk", security(("api_key" = []), ("bearer_api_key" = [])),
    params(HistoryQuery),
    responses((status = 200, description = "One point a day, oldest first, ending today", body = Success<Vec<RiskPoint>>), KeyErrors, ReadErrors))]
pub async fn history(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<RiskPoint>>, ApiError> {
    let days = whole("days", &query.days, 30, 1, 365)?;
    let series = risk::history(&state.app, &caller, days).await?;
    Ok(Envelope::ok(
        series.into_iter().map(RiskPoint::from).collect(),
    ))
}
