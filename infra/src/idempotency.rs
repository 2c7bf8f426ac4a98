//! Idempotency-Key records (DESIGN §5). A request claims its key before it
//! runs; the response is stored when it finishes, and replayed to retries
//! with the same key and the same request for 24 hours.
//!
//! Known gap: the record is not written in the transaction that appends
//! the command's events. If a process dies between the append and
//! [`complete`], a retry more than [`ABANDONED_AFTER_MS`] later runs the
//! command again. Closing it takes Palisade's own `PersistedEventRepository`
//! (docs/event-store.md).

use sqlx::{AnyPool, Row};

/// How long a record answers retries.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;
/// An in-flight claim older than this was abandoned (its process died).
pub const ABANDONED_AFTER_MS: i64 = 60 * 1000;

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request holds the key now: run it, then [`complete`] or [`release`].
    Acquired,
    /// The first request with this key finished: replay its response.
    Replay(StoredResponse),
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

pub async fn claim(
    pool: &AnyPool,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now_ms: i64,
) -> Result<Claim, sqlx::Error> {
    // Expired records, and claims whose process died, give way.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2
            AND (created_at < $3 OR (response_status IS NULL AND created_at < $4))",
    )
    .bind(scope)
    .bind(key)
    .bind(now_ms - RETENTION_MS)
    .bind(now_ms - ABANDONED_AFTER_MS)
    .execute(pool)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (scope, idempotency_key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(now_ms)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Acquired);
    }
    let row = sqlx::query(
        "SELECT fingerprint, response_status, response_type, response_etag, response_body
           FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        // Deleted between our insert and select: the other request released it.
        return Ok(Claim::InFlight);
    };
    if row.try_get::<String, _>("fingerprint")? != fingerprint {
        return Ok(Claim::Mismatch);
    }
    let Some(status) = row.try_get::<Option<i64>, _>("response_status")? else {
        return Ok(Claim::InFlight);
    };
    Ok(Claim::Replay(StoredResponse {
        status: u16::try_from(status).unwrap_or(500),
        content_type: row.try_get("response_type")?,
        etag: row.try_get("response_etag")?,
        body: row
            .try_get::<Option<String>, _>("response_body")?
            .unwrap_or_default(),
    }))
}

/// Stores the response of the request that holds the key.
pub async fn complete(
    pool: &AnyPool,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys
            SET response_status = $1, response_type = $2, response_etag = $3, response_body = $4
          WHERE scope = $5 AND idempotency_key = $6",
    )
    .bind(i64::from(response.status))
    .bind(response.content_type.as_deref())
    .bind(response.etag.as_deref())
    .bind(&response.body)
    .bind(scope)
    .bind(key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives the key up (the request failed in a way a retry may fix).
pub async fn release(pool: &AnyPool, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2")
        .bind(scope)
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes records past their retention.
pub async fn prune(pool: &AnyPool, now_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_ms - RETENTION_MS)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
