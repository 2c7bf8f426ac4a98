//! The embedded backend: one SQLite file in WAL mode. SQLite has one writer,
//! so the feed position assigned inside the appending transaction (a trigger,
//! see the migration) is already commit order.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use palisade_projections::{FeedEvent, FeedPosition};
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions as _, Executor, Row, SqlitePool};
use tokio::task::JoinHandle;

use super::{feed_event, Backend, StoreError};
use crate::Config;

const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) async fn open(
    path: &Path,
    config: &Config,
) -> Result<(Backend, AnyPool, Option<JoinHandle<()>>), StoreError> {
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
    Ok((Backend::Sqlite(pool), read_pool, None))
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

pub(super) async fn read_feed(
    pool: &SqlitePool,
    after: FeedPosition,
    limit: i64,
) -> Result<Vec<FeedEvent>, StoreError> {
    let rows = sqlx::query(
        "SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                payload, metadata, recorded_at
           FROM events
          WHERE position > $1
          ORDER BY position
          LIMIT $2",
    )
    .bind(after.position)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_event).collect()
}

/// One aggregate's events, oldest first.
pub(super) async fn read_aggregate(
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
