//! KMS analytics and crypto agility (`docs/kms-analytics.md`,
//! `docs/crypto-policy.md`): read models over the keys view, scope
//! `keys:admin`. The results are plain data; `views::kms` shows them. Usage over time and per application and key; the
//! algorithm inventory against the crypto policy, post-quantum adoption and
//! the quantum-risk assessment.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use palisade_domain::key::policy::{policies, policy, QuantumRisk};
use palisade_domain::key::{Algorithm, KeyState, Operation};
use palisade_infra::keyring::usage::FlushScope;
use palisade_infra::readmodel::kms::{
    algorithm_days, application_cells, key_inventory, usage_cells, UsageQuery,
};

use super::auth::KeysAdmin;
use super::{App, Authorized, Error, Result};

/// The longest range one analytics query covers.
pub const MAX_RANGE_DAYS: i64 = 366;

/// How usage is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucketing {
    Hour,
    Day,
    /// ISO weeks, from Monday.
    Week,
}

impl Bucketing {
    pub fn parse(text: Option<&str>) -> Result<Self> {
        match text.map(str::trim) {
            None | Some("hour") => Ok(Bucketing::Hour),
            Some("day") => Ok(Bucketing::Day),
            Some("week") => Ok(Bucketing::Week),
            Some(_) => Err(Error::invalid("granularity", "must be hour, day or week")),
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Bucketing::Hour => "hour",
            Bucketing::Day => "day",
            Bucketing::Week => "week",
        }
    }
}

/// `[since, until)`, defaulting to the 7 days (30 for inventories) before
/// now, at most [`MAX_RANGE_DAYS`].
pub fn range(
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    default_days: i64,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let until = until.unwrap_or_else(Utc::now);
    let since = since.unwrap_or(until - Duration::days(default_days));
    if since >= until {
        return Err(Error::invalid("since", "must be before until"));
    }
    if until - since > Duration::days(MAX_RANGE_DAYS) {
        return Err(Error::invalid(
            "since",
            format!("the range is at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((since, until))
}

/// The start of the bucket a stored minute's prefix names.
fn bucket_start(prefix: &str, bucketing: Bucketing) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(prefix.get(..10)?, "%Y-%m-%d").ok()?;
    Some(match bucketing {
        Bucketing::Hour => {
            let hour: u32 = prefix.get(11..13)?.parse().ok()?;
            day.and_hms_opt(hour, 0, 0)?.and_utc()
        }
        Bucketing::Day => day.and_hms_opt(0, 0, 0)?.and_utc(),
        Bucketing::Week => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            monday.and_hms_opt(0, 0, 0)?.and_utc()
        }
    })
}

/// One bucket of usage of one key and operation.
#[derive(Debug, Clone)]
pub struct UsageBucket {
    pub timestamp: DateTime<Utc>,
    pub key_id: String,
    pub operation: String,
    pub count: i64,
    pub errors: i64,
    pub bytes_processed: i64,
}

#[derive(Debug, Clone)]
pub struct UsageSummary {
    pub total_operations: i64,
    pub total_errors: i64,
    pub total_bytes_processed: i64,
    pub unique_keys: usize,
}

/// `GET /v1/kms/analytics/usage`.
#[derive(Debug, Clone)]
pub struct UsageAnalytics {
    pub granularity: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub buckets: Vec<UsageBucket>,
    pub summary: UsageSummary,
}

/// Usage across the caller's keys (or one key, or one operation),
/// bucketed by hour, day or week.
pub async fn usage(
    app: &App,
    context: &Authorized<KeysAdmin>,
    key_id: Option<String>,
    operation: Option<String>,
    bucketing: Bucketing,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<UsageAnalytics> {
    let partition = context.principal.partition();
    let (since, until) = range(since, until, 7)?;
    if let Some(operation) = &operation {
        operation
            .parse::<Operation>()
            .map_err(|message| Error::invalid("operation", message))?;
    }
    let key_id = match key_id {
        Some(id) => Some(super::keys::resolve(&partition, &id)?),
        None => None,
    };
    let scope = match &key_id {
        Some(key_id) => FlushScope::Key(key_id),
        None => FlushScope::Partition(&partition.tenant_id, partition.environment),
    };
    flush_usage(app, scope).await?;
    let cells = usage_cells(
        app.store.read_pool(),
        &partition,
        &UsageQuery {
            key_id,
            operation,
            since,
            until,
            prefix_chars: if bucketing == Bucketing::Hour { 13 } else { 10 },
        },
    )
    .await?;
    // (bucket, key, operation) → (count, errors, bytes)
    type Cell = (DateTime<Utc>, String, String);
    let mut buckets: BTreeMap<Cell, (i64, i64, i64)> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for cell in cells {
        let Some(start) = bucket_start(&cell.bucket, bucketing) else {
            continue;
        };
        keys.insert(cell.key_id.clone());
        let entry = buckets
            .entry((start, cell.key_id, cell.operation))
            .or_insert((0, 0, 0));
        entry.0 += cell.count;
        entry.1 += cell.errors;
        entry.2 += cell.bytes;
    }
    let buckets: Vec<UsageBucket> = buckets
        .into_iter()
        .map(
            |((timestamp, key_id, operation), (count, errors, bytes))| UsageBucket {
                timestamp,
                key_id,
                operation,
                count,
                errors,
                bytes_processed: bytes,
            },
        )
        .collect();
    let summary = UsageSummary {
        total_operations: buckets.iter().map(|b| b.count).sum(),
        total_errors: buckets.iter().map(|b| b.errors).sum(),
        total_bytes_processed: buckets.iter().map(|b| b.bytes_processed).sum(),
        unique_keys: keys.len(),
    };
    Ok(UsageAnalytics {
        granularity: bucketing.as_str().to_string(),
        since,
        until,
        buckets,
        summary,
    })
}

/// What this replica counted so far (of the keys `scope` covers) is
/// recorded, after any flush in progress, and in the keys view.
async fn flush_usage(app: &App, scope: FlushScope<'_>) -> Result<()> {
    app.key_usage
        .flush(&app.commands, None, scope)
        .await
        .map_err(Error::internal)?;
    app.await_views(&[palisade_projections::KeysProjection::NAME])
        .await
}

/// One application's use of the caller's keys.
#[derive(Debug, Clone)]
pub struct ApplicationUsage {
    pub application: String,
    pub keys_used: usize,
    pub last_access_at: DateTime<Utc>,
    /// Operations per operation name.
    pub operation_counts: BTreeMap<String, i64>,
    pub total_operations: i64,
}

/// Usage per application (the `X-Palisade-Application` header, else the
/// API key's principal), most active first.
pub async fn applications(
    app: &App,
    context: &Authorized<KeysAdmin>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<ApplicationUsage>> {
    let partition = context.principal.partition();
    let (since, until) = range(since, until, 30)?;
    flush_usage(
        app,
        FlushScope::Partition(&partition.tenant_id, partition.environment),
    )
    .await?;
    let cells = application_cells(app.store.read_pool(), &partition, None, since, until).await?;
    // application → (keys, last minute, operations per operation)
    type Seen = (BTreeSet<String>, DateTime<Utc>, BTreeMap<String, i64>);
    let mut by_application: BTreeMap<String, Seen> = BTreeMap::new();
    for cell in cells {
        let entry = by_application
            .entry(cell.application)
            .or_insert_with(|| (BTreeSet::new(), cell.last_minute, BTreeMap::new()));
        entry.0.insert(cell.key_id);
        entry.1 = entry.1.max(cell.last_minute);
        *entry.2.entry(cell.operation).or_insert(0) += cell.count;
    }
    let mut applications: Vec<ApplicationUsage> = by_application
        .into_iter()
        .map(|(application, (keys, last, counts))| ApplicationUsage {
            application,
            keys_used: keys.len(),
            last_access_at: last + Duration::seconds(59),
            total_operations: counts.values().sum(),
            operation_counts: counts,
        })
        .collect();
    applications.sort_by_key(|a| std::cmp::Reverse(a.total_operations));
    Ok(applications)
}

/// An application's share of one key's operations.
#[derive(Debug, Clone)]
pub struct TopApplication {
    pub application: String,
    pub operations: i64,
}

/// `GET /v1/kms/analytics/keys/{id}/summary`.
#[derive(Debug, Clone)]
pub struct KeySummary {
    pub key_id: String,
    pub name: String,
    pub algorithm: String,
    pub state: String,
    pub total_operations: i64,
    pub operation_breakdown: BTreeMap<String, i64>,
    /// At most 5, most operations first.
    pub top_applications: Vec<TopApplication>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One key's usage in the range (default 30 days).
pub async fn key_summary(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<KeySummary> {
    let partition = context.principal.partition();
    let (since, until) = range(since, until, 30)?;
    let key = super::keys::get(app, context, id_or_name).await?.key;
    flush_usage(
        app,
        FlushScope::Partition(&partition.tenant_id, partition.environment),
    )
    .await?;
    let cells = application_cells(
        app.store.read_pool(),
        &partition,
        Some(&key.id),
        since,
        until,
    )
    .await?;
    let mut breakdown = BTreeMap::new();
    let mut per_application: HashMap<String, i64> = HashMap::new();
    for cell in &cells {
        *breakdown.entry(cell.operation.clone()).or_insert(0) += cell.count;
        *per_application.entry(cell.application.clone()).or_insert(0) += cell.count;
    }
    let mut top: Vec<TopApplication> = per_application
        .into_iter()
        .map(|(application, operations)| TopApplication {
            application,
            operations,
        })
        .collect();
    top.sort_by(|a, b| {
        b.operations
            .cmp(&a.operations)
            .then(a.application.cmp(&b.application))
    });
    top.truncate(5);
    Ok(KeySummary {
        key_id: key.id,
        name: key.name,
        algorithm: key.algorithm.as_str().to_string(),
        state: key.state.as_str().to_string(),
        total_operations: breakdown.values().sum(),
        operation_breakdown: breakdown,
        top_applications: top,
        last_used_at: key.last_used_at,
    })
}

// ---------------------------------------------------------------- agility

/// One row of the crypto policy (`docs/crypto-policy.md`).
#[derive(Debug, Clone)]
pub struct PolicyRow {
    pub algorithm: String,
    pub category: String,
    pub status: String,
    pub quantum_risk: String,
    pub post_quantum: bool,
    pub replacement: Option<String>,
    pub rationale: String,
}

/// The crypto policy, one row per algorithm (needs any `keys:admin` key:
/// it is the same for every tenant).
pub fn crypto_policy(_context: &Authorized<KeysAdmin>) -> Vec<PolicyRow> {
    policies()
        .into_iter()
        .map(|row| PolicyRow {
            algorithm: row.algorithm.as_str().to_string(),
            category: row.category.as_str().to_string(),
            status: row.status.as_str().to_string(),
            quantum_risk: row.quantum_risk.as_str().to_string(),
            post_quantum: row.post_quantum,
            replacement: row.replacement.map(|a| a.as_str().to_string()),
            rationale: row.rationale.to_string(),
        })
        .collect()
}

/// One algorithm against the crypto policy, with its keys and use.
#[derive(Debug, Clone)]
pub struct AlgorithmUsage {
    pub algorithm: String,
    pub category: String,
    /// `recommended`, `acceptable`, `deprecated` or `forbidden`.
    pub status: String,
    /// `low` or `high`.
    pub quantum_risk: String,
    pub post_quantum: bool,
    /// Keys that are not destroyed.
    pub key_count: i64,
    /// Operations in the range (default 30 days).
    pub usage_count: i64,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `GET /v1/kms/crypto-agility/algorithm-usage`.
#[derive(Debug, Clone)]
pub struct AlgorithmInventory {
    pub algorithms: Vec<AlgorithmUsage>,
    /// Post-quantum keys / all keys that are not destroyed (0 with none).
    pub pqc_adoption_rate: f64,
    /// Operations on quantum-vulnerable algorithms / all operations.
    pub legacy_algorithm_usage: f64,
}

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0
    }
}

/// Keys that are not destroyed, per algorithm.
async fn live_keys(app: &App, context: &Authorized<KeysAdmin>) -> Result<HashMap<Algorithm, i64>> {
    let partition = context.principal.partition();
    let mut keys = HashMap::new();
    for (algorithm, state, n) in key_inventory(app.store.read_pool(), &partition).await? {
        let (Ok(algorithm), Ok(state)) =
            (algorithm.parse::<Algorithm>(), state.parse::<KeyState>())
        else {
            continue;
        };
        if state != KeyState::Destroyed {
            *keys.entry(algorithm).or_insert(0) += n;
        }
    }
    Ok(keys)
}

/// Every algorithm of the policy with the caller's keys and use of it.
pub async fn algorithm_usage(
    app: &App,
    context: &Authorized<KeysAdmin>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<AlgorithmInventory> {
    let partition = context.principal.partition();
    let (since, until) = range(since, until, 30)?;
    let keys = live_keys(app, context).await?;
    flush_usage(
        app,
        FlushScope::Partition(&partition.tenant_id, partition.environment),
    )
    .await?;
    let days = algorithm_days(app.store.read_pool(), &partition, since, until).await?;
    let mut used: HashMap<Algorithm, (i64, DateTime<Utc>)> = HashMap::new();
    for day in days {
        let Ok(algorithm) = day.algorithm.parse::<Algorithm>() else {
            continue;
        };
        let entry = used.entry(algorithm).or_insert((0, day.last_minute));
        entry.0 += day.count;
        entry.1 = entry.1.max(day.last_minute);
    }
    let algorithms: Vec<AlgorithmUsage> = policies()
        .into_iter()
        .map(|row| AlgorithmUsage {
            algorithm: row.algorithm.as_str().to_string(),
            category: row.category.as_str().to_string(),
            status: row.status.as_str().to_string(),
            quantum_risk: row.quantum_risk.as_str().to_string(),
            post_quantum: row.post_quantum,
            key_count: keys.get(&row.algorithm).copied().unwrap_or(0),
            usage_count: used.get(&row.algorithm).map_or(0, |u| u.0),
            last_used_at: used
                .get(&row.algorithm)
                .map(|u| u.1 + Duration::seconds(59)),
        })
        .collect();
    let total_keys: i64 = keys.values().sum();
    let pqc_keys: i64 = keys
        .iter()
        .filter(|(algorithm, _)| policy(**algorithm).post_quantum)
        .map(|(_, n)| n)
        .sum();
    let total_ops: i64 = used.values().map(|u| u.0).sum();
    let legacy_ops: i64 = used
        .iter()
        .filter(|(algorithm, _)| policy(**algorithm).quantum_risk == QuantumRisk::High)
        .map(|(_, u)| u.0)
        .sum();
    Ok(AlgorithmInventory {
        algorithms,
        pqc_adoption_rate: ratio(pqc_keys, total_keys),
        legacy_algorithm_usage: ratio(legacy_ops, total_ops),
    })
}

#[derive(Debug, Clone)]
pub struct PqcCurrent {
    pub pqc_keys: i64,
    pub total_keys: i64,
    pub adoption_rate: f64,
}

#[derive(Debug, Clone)]
pub struct PqcTrend {
    pub date: NaiveDate,
    pub pqc_operations: i64,
    pub classical_operations: i64,
}

#[derive(Debug, Clone)]
pub struct PqcByAlgorithm {
    pub algorithm: String,
    pub post_quantum: bool,
    pub keys: i64,
}

/// `GET /v1/kms/crypto-agility/pqc-adoption`.
#[derive(Debug, Clone)]
pub struct PqcAdoption {
    pub current: PqcCurrent,
    /// One point per day of the range that saw operations, oldest first.
    pub trends: Vec<PqcTrend>,
    pub by_algorithm: Vec<PqcByAlgorithm>,
}

pub async fn pqc_adoption(
    app: &App,
    context: &Authorized<KeysAdmin>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<PqcAdoption> {
    let partition = context.principal.partition();
    let (since, until) = range(since, until, 30)?;
    let keys = live_keys(app, context).await?;
    flush_usage(
        app,
        FlushScope::Partition(&partition.tenant_id, partition.environment),
    )
    .await?;
    let mut trends: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for day in algorithm_days(app.store.read_pool(), &partition, since, until).await? {
        let (Ok(algorithm), Ok(date)) = (
            day.algorithm.parse::<Algorithm>(),
            NaiveDate::parse_from_str(&day.day, "%Y-%m-%d"),
        ) else {
            continue;
        };
        let entry = trends.entry(date).or_insert((0, 0));
        if policy(algorithm).post_quantum {
            entry.0 += day.count;
        } else {
            entry.1 += day.count;
        }
    }
    let total_keys: i64 = keys.values().sum();
    let pqc_keys: i64 = keys
        .iter()
        .filter(|(algorithm, _)| policy(**algorithm).post_quantum)
        .map(|(_, n)| n)
        .sum();
    Ok(PqcAdoption {
        current: PqcCurrent {
            pqc_keys,
            total_keys,
            adoption_rate: ratio(pqc_keys, total_keys),
        },
        trends: trends
            .into_iter()
            .map(|(date, (pqc, classical))| PqcTrend {
                date,
                pqc_operations: pqc,
                classical_operations: classical,
            })
            .collect(),
        by_algorithm: policies()
            .into_iter()
            .map(|row| PqcByAlgorithm {
                algorithm: row.algorithm.as_str().to_string(),
                post_quantum: row.post_quantum,
                keys: keys.get(&row.algorithm).copied().unwrap_or(0),
            })
            .collect(),
    })
}

#[derive(Debug, Clone)]
pub struct AlgorithmRisk {
    pub algorithm: String,
    pub quantum_risk: String,
    pub status: String,
    /// What to do, from the policy.
    pub recommendation: String,
    /// The caller's keys of this algorithm that are not destroyed.
    pub affected_keys: i64,
}

/// `GET /v1/kms/crypto-agility/risk-assessment`.
#[derive(Debug, Clone)]
pub struct RiskAssessment {
    /// `high` when a key is on a quantum-vulnerable algorithm, `low` else.
    pub overall_risk: String,
    pub algorithms: Vec<AlgorithmRisk>,
}

pub async fn risk_assessment(app: &App, context: &Authorized<KeysAdmin>) -> Result<RiskAssessment> {
    let keys = live_keys(app, context).await?;
    let algorithms: Vec<AlgorithmRisk> = policies()
        .into_iter()
        .map(|row| {
            let recommendation = match row.replacement {
                Some(replacement) if row.quantum_risk == QuantumRisk::High => {
                    format!("Migrate to {replacement}: {}", row.rationale)
                }
                Some(replacement) => format!("Prefer {replacement}: {}", row.rationale),
                None => format!("Keep: {}", row.rationale),
            };
            AlgorithmRisk {
                algorithm: row.algorithm.as_str().to_string(),
                quantum_risk: row.quantum_risk.as_str().to_string(),
                status: row.status.as_str().to_string(),
                recommendation,
                affected_keys: keys.get(&row.algorithm).copied().unwrap_or(0),
            }
        })
        .collect();
    let exposed = algorithms
        .iter()
        .any(|a| a.quantum_risk == "high" && a.affected_keys > 0);
    Ok(RiskAssessment {
        overall_risk: if exposed { "high" } else { "low" }.to_string(),
        algorithms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_the_hour_the_day_and_the_monday() {
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        // 2026-12-03 is a Thursday.
        assert_eq!(
            bucket_start("2026-12-03T17", Bucketing::Hour),
            Some(at("2026-12-03T17:00:00Z"))
        );
        assert_eq!(
            bucket_start("2026-12-03", Bucketing::Day),
            Some(at("2026-12-03T00:00:00Z"))
        );
        assert_eq!(
            bucket_start("2026-12-03", Bucketing::Week),
            Some(at("2026-11-30T00:00:00Z"))
        );
        assert_eq!(bucket_start("garbage", Bucketing::Day), None);
    }

    #[test]
    fn ratios_are_rounded_and_safe_on_nothing() {
        assert_eq!(ratio(2, 5), 0.4);
        assert_eq!(ratio(1, 3), 0.3333);
        assert_eq!(ratio(0, 0), 0.0);
    }
}
