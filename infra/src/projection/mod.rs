//! The projection runner: reads the global feed in batches and applies each
//! batch to one projection's read model **in the same transaction** as its
//! checkpoint, so a crash never applies an event twice or skips one.
//!
//! - The checkpoint update comes first in every batch transaction and is
//!   conditional on the checkpoint the worker last saw. That fences out any
//!   other writer (a second replica, a rebuild) and takes SQLite's write lock
//!   before any read, so a batch never fails half-way on a lock upgrade.
//! - On PostgreSQL each projection runs under an advisory lock, so exactly one
//!   replica runs it; the others retry and take over when it dies.
//! - A projection whose version differs from its checkpoint's is cleared and
//!   rebuilt from position 0.
//!
//! The loop, the checkpoints and the locks serve any [`FeedConsumer`]
//! (`consumer.rs`); a projection is one, through its view's SQL store.

mod checkpoint;
mod consumer;
mod group;
pub(crate) mod lock;
mod worker;

pub use checkpoint::Checkpoint;
pub use consumer::FeedConsumer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_projections::{FeedPosition, Projection, ProjectionError};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{Config, Store, StoreError};
use consumer::ProjectionConsumer;
use lock::LockSession;
use worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("projection '{name}' failed at event {position}: {source}")]
    Projection {
        name: &'static str,
        position: FeedPosition,
        #[source]
        source: ProjectionError,
    },
    /// The checkpoint moved under this worker (a rebuild or another replica).
    #[error("projection '{0}' checkpoint was moved by another writer")]
    Fenced(&'static str),
    #[error("projection '{0}' lost its lock")]
    LockLost(&'static str),
    #[error("projection '{0}' is running in another process; stop it or wait for it")]
    LockedElsewhere(&'static str),
    #[error("unknown projection '{0}'")]
    Unknown(String),
}

impl From<sqlx::Error> for RunnerError {
    fn from(error: sqlx::Error) -> Self {
        RunnerError::Store(StoreError::Database(error))
    }
}

/// What `GET /v1/admin/projections` and `palisade projections status` show.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProjectionStatus {
    pub name: &'static str,
    pub version: i64,
    pub checkpoint: i64,
    pub head: i64,
    pub lag_events: i64,
    pub lag_ms: i64,
    pub running_here: bool,
}

/// What a catch-up run did.
#[derive(Debug, Clone, Copy)]
pub struct CatchUp {
    pub events: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone)]
struct Settings {
    batch: usize,
    groups: usize,
    poll: Duration,
    lock_retry: Duration,
}

/// Runs a set of projections, and any other feed consumers; cheap to clone.
#[derive(Clone)]
pub struct ProjectionRunner {
    store: Store,
    projections: Arc<[Arc<dyn Projection>]>,
    /// The projections as feed consumers, then the other consumers.
    consumers: Arc<[Arc<dyn FeedConsumer>]>,
    running: Arc<Mutex<HashSet<&'static str>>>,
    /// Each projection's last checkpoint committed in this process.
    applied: Arc<HashMap<&'static str, watch::Sender<FeedPosition>>>,
    settings: Settings,
}

impl ProjectionRunner {
    pub fn new(store: Store, projections: Vec<Arc<dyn Projection>>, config: &Config) -> Self {
        Self::with_consumers(store, projections, Vec::new(), config)
    }

    /// A runner of `projections` and of the feed consumers `others` (webhook
    /// delivery, process managers), each under its own checkpoint and lock.
    pub fn with_consumers(
        store: Store,
        projections: Vec<Arc<dyn Projection>>,
        others: Vec<Arc<dyn FeedConsumer>>,
        config: &Config,
    ) -> Self {
        // Shared slices: a runner is cloned with the application state on
        // every request, and cloning a Vec of them allocated each time.
        let consumers: Arc<[Arc<dyn FeedConsumer>]> = projections
            .iter()
            .map(|p| Arc::new(ProjectionConsumer(p.clone())) as Arc<dyn FeedConsumer>)
            .chain(others)
            .collect();
        let applied = consumers
            .iter()
            .map(|c| (c.name(), watch::channel(FeedPosition::START).0))
            .collect();
        Self {
            store,
            projections: projections.into(),
            consumers,
            running: Arc::default(),
            applied: Arc::new(applied),
            settings: Settings {
                batch: config.projection_batch.max(1),
                groups: config.projection_groups.max(1),
                poll: config.feed_poll,
                lock_retry: config.projection_lock_retry,
            },
        }
    }

    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    fn find(&self, name: &str) -> Result<Arc<dyn FeedConsumer>, RunnerError> {
        self.consumers
            .iter()
            .find(|c| c.name() == name)
            .cloned()
            .ok_or_else(|| RunnerError::Unknown(name.to_string()))
    }

    fn worker(&self, consumer: Arc<dyn FeedConsumer>) -> Worker {
        Worker {
            store: self.store.clone(),
            consumer,
            running: self.running.clone(),
            applied: self.applied.clone(),
            settings: self.settings.clone(),
        }
    }

    /// Changes whenever this process commits a batch of the named
    /// projection. Another replica's batches do not show here: poll as well.
    pub fn applied_here(&self, name: &str) -> Option<watch::Receiver<FeedPosition>> {
        self.applied.get(name).map(watch::Sender::subscribe)
    }

    /// Starts the projections as one group (`group.rs`: one feed read, one
    /// transaction and one checkpoint statement per batch for those caught
    /// up together) and one task per other consumer; they stop at a
    /// checkpoint when `shutdown` turns true.
    pub fn spawn(&self, shutdown: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let (projections, others) = self.consumers.split_at(self.projections.len());
        let groups = self.settings.groups.min(projections.len().max(1));
        (0..groups)
            .map(|g| {
                let members = projections
                    .iter()
                    .skip(g)
                    .step_by(groups)
                    .cloned()
                    .collect();
                let group = group::Group::new(
                    self.store.clone(),
                    members,
                    self.running.clone(),
                    self.applied.clone(),
                    self.settings.clone(),
                );
                tokio::spawn(group.run(shutdown.clone()))
            })
            .chain(
                others
                    .iter()
                    .map(|c| tokio::spawn(self.worker(c.clone()).run(shutdown.clone()))),
            )
            .collect()
    }

    pub fn running_here(&self, name: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
    }

    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, StoreError> {
        let head = self.store.feed_head().await?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut statuses = Vec::with_capacity(self.consumers.len());
        for projection in self.consumers.iter() {
            let stored = checkpoint::load(&self.store, projection.name()).await?;
            let position = stored.map(|c| c.position).unwrap_or(FeedPosition::START);
            let backlog = self.store.feed_backlog(position).await?;
            statuses.push(ProjectionStatus {
                name: projection.name(),
                version: projection.version(),
                checkpoint: position.position,
                head,
                lag_events: backlog.events,
                lag_ms: backlog
                    .oldest_recorded_ms
                    .map_or(0, |oldest| (now_ms - oldest).max(0)),
                running_here: self.running_here(projection.name()),
            });
        }
        Ok(statuses)
    }

    /// The named projection's checkpoint as it stands now (whichever
    /// process runs it); None before it first ran.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        checkpoint::load(&self.store, name).await
    }

    /// Waits until the projection has applied the event at `position`
    /// (whichever process runs it); false when `limit` passes first.
    pub async fn wait_until_applied(
        &self,
        name: &str,
        position: FeedPosition,
        limit: Duration,
    ) -> Result<bool, StoreError> {
        wait_until_applied(&self.store, &[name], position, limit).await
    }

    /// Waits until the consumer has handled the event at `position`: as
    /// this process's worker has it (which may be ahead of its stored
    /// checkpoint over batches it had nothing to do with), or as stored by
    /// whichever process runs it; false when `limit` passes first.
    pub async fn wait_until_handled(
        &self,
        name: &str,
        position: FeedPosition,
        limit: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + limit;
        let mut here = self.applied_here(name);
        loop {
            if here.as_ref().is_some_and(|rx| *rx.borrow() >= position) {
                return Ok(true);
            }
            let stored = checkpoint::load(&self.store, name).await?;
            if stored.is_some_and(|c| c.position >= position) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let pause = (deadline - now).min(Duration::from_millis(50));
            match here.as_mut() {
                Some(rx) => {
                    let _ = tokio::time::timeout(pause, rx.changed()).await;
                }
                None => tokio::time::sleep(pause).await,
            }
        }
    }

    /// Clears a projection's tables and rewinds its checkpoint to 0, in one
    /// transaction. Whichever process runs the projection then rebuilds it.
    pub async fn reset(&self, name: &str) -> Result<(), RunnerError> {
        let projection = self.find(name)?;
        checkpoint::reset(&self.store, projection.as_ref()).await
    }

    /// Applies every committed event the projection has not seen yet, here
    /// and now, under its lock. Fails if another process holds the lock.
    pub async fn catch_up(&self, name: &str) -> Result<CatchUp, RunnerError> {
        let projection = self.find(name)?;
        let worker = self.worker(projection.clone());
        let mut lock = LockSession::new(self.store.clone(), projection.name());
        if !lock.try_acquire().await? {
            return Err(RunnerError::LockedElsewhere(projection.name()));
        }
        let started = Instant::now();
        let result = worker.catch_up().await;
        lock.release().await;
        Ok(CatchUp {
            events: result?,
            elapsed: started.elapsed(),
        })
    }
}

/// Waits until every named consumer has applied the event at `position`
/// (whichever process runs it); false when `limit` passes first. A process
/// manager waits so for the views it reads.
pub async fn wait_until_applied(
    store: &Store,
    names: &[&str],
    position: FeedPosition,
    limit: Duration,
) -> Result<bool, StoreError> {
    if position == FeedPosition::START {
        return Ok(true);
    }
    let deadline = Instant::now() + limit;
    let mut changes = store.feed_changes();
    let mut pending: Vec<&str> = names.to_vec();
    loop {
        let mut still = Vec::with_capacity(pending.len());
        for name in pending {
            let applied = checkpoint::load(store, name).await?;
            if applied.is_none_or(|c| c.position < position) {
                still.push(name);
            }
        }
        if still.is_empty() {
            return Ok(true);
        }
        pending = still;
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        let pause = (deadline - now).min(Duration::from_millis(10));
        let _ = tokio::time::timeout(pause, changes.changed()).await;
    }
}
