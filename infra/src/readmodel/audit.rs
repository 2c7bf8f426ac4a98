//! The audit trail's table: the projection's writes, `GET /v1/audit/events`
//! (and the SSE stream, which reads the same query), and the chain check
//! behind `GET /v1/audit/verify`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::Environment;
use palisade_projections::{
    canonical_json, AuditHead, AuditRecord, AuditStore, StoreError, ViewRef, GENESIS_HASH,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::findings::Partition;
use super::pending::insert_rows;
use super::sql::{Sql, Value};
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use crate::store::dialect_of;

const COLUMNS: &str = "seq, id, occurred_at, tenant_id, environment, actor, actor_type, \
                       api_key_id, request_id, aggregate_type, aggregate_id, event_type, \
                       summary, data, prev_hash, hash";

/// The audit trail's SQL store for one batch: records are written behind,
/// when the batch ends; each chain's head includes this batch's records.
pub(super) struct AuditSql {
    tx: BatchTransaction,
    records: Vec<AuditRecord>,
    heads: BTreeMap<(String, Environment), AuditHead>,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(AuditSql {
        tx,
        records: Vec::new(),
        heads: BTreeMap::new(),
    })
}

#[async_trait]
impl SqlStore for AuditSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn AuditStore)
    }

    async fn finish(mut self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        let records = std::mem::take(&mut self.records);
        insert_rows(&mut self.tx, INSERT_HEAD, "", &records, |r| {
            Ok(record_values(r))
        })
        .await?;
        Ok(self.tx)
    }
}

#[async_trait]
impl AuditStore for AuditSql {
    async fn audit_head(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<AuditHead>, StoreError> {
        let key = (tenant_id.to_string(), environment);
        if let Some(head) = self.heads.get(&key) {
            return Ok(Some(head.clone()));
        }
        let row = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE tenant_id = $1 AND environment = $2
              ORDER BY seq DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(environment.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(store_error)?;
        row.map(|row| {
            Ok(AuditHead {
                seq: row.try_get("seq")?,
                hash: row.try_get("hash")?,
            })
        })
        .transpose()
        .map_err(store_error)
    }

    async fn append_audit_record(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        self.heads.insert(
            (record.tenant_id.clone(), record.environment),
            AuditHead {
                seq: record.seq,
                hash: record.hash.clone(),
            },
        );
        self.records.push(record.clone());
        Ok(())
    }
}

/// The values of one record, in [`COLUMNS`] order.
fn record_values(record: &AuditRecord) -> Vec<Value> {
    let text = |v: &str| Value::Text(v.to_string());
    let optional = |v: &Option<String>| v.as_deref().map_or(Value::Null, text);
    vec![
        Value::Int(record.seq),
        text(&record.id),
        text(&record.occurred_at),
        text(&record.tenant_id),
        text(record.environment.as_str()),
        text(&record.actor),
        text(record.actor_type.as_str()),
        optional(&record.api_key_id),
        optional(&record.request_id),
        text(&record.aggregate_type),
        text(&record.aggregate_id),
        text(&record.event_type),
        text(&record.summary),
        Value::Text(canonical_json(&record.data)),
        text(&record.prev_hash),
        text(&record.hash),
    ]
}

const INSERT_HEAD: &str = "audit_events (seq, id, occurred_at, tenant_id, environment, \
     actor, actor_type, api_key_id, request_id, aggregate_type, aggregate_id, event_type, \
     summary, data, prev_hash, hash)";

fn decode_error(error: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(error))
}

fn record_from_row(row: &AnyRow) -> Result<AuditRecord, sqlx::Error> {
    let environment: String = row.try_get("environment")?;
    let actor_type: String = row.try_get("actor_type")?;
    let data: String = row.try_get("data")?;
    let unknown = |what: String| decode_error(std::io::Error::other(what));
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        occurred_at: row.try_get("occurred_at")?,
        tenant_id: row.try_get("tenant_id")?,
        environment: environment.parse().map_err(unknown)?,
        actor: row.try_get("actor")?,
        actor_type: actor_type.parse().map_err(unknown)?,
        api_key_id: row.try_get("api_key_id")?,
        request_id: row.try_get("request_id")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        event_type: row.try_get("event_type")?,
        summary: row.try_get("summary")?,
        data: serde_json::from_str(&data).map_err(decode_error)?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// The filters of `GET /v1/audit/events` and `GET /v1/audit/stream`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// Event types; empty means all.
    pub event_types: Vec<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Up to `limit` records after `after` (a seq), oldest first.
pub async fn list_audit(
    pool: &AnyPool,
    partition: &Partition,
    filter: &AuditFilter,
    after: i64,
    limit: u32,
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM audit_events"));
    partition.restrict(&mut sql);
    sql.push(" AND seq > ").bind(Value::Int(after));
    for (column, value) in [
        ("aggregate_type", &filter.aggregate_type),
        ("aggregate_id", &filter.aggregate_id),
        ("actor", &filter.actor),
    ] {
        if let Some(value) = value {
            sql.push(&format!(" AND {column} = "))
                .bind(Value::Text(value.clone()));
        }
    }
    let types: Vec<&str> = filter.event_types.iter().map(String::as_str).collect();
    sql.and_in("event_type", &types);
    if let Some(since) = &filter.since {
        sql.push(" AND occurred_at >= ")
            .bind(Value::Text(timestamp(since)));
    }
    if let Some(until) = &filter.until {
        sql.push(" AND occurred_at < ")
            .bind(Value::Text(timestamp(until)));
    }
    sql.push(" ORDER BY seq LIMIT ")
        .bind(Value::Int(i64::from(limit)));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(record_from_row).collect()
}

/// The last seq of a tenant environment's chain (0 when empty).
/// The records with these ids (`aud_…`), in any order; missing ones are
/// left out.
pub async fn audit_records_by_id(
    pool: &AnyPool,
    ids: &[String],
) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM audit_events WHERE id IN ("));
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text(id.clone()));
        }
        sql.push(")");
        let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
        for row in &rows {
            records.push(record_from_row(row)?);
        }
    }
    Ok(records)
}

pub async fn audit_last_seq(pool: &AnyPool, partition: &Partition) -> Result<i64, sqlx::Error> {
    let mut sql = Sql::new("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM audit_events");
    partition.restrict(&mut sql);
    sql.query_scalar::<i64>(dialect_of(pool))
        .fetch_one(pool)
        .await
}

/// What `GET /v1/audit/verify` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    pub verified: bool,
    pub last_seq: i64,
    /// The first seq whose record does not fit the chain (changed, missing
    /// or out of place); None when the chain is intact.
    pub first_broken_seq: Option<i64>,
}

/// Rows read per round trip while verifying.
const VERIFY_PAGE: i64 = 1_000;

/// Walks a tenant environment's chain from seq 1: every seq present once and
/// in order, every `prev_hash` the previous record's `hash`, every `hash`
/// recomputed from the stored fields.
pub async fn verify_audit_chain(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<ChainReport, sqlx::Error> {
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_string();
    let mut last_seq = 0;
    let mut first_broken_seq = None;
    loop {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM audit_events"));
        partition.restrict(&mut sql);
        sql.push(" AND seq > ")
            .bind(Value::Int(last_seq))
            .push(" ORDER BY seq LIMIT ")
            .bind(Value::Int(VERIFY_PAGE));
        let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            last_seq = row.try_get("seq")?;
            if first_broken_seq.is_some() {
                continue;
            }
            let intact = record_from_row(row).is_ok_and(|record| {
                record.seq == expected_seq
                    && record.prev_hash == prev_hash
                    && record.compute_hash() == record.hash
            });
            if intact {
                prev_hash = row.try_get("hash")?;
                expected_seq += 1;
            } else {
                first_broken_seq = Some(expected_seq.min(last_seq));
            }
        }
    }
    Ok(ChainReport {
        verified: first_broken_seq.is_none(),
        last_seq,
        first_broken_seq,
    })
}
