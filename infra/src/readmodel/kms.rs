//! KMS analytics over the keys view (`key_usage`, `keys`): usage over time
//! across a tenant environment's keys, per application, per key, and per
//! algorithm (`docs/kms-analytics.md`). Read-only; the keys projection
//! writes these tables.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use palisade_domain::finding::Severity;
use palisade_domain::kms::{PlanStatus, UsageWindow};
use palisade_projections::{AlertRow, AlertRuleRow, MigrationPlanRow};

use super::findings::{from_doc, paged};
use super::sql::{Sql, Value};
use super::{parse_timestamp, timestamp, Page, Partition, Window};
use crate::store::dialect_of;

/// One (bucket, key, operation) of usage; the bucket is the stored
/// minute's prefix (`2026-12-01` for a day, `2026-12-01T17` for an hour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCell {
    pub bucket: String,
    pub key_id: String,
    pub operation: String,
    pub count: i64,
    pub errors: i64,
    pub bytes: i64,
}

/// What a usage query covers.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub key_id: Option<String>,
    pub operation: Option<String>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// 13 for hours, 10 for days.
    pub prefix_chars: i64,
}

fn usage_scope(sql: &mut Sql, partition: &Partition, since: &DateTime<Utc>, until: &DateTime<Utc>) {
    sql.push(" WHERE u.tenant_id = ")
        .bind(Value::Text(partition.tenant_id.clone()))
        .push(" AND u.environment = ")
        .bind(Value::Text(partition.environment.as_str().into()))
        .push(" AND u.minute >= ")
        .bind(Value::Text(timestamp(since)))
        .push(" AND u.minute < ")
        .bind(Value::Text(timestamp(until)));
}

/// A partition's usage per bucket, key and operation, oldest first.
pub async fn usage_cells(
    pool: &AnyPool,
    partition: &Partition,
    query: &UsageQuery,
) -> Result<Vec<UsageCell>, sqlx::Error> {
    // The prefix length is one of two constants, never input.
    let prefix = query.prefix_chars.clamp(10, 13);
    let mut sql = Sql::new(&format!(
        "SELECT SUBSTR(u.minute, 1, {prefix}) AS bucket, u.key_id, u.operation,
                CAST(SUM(u.count) AS bigint) AS count, CAST(SUM(u.errors) AS bigint) AS errors,
                CAST(SUM(u.bytes) AS bigint) AS bytes
           FROM key_usage u"
    ));
    usage_scope(&mut sql, partition, &query.since, &query.until);
    if let Some(key_id) = &query.key_id {
        sql.push(" AND u.key_id = ")
            .bind(Value::Text(key_id.clone()));
    }
    if let Some(operation) = &query.operation {
        sql.push(" AND u.operation = ")
            .bind(Value::Text(operation.clone()));
    }
    sql.push(&format!(
        " GROUP BY SUBSTR(u.minute, 1, {prefix}), u.key_id, u.operation ORDER BY bucket, u.key_id, u.operation"
    ));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(UsageCell {
                bucket: row.try_get("bucket")?,
                key_id: row.try_get("key_id")?,
                operation: row.try_get("operation")?,
                count: row.try_get("count")?,
                errors: row.try_get("errors")?,
                bytes: row.try_get("bytes")?,
            })
        })
        .collect()
}

/// One (application, key, operation) of usage, with its last minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationCell {
    pub application: String,
    pub key_id: String,
    pub operation: String,
    pub count: i64,
    pub last_minute: DateTime<Utc>,
}

/// A partition's usage per application, key and operation in a range.
pub async fn application_cells(
    pool: &AnyPool,
    partition: &Partition,
    key_id: Option<&str>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<ApplicationCell>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT u.application, u.key_id, u.operation,
                CAST(SUM(u.count) AS bigint) AS count, MAX(u.minute) AS last_minute
           FROM key_usage u",
    );
    usage_scope(&mut sql, partition, &since, &until);
    if let Some(key_id) = key_id {
        sql.push(" AND u.key_id = ")
            .bind(Value::Text(key_id.into()));
    }
    sql.push(" GROUP BY u.application, u.key_id, u.operation ORDER BY u.application");
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(ApplicationCell {
                application: row.try_get("application")?,
                key_id: row.try_get("key_id")?,
                operation: row.try_get("operation")?,
                count: row.try_get("count")?,
                last_minute: parse_timestamp(&row.try_get::<String, _>("last_minute")?)?,
            })
        })
        .collect()
}

/// Per algorithm and day: the operations on keys of that algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmDay {
    pub algorithm: String,
    pub day: String,
    pub count: i64,
    pub last_minute: DateTime<Utc>,
}

pub async fn algorithm_days(
    pool: &AnyPool,
    partition: &Partition,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<AlgorithmDay>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT k.algorithm, SUBSTR(u.minute, 1, 10) AS day,
                CAST(SUM(u.count) AS bigint) AS count, MAX(u.minute) AS last_minute
           FROM key_usage u JOIN keys k ON k.id = u.key_id",
    );
    usage_scope(&mut sql, partition, &since, &until);
    sql.push(" GROUP BY k.algorithm, SUBSTR(u.minute, 1, 10) ORDER BY day, k.algorithm");
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(AlgorithmDay {
                algorithm: row.try_get("algorithm")?,
                day: row.try_get("day")?,
                count: row.try_get("count")?,
                last_minute: parse_timestamp(&row.try_get::<String, _>("last_minute")?)?,
            })
        })
        .collect()
}

/// A partition's keys per algorithm and state.
pub async fn key_inventory(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let mut sql = Sql::new("SELECT algorithm, state, COUNT(*) AS n FROM keys");
    partition.restrict(&mut sql);
    sql.push(" GROUP BY algorithm, state ORDER BY algorithm, state");
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("algorithm")?,
                row.try_get("state")?,
                row.try_get("n")?,
            ))
        })
        .collect()
}

/// One key's usage summed over `[from, until)`: what an alert rule judges.
pub async fn usage_window(
    pool: &AnyPool,
    key_id: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<UsageWindow, sqlx::Error> {
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(count), 0) AS bigint) AS count,
                CAST(COALESCE(SUM(errors), 0) AS bigint) AS errors,
                CAST(COALESCE(SUM(bytes), 0) AS bigint) AS bytes
           FROM key_usage WHERE key_id = $1 AND minute >= $2 AND minute < $3",
    )
    .bind(key_id)
    .bind(timestamp(&from))
    .bind(timestamp(&until))
    .fetch_one(pool)
    .await?;
    let unsigned = |name: &str| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(name)?).unwrap_or(0))
    };
    Ok(UsageWindow {
        succeeded: unsigned("count")?,
        errors: unsigned("errors")?,
        bytes: unsigned("bytes")?,
    })
}

/// One row of a partition's table of documents (`kms_alert_rules`,
/// `kms_alerts`, `kms_migration_plans`) by id.
pub(super) async fn partition_doc<T: serde::de::DeserializeOwned>(
    pool: &AnyPool,
    table: &'static str,
    partition: &Partition,
    id: &str,
) -> Result<Option<T>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT doc FROM {table}"));
    partition.restrict(&mut sql);
    sql.push(" AND id = ").bind(Value::Text(id.into()));
    let row = sql.query(dialect_of(pool)).fetch_optional(pool).await?;
    row.as_ref().map(from_doc).transpose()
}

pub async fn get_alert_rule(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<AlertRuleRow>, sqlx::Error> {
    partition_doc(pool, "kms_alert_rules", partition, id).await
}

/// A page of a partition's alert rules, newest first.
pub async fn list_alert_rules(
    pool: &AnyPool,
    partition: &Partition,
    window: impl Into<Window>,
) -> Result<Page<AlertRuleRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM kms_alert_rules");
    partition.restrict(&mut sql);
    paged(
        pool,
        sql,
        " ORDER BY created_at DESC, id DESC",
        window.into(),
        from_doc,
    )
    .await
}

/// Most rules one partition may hold (the evaluator reads them all).
pub const MAX_ALERT_RULES: u32 = 100;

/// A partition's rules, every one (at most [`MAX_ALERT_RULES`]).
pub async fn partition_alert_rules(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Vec<AlertRuleRow>, sqlx::Error> {
    partition_docs(pool, "kms_alert_rules", partition, "", MAX_ALERT_RULES).await
}

/// A partition's rows of a table of documents, oldest first, at most
/// `limit`; `condition` (constant SQL, never input) narrows them.
async fn partition_docs<T: serde::de::DeserializeOwned>(
    pool: &AnyPool,
    table: &'static str,
    partition: &Partition,
    condition: &'static str,
    limit: u32,
) -> Result<Vec<T>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT doc FROM {table}"));
    partition.restrict(&mut sql);
    sql.push(condition)
        .push(" ORDER BY created_at, id LIMIT ")
        .bind(Value::Int(i64::from(limit)));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}

pub async fn get_alert(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<AlertRow>, sqlx::Error> {
    partition_doc(pool, "kms_alerts", partition, id).await
}

/// What `GET /v1/kms/analytics/alerts` filters by.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub acknowledged: Option<bool>,
    pub severity: Vec<Severity>,
}

/// A page of a partition's alerts, newest first.
pub async fn list_alerts(
    pool: &AnyPool,
    partition: &Partition,
    filter: &AlertFilter,
    window: impl Into<Window>,
) -> Result<Page<AlertRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM kms_alerts");
    partition.restrict(&mut sql);
    if let Some(acknowledged) = filter.acknowledged {
        sql.push(" AND acknowledged = ")
            .bind(Value::Int(i64::from(acknowledged)));
    }
    let severities: Vec<&str> = filter.severity.iter().map(Severity::as_str).collect();
    sql.and_in("severity", &severities);
    paged(
        pool,
        sql,
        " ORDER BY triggered_at DESC, id DESC",
        window.into(),
        from_doc,
    )
    .await
}

pub async fn get_migration_plan(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<MigrationPlanRow>, sqlx::Error> {
    partition_doc(pool, "kms_migration_plans", partition, id).await
}

/// A page of a partition's migration plans, newest first.
pub async fn list_migration_plans(
    pool: &AnyPool,
    partition: &Partition,
    status: &[PlanStatus],
    window: impl Into<Window>,
) -> Result<Page<MigrationPlanRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM kms_migration_plans");
    partition.restrict(&mut sql);
    let statuses: Vec<&str> = status.iter().map(PlanStatus::as_str).collect();
    sql.and_in("status", &statuses);
    paged(
        pool,
        sql,
        " ORDER BY created_at DESC, id DESC",
        window.into(),
        from_doc,
    )
    .await
}

/// A partition's active migration plans (at most 1,000).
pub async fn active_migration_plans(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Vec<MigrationPlanRow>, sqlx::Error> {
    partition_docs(
        pool,
        "kms_migration_plans",
        partition,
        " AND status = 'active'",
        1_000,
    )
    .await
}
