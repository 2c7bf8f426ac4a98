//! The projections as one group: one task that holds the locks of every
//! projection it runs and applies each batch of the feed to all of those
//! that are caught up together — one feed read, one transaction, one
//! checkpoint statement per batch for all of them — instead of one of each
//! per projection.
//!
//! - **Leaders and laggards.** The members at the furthest checkpoint are
//!   the leaders and share each batch. A member behind them (rebuilding
//!   after a reset or a new version, or retrying after an error) is a
//!   laggard: it reads and applies its own batches, one per round, until it
//!   reaches the leaders' checkpoint and joins them.
//! - **Locks** stay per projection (exactly one replica runs each), so two
//!   replicas may split the projections between them; each runs its share
//!   as a group. Locks not held are tried every `lock_retry`; a lost lock
//!   drops the member from the group.
//! - **Failures.** A projection that fails a batch rolls the whole
//!   transaction back; it then runs alone, with backoff, so the others go
//!   on without it. A fenced checkpoint (a rebuild or another replica moved
//!   it) reloads every member's checkpoint.
//! - **Groups.** The projections run in `PALISADE_PROJECTION_GROUPS`
//!   groups (2 by default), each its own task. One group applies every
//!   batch with the fewest statements, but its members' round trips then
//!   run one after another, and under load its lag grew past the target;
//!   two groups halve that and keep most of the saving.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use palisade_projections::FeedPosition;
use tokio::sync::watch;

use super::lock::LockSession;
use super::{checkpoint, FeedConsumer, RunnerError, Settings};
use crate::Store;

const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Member {
    consumer: Arc<dyn FeedConsumer>,
    lock: LockSession,
    held: bool,
    position: FeedPosition,
    /// After a failed batch: not retried before this, alone.
    retry_at: Option<Instant>,
    backoff: Duration,
}

impl Member {
    fn name(&self) -> &'static str {
        self.consumer.name()
    }

    fn ready(&self, now: Instant) -> bool {
        self.held && self.retry_at.is_none_or(|at| at <= now)
    }
}

pub(super) struct Group {
    store: Store,
    members: Vec<Member>,
    running: Arc<Mutex<HashSet<&'static str>>>,
    applied: Arc<HashMap<&'static str, watch::Sender<FeedPosition>>>,
    settings: Settings,
}

/// What one round did.
enum Round {
    /// At least one batch was applied (read again at once).
    Applied,
    Idle,
}

impl Group {
    pub fn new(
        store: Store,
        consumers: Vec<Arc<dyn FeedConsumer>>,
        running: Arc<Mutex<HashSet<&'static str>>>,
        applied: Arc<HashMap<&'static str, watch::Sender<FeedPosition>>>,
        settings: Settings,
    ) -> Self {
        let members = consumers
            .into_iter()
            .map(|consumer| Member {
                lock: LockSession::new(store.clone(), consumer.name()),
                consumer,
                held: false,
                position: FeedPosition::START,
                retry_at: None,
                backoff: settings.poll,
            })
            .collect();
        Self {
            store,
            members,
            running,
            applied,
            settings,
        }
    }

    fn mark_running(&self, name: &'static str, running: bool) {
        let mut set = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if running {
            set.insert(name);
        } else {
            set.remove(name);
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut changes = self.store.feed_changes();
        let mut next_lock_try = Instant::now();
        let mut backoff = self.settings.poll;
        while !*shutdown.borrow() {
            if Instant::now() >= next_lock_try {
                self.acquire().await;
                next_lock_try = Instant::now() + self.settings.lock_retry;
            }
            changes.mark_unchanged();
            match self.round().await {
                Ok(Round::Applied) => {
                    backoff = self.settings.poll;
                    continue;
                }
                Ok(Round::Idle) => {}
                Err(error) => {
                    // The store itself failed: every member starts again
                    // from its checkpoint after a pause.
                    tracing::warn!(%error, retry_in = ?backoff, "projections stopped");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    self.reload().await;
                    continue;
                }
            }
            let until_lock_try = next_lock_try.saturating_duration_since(Instant::now());
            let wait = if self.members.iter().all(|m| m.held) {
                self.settings.poll
            } else {
                self.settings.poll.min(until_lock_try)
            };
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            self.check_locks().await;
            self.check_rewinds().await;
        }
        for index in 0..self.members.len() {
            self.let_go(index).await;
        }
        tracing::debug!("projection group stopped");
    }

    /// Tries the lock of every member not held; a member taken starts
    /// from its checkpoint (rebuilt from the start if its version changed).
    async fn acquire(&mut self) {
        for index in 0..self.members.len() {
            if self.members[index].held {
                continue;
            }
            let member = &mut self.members[index];
            match member.lock.try_acquire().await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(projection = member.name(), %error, "cannot try the projection lock");
                    continue;
                }
            }
            match checkpoint::prepare(&self.store, member.consumer.as_ref()).await {
                Ok(position) => {
                    member.position = position;
                    member.held = true;
                    member.retry_at = None;
                    let name = member.name();
                    tracing::info!(projection = name, "running projection here");
                    self.mark_running(name, true);
                }
                Err(error) => {
                    tracing::warn!(projection = member.name(), %error, "cannot prepare the projection");
                    member.lock.release().await;
                }
            }
        }
    }

    /// Every held member's checkpoint again (after a fence or a failure).
    async fn reload(&mut self) {
        for index in 0..self.members.len() {
            if !self.members[index].held {
                continue;
            }
            let member = &mut self.members[index];
            match checkpoint::prepare(&self.store, member.consumer.as_ref()).await {
                Ok(position) => member.position = position,
                Err(error) => {
                    tracing::warn!(projection = member.name(), %error, "cannot reload the checkpoint");
                    self.let_go(index).await;
                }
            }
        }
    }

    async fn check_locks(&mut self) {
        for index in 0..self.members.len() {
            if self.members[index].held && !self.members[index].lock.still_held().await {
                tracing::warn!(
                    projection = self.members[index].name(),
                    "projection lost its lock"
                );
                self.let_go(index).await;
            }
        }
    }

    /// Reloads a held member whose stored checkpoint is not where this
    /// group has it: rewound by `palisade projections rebuild` in another
    /// process (which the next batch's fence would notice only once an
    /// event is appended), or moved at another version.
    async fn check_rewinds(&mut self) {
        if !self.members.iter().any(|m| m.held) {
            return;
        }
        let stored = match checkpoint::load_all(&self.store).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "cannot read the projection checkpoints");
                return;
            }
        };
        for index in 0..self.members.len() {
            let member = &self.members[index];
            if !member.held {
                continue;
            }
            let moved = stored.get(member.name()).is_none_or(|c| {
                c.position != member.position || c.version != member.consumer.version()
            });
            if !moved {
                continue;
            }
            tracing::info!(
                projection = member.name(),
                "the checkpoint was moved elsewhere (a rebuild); resuming from it"
            );
            let member = &mut self.members[index];
            match checkpoint::prepare(&self.store, member.consumer.as_ref()).await {
                Ok(position) => {
                    member.position = position;
                    member.retry_at = None;
                    self.published(index);
                }
                Err(error) => {
                    tracing::warn!(projection = member.name(), %error, "cannot reload the checkpoint");
                    self.let_go(index).await;
                }
            }
        }
    }

    async fn let_go(&mut self, index: usize) {
        let member = &mut self.members[index];
        if !std::mem::take(&mut member.held) {
            return;
        }
        member.lock.release().await;
        let name = member.name();
        self.mark_running(name, false);
    }

    fn published(&self, index: usize) {
        let member = &self.members[index];
        if let Some(applied) = self.applied.get(member.name()) {
            applied.send_replace(member.position);
        }
    }

    /// One batch for the leaders together, then one for each laggard.
    async fn round(&mut self) -> Result<Round, RunnerError> {
        let now = Instant::now();
        let ready: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].ready(now))
            .collect();
        let Some(front) = ready.iter().map(|&i| self.members[i].position).max() else {
            return Ok(Round::Idle);
        };
        let healthy = |m: &Member| m.retry_at.is_none();
        let (leaders, laggards): (Vec<usize>, Vec<usize>) = ready
            .into_iter()
            .partition(|&i| self.members[i].position == front && healthy(&self.members[i]));
        let mut applied = false;
        if !leaders.is_empty() {
            applied |= self.step(&leaders, front).await?.is_some();
        }
        for index in laggards {
            let from = self.members[index].position;
            applied |= self.step(&[index], from).await?.is_some();
        }
        Ok(if applied { Round::Applied } else { Round::Idle })
    }

    /// Reads one batch after `from` and applies it to the members `indexes`
    /// (all at `from`) in one transaction: how many events, or None when
    /// there were none. A projection's failure puts it on backoff, alone.
    async fn step(
        &mut self,
        indexes: &[usize],
        from: FeedPosition,
    ) -> Result<Option<usize>, RunnerError> {
        let batch = self.store.read_feed(from, self.settings.batch).await?;
        if batch.is_empty() {
            for &index in indexes {
                self.members[index].retry_at = None;
            }
            return Ok(None);
        }
        let consumers: Vec<&dyn FeedConsumer> = indexes
            .iter()
            .map(|&i| self.members[i].consumer.as_ref())
            .collect();
        let span = tracing::debug_span!(
            "projection_batch",
            projections = indexes.len(),
            events = batch.len()
        );
        let to = batch.last().map_or(from, |last| last.position);
        let applied = {
            use tracing::Instrument;
            checkpoint::apply_batch(&self.store, &consumers, from, to, &batch)
                .instrument(span)
                .await
        };
        match applied {
            Ok(()) => {
                for &index in indexes {
                    let member = &mut self.members[index];
                    member.position = to;
                    member.retry_at = None;
                    member.backoff = self.settings.poll;
                    self.published(index);
                }
                Ok(Some(batch.len()))
            }
            Err(RunnerError::Fenced(_)) => {
                self.reload().await;
                Ok(None)
            }
            Err(RunnerError::Projection {
                name,
                position,
                source,
            }) => {
                let Some(index) = indexes
                    .iter()
                    .copied()
                    .find(|&i| self.members[i].name() == name)
                else {
                    return Err(RunnerError::Projection {
                        name,
                        position,
                        source,
                    });
                };
                let member = &mut self.members[index];
                tracing::warn!(projection = name, %position, error = %source, retry_in = ?member.backoff, "projection failed a batch; it runs alone until it succeeds");
                member.retry_at = Some(Instant::now() + member.backoff);
                member.backoff = (member.backoff * 2).min(MAX_BACKOFF);
                Ok(None)
            }
            Err(other) => Err(other),
        }
    }
}
