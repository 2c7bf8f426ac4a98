//! Risk as the API shows it: the overview, the daily history and a
//! recalculation's figures.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use palisade_domain::risk::risk_level;
use palisade_projections::RiskSummaryRow;
use serde::Serialize;
use utoipa::ToSchema;

use super::assets::AssetView;
use super::{format_time, round_score};
use crate::app::risk::{Overview as OverviewResult, Recalculated};
use crate::app::Principal;

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

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "RiskPoint")]
pub struct RiskPoint {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The tenant's risk score at the end of that day (or now, for today).
    pub risk_score: f64,
    pub risk_level: &'static str,
}

impl Overview {
    /// The overview of the caller's partition.
    pub fn of(result: OverviewResult, caller: &Principal) -> Self {
        let updated_at = result.summary.as_ref().map(|s| format_time(&s.updated_at));
        let partition = caller.partition();
        let s = result.summary.unwrap_or_else(|| {
            RiskSummaryRow::empty(&partition.tenant_id, partition.environment, Utc::now())
        });
        let open = ["open", "confirmed"]
            .iter()
            .map(|k| s.by_status.get(*k).copied().unwrap_or(0))
            .sum();
        Overview {
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
            top_assets: result.top_assets.into_iter().map(AssetView::from).collect(),
            updated_at,
        }
    }
}

impl From<Recalculated> for Recalculation {
    fn from(r: Recalculated) -> Self {
        Self {
            previous: round_score(r.previous),
            recalculated: round_score(r.recalculated),
            drift: ((r.recalculated - r.previous) * 1e6).round() / 1e6,
            dry_run: r.dry_run,
            findings_counted: r.findings_counted,
            assets_counted: r.assets_counted,
        }
    }
}

impl From<(NaiveDate, f64)> for RiskPoint {
    fn from((day, score): (NaiveDate, f64)) -> Self {
        Self {
            date: day.to_string(),
            risk_score: round_score(score),
            risk_level: risk_level(round_score(score)),
        }
    }
}
