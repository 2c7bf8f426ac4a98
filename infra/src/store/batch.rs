//! Appending the first events of many new aggregates in one transaction
//! (bulk ingest). cqrs-es appends one aggregate per transaction; this
//! writes the same rows as its repositories (same columns, same JSON), so
//! loading, the feed and the projections cannot tell the difference.

use serde_json::Value;

use super::{Backend, Store, StoreError};
use crate::readmodel::sql::{self, Sql};

/// One event of a new aggregate, serialized as cqrs-es would.
#[derive(Debug, Clone)]
pub struct NewEventRow {
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

/// Why a batch append stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum BatchAppendError {
    /// One of the aggregates already had events (or got them meanwhile).
    #[error("an aggregate in the batch already exists")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows per INSERT: 7 parameters each, well below both backends' limits.
const CHUNK: usize = 500;

fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            matches!(e.code().as_deref(), Some("23505" | "1555" | "2067"))
        }
        _ => false,
    }
}

fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) VALUES ",
    );
    for row in 0..rows {
        let base = row * 7;
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
            base + 1,
            base + 2,
            base + 3,
            base + 4,
            base + 5,
            base + 6,
            base + 7
        ));
    }
    sql
}

/// Binds every row's seven columns to a multi-row INSERT; the payload and
/// metadata as `$json`, which is text on SQLite and JSON on PostgreSQL.
/// `$render` writes the statement for the backend (`?` on SQLite: see
/// `readmodel::sql`).
macro_rules! append_chunks {
    ($pool:expr, $render:expr, $aggregate_type:expr, $rows:expr, |$row:ident| $json:expr) => {{
        let mut tx = $pool.begin().await.map_err(StoreError::from)?;
        for chunk in $rows.chunks(CHUNK) {
            let sql = $render(insert_sql(chunk.len()), chunk.len() * 7);
            let mut query = sqlx::query(&sql);
            for $row in chunk {
                let (payload, metadata) = $json;
                query = query
                    .bind($aggregate_type)
                    .bind(&$row.aggregate_id)
                    .bind($row.sequence)
                    .bind(&$row.event_type)
                    .bind(&$row.event_version)
                    .bind(payload)
                    .bind(metadata);
            }
            query.execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await
    }};
}

impl Store {
    /// Aggregates of `aggregate_type` among `ids` that have events already.
    ///
    /// On PostgreSQL each id is one probe of the primary key (a `LATERAL`
    /// lookup). A plain `aggregate_id IN (…500 ids…)` let the planner, with
    /// statistics from when the table was small, scan every first event of
    /// the type and filter: 0.8 s per bulk request at 330,000 findings,
    /// growing with the table. SQLite always probes the key for `IN`.
    pub async fn existing_aggregates(
        &self,
        aggregate_type: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let mut lookup = match &self.inner.backend {
                Backend::Postgres(_) => {
                    let mut lookup = Sql::new("SELECT found.aggregate_id FROM (VALUES ");
                    for (i, id) in ids.iter().enumerate() {
                        lookup.push(if i == 0 { "(" } else { ", (" });
                        lookup.bind(sql::Value::Text((*id).into())).push(")");
                    }
                    lookup
                        .push(") AS wanted(id) CROSS JOIN LATERAL (SELECT e.aggregate_id FROM events e WHERE e.aggregate_type = ")
                        .bind(sql::Value::Text(aggregate_type.into()))
                        .push(" AND e.aggregate_id = wanted.id AND e.sequence = 1 LIMIT 1) AS found");
                    lookup
                }
                Backend::Sqlite(_) => {
                    let mut lookup =
                        Sql::new("SELECT aggregate_id FROM events WHERE aggregate_type = ");
                    lookup
                        .bind(sql::Value::Text(aggregate_type.into()))
                        .push(" AND sequence = 1")
                        .and_in("aggregate_id", &ids);
                    lookup
                }
            };
            found.extend(
                lookup
                    .query_scalar::<String>(sql::backend_of(self.read_pool()))
                    .fetch_all(self.read_pool())
                    .await?,
            );
        }
        Ok(found)
    }

    /// Appends `rows` (the first events of new aggregates) in one
    /// transaction: all or, when any aggregate exists, none.
    pub async fn append_new_aggregates(
        &self,
        aggregate_type: &str,
        rows: &[NewEventRow],
    ) -> Result<(), BatchAppendError> {
        let committed = match &self.inner.backend {
            Backend::Sqlite(pool) => {
                let _turn = self.write_turn().await;
                let render = |sql: String, count| sql::anonymous(&sql, count).unwrap_or(sql);
                append_chunks!(pool, render, aggregate_type, rows, |row| (
                    row.payload.to_string(),
                    row.metadata.to_string()
                ))
            }
            Backend::Postgres(pool) => {
                let render = |sql: String, _| sql;
                append_chunks!(pool, render, aggregate_type, rows, |row| (
                    &row.payload,
                    &row.metadata
                ))
            }
        };
        committed.map_err(classify)?;
        self.wake_feed_readers();
        Ok(())
    }
}

fn classify(error: sqlx::Error) -> BatchAppendError {
    if is_unique_violation(&error) {
        BatchAppendError::Conflict
    } else {
        BatchAppendError::Store(StoreError::Database(error))
    }
}
