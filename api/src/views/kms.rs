//! KMS analytics and crypto agility as the API shows them (`/v1/kms` and
//! the GraphQL fields alike), from the application layer's results
//! (`app::kms`). A count per operation is a JSON object in REST and a list
//! of `{operation, count}` in GraphQL (`graphql::kms`).

use std::collections::BTreeMap;

use async_graphql::SimpleObject;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use palisade_domain::key::Algorithm;
use palisade_domain::kms::{Condition, PlanScope};
use palisade_projections::{AlertRow, AlertRuleRow};

use super::format_time;
use crate::app::kms as app;
use crate::app::kms_migrations::{MigrationReadiness, PlanWithProgress};

/// A count per operation name (GraphQL's form of an operation map).
#[derive(SimpleObject, Debug, Clone)]
#[graphql(name = "KmsOperationCount")]
pub struct OperationCount {
    pub operation: String,
    pub count: i64,
}

/// An operation map as GraphQL lists it.
pub fn counts(map: &BTreeMap<String, i64>) -> Vec<OperationCount> {
    map.iter()
        .map(|(operation, count)| OperationCount {
            operation: operation.clone(),
            count: *count,
        })
        .collect()
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsUsageBucket")]
pub struct UsageBucket {
    pub timestamp: String,
    pub key_id: String,
    pub operation: String,
    pub count: i64,
    pub errors: i64,
    pub bytes_processed: i64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsUsageSummary")]
pub struct UsageSummary {
    pub total_operations: i64,
    pub total_errors: i64,
    pub total_bytes_processed: i64,
    pub unique_keys: usize,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsUsage")]
pub struct UsageAnalytics {
    pub granularity: String,
    pub since: String,
    pub until: String,
    pub buckets: Vec<UsageBucket>,
    pub summary: UsageSummary,
}

impl From<app::UsageAnalytics> for UsageAnalytics {
    fn from(usage: app::UsageAnalytics) -> Self {
        Self {
            granularity: usage.granularity,
            since: format_time(&usage.since),
            until: format_time(&usage.until),
            buckets: usage
                .buckets
                .into_iter()
                .map(|b| UsageBucket {
                    timestamp: format_time(&b.timestamp),
                    key_id: b.key_id,
                    operation: b.operation,
                    count: b.count,
                    errors: b.errors,
                    bytes_processed: b.bytes_processed,
                })
                .collect(),
            summary: UsageSummary {
                total_operations: usage.summary.total_operations,
                total_errors: usage.summary.total_errors,
                total_bytes_processed: usage.summary.total_bytes_processed,
                unique_keys: usage.summary.unique_keys,
            },
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsApplication", complex)]
pub struct ApplicationUsage {
    pub application: String,
    pub keys_used: usize,
    pub last_access_at: String,
    /// Operations per operation name.
    #[graphql(skip)]
    pub operation_counts: BTreeMap<String, i64>,
    pub total_operations: i64,
}

impl From<app::ApplicationUsage> for ApplicationUsage {
    fn from(a: app::ApplicationUsage) -> Self {
        Self {
            application: a.application,
            keys_used: a.keys_used,
            last_access_at: format_time(&a.last_access_at),
            operation_counts: a.operation_counts,
            total_operations: a.total_operations,
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsTopApplication")]
pub struct TopApplication {
    pub application: String,
    pub operations: i64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsKeySummary", complex)]
pub struct KeySummary {
    pub key_id: String,
    pub name: String,
    pub algorithm: String,
    pub state: String,
    pub total_operations: i64,
    /// Operations per operation name.
    #[graphql(skip)]
    pub operation_breakdown: BTreeMap<String, i64>,
    pub top_applications: Vec<TopApplication>,
    pub last_used_at: Option<String>,
}

impl From<app::KeySummary> for KeySummary {
    fn from(k: app::KeySummary) -> Self {
        Self {
            key_id: k.key_id,
            name: k.name,
            algorithm: k.algorithm,
            state: k.state,
            total_operations: k.total_operations,
            operation_breakdown: k.operation_breakdown,
            top_applications: k
                .top_applications
                .into_iter()
                .map(|t| TopApplication {
                    application: t.application,
                    operations: t.operations,
                })
                .collect(),
            last_used_at: k.last_used_at.as_ref().map(format_time),
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "CryptoPolicyRow")]
pub struct PolicyRow {
    pub algorithm: String,
    pub category: String,
    pub status: String,
    pub quantum_risk: String,
    pub post_quantum: bool,
    pub replacement: Option<String>,
    pub rationale: String,
}

impl From<app::PolicyRow> for PolicyRow {
    fn from(r: app::PolicyRow) -> Self {
        Self {
            algorithm: r.algorithm,
            category: r.category,
            status: r.status,
            quantum_risk: r.quantum_risk,
            post_quantum: r.post_quantum,
            replacement: r.replacement,
            rationale: r.rationale,
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsAlgorithmUsage")]
pub struct AlgorithmUsage {
    pub algorithm: String,
    pub category: String,
    pub status: String,
    pub quantum_risk: String,
    pub post_quantum: bool,
    pub key_count: i64,
    pub usage_count: i64,
    pub last_used_at: Option<String>,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsAlgorithmInventory")]
pub struct AlgorithmInventory {
    pub algorithms: Vec<AlgorithmUsage>,
    pub pqc_adoption_rate: f64,
    pub legacy_algorithm_usage: f64,
}

impl From<app::AlgorithmInventory> for AlgorithmInventory {
    fn from(i: app::AlgorithmInventory) -> Self {
        Self {
            algorithms: i
                .algorithms
                .into_iter()
                .map(|a| AlgorithmUsage {
                    algorithm: a.algorithm,
                    category: a.category,
                    status: a.status,
                    quantum_risk: a.quantum_risk,
                    post_quantum: a.post_quantum,
                    key_count: a.key_count,
                    usage_count: a.usage_count,
                    last_used_at: a.last_used_at.as_ref().map(format_time),
                })
                .collect(),
            pqc_adoption_rate: i.pqc_adoption_rate,
            legacy_algorithm_usage: i.legacy_algorithm_usage,
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "PqcCurrent")]
pub struct PqcCurrent {
    pub pqc_keys: i64,
    pub total_keys: i64,
    pub adoption_rate: f64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "PqcTrend")]
pub struct PqcTrend {
    pub date: NaiveDate,
    pub pqc_operations: i64,
    pub classical_operations: i64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "PqcByAlgorithm")]
pub struct PqcByAlgorithm {
    pub algorithm: String,
    pub post_quantum: bool,
    pub keys: i64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "PqcAdoption")]
pub struct PqcAdoption {
    pub current: PqcCurrent,
    pub trends: Vec<PqcTrend>,
    pub by_algorithm: Vec<PqcByAlgorithm>,
}

impl From<app::PqcAdoption> for PqcAdoption {
    fn from(p: app::PqcAdoption) -> Self {
        Self {
            current: PqcCurrent {
                pqc_keys: p.current.pqc_keys,
                total_keys: p.current.total_keys,
                adoption_rate: p.current.adoption_rate,
            },
            trends: p
                .trends
                .into_iter()
                .map(|t| PqcTrend {
                    date: t.date,
                    pqc_operations: t.pqc_operations,
                    classical_operations: t.classical_operations,
                })
                .collect(),
            by_algorithm: p
                .by_algorithm
                .into_iter()
                .map(|b| PqcByAlgorithm {
                    algorithm: b.algorithm,
                    post_quantum: b.post_quantum,
                    keys: b.keys,
                })
                .collect(),
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "QuantumAlgorithmRisk")]
pub struct AlgorithmRisk {
    pub algorithm: String,
    pub quantum_risk: String,
    pub status: String,
    pub recommendation: String,
    pub affected_keys: i64,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "QuantumRiskAssessment")]
pub struct RiskAssessment {
    pub overall_risk: String,
    pub algorithms: Vec<AlgorithmRisk>,
}

impl From<app::RiskAssessment> for RiskAssessment {
    fn from(r: app::RiskAssessment) -> Self {
        Self {
            overall_risk: r.overall_risk,
            algorithms: r
                .algorithms
                .into_iter()
                .map(|a| AlgorithmRisk {
                    algorithm: a.algorithm,
                    quantum_risk: a.quantum_risk,
                    status: a.status,
                    recommendation: a.recommendation,
                    affected_keys: a.affected_keys,
                })
                .collect(),
        }
    }
}

/// An alert rule's condition.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsAlertCondition")]
pub struct ConditionView {
    /// `operation_count`, `bytes_processed` or `error_rate`.
    pub metric: String,
    /// `gt` or `lt`.
    pub operator: String,
    pub threshold: f64,
    /// `1h` or `24h`.
    pub window: String,
}

impl From<&Condition> for ConditionView {
    fn from(condition: &Condition) -> Self {
        Self {
            metric: condition.metric.as_str().to_string(),
            operator: condition.operator.as_str().to_string(),
            threshold: condition.threshold,
            window: condition.window.as_str().to_string(),
        }
    }
}

/// A KMS alert rule.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsAlertRule")]
pub struct AlertRuleView {
    #[schema(example = "kar_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub name: String,
    /// The keys it watches; empty: every key.
    pub key_ids: Vec<String>,
    pub condition: ConditionView,
    pub severity: String,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<AlertRuleRow> for AlertRuleView {
    fn from(rule: AlertRuleRow) -> Self {
        Self {
            condition: ConditionView::from(&rule.condition),
            id: rule.id,
            name: rule.name,
            key_ids: rule.key_ids,
            severity: rule.severity.as_str().to_string(),
            enabled: rule.enabled,
            created_at: format_time(&rule.created_at),
            updated_at: format_time(&rule.updated_at),
        }
    }
}

/// An alert a rule raised on a key's window.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsAlert")]
pub struct AlertView {
    #[schema(example = "kal_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub key_id: String,
    pub condition: ConditionView,
    /// The start of the window (the hour or the UTC day) judged.
    pub window_start: String,
    /// The metric's value when the rule fired.
    pub value: f64,
    pub severity: String,
    pub triggered_at: String,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<String>,
}

impl From<AlertRow> for AlertView {
    fn from(alert: AlertRow) -> Self {
        Self {
            condition: ConditionView::from(&alert.condition),
            id: alert.id,
            rule_id: alert.rule_id,
            rule_name: alert.rule_name,
            key_id: alert.key_id,
            window_start: format_time(&alert.window_start),
            value: alert.value,
            severity: alert.severity.as_str().to_string(),
            triggered_at: format_time(&alert.triggered_at),
            acknowledged: alert.acknowledged,
            acknowledged_by: alert.acknowledged_by,
            acknowledged_at: alert.acknowledged_at.as_ref().map(format_time),
        }
    }
}

/// The algorithm each category migrates to.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsTargetAlgorithms")]
pub struct TargetAlgorithmsView {
    pub signing: Option<String>,
    pub encryption: Option<String>,
    pub key_exchange: Option<String>,
}

/// The keys a plan covers: `key_ids` or `algorithms` (the other is null).
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsPlanScope")]
pub struct PlanScopeView {
    pub key_ids: Option<Vec<String>>,
    pub algorithms: Option<Vec<String>>,
}

/// How far a plan has come: keys in scope, and those destroyed or
/// replaced by a key on the target algorithm.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsPlanProgress")]
pub struct PlanProgressView {
    pub total_keys: usize,
    pub migrated_keys: usize,
    pub pending_keys: usize,
    pub percent_complete: f64,
}

/// A post-quantum migration plan.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsMigrationPlan")]
pub struct MigrationPlanView {
    #[schema(example = "kmp_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub name: String,
    /// `draft`, `active`, `completed` or `cancelled`.
    pub status: String,
    pub target_algorithms: TargetAlgorithmsView,
    pub scope: PlanScopeView,
    pub progress: PlanProgressView,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    #[graphql(skip)]
    pub version: i64,
}

impl From<PlanWithProgress> for MigrationPlanView {
    fn from(found: PlanWithProgress) -> Self {
        let plan = found.plan;
        let name = |a: Option<Algorithm>| a.map(|a| a.as_str().to_string());
        let targets = plan.terms.target_algorithms;
        let scope = match &plan.terms.scope {
            PlanScope::KeyIds(keys) => PlanScopeView {
                key_ids: Some(keys.iter().map(ToString::to_string).collect()),
                algorithms: None,
            },
            PlanScope::Algorithms(algorithms) => PlanScopeView {
                key_ids: None,
                algorithms: Some(algorithms.iter().map(|a| a.as_str().to_string()).collect()),
            },
        };
        Self {
            id: plan.id,
            name: plan.name,
            status: plan.status.as_str().to_string(),
            target_algorithms: TargetAlgorithmsView {
                signing: name(targets.signing),
                encryption: name(targets.encryption),
                key_exchange: name(targets.key_exchange),
            },
            scope,
            progress: PlanProgressView {
                total_keys: found.progress.total_keys,
                migrated_keys: found.progress.migrated_keys,
                pending_keys: found.progress.pending_keys,
                percent_complete: found.progress.percent_complete,
            },
            created_at: format_time(&plan.created_at),
            updated_at: format_time(&plan.updated_at),
            version: plan.version,
        }
    }
}

/// Keys on quantum-vulnerable algorithms, and how many have moved.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsKeyMigrationStatus")]
pub struct KeyMigrationStatus {
    pub total: usize,
    pub migrated: usize,
    pub pending_migration: usize,
}

/// The parts of the readiness score, each 0–1 (docs/crypto-policy.md).
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsReadinessComponents")]
pub struct ReadinessComponents {
    /// Weight 0.6: quantum-vulnerable keys destroyed or replaced.
    pub migration: f64,
    /// Weight 0.25: live signing and key-exchange keys that are post-quantum.
    pub pqc_coverage: f64,
    /// Weight 0.15: live keys not on a deprecated or forbidden algorithm.
    pub algorithm_hygiene: f64,
}

/// `GET /v1/kms/crypto-agility/migration-readiness`.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KmsMigrationReadiness")]
pub struct MigrationReadinessView {
    /// 0–100.
    pub overall_score: u32,
    pub key_migration_status: KeyMigrationStatus,
    pub components: ReadinessComponents,
    pub active_plans: usize,
}

impl From<MigrationReadiness> for MigrationReadinessView {
    fn from(r: MigrationReadiness) -> Self {
        Self {
            overall_score: r.overall_score,
            key_migration_status: KeyMigrationStatus {
                total: r.total,
                migrated: r.migrated,
                pending_migration: r.pending_migration,
            },
            components: ReadinessComponents {
                migration: r.migration,
                pqc_coverage: r.pqc_coverage,
                algorithm_hygiene: r.algorithm_hygiene,
            },
            active_plans: r.active_plans,
        }
    }
}
