//! The event store: one seam, one file per backend.
//!
//! [`Store`] owns the connections to one database and offers what the rest of
//! the system needs from it: a cqrs-es [`PersistedEventRepository`]
//! ([`EventRepository`], delegating to sqlite-es or postgres-es), the global
//! feed in commit-safe order, wake-ups for feed readers, and the pool the
//! read models use. Backend differences stay behind one seam, the
//! [`Backend`](backend::Backend) and [`Dialect`] traits of `backend.rs`,
//! implemented in `sqlite.rs` and `postgres.rs`.

mod backend;
mod batch;
mod postgres;
mod sqlite;

pub(crate) use backend::Lock;
pub use backend::{dialect_named, dialect_of, Dialect};
pub use batch::{BatchAppendError, NewEventRow};
pub(crate) use postgres::EVENTS_CHANNEL;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::{
    PersistedEventRepository, PersistedEventStore, PersistenceError, ReplayStream, SerializedEvent,
    SerializedSnapshot,
};
use cqrs_es::Aggregate;
use palisade_projections::{FeedEvent, FeedPosition};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::{AnyPool, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the {kind} store at {target}: {source}")]
    Open {
        kind: &'static str,
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("stored event at position {position} is malformed: {message}")]
    Malformed { position: i64, message: String },
}

/// One window of the feed: the events wanted from it, in feed order, and
/// the position of its last event (wanted or not); None when it was empty.
#[derive(Debug, Default)]
pub struct FeedSlice {
    pub events: Vec<FeedEvent>,
    pub read_to: Option<FeedPosition>,
    /// How many events the window held (wanted or not).
    pub read: usize,
}

impl FeedSlice {
    /// Whether `aggregate_type` is among `only` (None wants everything).
    pub(crate) fn wants(only: Option<&[&str]>, aggregate_type: &str) -> bool {
        only.is_none_or(|types| types.contains(&aggregate_type))
    }
}

/// How far the feed runs past a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub events: i64,
    /// When the oldest of those events was recorded (Unix milliseconds).
    pub oldest_recorded_ms: Option<i64>,
}

/// A handle on one database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Box<dyn backend::Backend>,
    read_pool: AnyPool,
    wake: watch::Sender<u64>,
    snapshots: HashMap<String, usize>,
    listener: Option<JoinHandle<()>>,
    /// Whether the database answered the last probe ([`Store::probe`]):
    /// the circuit that requests and the health check share.
    available: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// Whether `error` says the database could not be reached or went away
/// (a refused or reset connection, a pool that timed out, a server that is
/// shutting down or starting up): the request may succeed when retried,
/// and is answered 503, not 500.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: admin shutdown, crash
            // shutdown, cannot connect now.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// [`is_transient`] for any error, looking through its sources.
pub fn is_transient_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(sqlx) = error.downcast_ref::<sqlx::Error>() {
            if is_transient(sqlx) {
                return true;
            }
        }
        if error.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        next = error.source();
    }
    false
}

/// [`is_transient`] for an error of any of the store's types (`sqlx::Error`,
/// [`StoreError`], the projections' store error), as a caller that only
/// holds it as a value to display can ask.
pub fn is_transient_cause(cause: &dyn std::any::Any) -> bool {
    if let Some(error) = cause.downcast_ref::<sqlx::Error>() {
        return is_transient(error);
    }
    if let Some(error) = cause.downcast_ref::<StoreError>() {
        return error.is_transient();
    }
    if let Some(error) = cause.downcast_ref::<palisade_projections::StoreError>() {
        return is_transient_error(error.0.as_ref());
    }
    false
}

impl StoreError {
    /// Whether the database could not be reached ([`is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(error) | StoreError::Open { source: error, .. } => {
                is_transient(error)
            }
            StoreError::Io(_) => true,
            _ => false,
        }
    }
}

/// How often the database is probed ([`Store::watch_availability`]).
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long a probe waits for its answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

impl Store {
    /// Connects to the configured database: PostgreSQL when
    /// `PALISADE_DATABASE_URL` is set, otherwise the embedded SQLite file
    /// (created, with its folder, on first use). Does not migrate.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (wake, _) = watch::channel(0);
        let (backend, read_pool, listener) = match &config.database_url {
            Some(url) => postgres::open(url.expose(), config, wake.clone()).await?,
            None => sqlite::open(&config.sqlite_path(), config).await?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                read_pool,
                wake,
                snapshots: config.snapshots.clone(),
                listener,
                available: std::sync::atomic::AtomicBool::new(true),
            }),
        })
    }

    /// Whether the database answered its last probe. While it does not,
    /// the server answers 503 at once instead of waiting for a connection.
    pub fn available(&self) -> bool {
        self.inner
            .available
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks the database for `SELECT 1` within `limit`, and records the
    /// answer as [`Store::available`] (logging when it changes).
    pub async fn probe(&self, limit: Duration) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.inner.read_pool);
        let answered = matches!(tokio::time::timeout(limit, query).await, Ok(Ok(_)));
        let was = self
            .inner
            .available
            .swap(answered, std::sync::atomic::Ordering::AcqRel);
        match (was, answered) {
            (true, false) => {
                tracing::error!("the database does not answer; requests get 503 until it does")
            }
            (false, true) => tracing::info!("the database answers again"),
            _ => {}
        }
        answered
    }

    /// Probes the database every [`PROBE_EVERY`] until shutdown, so that
    /// an outage opens the circuit within a second and its end closes it.
    pub fn watch_availability(&self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                store.probe(PROBE_TIMEOUT).await;
                tokio::select! {
                    _ = tokio::time::sleep(PROBE_EVERY) => {}
                    _ = shutdown.changed() => {}
                }
            }
        })
    }

    pub fn kind(&self) -> StoreKind {
        self.dialect().kind()
    }

    /// How SQL is written for this store's database.
    pub fn dialect(&self) -> &'static dyn Dialect {
        self.inner.backend.dialect()
    }

    /// A lock named `name` that at most one process holds at a time.
    pub(crate) fn lock(&self, name: &'static str) -> Box<dyn Lock> {
        self.inner.backend.lock(name)
    }

    /// Waits for this process's turn to write, on SQLite; None on
    /// PostgreSQL, which needs no turns. Hold it for the whole write
    /// transaction.
    ///
    /// SQLite has one writer. Without turns, every connection that finds
    /// the write lock taken sleeps in SQLite's busy handler, with backoff
    /// up to 100 ms a sleep, and wakes to try again: under 32 concurrent
    /// commands that was a p99 of about 1 s. Writers of this process now
    /// queue on a fair async mutex instead, and one at a time reaches
    /// SQLite. The busy timeout remains for other processes (the CLI) and
    /// for single-statement writes outside the gate (usage counters).
    pub async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.inner.backend.write_gate() {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// Applies the schema migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.backend.migrate().await
    }

    pub fn event_repository(&self) -> EventRepository {
        self.inner.backend.event_repository()
    }

    /// Every how many events an aggregate type is snapshotted, if at all.
    pub fn snapshot_every<A: Aggregate>(&self) -> Option<usize> {
        self.inner.snapshots.get(A::TYPE).copied()
    }

    /// The cqrs-es event store for one aggregate type, snapshotting every N
    /// events when `PALISADE_SNAPSHOTS` names the type.
    pub fn event_store<A: Aggregate>(&self) -> PersistedEventStore<EventRepository, A> {
        match self.snapshot_every::<A>() {
            Some(every) => PersistedEventStore::new_snapshot_store(self.event_repository(), every),
            None => PersistedEventStore::new_event_store(self.event_repository()),
        }
    }

    /// The pool read models and checkpoints use: the same database, reached
    /// through sqlx's `Any` driver so that their SQL is written once.
    pub fn read_pool(&self) -> &AnyPool {
        &self.inner.read_pool
    }

    /// After deleting sealed rows (key material, secret values): on
    /// SQLite, whose connections run with `secure_delete` (freed pages are
    /// zeroed in the log), copies the log over the database file and
    /// empties it, since it still holds the frames that wrote the rows. On
    /// PostgreSQL the rows are deleted; what WAL and backups hold is in
    /// `docs/keys.md`.
    pub async fn scrub_deleted_pages(&self) -> Result<(), sqlx::Error> {
        if self.kind() != StoreKind::Sqlite {
            return Ok(());
        }
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(self.read_pool())
            .await?;
        if busy != 0 {
            tracing::warn!("the checkpoint after deleting sealed rows was blocked by readers; the log is emptied by the next one");
        }
        Ok(())
    }

    /// The PostgreSQL pool, when the store runs on PostgreSQL.
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        self.inner.backend.postgres_pool()
    }

    /// Tells this process's feed readers that events were appended. On
    /// PostgreSQL a NOTIFY does the same across processes.
    pub fn wake_feed_readers(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever events may have been appended.
    pub fn feed_changes(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    /// Up to `limit` committed events after `after`, in feed order. Never
    /// returns an event while an earlier one (in feed order) may still commit.
    pub async fn read_feed(
        &self,
        after: FeedPosition,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .inner
            .backend
            .read_feed(after, limit, None)
            .await?
            .events)
    }

    /// The same window of the feed as [`Store::read_feed`], but only the
    /// events of `aggregate_types` are decoded and returned; `read_to` says
    /// where the window ended. A consumer that follows a few aggregate
    /// types reads past the rest without their payloads.
    pub async fn read_feed_of(
        &self,
        after: FeedPosition,
        limit: usize,
        aggregate_types: &[&str],
    ) -> Result<FeedSlice, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.inner
            .backend
            .read_feed(after, limit, Some(aggregate_types))
            .await
    }

    /// One aggregate's committed events, oldest first (no watermark: what
    /// is committed is there).
    pub async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        self.inner
            .backend
            .read_aggregate(aggregate_type, aggregate_id)
            .await
    }

    /// The committed events of several aggregates of one type, grouped by
    /// aggregate, oldest first (one round trip per 500 ids at most).
    pub async fn aggregates_events(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<FeedEvent>, StoreError> {
        if aggregate_ids.is_empty() {
            return Ok(Vec::new());
        }
        self.inner
            .backend
            .read_aggregates(aggregate_type, aggregate_ids)
            .await
    }

    /// The feed position of the last event committed so far: once a
    /// projection's checkpoint reaches it, the projection reflects every
    /// write acknowledged before this call.
    pub async fn feed_head_position(&self) -> Result<FeedPosition, StoreError> {
        self.inner.backend.feed_head_position().await
    }

    /// Where one committed event stands in the feed.
    pub async fn feed_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Option<FeedPosition>, StoreError> {
        let sequence = i64::try_from(sequence).unwrap_or(i64::MAX);
        self.inner
            .backend
            .feed_position_of(aggregate_type, aggregate_id, sequence)
            .await
    }

    /// The highest position allocated so far (0 for an empty store).
    pub async fn feed_head(&self) -> Result<i64, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.inner.read_pool)
            .await?;
        Ok(head.unwrap_or(0))
    }

    /// The aggregates of `aggregate_type` with an event after `after` and at
    /// or before `upto` in feed order, each once.
    pub async fn changed_aggregates(
        &self,
        aggregate_type: &str,
        after: FeedPosition,
        upto: FeedPosition,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .backend
            .changed_aggregates(aggregate_type, after, upto)
            .await
    }

    /// How many committed events lie after `after`, and the age of the oldest.
    pub async fn feed_backlog(&self, after: FeedPosition) -> Result<Backlog, StoreError> {
        self.inner.backend.feed_backlog(after).await
    }

    pub async fn close(&self) {
        if let Some(listener) = &self.inner.listener {
            listener.abort();
        }
        self.inner.read_pool.close().await;
        self.inner.backend.close().await;
    }
}

/// Builds a feed event from a stored row's columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn feed_event(
    position: FeedPosition,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
    recorded_at_ms: i64,
) -> Result<FeedEvent, StoreError> {
    let metadata = serde_json::from_value(metadata).map_err(|e| StoreError::Malformed {
        position: position.position,
        message: format!("metadata: {e}"),
    })?;
    Ok(FeedEvent {
        position,
        aggregate_type,
        aggregate_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at_ms,
    })
}

/// The cqrs-es repository of whichever backend the store runs on.
pub enum EventRepository {
    /// With the store's write gate, taken around each append.
    Sqlite(SqliteEventRepository, Arc<tokio::sync::Mutex<()>>),
    Postgres(PostgresEventRepository),
}

macro_rules! delegate {
    ($self:ident, $repo:ident => $call:expr) => {
        match $self {
            EventRepository::Sqlite($repo, _) => $call.await,
            EventRepository::Postgres($repo) => $call.await,
        }
    };
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, repo => repo.get_events::<A>(aggregate_id))
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        delegate!(self, repo => repo.get_last_events::<A>(aggregate_id, last_sequence))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        delegate!(self, repo => repo.get_snapshot::<A>(aggregate_id))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if let EventRepository::Sqlite(repo, gate) = self {
            let _turn = gate.lock().await;
            return repo.persist::<A>(events, snapshot_update).await;
        }
        delegate!(self, repo => repo.persist::<A>(events, snapshot_update))
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, repo => repo.stream_events::<A>(aggregate_id))
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        delegate!(self, repo => repo.stream_all_events::<A>())
    }
}
