//! `/v1/overview`, `/v1/risk/recalculate` and `/v1/risk/history`.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{Duration, Utc};
use palisade_domain::risk::{
    finding_risk, risk_level, RiskAccumulator, RiskLedger, RiskLedgerCommand,
};
use palisade_domain::Scope;
use palisade_infra::readmodel::{
    counted_findings, get_risk_summary, list_assets, risk_history, AssetFilter, AssetSort, Order,
    PageRequest, Partition,
};
use palisade_projections::{FindingsProjection, Projection as _, RiskSummaryRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::assets::AssetView;
use super::openapi::{BodyErrors, KeyErrors, ReadErrors, Success};
use super::query::{whole, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope};
use crate::app::App;
use crate::auth::Principal;
use crate::findings::round_score;
use crate::server::AppState;
use crate::tenants::format_time;

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "FindingCounts")]
pub struct FindingCounts {
    pub total: i64,
    /// Open or confirmed: still to deal with.
    pub open: i64,
    /// Open and confirmed findings by severity.
    #[schema(value_type = Object)]
    pub by_severity: BTreeMap<String, i64>,
    /// Every finding by status.
    #[schema(value_type = Object)]
    pub by_status: BTreeMap<String, i64>,
}

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "AssetCounts")]
pub struct AssetCounts {
    pub total: i64,
    /// Assets whose risk score is above 0.
    pub at_risk: i64,
}

/// The tenant environment at a glance.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Overview")]
pub struct Overview {
    /// 0–100: `100 × (1 − Π(1 − aᵢ/100))` over the assets' risks.
    pub risk_score: f64,
    /// `low` < 25 ≤ `medium` < 50 ≤ `high` < 75 ≤ `critical`.
    pub risk_level: &'static str,
    pub findings: FindingCounts,
    pub assets: AssetCounts,
    /// The five riskiest assets.
    pub top_assets: Vec<AssetView>,
    /// When the figures last changed; null before the first finding.
    pub updated_at: Option<String>,
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
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(_query): ApiQuery<ConsistencyQuery>,
    _: Consistency,
) -> Result<Envelope<Overview>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    Ok(Envelope::ok(
        overview_of(&state.app, &caller.partition()).await?,
    ))
}

/// The overview of one tenant environment (REST and GraphQL).
pub async fn overview_of(app: &App, partition: &Partition) -> Result<Overview, ApiError> {
    let pool = app.store.read_pool();
    let summary = get_risk_summary(pool, partition)
        .await
        .map_err(ApiError::internal)?;
    let top = list_assets(
        pool,
        partition,
        &AssetFilter {
            min_risk: Some(f64::MIN_POSITIVE),
            ..AssetFilter::default()
        },
        AssetSort::Risk,
        Order::Desc,
        PageRequest {
            page: 1,
            per_page: 5,
        },
    )
    .await
    .map_err(ApiError::internal)?;
    let updated_at = summary.as_ref().map(|s| format_time(&s.updated_at));
    let s = summary.unwrap_or_else(|| {
        RiskSummaryRow::empty(&partition.tenant_id, partition.environment, Utc::now())
    });
    let open = ["open", "confirmed"]
        .iter()
        .map(|k| s.by_status.get(*k).copied().unwrap_or(0))
        .sum();
    Ok(Overview {
        risk_score: round_score(s.risk_score),
        risk_level: risk_level(round_score(s.risk_score)),
        findings: FindingCounts {
            total: s.total_findings,
            open,
            by_severity: s.by_severity,
            by_status: s.by_status,
        },
        assets: AssetCounts {
            total: s.total_assets,
            at_risk: s.assets_at_risk,
        },
        top_assets: top.items.into_iter().map(AssetView::from).collect(),
        updated_at,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecalculateRequest {
    /// Compute and compare only; record nothing. Default false.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "RiskRecalculation")]
pub struct Recalculation {
    /// The incrementally kept tenant score.
    pub previous: f64,
    /// The score computed from scratch from the findings.
    pub recalculated: f64,
    /// `recalculated − previous`, to six decimals.
    pub drift: f64,
    pub dry_run: bool,
    pub findings_counted: usize,
    pub assets_counted: usize,
}

/// Recomputes the tenant's risk from its findings, from scratch. Without
/// `dry_run` it records `RiskScoreRecalculated`, and the views replace
/// their incremental scores with recomputed ones.
#[utoipa::path(post, path = "/v1/risk/recalculate", tag = "risk", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)")),
    request_body = RecalculateRequest,
    responses((status = 200, description = "The incremental and the recomputed score", body = Success<Recalculation>), KeyErrors, BodyErrors))]
pub async fn recalculate(
    caller: Principal,
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
    let dry_run = body.dry_run;
    Ok(Envelope::ok(
        recalculate_risk(&state.app, &caller, dry_run).await?,
    ))
}

/// Recomputes the caller's tenant risk from scratch (REST and GraphQL);
/// without `dry_run` records it. Scope `findings:write`, or
/// `findings:read` for a dry run.
pub async fn recalculate_risk(
    app: &App,
    caller: &Principal,
    dry_run: bool,
) -> Result<Recalculation, ApiError> {
    caller.require(if dry_run {
        Scope::FindingsRead
    } else {
        Scope::FindingsWrite
    })?;
    // Everything acknowledged so far must be in the view compared.
    let name = FindingsProjection.name();
    app.await_views(&[name]).await?;
    let pool = app.store.read_pool();
    let partition = caller.partition();
    let previous = get_risk_summary(pool, &partition)
        .await
        .map_err(ApiError::internal)?
        .map_or(0.0, |s| s.risk_score);
    let findings = counted_findings(pool, &partition)
        .await
        .map_err(ApiError::internal)?;
    let mut by_asset: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for f in &findings {
        let d = &f.details;
        by_asset
            .entry(f.asset_id.as_str())
            .or_default()
            .push(finding_risk(d.severity, d.likelihood, d.impact, f.status));
    }
    let recalculated = RiskAccumulator::combine(
        by_asset
            .values()
            .map(|r| RiskAccumulator::combine(r.iter().copied())),
    );
    if !dry_run {
        let command = RiskLedgerCommand::RecordRecalculation {
            previous,
            recalculated,
            at: Utc::now(),
        };
        let ledger = RiskLedger::id_for(&partition.tenant_id, partition.environment);
        let version = app
            .commands
            .execute::<RiskLedger>(&ledger, command, (), &caller.metadata())
            .await
            .map_err(|e| match e {
                palisade_infra::CommandError::Conflict => {
                    ApiError::conflict("Another recalculation ran at the same time; retry")
                }
                other => ApiError::internal(other),
            })?;
        // Later reads see the corrected scores.
        if let Some(position) = app
            .store
            .feed_position_of("RiskLedger", &ledger, version)
            .await
            .map_err(ApiError::internal)?
        {
            app.runner
                .wait_until_applied(name, position, app.strong_read_timeout)
                .await
                .map_err(ApiError::internal)?;
        }
    }
    Ok(Recalculation {
        previous: round_score(previous),
        recalculated: round_score(recalculated),
        drift: ((recalculated - previous) * 1e6).round() / 1e6,
        dry_run,
        findings_counted: findings.len(),
        assets_counted: by_asset.len(),
    })
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

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "RiskPoint")]
pub struct RiskPoint {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The tenant's risk score at the end of that day (or now, for today).
    pub risk_score: f64,
    pub risk_level: &'static str,
}

#[utoipa::path(get, path = "/v1/risk/history", tag = "risk", security(("api_key" = []), ("bearer_api_key" = [])),
    params(HistoryQuery),
    responses((status = 200, description = "One point a day, oldest first, ending today", body = Success<Vec<RiskPoint>>), KeyErrors, ReadErrors))]
pub async fn history(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<RiskPoint>>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    let days = whole("days", &query.days, 30, 1, 365)?;
    Ok(Envelope::ok(
        risk_series(&state.app, &caller.partition(), days).await?,
    ))
}

/// One point a day for the last `days` days, oldest first (REST and GraphQL).
pub async fn risk_series(
    app: &App,
    partition: &Partition,
    days: u32,
) -> Result<Vec<RiskPoint>, ApiError> {
    let today = Utc::now().date_naive();
    let since = today - Duration::days(i64::from(days) - 1);
    let (carried, points) = risk_history(app.store.read_pool(), partition, since)
        .await
        .map_err(ApiError::internal)?;
    let mut score = carried.unwrap_or(0.0);
    let mut recorded = points.into_iter().peekable();
    let mut series = Vec::with_capacity(days as usize);
    let mut day = since;
    while day <= today {
        while let Some((_, value)) = recorded.next_if(|(d, _)| *d <= day) {
            score = value;
        }
        series.push(RiskPoint {
            date: day.to_string(),
            risk_score: round_score(score),
            risk_level: risk_level(round_score(score)),
        });
        day += Duration::days(1);
    }
    Ok(series)
}
