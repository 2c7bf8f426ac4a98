//! The embedded backend: one SQLite file in WAL mode. SQLite has one writer,
//! so the feed position assigned inside the appending transaction (a trigger,
//! see the migration) is already commit order.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use palisade_projections::{FeedEvent, FeedPosition};
use sqlite_es::SqliteEventRepository;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions as _, Executor, Row, SqlitePool};
use tokio::task::JoinHandle;

use super::backend::{distinct, Backend, Dialect, Lock};
use super::batch::append_chunks;
use super::{feed_event, Backlog, EventRepository, FeedSlice, NewEventRow, StoreError, StoreKind};
use crate::readmodel::sql::{self, Sql};
use crate::Config;

/// How SQLite's SQL is written.
pub(crate) struct SqliteDialect;

impl Dialect for SqliteDialect {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn anonymous_placeholders(&self) -> bool {
        true
    }

    fn json_text(&self, column: &str, field: &str) -> String {
        format!("json_extract({column}, '$.{field}')")
    }
}

/// The SQLite backend: its pool and the process's write turn.
pub(crate) struct Sqlite {
    pool: SqlitePool,
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait]
impl Backend for Sqlite {
    fn dialect(&self) -> &'static dyn Dialect {
        &SqliteDialect
    }

    fn write_gate(&self) -> Option<&Arc<tokio::sync::Mutex<()>>> {
        Some(&self.write_gate)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    fn event_repository(&self) -> EventRepository {
        EventRepository::Sqlite(
            SqliteEventRepository::new(self.pool.clone()),
            self.write_gate.clone(),
        )
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

    async fn read_aggregates(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let mut events = Vec::new();
        for chunk in aggregate_ids.chunks(super::batch::CHUNK) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, recorded_at
                   FROM events
                  WHERE aggregate_type = ? AND aggregate_id IN ({marks})
                  ORDER BY aggregate_id, sequence"
            );
            let mut query = sqlx::query(&sql).bind(aggregate_type);
            for id in chunk {
                query = query.bind(id);
            }
            for row in query.fetch_all(&self.pool).await? {
                events.push(row_event(&row)?);
            }
        }
        Ok(events)
    }

    /// One writer: position order is commit order, so the head is the
    /// highest position.
    async fn feed_head_position(&self) -> Result<FeedPosition, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(FeedPosition {
            tx: 0,
            position: head.unwrap_or(0),
        })
    }

    async fn changed_aggregates(
        &self,
        aggregate_type: &str,
        after: FeedPosition,
        upto: FeedPosition,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT aggregate_id FROM events
              WHERE position > $1 AND position <= $2 AND aggregate_type = $3
              ORDER BY position",
        )
        .bind(after.position)
        .bind(upto.position)
        .bind(aggregate_type)
        .fetch_all(&self.pool)
        .await?;
        Ok(distinct(ids))
    }

    async fn feed_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<Option<FeedPosition>, StoreError> {
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?;
        Ok(position.map(|position| FeedPosition { tx: 0, position }))
    }

    async fn feed_backlog(&self, after: FeedPosition) -> Result<Backlog, StoreError> {
        let (events, oldest_recorded_ms): (i64, Option<i64>) =
            sqlx::query_as("SELECT COUNT(*), MIN(recorded_at) FROM events WHERE position > $1")
                .bind(after.position)
                .fetch_one(&self.pool)
                .await?;
        Ok(Backlog {
            events,
            oldest_recorded_ms,
        })
    }

    /// SQLite always probes the key for `IN`.
    fn existing_aggregates_query(&self, aggregate_type: &str, ids: &[&str]) -> Sql {
        let mut lookup = Sql::new("SELECT aggregate_id FROM events WHERE aggregate_type = ");
        lookup
            .bind(sql::Value::Text(aggregate_type.into()))
            .push(" AND sequence = 1")
            .and_in("aggregate_id", ids);
        lookup
    }

    async fn append_events(&self, rows: &[NewEventRow]) -> Result<bool, sqlx::Error> {
        let _turn = self.write_gate.lock().await;
        let render = |sql: String, count| sql::anonymous(&sql, count).unwrap_or(sql);
        append_chunks!(&self.pool, render, rows, |row| (
            row.payload.to_string(),
            row.metadata.to_string()
        ))
    }

    /// One process's embedded store: the lock is always granted.
    fn lock(&self, _name: &'static str) -> Box<dyn Lock> {
        Box::new(Granted { held: false })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// A lock that only this process can want.
struct Granted {
    held: bool,
}

#[async_trait]
impl Lock for Granted {
    async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        self.held = true;
        Ok(true)
    }

    async fn still_held(&mut self) -> bool {
        self.held
    }

    async fn release(&mut self) {
        self.held = false;
    }
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn open(
    path: &Path,
    config: &Config,
) -> Result<(Box<dyn Backend>, AnyPool, Option<JoinHandle<()>>), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::keyfile::private_dir(dir)?;
    }
    // SQLite creates the WAL and shared-memory files with the database
    // file's mode: create that one private, and tighten any of the three
    // that an older version left readable.
    private_database_files(path)?;
    let opened = |source| StoreError::Open {
        kind: "sqlite",
        target: path.display().to_string(),
        source,
    };
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // Deleted rows (idempotency records, later key material) are
        // overwritten, not left in free pages.
        .pragma("secure_delete", "on")
        // Writers keep more of the indexes they update in memory (the
        // default is 2 MiB; a batch of findings touches more than that),
        // and checkpoint the WAL less often, so a page rewritten by many
        // batches reaches the database file once per checkpoint.
        .pragma("cache_size", "-32768")
        .pragma("wal_autocheckpoint", "8000")
        .log_slow_statements(log::LevelFilter::Warn, config.slow_statement);
    let pool = SqlitePoolOptions::new()
        .max_connections(config.db_max_connections)
        .connect_with(options)
        .await
        .map_err(opened)?;
    let url = format!("sqlite://{}?mode=rw", path.display());
    // Validate the URL form before handing it to the Any driver.
    SqliteConnectOptions::from_str(&url).map_err(opened)?;
    let any_options = sqlx::any::AnyConnectOptions::from_str(&url)
        .map_err(opened)?
        .log_slow_statements(log::LevelFilter::Warn, config.slow_statement);
    let read_pool = AnyPoolOptions::new()
        .max_connections(config.db_max_connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA secure_delete = on").await?;
                Ok(())
            })
        })
        .connect_with(any_options)
        .await
        .map_err(opened)?;
    let backend = Sqlite {
        pool,
        write_gate: Arc::new(tokio::sync::Mutex::new(())),
    };
    Ok((Box::new(backend), read_pool, None))
}

/// Creates the database file with mode 0600 when it does not exist, and
/// makes it and its `-wal` and `-shm` companions 0600 when they do.
fn private_database_files(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        crate::keyfile::private_file(Path::new(&name))?;
    }
    Ok(())
}

async fn read_feed(
    pool: &SqlitePool,
    after: FeedPosition,
    limit: i64,
    only: Option<&[&str]>,
) -> Result<FeedSlice, StoreError> {
    // The payload and metadata of events not wanted stay in the database.
    let wanted = match only {
        None => "1".to_string(),
        Some([]) => "0".to_string(),
        Some(types) => {
            let marks: Vec<String> = (0..types.len()).map(|i| format!("${}", i + 3)).collect();
            format!("aggregate_type IN ({})", marks.join(", "))
        }
    };
    let sql = format!(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                CASE WHEN {wanted} THEN payload END AS payload,
                CASE WHEN {wanted} THEN metadata END AS metadata, recorded_at
           FROM events
          WHERE position > $1
          ORDER BY position
          LIMIT $2"
    );
    let mut query = sqlx::query(&sql).bind(after.position).bind(limit);
    for aggregate_type in only.unwrap_or_default() {
        query = query.bind(*aggregate_type);
    }
    let rows = query.fetch_all(pool).await?;
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
            tx: 0,
            position: row.try_get("position")?,
        });
    }
    Ok(slice)
}

/// One aggregate's events, oldest first.
async fn read_aggregate(
    pool: &SqlitePool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload, metadata, recorded_at
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

fn row_event(row: &sqlx::sqlite::SqliteRow) -> Result<FeedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let json = |column: &str| -> Result<serde_json::Value, StoreError> {
        let text: String = row.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Malformed {
            position,
            message: format!("{column}: {e}"),
        })
    };
    feed_event(
        FeedPosition { tx: 0, position },
        row.try_get("aggregate_type")?,
        row.try_get("aggregate_id")?,
        row.try_get("sequence")?,
        row.try_get("event_type")?,
        row.try_get("event_version")?,
        json("payload")?,
        json("metadata")?,
        row.try_get("recorded_at")?,
    )
}
