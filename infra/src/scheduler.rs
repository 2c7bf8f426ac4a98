//! The one scheduler for commands that fire on a date (see
//! `docs/architecture.md`).
//!
//! It runs a list of [`Job`]s ([`jobs`]). A job reads due dates from the
//! read models and issues ordinary commands whose decisions are idempotent
//! (a command that finds nothing due records nothing), or deletes what has
//! outlived its retention. The scheduler runs in one replica at a time
//! under the store's lock, and keeps no state of its own, so a restart
//! simply looks again. Time comes from a [`Clock`], which tests control.
//!
//! Jobs today: an expired risk acceptance reverts its finding to open
//! ([`RiskAcceptanceExpiry`]); idempotency records past their 24 hours are
//! deleted ([`IdempotencyPruning`]); a key whose rotation period has
//! elapsed gets a new version ([`KeyRotation`]); a key whose deletion
//! window has ended is destroyed and its material deleted
//! ([`KeyDestruction`]); a key overdue a rotation is recorded as such
//! ([`KeyRotationOverdue`]); a secret's versions older than its
//! `delete_version_after` are soft-deleted ([`SecretVersionExpiry`]); sealed
//! secret rows whose shredding a crash interrupted are deleted
//! ([`SecretShredding`]); a pending access request past its TTL expires
//! and a grant past its `expires_at` has its end recorded
//! ([`AccessExpiry`]; the check refuses an ended grant before that).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::finding::{Finding, FindingCommand};
use palisade_domain::key::{Key, KeyCommand, ROTATION_GRACE_DAYS};
use palisade_domain::{ActorType, Environment, EventMetadata};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::crypto::seal::Sealer;
use crate::keyring::lifecycle::{self, KeyToRotate};
use crate::keyring::material;
use crate::projection::lock::LockSession;
use crate::readmodel::{
    due_risk_acceptances, keys_due_destruction, keys_due_rotation, keys_overdue_rotation,
};
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

/// What one job did in one pass; a pass's [`Tick`] is their sum.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobOutcome {
    /// Commands issued.
    pub fired: usize,
    /// Records deleted because their retention ended.
    pub pruned: u64,
}

impl std::ops::AddAssign<JobOutcome> for Tick {
    fn add_assign(&mut self, outcome: JobOutcome) {
        self.fired += outcome.fired;
        self.pruned += outcome.pruned;
    }
}

/// What a job may use: the store, the write side, and the sealer for new
/// key material.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    pub commands: Commands,
    pub sealer: Sealer,
}

impl JobContext {
    /// The metadata of a command the scheduler issues for a tenant.
    pub fn metadata(
        tenant_id: &str,
        environment: Environment,
        now: DateTime<Utc>,
    ) -> EventMetadata {
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
}

/// One thing the scheduler does on every pass. A job must be safe to run
/// again at once (a pass may repeat after a crash or on another replica),
/// and should take a bounded amount of work per pass ([`BATCH`]), leaving
/// the rest to the next.
#[async_trait]
pub trait Job: Send + Sync {
    fn name(&self) -> &'static str;
    /// One pass at `now`. An error ends the pass (the next one retries).
    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError>;
}

/// Every job, in the order a pass runs them: add a job here.
pub fn jobs() -> Vec<Arc<dyn Job>> {
    vec![
        Arc::new(RiskAcceptanceExpiry),
        Arc::new(IdempotencyPruning),
        Arc::new(KeyRotation),
        Arc::new(KeyRotationOverdue),
        Arc::new(KeyDestruction),
        Arc::new(SecretVersionExpiry),
        Arc::new(SecretShredding),
        Arc::new(AccessExpiry),
        Arc::new(WebhookHistoryPruning),
    ]
}

/// How many due items one pass takes per job; the next pass takes the rest.
pub const BATCH: i64 = 200;

/// A risk acceptance whose end date has come reverts its finding to open.
pub struct RiskAcceptanceExpiry;

#[async_trait]
impl Job for RiskAcceptanceExpiry {
    fn name(&self) -> &'static str {
        "risk_acceptance_expiry"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let mut outcome = JobOutcome::default();
        for due in due_risk_acceptances(ctx.store.read_pool(), now, BATCH).await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            let command = FindingCommand::ExpireRiskAcceptance { at: now };
            outcome.fired += 1;
            match ctx
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
        Ok(outcome)
    }
}

/// Idempotency records past their retention are deleted.
pub struct IdempotencyPruning;

#[async_trait]
impl Job for IdempotencyPruning {
    fn name(&self) -> &'static str {
        "idempotency_pruning"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let pruned = crate::idempotency::prune(&ctx.store, now.timestamp_millis()).await?;
        Ok(JobOutcome { fired: 0, pruned })
    }
}

/// Webhook deliveries that finished more than
/// [`crate::webhooks::outbox::HISTORY_RETENTION`] ago are deleted, with
/// their attempts and messages (a thousand per pass).
pub struct WebhookHistoryPruning;

#[async_trait]
impl Job for WebhookHistoryPruning {
    fn name(&self) -> &'static str {
        "webhook_history_pruning"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let cutoff = now - crate::webhooks::outbox::HISTORY_RETENTION;
        let pruned = crate::webhooks::outbox::prune_history(&ctx.store, cutoff, 1000).await?;
        Ok(JobOutcome { fired: 0, pruned })
    }
}

/// A key whose rotation period has elapsed gets its next version.
pub struct KeyRotation;

#[async_trait]
impl Job for KeyRotation {
    fn name(&self) -> &'static str {
        "key_rotation"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let mut outcome = JobOutcome::default();
        for due in keys_due_rotation(ctx.store.read_pool(), now, BATCH as u32).await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            let key = KeyToRotate {
                tenant_id: &due.tenant_id,
                key_id: &due.id,
                algorithm: due.algorithm,
                latest_version: due.latest_version,
            };
            outcome.fired += 1;
            match lifecycle::rotate(
                &ctx.store,
                &ctx.commands,
                &ctx.sealer,
                key,
                true,
                &metadata,
                now,
            )
            .await
            {
                Ok(_) => {}
                // Rotated meanwhile (by hand or by another pass), disabled,
                // or no longer due: the view shows it on the next pass.
                Err(CommandError::Rejected(_)) | Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(key_id = due.id, %error, "automatic key rotation failed");
                }
            }
        }
        Ok(outcome)
    }
}

/// A key whose latest version outlived its rotation period (or the
/// policy's cryptoperiod) by the grace day is recorded as overdue, which
/// the key-hygiene process manager turns into a finding. It runs after
/// [`KeyRotation`], so a key with automatic rotation is rotated, not
/// reported.
pub struct KeyRotationOverdue;

#[async_trait]
impl Job for KeyRotationOverdue {
    fn name(&self) -> &'static str {
        "key_rotation_overdue"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let mut outcome = JobOutcome::default();
        let before = now - chrono::Duration::days(ROTATION_GRACE_DAYS);
        for due in keys_overdue_rotation(ctx.store.read_pool(), before, BATCH as u32).await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            outcome.fired += 1;
            let command = KeyCommand::MarkRotationOverdue { at: now };
            match ctx
                .commands
                .execute::<Key>(&due.id, command, (), &metadata)
                .await
            {
                Ok(_) => {}
                // Rotated or disabled meanwhile: the view shows it next pass.
                Err(CommandError::Rejected(_)) | Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(key_id = due.id, %error, "recording an overdue rotation failed");
                }
            }
        }
        Ok(outcome)
    }
}

/// A secret's readable versions older than its `delete_version_after` are
/// soft-deleted (undelete restores them), as Vault does.
pub struct SecretVersionExpiry;

#[async_trait]
impl Job for SecretVersionExpiry {
    fn name(&self) -> &'static str {
        "secret_version_expiry"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        use palisade_domain::secret::{Secret, SecretCommand};
        let mut outcome = JobOutcome::default();
        let due = crate::readmodel::secrets_due_expiry(ctx.store.read_pool(), now, BATCH as u32);
        for due in due.await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            outcome.fired += 1;
            let command = SecretCommand::ExpireVersions { at: now };
            match ctx
                .commands
                .execute::<Secret>(&due.secret_id, command, (), &metadata)
                .await
            {
                Ok(_) => {}
                // Deleted, written or changed meanwhile: the next pass sees it.
                Err(CommandError::Rejected(_)) | Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(secret_id = due.secret_id, %error, "expiring secret versions failed");
                }
            }
        }
        Ok(outcome)
    }
}

/// Sealed secret rows that the view says must be gone (a destroy or a
/// delete whose shredding did not happen: a crash between the event and
/// the delete) are deleted now. Only on positive evidence (a destroyed
/// version of the same generation, a deleted secret's tombstone), so a
/// view being rebuilt deletes nothing.
pub struct SecretShredding;

#[async_trait]
impl Job for SecretShredding {
    fn name(&self) -> &'static str {
        "secret_shredding"
    }

    async fn run(&self, ctx: &JobContext, _now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        use crate::secrets::{shred_secret, shred_versions, VaultError};
        let mut outcome = JobOutcome::default();
        let found =
            crate::readmodel::unshredded_secrets(ctx.store.read_pool(), BATCH as u32).await?;
        let failed = |error: VaultError| match error {
            VaultError::Store(error) => error,
            VaultError::Database(error) => StoreError::Database(error),
            other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
        };
        for (secret_id, data_key_id, version) in &found.values {
            outcome.fired += 1;
            shred_versions(&ctx.store, secret_id, data_key_id, &[*version])
                .await
                .map_err(failed)?;
        }
        for (secret_id, data_key_id) in &found.deleted {
            outcome.fired += 1;
            shred_secret(&ctx.store, secret_id, data_key_id)
                .await
                .map_err(failed)?;
        }
        Ok(outcome)
    }
}

/// A pending access request past its TTL expires; an approved grant past
/// its `expires_at` has its end recorded (`AccessEnded`). Each is decided
/// by the aggregate, so a pass repeated at once records nothing twice.
pub struct AccessExpiry;

#[async_trait]
impl Job for AccessExpiry {
    fn name(&self) -> &'static str {
        "access_expiry"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        use palisade_domain::grant::{AccessRequest, RequestCommand};
        let mut outcome = JobOutcome::default();
        let due =
            crate::readmodel::access::access_requests_due(ctx.store.read_pool(), now, BATCH as u32);
        for due in due.await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            let command = RequestCommand::Expire { at: now };
            match ctx
                .commands
                .execute::<AccessRequest>(&due.request_id, command, (), &metadata)
                .await
            {
                Ok(_) => outcome.fired += 1,
                // Recorded meanwhile (another pass, a revoke): nothing due.
                Err(CommandError::Rejected(_)) | Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(request_id = due.request_id, %error, "recording an access expiry failed");
                }
            }
        }
        Ok(outcome)
    }
}

/// A key whose deletion window has ended is destroyed, and its material
/// deleted; a destroyed key whose delete did not happen (a crash between
/// the two) has it deleted now.
pub struct KeyDestruction;

#[async_trait]
impl Job for KeyDestruction {
    fn name(&self) -> &'static str {
        "key_destruction"
    }

    async fn run(&self, ctx: &JobContext, now: DateTime<Utc>) -> Result<JobOutcome, StoreError> {
        let mut outcome = JobOutcome::default();
        for due in keys_due_destruction(ctx.store.read_pool(), now, BATCH as u32).await? {
            let metadata = JobContext::metadata(&due.tenant_id, due.environment, now);
            outcome.fired += 1;
            match lifecycle::destroy(&ctx.store, &ctx.commands, &due.id, &metadata, now).await {
                Ok(_) => {}
                Err(CommandError::Rejected(_)) | Err(CommandError::Conflict) => {}
                Err(error) => {
                    tracing::warn!(key_id = due.id, %error, "key destruction failed");
                }
            }
        }
        let left = material::unshredded(&ctx.store).await?;
        if !left.is_empty() {
            outcome.pruned += material::shred(&ctx.store, &left).await?;
        }
        Ok(outcome)
    }
}

#[derive(Clone)]
pub struct Scheduler {
    context: JobContext,
    jobs: Vec<Arc<dyn Job>>,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl Scheduler {
    /// A scheduler running every job of [`jobs`]; new key material is
    /// sealed with `sealer` (from the root key every replica shares).
    pub fn new(store: Store, sealer: Sealer, clock: Arc<dyn Clock>, interval: Duration) -> Self {
        Self::with_jobs(store, sealer, jobs(), clock, interval)
    }

    /// A scheduler running `jobs` only.
    pub fn with_jobs(
        store: Store,
        sealer: Sealer,
        jobs: Vec<Arc<dyn Job>>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Self {
            context: JobContext {
                commands: Commands::new(store.clone()),
                store,
                sealer,
            },
            jobs,
            clock,
            interval,
        }
    }

    /// One pass over every job, at the clock's current time.
    pub async fn tick(&self) -> Result<Tick, StoreError> {
        let now = self.clock.now();
        let mut tick = Tick::default();
        for job in &self.jobs {
            let span = tracing::debug_span!("scheduler_job", job = job.name());
            tick += tracing::Instrument::instrument(job.run(&self.context, now), span).await?;
        }
        Ok(tick)
    }

    /// Runs passes every interval while this process holds the scheduler
    /// lock, until shutdown.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut lock = LockSession::new(self.context.store.clone(), "scheduler");
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
