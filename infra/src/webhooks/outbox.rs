//! The outbox's tables as the API reads and changes them: an endpoint's
//! deliveries with their attempts, its figures, a manual retry, a replay.
//! (The dispatcher writes the rows, the senders claim and settle them.)

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use crate::readmodel::sql::{Sql, Value};
use crate::readmodel::{parse_timestamp, timestamp, Page, Window};
use crate::Store;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet delivered; an attempt is due at `next_attempt_at`.
    Pending,
    Success,
    /// Every attempt failed, or the endpoint answered 410.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Success => "success",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "success" => Some(DeliveryStatus::Success),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    /// Why it failed, when it did without an answer (or was refused).
    pub error: Option<String>,
    /// The answer's body, at most 1 KiB.
    pub response_excerpt: Option<String>,
}

/// One message's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: String,
    pub webhook_id: String,
    pub message_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub status: DeliveryStatus,
    pub attempt_count: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub attempts: Vec<AttemptRow>,
}

/// What `GET /v1/webhooks/{id}/deliveries` filters by.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

fn decode_delivery(row: &sqlx::any::AnyRow) -> Result<DeliveryRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let status = DeliveryStatus::parse(&status)
        .ok_or_else(|| sqlx::Error::Decode(format!("delivery status '{status}'").into()))?;
    let optional_time = |name: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get::<Option<String>, _>(name)?
            .as_deref()
            .map(parse_timestamp)
            .transpose()
    };
    Ok(DeliveryRow {
        id: row.try_get("delivery_id")?,
        webhook_id: row.try_get("webhook_id")?,
        message_id: row.try_get("message_id")?,
        event_type: row.try_get("event_type")?,
        occurred_at: parse_timestamp(&row.try_get::<String, _>("occurred_at")?)?,
        status,
        attempt_count: row.try_get("attempts")?,
        next_attempt_at: if status == DeliveryStatus::Pending {
            optional_time("next_attempt_at")?
        } else {
            None
        },
        last_attempt_at: optional_time("last_attempt_at")?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at")?)?,
        attempts: Vec::new(),
    })
}

/// A page of an endpoint's deliveries, newest first, each with its attempts.
pub async fn list_deliveries(
    pool: &AnyPool,
    webhook_id: &str,
    filter: &DeliveryFilter,
    window: impl Into<Window>,
) -> Result<Page<DeliveryRow>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT delivery_id, webhook_id, message_id, event_type, occurred_at, status, attempts,
                next_attempt_at, last_attempt_at, created_at
           FROM webhook_deliveries WHERE webhook_id = ",
    );
    sql.bind(Value::Text(webhook_id.into()));
    if let Some(status) = filter.status {
        sql.push(" AND status = ")
            .bind(Value::Text(status.as_str().into()));
    }
    if let Some(event_type) = &filter.event_type {
        sql.push(" AND event_type = ")
            .bind(Value::Text(event_type.clone()));
    }
    if let Some(since) = &filter.since {
        sql.push(" AND occurred_at >= ")
            .bind(Value::Text(timestamp(since)));
    }
    let mut page = crate::readmodel::paged(
        pool,
        sql,
        " ORDER BY occurred_at DESC, delivery_id DESC",
        window.into(),
        decode_delivery,
    )
    .await?;
    for delivery in &mut page.items {
        delivery.attempts = attempts_of(pool, &delivery.id).await?;
    }
    Ok(page)
}

/// One delivery of an endpoint, with its attempts.
pub async fn get_delivery(
    pool: &AnyPool,
    webhook_id: &str,
    delivery_id: &str,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT delivery_id, webhook_id, message_id, event_type, occurred_at, status, attempts,
                next_attempt_at, last_attempt_at, created_at
           FROM webhook_deliveries WHERE webhook_id = $1 AND delivery_id = $2",
    )
    .bind(webhook_id)
    .bind(delivery_id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut delivery = decode_delivery(&row)?;
    delivery.attempts = attempts_of(pool, &delivery.id).await?;
    Ok(Some(delivery))
}

async fn attempts_of(pool: &AnyPool, delivery_id: &str) -> Result<Vec<AttemptRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT attempt, attempted_at, status_code, duration_ms, error, response_excerpt
           FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
    )
    .bind(delivery_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptRow {
                attempt: row.try_get("attempt")?,
                at: parse_timestamp(&row.try_get::<String, _>("attempted_at")?)?,
                status_code: row
                    .try_get::<Option<i64>, _>("status_code")?
                    .and_then(|code| u16::try_from(code).ok()),
                duration_ms: row.try_get("duration_ms")?,
                error: row.try_get("error")?,
                response_excerpt: row.try_get("response_excerpt")?,
            })
        })
        .collect()
}

/// An endpoint's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryStats {
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub last_success_at: Option<DateTime<Utc>>,
    /// Of the last 1,000 successful attempts.
    pub p50_latency_ms: Option<i64>,
}

pub async fn delivery_stats(
    pool: &AnyPool,
    webhook_id: &str,
) -> Result<DeliveryStats, sqlx::Error> {
    let mut stats = DeliveryStats::default();
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY status",
    )
    .bind(webhook_id)
    .fetch_all(pool)
    .await?;
    for row in rows {
        let n: i64 = row.try_get("n")?;
        match DeliveryStatus::parse(&row.try_get::<String, _>("status")?) {
            Some(DeliveryStatus::Success) => stats.delivered = n,
            Some(DeliveryStatus::Failed) => stats.failed = n,
            Some(DeliveryStatus::Pending) => stats.pending = n,
            None => {}
        }
    }
    let last: Option<String> =
        sqlx::query_scalar("SELECT last_success_at FROM webhook_health WHERE webhook_id = $1")
            .bind(webhook_id)
            .fetch_optional(pool)
            .await?
            .flatten();
    stats.last_success_at = last.as_deref().map(parse_timestamp).transpose()?;
    let mut latencies: Vec<i64> = sqlx::query_scalar(
        "SELECT a.duration_ms FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.delivery_id = a.delivery_id
          WHERE d.webhook_id = $1 AND a.status_code >= 200 AND a.status_code < 300
          ORDER BY a.attempted_at DESC LIMIT 1000",
    )
    .bind(webhook_id)
    .fetch_all(pool)
    .await?;
    latencies.sort_unstable();
    stats.p50_latency_ms = latencies.get(latencies.len() / 2).copied();
    Ok(stats)
}

/// Makes a delivery due again now (a manual retry): whether it exists.
/// Its attempts are kept; a failed one is pending again.
pub async fn retry_delivery(
    store: &Store,
    webhook_id: &str,
    delivery_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let _turn = store.write_turn().await;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, claimed_until = NULL
          WHERE webhook_id = $2 AND delivery_id = $3",
    )
    .bind(timestamp(&now))
    .bind(webhook_id)
    .bind(delivery_id)
    .execute(store.read_pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Makes every delivery to the endpoint of a message since `since` due
/// again now (a replay): how many. A delivery in flight is sent again.
pub async fn replay_since(
    store: &Store,
    webhook_id: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let _turn = store.write_turn().await;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, claimed_until = NULL
          WHERE webhook_id = $2 AND occurred_at >= $3",
    )
    .bind(timestamp(&now))
    .bind(webhook_id)
    .bind(timestamp(&since))
    .execute(store.read_pool())
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the endpoint's outbox rows (after the endpoint is deleted).
pub async fn forget_webhook(store: &Store, webhook_id: &str) -> Result<(), sqlx::Error> {
    let _turn = store.write_turn().await;
    let mut tx = store.read_pool().begin().await?;
    forget_webhook_in(&mut tx, webhook_id).await?;
    tx.commit().await
}

/// [`forget_webhook`] within a transaction.
pub async fn forget_webhook_in(
    conn: &mut sqlx::AnyConnection,
    webhook_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE delivery_id IN
           (SELECT delivery_id FROM webhook_deliveries WHERE webhook_id = $1)",
    )
    .bind(webhook_id)
    .execute(&mut *conn)
    .await?;
    let messages: Vec<String> =
        sqlx::query_scalar("SELECT message_id FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(webhook_id)
            .fetch_all(&mut *conn)
            .await?;
    for table in ["webhook_deliveries", "webhook_health"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE webhook_id = $1"))
            .bind(webhook_id)
            .execute(&mut *conn)
            .await?;
    }
    // Its messages, unless another endpoint's deliveries carry them too.
    delete_orphaned_messages(conn, &messages).await?;
    Ok(())
}

/// How long a finished delivery (success or failed), its attempts and its
/// message are kept after its last attempt: the history, retry and replay
/// reach this far back.
pub const HISTORY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// Deletes up to `limit` deliveries that finished before `cutoff`, their
/// attempts, and the messages no delivery refers to any more: how many
/// deliveries went.
pub async fn prune_history(
    store: &Store,
    cutoff: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let pool = store.read_pool();
    let rows = sqlx::query(
        "SELECT delivery_id, message_id FROM webhook_deliveries
          WHERE status <> 'pending' AND last_attempt_at < $1
          ORDER BY last_attempt_at LIMIT $2",
    )
    .bind(timestamp(&cutoff))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut deliveries = Vec::with_capacity(rows.len());
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        deliveries.push(row.try_get::<String, _>("delivery_id")?);
        messages.push(row.try_get::<String, _>("message_id")?);
    }
    messages.sort();
    messages.dedup();
    let dialect = crate::store::dialect_of(pool);
    let _turn = store.write_turn().await;
    let mut tx = pool.begin().await?;
    // Only those still finished and old: one retried or replayed since it
    // was selected is pending again, and stays.
    let mut gone = in_list("DELETE FROM webhook_deliveries", "delivery_id", &deliveries);
    gone.push(" AND status <> 'pending' AND last_attempt_at < ")
        .bind(Value::Text(timestamp(&cutoff)));
    gone.push(" RETURNING delivery_id");
    let deleted: Vec<String> = gone
        .query(dialect)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("delivery_id"))
        .collect::<Result<_, _>>()?;
    let pruned = deleted.len() as u64;
    if !deleted.is_empty() {
        in_list("DELETE FROM webhook_attempts", "delivery_id", &deleted)
            .query(dialect)
            .execute(&mut *tx)
            .await?;
    }
    delete_orphaned_messages(&mut tx, &messages).await?;
    tx.commit().await?;
    Ok(pruned)
}

/// `head WHERE column IN (ids…)`.
fn in_list(head: &str, column: &str, ids: &[String]) -> Sql {
    let mut sql = Sql::new(head);
    sql.push(" WHERE ").push(column).push(" IN (");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.bind(Value::Text(id.clone()));
    }
    sql.push(")");
    sql
}

/// Deletes those of the messages `ids` that no delivery refers to.
async fn delete_orphaned_messages(
    conn: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    let dialect = crate::store::dialect_named(conn.backend_name());
    for chunk in ids.chunks(500) {
        let mut sql = in_list("DELETE FROM webhook_messages", "message_id", chunk);
        sql.push(
            " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                               WHERE d.message_id = webhook_messages.message_id)",
        );
        sql.query(dialect).execute(&mut *conn).await?;
    }
    Ok(())
}
