//! The production backend. Feed reads are gap-safe: a row is returned only
//! once every transaction with a smaller id has ended, and rows come in
//! `(xact_id, position)` order, so a reader never moves past an event that
//! commits later (see `docs/architecture.md`). Readers wake on
//! LISTEN/NOTIFY. Projection and scheduler locks are session advisory locks.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use palisade_projections::{FeedEvent, FeedPosition};
use postgres_es::PostgresEventRepository;
use sqlx::any::AnyPoolOptions;
use sqlx::postgres::{PgConnection, PgListener, PgPoolOptions};
use sqlx::{AnyPool, PgPool, Row};
use sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::backend::{distinct, Backend, Dialect, Lock};
use super::batch::append_chunks;
use super::{feed_event, Backlog, EventRepository, FeedSlice, NewEventRow, StoreError, StoreKind};
use crate::readmodel::sql::{self, Sql};
use crate::Config;

/// How PostgreSQL's SQL is written.
pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    fn anonymous_placeholders(&self) -> bool {
        false
    }

    fn json_text(&self, column: &str, field: &str) -> String {
        format!("{column}->>'{field}'")
    }
}

/// The PostgreSQL backend: its pool.
pub(crate) struct Postgres {
    pool: PgPool,
}

#[async_trait]
impl Backend for Postgres {
    fn dialect(&self) -> &'static dyn Dialect {
        &PostgresDialect
    }

    fn postgres_pool(&self) -> Option<&PgPool> {
        Some(&self.pool)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    fn event_repository(&self) -> EventRepository {
        EventRepository::Postgres(PostgresEventRepository::new(self.pool.clone()))
    }

    async fn read_feed(
        &self,
        after: FeedPosition,
        limit: i64,
        only: Option<&[&str]>,
    ) -> Result<FeedSlice, StoreError> {
        read_feed(&self.pool, after, limit, only).await
    }

    async fn read_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        read_aggregate(&self.pool, aggregate_type, aggregate_id).await
    }

    /// One probe of the primary key per id (`= ANY` of an array).
    async fn read_aggregates(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT xact_id, position, aggregate_type, aggregate_id, sequence, event_type,
                    event_version, payload, metadata, recorded_at
               FROM events
              WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
              ORDER BY aggregate_id, sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_event).collect()
    }

    async fn feed_head_position(&self) -> Result<FeedPosition, StoreError> {
        feed_head_position(&self.pool).await
    }

    async fn feed_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<Option<FeedPosition>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT xact_id, position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(tx, position)| FeedPosition { tx, position }))
    }

    async fn changed_aggregates(
        &self,
        aggregate_type: &str,
        after: FeedPosition,
        upto: FeedPosition,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
              WHERE (xact_id, position) > ($1, $2) AND (xact_id, position) <= ($3, $4)
                AND aggregate_type = $5
              ORDER BY xact_id, position",
        )
        .bind(after.tx)
        .bind(after.position)
        .bind(upto.tx)
        .bind(upto.position)
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(distinct(ids))
    }

    async fn feed_backlog(&self, after: FeedPosition) -> Result<Backlog, StoreError> {
        let (events, oldest_recorded_ms): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(recorded_at) FROM events WHERE (xact_id, position) > ($1, $2)",
        )
        .bind(after.tx)
        .bind(after.position)
        .fetch_one(&self.pool)
        .await?;
        Ok(Backlog {
            events,
            oldest_recorded_ms,
        })
    }

    /// Each id is one probe of the primary key (a `LATERAL` lookup); see
    /// [`crate::Store::existing_aggregates`].
    fn existing_aggregates_query(&self, aggregate_type: &str, ids: &[&str]) -> Sql {
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

    async fn append_events(&self, rows: &[NewEventRow]) -> Result<bool, sqlx::Error> {
        let render = |sql: String, _| sql;
        append_chunks!(&self.pool, render, rows, |row| (
            &row.payload,
            &row.metadata
        ))
    }

    fn lock(&self, name: &'static str) -> Box<dyn Lock> {
        Box::new(AdvisoryLock {
            pool: self.pool.clone(),
            name,
            connection: None,
            held: false,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// The first key of every advisory lock: "palisade" in ASCII, truncated.
const LOCK_NAMESPACE: i32 = 0x7061_6c69;

/// A session advisory lock held on a dedicated connection, released when
/// that connection ends: a replica that dies (even `kill -9`) frees it.
struct AdvisoryLock {
    pool: PgPool,
    name: &'static str,
    connection: Option<PgConnection>,
    held: bool,
}

#[async_trait]
impl Lock for AdvisoryLock {
    async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        let connection = match self.connection.as_mut() {
            Some(connection) => connection,
            None => self
                .connection
                .insert(self.pool.connect_options().connect().await?),
        };
        let acquired =
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(LOCK_NAMESPACE)
                .bind(self.name)
                .fetch_one(&mut *connection)
                .await;
        match acquired {
            Ok(acquired) => {
                self.held = acquired;
                Ok(acquired)
            }
            Err(error) => {
                self.connection = None;
                Err(error.into())
            }
        }
    }

    async fn still_held(&mut self) -> bool {
        if !self.held {
            return false;
        }
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        if connection.ping().await.is_ok() {
            return true;
        }
        self.connection = None;
        self.held = false;
        false
    }

    async fn release(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        if let Some(connection) = self.connection.as_mut() {
            let released = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LOCK_NAMESPACE)
                .bind(self.name)
                .execute(&mut *connection)
                .await;
            if released.is_err() {
                self.connection = None;
            }
        }
    }
}

/// The channel the `events_notify` trigger notifies on every append.
pub(crate) const EVENTS_CHANNEL: &str = "palisade_events";

pub(super) async fn open(
    url: &str,
    config: &Config,
    wake: watch::Sender<u64>,
) -> Result<(Box<dyn Backend>, AnyPool, Option<JoinHandle<()>>), StoreError> {
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
    Ok((Box::new(Postgres { pool }), read_pool, Some(task)))
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

async fn read_feed(
    pool: &PgPool,
    after: FeedPosition,
    limit: i64,
    only: Option<&[&str]>,
) -> Result<FeedSlice, StoreError> {
    // The payload and metadata of events not wanted stay in the database:
    // decoding them was most of what a consumer of a few types paid.
    let wanted: Option<Vec<String>> =
        only.map(|types| types.iter().map(|t| t.to_string()).collect());
    let rows = sqlx::query(
        "SELECT xact_id, position, aggregate_type, aggregate_id, sequence, event_type,
                event_version,
                CASE WHEN $4::text[] IS NULL OR aggregate_type = ANY($4) THEN payload END AS payload,
                CASE WHEN $4::text[] IS NULL OR aggregate_type = ANY($4) THEN metadata END AS metadata,
                recorded_at
           FROM events
          WHERE (xact_id, position) > ($1, $2)
            AND xact_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
          ORDER BY xact_id, position
          LIMIT $3",
    )
    .bind(after.tx)
    .bind(after.position)
    .bind(limit)
    .bind(wanted)
    .fetch_all(pool)
    .await?;
    let mut slice = FeedSlice {
        read: rows.len(),
        ..FeedSlice::default()
    };
    for row in &rows {
        let aggregate_type: &str = row.try_get("aggregate_type")?;
        if FeedSlice::wants(only, aggregate_type) {
            slice.events.push(row_event(row)?);
        }
    }
    if let Some(row) = rows.last() {
        slice.read_to = Some(FeedPosition {
            tx: row.try_get("xact_id")?,
            position: row.try_get("position")?,
        });
    }
    Ok(slice)
}

/// One aggregate's events, oldest first.
async fn read_aggregate(
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
async fn feed_head_position(pool: &PgPool) -> Result<FeedPosition, StoreError> {
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
