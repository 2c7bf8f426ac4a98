//! The application layer: one module per aggregate or read model, one
//! function per use case (a command or a query). Each takes the [`App`]'s
//! services and an explicit [`RequestContext`] (or, for a scope-guarded use
//! case, its [`Authorized`] proof) and returns [`Result`], whose [`Error`]
//! has one variant per error code.
//!
//! Nothing here imports `rest`, `graphql`, `axum` or `async_graphql` (a test
//! in the suite reads these files to make sure): REST, GraphQL and the CLI
//! are adapters over these functions. See `docs/architecture.md`.

pub mod access;
pub mod api_keys;
pub mod assets;
pub mod audit;
pub mod auth;
mod error;
pub mod findings;
pub mod ingestion;
pub mod input;
pub mod keys;
pub mod kms;
pub mod kms_alerts;
pub mod kms_migrations;
pub mod leakage;
pub mod risk;
pub mod secrets;
pub mod tenants;
pub mod timeline;
pub mod usage;
pub mod webhooks;

pub use auth::{Authorized, Origin, Principal, RequestContext};
pub use error::{Error, Result};

use std::path::PathBuf;
use std::time::Duration;

use palisade_infra::crypto::api_key::ApiKeyHasher;
use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::keyring::KeyRing;
use palisade_infra::readmodel::ApiKeyCache;
use palisade_infra::{CommandError, Commands, Config, ProjectionRunner, Store};
use palisade_projections::Projection as _;
use palisade_projections::TenantsProjection;

use palisade_domain::tenant::{Tenant, TenantCommand};
use palisade_domain::EventMetadata;

/// How long a command waits for its own effects to reach a read model.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

/// How often a tenant command that commutes with others (issuing or
/// revoking a key) is decided again after losing a race.
const COMMUTING_ATTEMPTS: usize = 100;

/// A tenant command that was recorded: the tenant's version afterwards, and
/// whether the tenants view applied it in time.
#[derive(Debug, Clone, Copy)]
pub struct TenantCommanded {
    pub version: usize,
    pub applied: bool,
}

impl TenantCommanded {
    /// The version, once the command is in effect; when the view did not
    /// apply it in time, [`Error::NotInEffect`], saying that it is
    /// recorded (a retry confirms it: the command is idempotent).
    pub fn in_effect(self) -> Result<usize> {
        if !self.applied {
            return Err(Error::NotInEffect(format!(
                "The change is recorded, but the views did not apply it within {} s, so it is not in effect yet; retry to confirm",
                READ_YOUR_WRITES.as_secs()
            )));
        }
        Ok(self.version)
    }
}

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub commands: Commands,
    pub runner: ProjectionRunner,
    pub hasher: ApiKeyHasher,
    /// How long a `?consistency=strong` read may wait.
    pub strong_read_timeout: Duration,
    /// How often an idle audit stream sends a heartbeat comment.
    pub sse_heartbeat: Duration,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The audit streams open in this process, per key.
    pub streams: std::sync::Arc<audit::StreamSlots>,
    /// API keys as the tenants view shows them (`readmodel::key_cache`).
    pub keys: std::sync::Arc<ApiKeyCache>,
    /// Request counts on their way to `usage_daily` (`usage::UsageBuffer`).
    pub usage: std::sync::Arc<palisade_infra::usage::UsageBuffer>,
    /// The KMS keys this replica has used, with their unsealed material
    /// (`palisade_infra::keyring`).
    pub keyring: std::sync::Arc<KeyRing>,
    /// Fingerprints of idempotent requests (keyed: bodies may hold secrets).
    pub request_fingerprints: palisade_infra::crypto::KeyedDigest,
    /// KMS operations counted on their way to `KeyUsageRecorded` events.
    pub key_usage: std::sync::Arc<palisade_infra::keyring::usage::KeyUsageBuffer>,
    /// Seals and opens secret values (`palisade_infra::secrets`).
    pub secrets: std::sync::Arc<palisade_infra::secrets::SecretVault>,
    /// Wakes this replica's ingestion runner when a job is submitted.
    pub ingest_wake: std::sync::Arc<tokio::sync::Notify>,
    /// Seals and opens webhook signing secrets.
    pub webhook_secrets: palisade_infra::webhooks::secrets::SigningSecrets,
    /// `PALISADE_WEBHOOKS_ALLOW_PRIVATE`.
    pub webhooks_allow_private: bool,
    /// What this replica's webhook senders did (`/metrics`).
    pub webhook_counts: std::sync::Arc<palisade_infra::webhooks::SenderCounts>,
}

impl App {
    /// Opens and migrates the store and loads the root key. Returns the root
    /// key's file when it was generated or read from the data directory.
    pub async fn open(config: &Config) -> anyhow::Result<(Self, Option<PathBuf>)> {
        let store = Store::open(config).await?;
        store.migrate().await?;
        let (root_key, root_key_file) = RootKey::load(
            config.root_key.as_ref().map(palisade_infra::Secret::expose),
            &config.data_dir,
        )?;
        let redactor = palisade_projections::Redactor::new(root_key.derive("audit redaction"));
        let mut consumers = palisade_infra::process::process_managers(&store);
        consumers.push(std::sync::Arc::new(
            palisade_infra::webhooks::WebhookDispatcher::new(
                store.clone(),
                std::sync::Arc::new(crate::webhooks::Renderer::new(store.clone())),
                std::sync::Arc::new(palisade_infra::SystemClock),
            ),
        ));
        let runner = ProjectionRunner::with_consumers(
            store.clone(),
            palisade_projections::catalogue(redactor),
            consumers,
            config,
        );
        let app = Self {
            commands: Commands::new(store.clone()),
            hasher: ApiKeyHasher::new(&root_key),
            strong_read_timeout: config.strong_read_timeout,
            sse_heartbeat: config.sse_heartbeat,
            metrics: std::sync::Arc::default(),
            streams: std::sync::Arc::default(),
            keys: std::sync::Arc::default(),
            usage: std::sync::Arc::default(),
            keyring: std::sync::Arc::new(KeyRing::new(store.clone(), Sealer::new(&root_key))),
            key_usage: std::sync::Arc::default(),
            secrets: std::sync::Arc::new(palisade_infra::secrets::SecretVault::new(&root_key)),
            request_fingerprints: palisade_infra::crypto::KeyedDigest::new(
                &root_key,
                "idempotency fingerprint",
            ),
            ingest_wake: std::sync::Arc::default(),
            webhook_secrets: palisade_infra::webhooks::secrets::SigningSecrets::new(Sealer::new(
                &root_key,
            )),
            webhooks_allow_private: config.webhooks_allow_private,
            webhook_counts: std::sync::Arc::default(),
            runner,
            store,
        };
        Ok((app, root_key_file))
    }

    /// Runs a command on a tenant (only at `expected_version`, when given)
    /// and waits until the tenants view has applied it. When the view does
    /// not catch up in time the command has still happened; it takes
    /// effect when the view applies it. A command that takes a credential
    /// away (revoking a key, suspending a tenant) answers with
    /// [`TenantCommanded::in_effect`], because authentication reads the
    /// tenants view.
    ///
    /// Issuing and revoking keys commute with every other tenant command,
    /// so without an expected version a lost race is decided again (up to
    /// [`COMMUTING_ATTEMPTS`] times) rather than answered as a conflict.
    pub async fn command_tenant(
        &self,
        tenant_id: &str,
        command: TenantCommand,
        metadata: &EventMetadata,
        expected_version: Option<usize>,
    ) -> Result<TenantCommanded> {
        let (version, applied) = self
            .run_tenant_command(tenant_id, command, metadata, expected_version)
            .await?;
        Ok(TenantCommanded { version, applied })
    }

    /// Runs the command and waits for the tenants view: the version, and
    /// whether the view applied it in time.
    async fn run_tenant_command(
        &self,
        tenant_id: &str,
        command: TenantCommand,
        metadata: &EventMetadata,
        expected_version: Option<usize>,
    ) -> Result<(usize, bool)> {
        let commutes = expected_version.is_none()
            && matches!(
                command,
                TenantCommand::IssueApiKey { .. } | TenantCommand::RevokeApiKey { .. }
            );
        let attempts = if commutes { COMMUTING_ATTEMPTS } else { 1 };
        let mut attempt = 0;
        let version = loop {
            attempt += 1;
            let run = self
                .commands
                .execute_if::<Tenant>(tenant_id, command.clone(), (), metadata, expected_version)
                .await;
            match run {
                // Nothing was appended: decide again on the tenant as it is now.
                Err(CommandError::Conflict) if attempt < attempts => {
                    tokio::task::yield_now().await;
                }
                other => break other?,
            }
        };
        let applied = self.await_tenants_view(tenant_id, version).await;
        // The view shows the change (or is late, and the key cache's
        // follower drops the tenant when it applies it): from now on this
        // replica authenticates the tenant's keys as they are after it.
        self.keys.evict_tenants(&[tenant_id.to_string()]);
        Ok((version, applied?))
    }

    /// Each projection's checkpoint, lag and where it runs.
    pub async fn projection_status(&self) -> Result<Vec<palisade_infra::ProjectionStatus>> {
        Ok(self.runner.status().await?)
    }

    /// Waits until the named projections (all, when `names` is empty) have
    /// applied the feed as it stands now: every write acknowledged before
    /// this call. [`Error::ConsistencyTimeout`] after the strong-read timeout.
    pub async fn await_views(&self, names: &[&str]) -> Result<()> {
        let head = self.store.feed_head_position().await?;
        let deadline = tokio::time::Instant::now() + self.strong_read_timeout;
        for projection in self.runner.projections() {
            let name = projection.name();
            if !names.is_empty() && !names.contains(&name) {
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let applied = self.runner.wait_until_applied(name, head, left).await?;
            if !applied {
                return Err(Error::ConsistencyTimeout(format!(
                    "The {name} view did not catch up within {} ms; retry, or read without consistency=strong",
                    self.strong_read_timeout.as_millis()
                )));
            }
        }
        Ok(())
    }

    /// Waits until the feed consumer `name` (a process manager) has handled
    /// the feed as it stands now, or 503 `consistency_timeout`.
    pub async fn await_consumer(&self, name: &str) -> Result<()> {
        let head = self.store.feed_head_position().await?;
        if self
            .runner
            .wait_until_handled(name, head, self.strong_read_timeout)
            .await?
        {
            return Ok(());
        }
        Err(Error::ConsistencyTimeout(format!(
            "{name} did not catch up within {} ms; retry",
            self.strong_read_timeout.as_millis()
        )))
    }

    /// Waits until the tenants view shows a tenant at `version` (so that,
    /// for example, a revoked key fails on the very next request): whether
    /// it did in time. On timeout the command has still happened; the view
    /// catches up later.
    pub async fn await_tenants_view(&self, tenant_id: &str, version: usize) -> Result<bool> {
        self.await_view(TenantsProjection.name(), "Tenant", tenant_id, version)
            .await
    }

    /// [`App::await_view`] as a command's answer: when the view did not
    /// apply the command within the read-your-writes wait, the command is
    /// recorded but not yet in effect ([`Error::NotInEffect`]; a retry
    /// confirms it).
    pub async fn await_in_effect(
        &self,
        projection: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        version: usize,
    ) -> Result<()> {
        if self
            .await_view(projection, aggregate_type, aggregate_id, version)
            .await?
        {
            return Ok(());
        }
        Err(Error::NotInEffect(format!(
            "The change is recorded, but the {projection} view did not apply it within {} s, so it is not in effect yet; retry to confirm",
            READ_YOUR_WRITES.as_secs()
        )))
    }

    /// Waits until the view `projection` has applied the event that put the
    /// aggregate at `version`: whether it did within the read-your-writes
    /// wait. On timeout the command has still happened.
    pub async fn await_view(
        &self,
        projection: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        version: usize,
    ) -> Result<bool> {
        if version == 0 {
            return Ok(true);
        }
        let position = self
            .store
            .feed_position_of(aggregate_type, aggregate_id, version)
            .await?;
        let Some(position) = position else {
            return Ok(true);
        };
        let applied = self
            .runner
            .wait_until_applied(projection, position, READ_YOUR_WRITES)
            .await?;
        if !applied {
            tracing::warn!(
                projection,
                aggregate_id,
                version,
                "a view did not catch up in time"
            );
        }
        Ok(applied)
    }
}
