//! KMS analytics over the keys view (`key_usage`, `keys`): usage over time
//! across a tenant environment's keys, per application, per key, and per
//! algorithm (`docs/kms-analytics.md`). Read-only; the keys projection
//! writes these tables.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use super::sql::{Sql, Value};
use super::{parse_timestamp, timestamp, Partition};
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
