//! One feed consumer's loop (a process manager's; and a projection's when
//! it catches up alone): take the lock, resume
//! from the checkpoint, apply batches until told to stop, and start over
//! after any error.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_projections::FeedPosition;
use tokio::sync::watch;
use tracing::Instrument;

use super::lock::LockSession;
use super::{checkpoint, FeedConsumer, RunnerError, Settings};
use crate::{FeedSlice, Store};

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a consumer may run ahead of its stored checkpoint over batches
/// it has nothing to do with ([`FeedConsumer::aggregate_types`]); readers in this
/// process see where it has read to at once.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Where a consumer has read to, and where its stored checkpoint stands
/// (behind it only over batches the consumer had nothing to do with).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    read: FeedPosition,
    saved: FeedPosition,
    saved_at: Instant,
}

impl Cursor {
    fn at(position: FeedPosition) -> Self {
        Self {
            read: position,
            saved: position,
            saved_at: Instant::now(),
        }
    }
}
/// How long a catch-up waits for committed events the watermark holds back.
const CATCH_UP_PATIENCE: Duration = Duration::from_secs(30);

pub(super) struct Worker {
    pub store: Store,
    pub consumer: Arc<dyn FeedConsumer>,
    pub running: Arc<Mutex<HashSet<&'static str>>>,
    pub applied: Arc<HashMap<&'static str, watch::Sender<FeedPosition>>>,
    pub settings: Settings,
}

/// Sleeps for `duration` unless shutdown comes first; true when shutting down.
async fn pause(duration: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = shutdown.changed() => {}
    }
    *shutdown.borrow()
}

impl Worker {
    fn name(&self) -> &'static str {
        self.consumer.name()
    }

    fn mark_running(&self, running: bool) {
        let mut set = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running {
            set.insert(self.name());
        } else {
            set.remove(self.name());
        }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut lock = LockSession::new(self.store.clone(), self.name());
        let mut backoff = self.settings.poll;
        while !*shutdown.borrow() {
            match lock.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    pause(self.settings.lock_retry, &mut shutdown).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(projection = self.name(), %error, "cannot try the projection lock");
                    pause(self.settings.lock_retry, &mut shutdown).await;
                    continue;
                }
            }
            tracing::info!(projection = self.name(), "running projection here");
            self.mark_running(true);
            let outcome = self.drive(&mut lock, &mut shutdown, &mut backoff).await;
            self.mark_running(false);
            lock.release().await;
            match outcome {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(projection = self.name(), %error, retry_in = ?backoff, "projection stopped");
                    pause(backoff, &mut shutdown).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        tracing::debug!(projection = self.name(), "projection worker stopped");
    }

    /// Applies batches while the lock holds; returns Ok at shutdown.
    async fn drive(
        &self,
        lock: &mut LockSession,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Duration,
    ) -> Result<(), RunnerError> {
        let mut changes = self.store.feed_changes();
        let mut cursor =
            Cursor::at(checkpoint::prepare(&self.store, self.consumer.as_ref()).await?);
        let mut lock_checked = Instant::now();
        loop {
            if *shutdown.borrow() {
                return self.save(&mut cursor).await;
            }
            changes.mark_unchanged();
            match self.step(&mut cursor).await {
                Ok(Some(_)) => {
                    *backoff = self.settings.poll;
                    continue;
                }
                Ok(None) => {}
                Err(RunnerError::Fenced(_)) => {
                    cursor =
                        Cursor::at(checkpoint::prepare(&self.store, self.consumer.as_ref()).await?);
                    continue;
                }
                Err(error) => return Err(error),
            }
            tokio::select! {
                _ = changes.changed() => {
                    // Let the feed gather: under load one read then takes
                    // many events, instead of one read per commit.
                    tokio::select! {
                        _ = tokio::time::sleep(self.consumer.gather()) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
            // A round trip on the lock's connection, at most once a second
            // (not once per commit).
            if lock_checked.elapsed() >= SAVE_EVERY {
                if !lock.still_held().await {
                    return Err(RunnerError::LockLost(self.name()));
                }
                lock_checked = Instant::now();
            }
        }
    }

    /// Stores the checkpoint where the consumer has read to, if behind.
    async fn save(&self, cursor: &mut Cursor) -> Result<(), RunnerError> {
        if cursor.saved != cursor.read {
            let consumer = self.consumer.as_ref();
            checkpoint::advance(&self.store, consumer, cursor.saved, cursor.read).await?;
            cursor.saved = cursor.read;
        }
        cursor.saved_at = Instant::now();
        Ok(())
    }

    /// What this process has handled, for readers that wait on it here
    /// (`ProjectionRunner::wait_until_handled`): ahead of the stored
    /// checkpoint over batches the consumer had nothing to do with.
    fn handled(&self, position: FeedPosition) {
        if let Some(applied) = self.applied.get(self.name()) {
            applied.send_replace(position);
        }
    }

    /// Reads and applies one batch after the cursor: how many events it
    /// read, or None when caught up (the checkpoint is stored then, at most
    /// once a second). A consumer of some aggregate types gets only their
    /// events; a window with none of them is read past.
    async fn step(&self, cursor: &mut Cursor) -> Result<Option<u64>, RunnerError> {
        let slice = match self.consumer.aggregate_types() {
            Some(types) => {
                self.store
                    .read_feed_of(cursor.read, self.settings.batch, types)
                    .await?
            }
            None => {
                let events = self
                    .store
                    .read_feed(cursor.read, self.settings.batch)
                    .await?;
                FeedSlice {
                    read: events.len(),
                    read_to: events.last().map(|e| e.position),
                    events,
                }
            }
        };
        let Some(read_to) = slice.read_to else {
            if cursor.saved_at.elapsed() >= SAVE_EVERY {
                self.save(cursor).await?;
            }
            return Ok(None);
        };
        let read = slice.read as u64;
        if slice.events.is_empty() && cursor.saved_at.elapsed() < SAVE_EVERY {
            // Read on, and store the checkpoint later.
            cursor.read = read_to;
            self.handled(cursor.read);
            return Ok(Some(read));
        }
        let span = tracing::debug_span!(
            "projection_batch",
            projection = self.name(),
            events = slice.events.len(),
            read
        );
        self.consumer
            .react(&slice.events)
            .instrument(span.clone())
            .await?;
        let consumers = [self.consumer.as_ref()];
        checkpoint::apply_batch(
            &self.store,
            &consumers,
            cursor.saved,
            read_to,
            &slice.events,
        )
        .instrument(span)
        .await?;
        *cursor = Cursor::at(read_to);
        self.handled(read_to);
        Ok(Some(read))
    }

    /// Applies everything committed so far; returns how many events.
    pub async fn catch_up(&self) -> Result<u64, RunnerError> {
        let mut cursor =
            Cursor::at(checkpoint::prepare(&self.store, self.consumer.as_ref()).await?);
        let mut applied = 0u64;
        // Committed events can be held back for a moment by the PostgreSQL
        // watermark (an older transaction anywhere in the cluster is still
        // open); keep going until none is left behind the checkpoint.
        let deadline = std::time::Instant::now() + CATCH_UP_PATIENCE;
        loop {
            while let Some(events) = self.step(&mut cursor).await? {
                applied += events;
            }
            self.save(&mut cursor).await?;
            let backlog = self.store.feed_backlog(cursor.saved).await?;
            if backlog.events == 0 || std::time::Instant::now() > deadline {
                return Ok(applied);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
