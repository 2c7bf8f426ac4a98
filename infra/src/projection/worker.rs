//! One feed consumer's loop (a projection's, today): take the lock, resume
//! from the checkpoint, apply batches until told to stop, and start over
//! after any error.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use palisade_projections::FeedPosition;
use tokio::sync::watch;
use tracing::Instrument;

use super::lock::LockSession;
use super::{checkpoint, FeedConsumer, RunnerError, Settings};
use crate::Store;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
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
        let mut position = checkpoint::prepare(&self.store, self.consumer.as_ref()).await?;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            changes.mark_unchanged();
            match self.step(position).await {
                Ok(Some((next, _))) => {
                    position = next;
                    *backoff = self.settings.poll;
                    continue;
                }
                Ok(None) => {}
                Err(RunnerError::Fenced(_)) => {
                    position = checkpoint::prepare(&self.store, self.consumer.as_ref()).await?;
                    continue;
                }
                Err(error) => return Err(error),
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                _ = shutdown.changed() => {}
            }
            if !lock.still_held().await {
                return Err(RunnerError::LockLost(self.name()));
            }
        }
    }

    /// Reads and applies one batch after `position`: the new position and
    /// how many events it applied, or None when caught up.
    async fn step(
        &self,
        position: FeedPosition,
    ) -> Result<Option<(FeedPosition, u64)>, RunnerError> {
        let batch = self.store.read_feed(position, self.settings.batch).await?;
        if batch.is_empty() {
            return Ok(None);
        }
        let span = tracing::debug_span!(
            "projection_batch",
            projection = self.name(),
            events = batch.len()
        );
        self.consumer.react(&batch).instrument(span.clone()).await?;
        let next =
            checkpoint::apply_batch(&self.store, &[self.consumer.as_ref()], position, &batch)
                .instrument(span)
                .await?;
        if let Some(applied) = self.applied.get(self.name()) {
            applied.send_replace(next);
        }
        Ok(Some((next, batch.len() as u64)))
    }

    /// Applies everything committed so far; returns how many events.
    pub async fn catch_up(&self) -> Result<u64, RunnerError> {
        let mut position = checkpoint::prepare(&self.store, self.consumer.as_ref()).await?;
        let mut applied = 0u64;
        // Committed events can be held back for a moment by the PostgreSQL
        // watermark (an older transaction anywhere in the cluster is still
        // open); keep going until none is left behind the checkpoint.
        let deadline = std::time::Instant::now() + CATCH_UP_PATIENCE;
        loop {
            while let Some((next, events)) = self.step(position).await? {
                position = next;
                applied += events;
            }
            let backlog = self.store.feed_backlog(position).await?;
            if backlog.events == 0 || std::time::Instant::now() > deadline {
                return Ok(applied);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
