//! Idempotency-Key records (see `docs/architecture.md`). A request claims its key before it
//! runs; the response is stored when it finishes, and replayed to retries
//! with the same key and the same request for 24 hours.
//!
//! The response cannot be written in the append's transaction (it is made
//! after the commit), so the claim carries a token instead, and the
//! request's events carry that token as their `correlation_id`, atomically
//! with the append. When a process dies between the append and
//! [`complete`], a retry more than [`ABANDONED_AFTER_MS`] later finds the
//! claim abandoned and asks the event store whether the token committed:
//! if it did, the command is not run again ([`Claim::Committed`]); if not,
//! the retry takes the claim over and runs it.
//!
//! A record's scope is the API key that made the request (or "admin"), so
//! a replay only ever answers the credential that was answered first. A
//! response that carried a secret is stored with the secret replaced
//! ([`StoredResponse::redacted`]); records are pruned after
//! [`RETENTION_MS`] by the scheduler ([`prune`]).

use sqlx::{AnyPool, Row};

use crate::store::Store;

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
    /// Whether secrets in the first response were replaced before storing.
    pub redacted: bool,
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
    /// The first request with this key committed its events, but its
    /// process died before it stored the response: the command must not
    /// run again, and its response is lost.
    Committed,
}

/// Claims `key` for a request with `fingerprint`, under `token` (which the
/// request's events will carry as their `correlation_id`).
pub async fn claim(
    store: &Store,
    scope: &str,
    key: &str,
    fingerprint: &str,
    token: &str,
    now_ms: i64,
) -> Result<Claim, sqlx::Error> {
    let pool = store.read_pool();
    // Each write takes the store's write turn (SQLite); the reads, and the
    // event-log scan below, do not hold it.
    let turn = store.write_turn().await;
    // Expired records give way.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND created_at < $3",
    )
    .bind(scope)
    .bind(key)
    .bind(now_ms - RETENTION_MS)
    .execute(pool)
    .await?;
    drop(turn);
    // At most twice: once more after taking over an abandoned claim.
    for _ in 0..2 {
        let turn = store.write_turn().await;
        let inserted = insert(pool, scope, key, fingerprint, token, now_ms).await?;
        drop(turn);
        if inserted {
            return Ok(Claim::Acquired);
        }
        let row = sqlx::query(
            "SELECT fingerprint, token, created_at, response_status, response_type,
                    response_etag, response_body, response_redacted
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
        if let Some(status) = row.try_get::<Option<i64>, _>("response_status")? {
            return Ok(Claim::Replay(StoredResponse {
                status: u16::try_from(status).unwrap_or(500),
                content_type: row.try_get("response_type")?,
                etag: row.try_get("response_etag")?,
                body: row
                    .try_get::<Option<String>, _>("response_body")?
                    .unwrap_or_default(),
                redacted: row.try_get::<i64, _>("response_redacted")? != 0,
            }));
        }
        let created_at: i64 = row.try_get("created_at")?;
        if created_at >= now_ms - ABANDONED_AFTER_MS {
            return Ok(Claim::InFlight);
        }
        // Abandoned: its process died. Did its command commit?
        if let Some(theirs) = row.try_get::<Option<String>, _>("token")? {
            if committed(store, &theirs).await? {
                return Ok(Claim::Committed);
            }
        }
        // It did not: take the claim over (unless another retry did first).
        let _turn = store.write_turn().await;
        sqlx::query(
            "DELETE FROM idempotency_keys
              WHERE scope = $1 AND idempotency_key = $2 AND created_at = $3
                AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(created_at)
        .execute(pool)
        .await?;
    }
    Ok(Claim::InFlight)
}

async fn insert(
    pool: &AnyPool,
    scope: &str,
    key: &str,
    fingerprint: &str,
    token: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, token, created_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, idempotency_key) DO NOTHING",
    )
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(token)
    .bind(now_ms)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether any event carries `token` as its `correlation_id`. A scan of the
/// event log: it runs only for a claim whose process died.
async fn committed(store: &Store, token: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "SELECT CAST(1 AS BIGINT) FROM events WHERE {} = $1 LIMIT 1",
        store.dialect().json_text("metadata", "correlation_id")
    );
    let found: Option<i64> = sqlx::query_scalar(&sql)
        .bind(token)
        .fetch_optional(store.read_pool())
        .await?;
    Ok(found.is_some())
}

/// Stores the response of the request that holds the key. Like every
/// write here, it takes the store's write turn (SQLite).
pub async fn complete(
    store: &Store,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    let _turn = store.write_turn().await;
    sqlx::query(
        "UPDATE idempotency_keys
            SET response_status = $1, response_type = $2, response_etag = $3, response_body = $4,
                response_redacted = $5
          WHERE scope = $6 AND idempotency_key = $7",
    )
    .bind(i64::from(response.status))
    .bind(response.content_type.as_deref())
    .bind(response.etag.as_deref())
    .bind(&response.body)
    .bind(i64::from(response.redacted))
    .bind(scope)
    .bind(key)
    .execute(store.read_pool())
    .await?;
    Ok(())
}

/// Gives the key up (the request failed in a way a retry may fix).
pub async fn release(store: &Store, scope: &str, key: &str) -> Result<(), sqlx::Error> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2")
        .bind(scope)
        .bind(key)
        .execute(store.read_pool())
        .await?;
    Ok(())
}

/// Deletes records past their retention (the scheduler's job). Takes the
/// store's write turn (SQLite).
pub async fn prune(store: &Store, now_ms: i64) -> Result<u64, sqlx::Error> {
    let _turn = store.write_turn().await;
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now_ms - RETENTION_MS)
        .execute(store.read_pool())
        .await?;
    Ok(done.rows_affected())
}
