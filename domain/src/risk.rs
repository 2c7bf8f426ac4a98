//! Risk scores (`docs/findings.md`), so that tests can check numbers.
//!
//! A finding's risk is `100 × likelihood × impact`, with defaults by severity
//! when absent; only open and confirmed findings count. An asset's risk is
//! `100 × (1 − Π(1 − rᵢ/100))` over its counted findings, and a tenant's is
//! the same over its assets' risks. [`RiskAccumulator`] keeps that product
//! incrementally: findings can be added and removed without recomputing.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::finding::{Severity, Status};
use crate::Environment;

/// A finding's risk, 0–100; 0 when its status does not count.
pub fn finding_risk(
    severity: Severity,
    likelihood: Option<f64>,
    impact: Option<f64>,
    status: Status,
) -> f64 {
    if !status.counts_for_risk() {
        return 0.0;
    }
    let (default_likelihood, default_impact) = severity.default_likelihood_impact();
    let likelihood = likelihood.unwrap_or(default_likelihood).clamp(0.0, 1.0);
    let impact = impact.unwrap_or(default_impact).clamp(0.0, 1.0);
    100.0 * likelihood * impact
}

/// `100 × (1 − Π(1 − rᵢ/100))`, kept as a count of factors that are 0
/// (a risk of 100) and the sum of the logarithms of the others, so that a
/// risk can be removed as exactly as it was added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RiskAccumulator {
    pub certain: i64,
    pub log_survival: f64,
    pub count: i64,
}

impl RiskAccumulator {
    fn term(risk: f64) -> Option<f64> {
        let survival = 1.0 - risk.clamp(0.0, 100.0) / 100.0;
        (survival > 0.0).then(|| survival.ln())
    }

    pub fn add(&mut self, risk: f64) {
        if risk <= 0.0 {
            return;
        }
        self.count += 1;
        match Self::term(risk) {
            Some(term) => self.log_survival += term,
            None => self.certain += 1,
        }
    }

    pub fn remove(&mut self, risk: f64) {
        if risk <= 0.0 {
            return;
        }
        self.count -= 1;
        match Self::term(risk) {
            Some(term) => self.log_survival -= term,
            None => self.certain -= 1,
        }
        if self.count <= 0 {
            *self = Self::default();
        }
    }

    /// The combined score, 0–100.
    pub fn score(&self) -> f64 {
        if self.certain > 0 {
            return 100.0;
        }
        (100.0 * (1.0 - self.log_survival.exp())).clamp(0.0, 100.0)
    }

    /// The same score computed directly from a list of risks.
    pub fn combine(risks: impl IntoIterator<Item = f64>) -> f64 {
        let survival: f64 = risks
            .into_iter()
            .map(|r| 1.0 - r.clamp(0.0, 100.0) / 100.0)
            .product();
        100.0 * (1.0 - survival)
    }
}

/// `low` < 25 ≤ `medium` < 50 ≤ `high` < 75 ≤ `critical`.
pub fn risk_level(score: f64) -> &'static str {
    match score {
        s if s >= 75.0 => "critical",
        s if s >= 50.0 => "high",
        s if s >= 25.0 => "medium",
        _ => "low",
    }
}

/// A tenant environment's record of risk recalculations: the aggregate
/// behind `POST /v1/risk/recalculate`. Its id is [`RiskLedger::id_for`].
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskLedger {
    recalculations: u64,
}

/// Record a from-scratch recalculation, computed by the caller from the
/// findings as they stand.
#[derive(Debug, Clone, PartialEq)]
pub enum RiskLedgerCommand {
    RecordRecalculation {
        previous: f64,
        recalculated: f64,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RiskLedgerEvent {
    /// The read models replace their incremental scores with recomputed ones.
    RiskScoreRecalculated {
        previous: f64,
        recalculated: f64,
        drift: f64,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for RiskLedgerEvent {
    fn event_type(&self) -> String {
        match self {
            RiskLedgerEvent::RiskScoreRecalculated { .. } => "RiskScoreRecalculated".into(),
        }
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// A recalculation cannot be refused; the type exists for cqrs-es.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("risk ledger: {0}")]
pub struct RiskLedgerError(String);

impl RiskLedger {
    /// One ledger per tenant and environment.
    pub fn id_for(tenant_id: &str, environment: Environment) -> String {
        format!("{tenant_id}/{environment}")
    }
}

impl Aggregate for RiskLedger {
    const TYPE: &'static str = "RiskLedger";
    type Command = RiskLedgerCommand;
    type Event = RiskLedgerEvent;
    type Error = RiskLedgerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let RiskLedgerCommand::RecordRecalculation {
            previous,
            recalculated,
            at,
        } = command;
        if !(previous.is_finite() && recalculated.is_finite()) {
            return Err(RiskLedgerError("scores must be finite".into()));
        }
        let event = RiskLedgerEvent::RiskScoreRecalculated {
            previous,
            recalculated,
            drift: recalculated - previous,
            at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.recalculations += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_seed_finding_scores_72_and_only_counted_statuses_score() {
        let risk = finding_risk(Severity::High, Some(0.8), Some(0.9), Status::Open);
        assert!(close(risk, 72.0));
        assert!(close(
            finding_risk(Severity::High, Some(0.8), Some(0.9), Status::Confirmed),
            72.0
        ));
        for status in [Status::Dismissed, Status::RiskAccepted, Status::Remediated] {
            assert_eq!(finding_risk(Severity::Critical, None, None, status), 0.0);
        }
    }

    #[test]
    fn severities_supply_default_likelihood_and_impact() {
        let expected = [
            (Severity::Critical, 90.0),
            (Severity::High, 56.0),
            (Severity::Medium, 25.0),
            (Severity::Low, 6.0),
            (Severity::Info, 0.0),
        ];
        for (severity, score) in expected {
            assert!(
                close(finding_risk(severity, None, None, Status::Open), score),
                "{severity:?}"
            );
        }
    }

    #[test]
    fn an_asset_with_72_and_25_scores_79_and_removing_72_leaves_25() {
        let mut asset = RiskAccumulator::default();
        asset.add(72.0);
        asset.add(25.0);
        assert!(close(asset.score(), 79.0));
        asset.remove(72.0);
        assert!(close(asset.score(), 25.0));
        asset.remove(25.0);
        assert_eq!(asset, RiskAccumulator::default());
    }

    #[test]
    fn a_certain_risk_dominates_and_can_be_removed() {
        let mut asset = RiskAccumulator::default();
        asset.add(100.0);
        asset.add(50.0);
        assert_eq!(asset.score(), 100.0);
        asset.remove(100.0);
        assert!(close(asset.score(), 50.0));
    }

    #[test]
    fn incremental_and_direct_scores_agree() {
        let risks = [72.0, 25.0, 6.0, 90.0, 56.0, 0.0, 13.5];
        let mut asset = RiskAccumulator::default();
        for r in risks {
            asset.add(r);
        }
        assert!(close(asset.score(), RiskAccumulator::combine(risks)));
        assert_eq!(risk_level(asset.score()), "critical");
        assert_eq!(
            (risk_level(24.9), risk_level(25.0), risk_level(50.0)),
            ("low", "medium", "high")
        );
    }
}
