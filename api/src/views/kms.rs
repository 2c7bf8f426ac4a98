//! KMS analytics and crypto agility as the API shows them (`/v1/kms` and
//! the GraphQL fields alike), from the application layer's results
//! (`app::kms`). A count per operation is a JSON object in REST and a list
//! of `{operation, count}` in GraphQL (`graphql::kms`).

use std::collections::BTreeMap;

use async_graphql::SimpleObject;
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;
use crate::app::kms as app;

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
