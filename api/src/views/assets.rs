//! An asset as the API shows it.

use palisade_projections::AssetRow;
use serde::Serialize;
use utoipa::ToSchema;

use super::{format_time, round_score};

/// An asset as the API shows it.
#[derive(async_graphql::SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "Asset")]
pub struct AssetView {
    /// `ast_…`
    pub id: String,
    pub identifier: String,
    /// 0–100: `100 × (1 − Π(1 − rᵢ/100))` over its open and confirmed findings.
    pub risk_score: f64,
    /// Findings still to deal with: open or confirmed.
    pub open_findings: i64,
    /// Open and confirmed findings by severity.
    #[schema(value_type = Object, example = json!({"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0}))]
    pub findings_by_severity: std::collections::BTreeMap<String, i64>,
    /// Every finding ever seen on it, whatever its status.
    pub total_findings: i64,
    pub first_seen: String,
    pub last_seen: String,
}

impl From<AssetRow> for AssetView {
    fn from(row: AssetRow) -> Self {
        Self {
            id: row.id,
            identifier: row.identifier,
            risk_score: round_score(row.risk_score),
            open_findings: row.open_findings,
            findings_by_severity: row.findings_by_severity,
            total_findings: row.total_findings,
            first_seen: format_time(&row.first_seen),
            last_seen: format_time(&row.last_seen),
        }
    }
}
