//! The one scheduler for commands that fire on a date (DESIGN §4).
//!
//! It reads due dates from the read models, issues ordinary commands whose
//! decisions are idempotent (a command that finds nothing due records
//! nothing), and runs in one replica at a time under an advisory lock. It
//! keeps no state of its own, so a restart simply looks again. Time comes
//! from a [`Clock`], which tests control.
//!
//! Jobs today: an expired risk acceptance reverts its finding to open, and
//! idempotency records past their 24 hours are deleted. Later: key
//! deletion and rotation, grant and request expiry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_domain::finding::{Finding, FindingCommand};
use palisade_domain::{ActorType, Environment, EventMetadata};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::projection::lock::LockSession;
use crate::readmodel::due_risk_acceptances;
use crate::{CommandError, Commands, Store, StoreError};

/// Where the scheduler gets the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Commands issued (one that finds nothing left to do records nothing).
    pub fired: usize,
    /// Idempotency records deleted because their retention ended.
    pub pruned: u64,
}

/// How many due items one pass takes per job; the next pass takes the rest.
const BATCH: i64 = 200;

#[derive(Clone)]
pub struct Scheduler {
    store: Store,
    commands: Commands,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl Scheduler {
    pub fn new(store: Store, clock: Arc<dyn Clock>, interval: Duration) -> Self {
        Self {
            commands: Commands::new(store.clone()),
            store,
            clock,
            interval,
        }
    }

    fn metadata(tenant_id: &str, environment: Environment, now: DateTime<Utc>) -> EventMetadata {
        EventMetadata {
            tenant_id: tenant_id.to_string(),
            environment,
            actor: "scheduler".into(),
            actor_type: ActorType::System,
            api_key_id: None,
            request_id: None,
            correlation_id: None,
            causation_id: None,
            occurred_at: now,
        }
    }

    /// One pass over every job, at the clock's current time.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut tick = Tick::default();
        for due in due_risk_acceptances(self.store.read_pool(), now, BATCH).await? {
            let metadata = Self::metadata(&due.tenant_id, due.environment, now);
            let command = FindingCommand::ExpireRiskAcceptance { at: now };
            tick.fired += 1;
            match self
                .commands
                .execute::<Finding>(&due.finding_id, command, (), &metadata)
                .await
            {
                Ok(_) => {}
                // Someone else changed the finding first: look again next pass.
                Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(finding_id = due.finding_id, %error, "risk acceptance expiry failed");
                }
            }
        }
        tick.pruned = crate::idempotency::prune(&self.store, now.timestamp_millis()).await?;
        Ok(tick)
    }

    /// Runs passes every interval while this process holds the scheduler
    /// lock, until shutdown.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut lock = LockSession::new(self.store.clone(), "scheduler");
            while !*shutdown.borrow() {
                match lock.try_acquire().await {
                    Ok(true) => {
                        if let Err(error) = self.tick().await {
                            tracing::warn!(%error, "scheduler pass failed");
                        }
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "cannot try the scheduler lock"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.interval) => {}
                    _ = shutdown.changed() => {}
                }
            }
            lock.release().await;
        })
    }
}
