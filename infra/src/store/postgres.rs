//! The production backend. Feed reads are gap-safe: a row is returned only
//! once every transaction with a smaller id has ended, and rows come in
//! `(xact_id, position)` order, so a reader never moves past an event that
//! commits later (DESIGN §2). Readers wake on LISTEN/NOTIFY.

use std::str::FromStr;
use std::time::Duration;

use palisade_projections::{FeedEvent, FeedPosition};
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::ConnectOptions as _;
use sqlx::{AnyPool, PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{feed_event, Backend, StoreError};
use crate::Config;

/// The channel the `events_notify` trigger notifies on every append.
pub(crate) const EVENTS_CHANNEL: &str = "palisade_events";

pub(super) async fn open(
    url: &str,
    config: &Config,
    wake: watch::Sender<u64>,
) -> Result<(Backend, AnyPool, Option<JoinHandle<()>>), StoreError> {
    let opened = |source| StoreError::Open {
        kind: "postgres",
        target: redact(url),
        source,
    };
    let slow = config.slow_statement;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)
        .map_err(opened)?
        .log_slow_statements(log::LevelFilter::Warn, slow);
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout)
        .connect_with(options)
        .await
        .map_err(opened)?;
    let any_options = sqlx::any::AnyConnectOptions::from_str(url)
        .map_err(opened)?
        .log_slow_statements(log::LevelFilter::Warn, slow);
    let read_pool = AnyPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(config.db_acquire_timeout)
        .connect_with(any_options)
        .await
        .map_err(opened)?;
    let mut listener = PgListener::connect_with(&pool).await.map_err(opened)?;
    listener.listen(EVENTS_CHANNEL).await.map_err(opened)?;
    let task = tokio::spawn(async move {
        loop {
            // PgListener reconnects by itself; a notification lost meanwhile
            // is covered by the readers' poll.
            match listener.recv().await {
                Ok(_) => {
                    wake.send_modify(|n| *n = n.wrapping_add(1));
                }
                Err(error) => {
                    tracing::warn!(%error, "feed listener interrupted");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok((Backend::Postgres(pool), read_pool, Some(task)))
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

pub(super) async fn read_feed(
    pool: &PgPool,
    after: FeedPosition,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT xact_id, position, aggregate_type, aggregate_id, sequence, event_type,
                event_version, payload, metadata, recorded_at
           FROM events
          WHERE (xact_id, position) > ($1, $2)
            AND xact_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
          ORDER BY xact_id, position
          LIMIT $3",
    )
    .bind(after.tx)
    .bind(after.position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_event).collect()
}

/// One aggregate's events, oldest first.
pub(super) async fn read_aggregate(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT xact_id, position, aggregate_type, aggregate_id, sequence, event_type,
                event_version, payload, metadata, recorded_at
           FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_event).collect()
}

/// The last committed event in feed order (what a strong read waits for).
pub(super) async fn feed_head_position(pool: &PgPool) -> Result<FeedPosition, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT xact_id, position FROM events ORDER BY xact_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(
        row.map_or(FeedPosition::START, |(tx, position)| FeedPosition {
            tx,
            position,
        }),
    )
}

fn row_event(row: &sqlx::postgres::PgRow) -> Result<FeedEvent, StoreError> {
    feed_event(
        FeedPosition {
            tx: row.try_get("xact_id")?,
            position: row.try_get("position")?,
        },
        row.try_get("aggregate_type")?,
        row.try_get("aggregate_id")?,
        row.try_get("sequence")?,
        row.try_get("event_type")?,
        row.try_get("event_version")?,
        row.try_get("payload")?,
        row.try_get("metadata")?,
        row.try_get("recorded_at")?,
    )
}
