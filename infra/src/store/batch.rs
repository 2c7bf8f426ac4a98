//! Appending events of many aggregates in one transaction (bulk ingest,
//! and an ingestion job's batch with its progress). cqrs-es appends one
//! aggregate per transaction; this writes the same rows as its
//! repositories (same columns, same JSON), so loading, the feed and the
//! projections cannot tell the difference. Each row names the sequence it
//! expects to take: the event table's key on (type, aggregate, sequence)
//! is the optimistic-concurrency check, for all rows at once.

use serde_json::Value;

use super::{Store, StoreError};

/// One event at the sequence it must take, serialized as cqrs-es would.
#[derive(Debug, Clone)]
pub struct NewEventRow {
    pub aggregate_type: &'static str,
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
    /// One of the rows' sequences was taken (a new aggregate existed, or
    /// an existing one changed meanwhile): nothing was stored.
    #[error("an aggregate in the batch changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows per INSERT: 7 parameters each, well below both backends' limits.
pub(super) const CHUNK: usize = 500;

fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            matches!(e.code().as_deref(), Some("23505" | "1555" | "2067"))
        }
        _ => false,
    }
}

/// A multi-row INSERT of `rows` events that skips (rather than fails on)
/// a row whose aggregate already has that sequence: the caller compares
/// the rows inserted with the rows sent. No error is raised, so a
/// deduplicated ingest leaves no error in the database's log.
pub(super) fn insert_sql(rows: usize) -> String {
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
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// Binds every row's seven columns to a multi-row INSERT; the payload and
/// metadata as `$json`, which is text on SQLite and JSON on PostgreSQL.
/// `$render` writes the statement for the backend (`?` on SQLite: see
/// `readmodel::sql`). The backends (`sqlite.rs`, `postgres.rs`) use it.
/// True when every row was inserted; false when one of the aggregates
/// exists, and then nothing is. One row is one statement, without a
/// transaction around it (it is atomic on its own).
macro_rules! append_chunks {
    ($pool:expr, $render:expr, $rows:expr, |$row:ident| $json:expr) => {{
        let rows: &[$crate::store::NewEventRow] = $rows;
        macro_rules! chunk_query {
            ($chunk:expr, $sql:expr) => {{
                let mut query = sqlx::query($sql);
                for $row in $chunk {
                    let (payload, metadata) = $json;
                    query = query
                        .bind($row.aggregate_type)
                        .bind(&$row.aggregate_id)
                        .bind($row.sequence)
                        .bind(&$row.event_type)
                        .bind(&$row.event_version)
                        .bind(payload)
                        .bind(metadata);
                }
                query
            }};
        }
        if rows.len() == 1 {
            let sql = $render($crate::store::batch::insert_sql(1), 7);
            let done = chunk_query!(rows, &sql).execute($pool).await?;
            Ok(done.rows_affected() == 1)
        } else {
            let mut tx = $pool.begin().await?;
            let mut inserted = 0;
            for chunk in rows.chunks($crate::store::batch::CHUNK) {
                let sql = $render(
                    $crate::store::batch::insert_sql(chunk.len()),
                    chunk.len() * 7,
                );
                inserted += chunk_query!(chunk, &sql)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            if inserted == rows.len() as u64 {
                tx.commit().await?;
                Ok(true)
            } else {
                tx.rollback().await?;
                Ok(false)
            }
        }
    }};
}
pub(super) use append_chunks;

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
            let mut lookup = self
                .inner
                .backend
                .existing_aggregates_query(aggregate_type, &ids);
            found.extend(
                lookup
                    .query_scalar::<String>(self.dialect())
                    .fetch_all(self.read_pool())
                    .await?,
            );
        }
        Ok(found)
    }

    /// Appends `rows` in one transaction: all or, when any row's sequence
    /// is taken, none.
    pub async fn append_events(&self, rows: &[NewEventRow]) -> Result<(), BatchAppendError> {
        if rows.is_empty() {
            return Ok(());
        }
        let all = self
            .inner
            .backend
            .append_events(rows)
            .await
            .map_err(classify)?;
        if !all {
            return Err(BatchAppendError::Conflict);
        }
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
