//! Write-behind, the part every view's SQL store shares: a store keeps the
//! rows its batch changed (its projection's reads see them first), and
//! writes each changed row once, in multi-row statements ([`insert_rows`]),
//! before the runner commits. A batch that touches one asset 500 times
//! writes it once.

use palisade_projections::StoreError;

use super::sql::{Sql, Value};
use super::{store_error, BatchTransaction};

/// Rows per multi-row statement: well below both backends' limits on
/// bound parameters (PostgreSQL 65,535; SQLite 32,766).
const CHUNK: usize = 200;

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError(Box::new(e)))
}

/// Scores as the API shows them (two decimals), so that `min_risk` and
/// sorting agree with what a client sees; `doc` keeps the exact value.
pub(super) fn shown_score(score: f64) -> Value {
    Value::Real((score * 100.0).round() / 100.0)
}

pub(crate) fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

pub(super) fn optional(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// `INSERT INTO {head} VALUES (…), (…) {tail}` for each chunk of `rows`.
pub(crate) async fn insert_rows<T>(
    tx: &mut BatchTransaction,
    head: &str,
    tail: &str,
    rows: &[T],
    values: impl Fn(&T) -> Result<Vec<Value>, StoreError>,
) -> Result<(), StoreError> {
    let dialect = crate::store::dialect_named(tx.backend_name());
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new(&format!("INSERT INTO {head} VALUES "));
        for (i, row) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in values(row)?.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(value);
            }
            sql.push(")");
        }
        sql.push(" ").push(tail);
        sql.query(dialect)
            .execute(&mut **tx)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}
