//! The application services that the server and the CLI share.

use std::path::PathBuf;
use std::time::Duration;

use palisade_infra::crypto::api_key::ApiKeyHasher;
use palisade_infra::crypto::RootKey;
use palisade_infra::{Commands, Config, ProjectionRunner, Store};
use palisade_projections::Projection as _;
use palisade_projections::TenantsProjection;

use palisade_domain::tenant::{Tenant, TenantCommand};
use palisade_domain::EventMetadata;

use crate::rest::ApiError;
use crate::tenants::tenant_error;

/// How long a command waits for its own effects to reach a read model.
const READ_YOUR_WRITES: Duration = Duration::from_secs(10);

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
    pub streams: std::sync::Arc<crate::audit::StreamSlots>,
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
        let runner = ProjectionRunner::new(
            store.clone(),
            palisade_projections::catalogue(redactor),
            config,
        );
        let app = Self {
            commands: Commands::new(store.clone()),
            hasher: ApiKeyHasher::new(&root_key),
            strong_read_timeout: config.strong_read_timeout,
            sse_heartbeat: config.sse_heartbeat,
            metrics: std::sync::Arc::default(),
            streams: std::sync::Arc::default(),
            runner,
            store,
        };
        Ok((app, root_key_file))
    }

    /// Runs a command on a tenant (only at `expected_version`, when given),
    /// maps its failure to HTTP, and waits until the tenants view has
    /// applied it. Returns the tenant's version afterwards. When the view
    /// does not catch up in time the command has still happened; it takes
    /// effect when the view applies it.
    pub async fn command_tenant(
        &self,
        tenant_id: &str,
        command: TenantCommand,
        metadata: &EventMetadata,
        expected_version: Option<usize>,
    ) -> Result<usize, ApiError> {
        let (version, _) = self
            .run_tenant_command(tenant_id, command, metadata, expected_version)
            .await?;
        Ok(version)
    }

    /// A command that takes a credential away (revoking a key, suspending
    /// a tenant): as [`Self::command_tenant`], but answered only once it is
    /// in effect, because authentication reads the tenants view. When the
    /// view does not apply it in time: 503 `unavailable`, saying that it is
    /// recorded; a retry confirms it (the command is idempotent).
    pub async fn command_tenant_in_effect(
        &self,
        tenant_id: &str,
        command: TenantCommand,
        metadata: &EventMetadata,
        expected_version: Option<usize>,
    ) -> Result<usize, ApiError> {
        let (version, applied) = self
            .run_tenant_command(tenant_id, command, metadata, expected_version)
            .await?;
        if !applied {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!(
                    "The change is recorded, but the views did not apply it within {} s, so it is not in effect yet; retry to confirm",
                    READ_YOUR_WRITES.as_secs()
                ),
            ));
        }
        Ok(version)
    }

    /// Runs the command and waits for the tenants view: the version, and
    /// whether the view applied it in time.
    async fn run_tenant_command(
        &self,
        tenant_id: &str,
        command: TenantCommand,
        metadata: &EventMetadata,
        expected_version: Option<usize>,
    ) -> Result<(usize, bool), ApiError> {
        let version = self
            .commands
            .execute_if::<Tenant>(tenant_id, command, (), metadata, expected_version)
            .await
            .map_err(tenant_error)?;
        let applied = self.await_tenants_view(tenant_id, version).await?;
        Ok((version, applied))
    }

    /// Waits until the named projections (all, when `names` is empty) have
    /// applied the feed as it stands now: every write acknowledged before
    /// this call. 504 `consistency_timeout` after the strong-read timeout.
    pub async fn await_views(&self, names: &[&str]) -> Result<(), ApiError> {
        let head = self
            .store
            .feed_head_position()
            .await
            .map_err(ApiError::internal)?;
        let deadline = tokio::time::Instant::now() + self.strong_read_timeout;
        for projection in self.runner.projections() {
            let name = projection.name();
            if !names.is_empty() && !names.contains(&name) {
                continue;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let applied = self
                .runner
                .wait_until_applied(name, head, left)
                .await
                .map_err(ApiError::internal)?;
            if !applied {
                return Err(ApiError::new(
                    axum::http::StatusCode::GATEWAY_TIMEOUT,
                    "consistency_timeout",
                    format!(
                        "The {name} view did not catch up within {} ms; retry, or read without consistency=strong",
                        self.strong_read_timeout.as_millis()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Waits until the tenants view shows a tenant at `version` (so that,
    /// for example, a revoked key fails on the very next request): whether
    /// it did in time. On timeout the command has still happened; the view
    /// catches up later.
    pub async fn await_tenants_view(
        &self,
        tenant_id: &str,
        version: usize,
    ) -> Result<bool, ApiError> {
        if version == 0 {
            return Ok(true);
        }
        let position = self
            .store
            .feed_position_of("Tenant", tenant_id, version)
            .await
            .map_err(ApiError::internal)?;
        let Some(position) = position else {
            return Ok(true);
        };
        let applied = self
            .runner
            .wait_until_applied(TenantsProjection.name(), position, READ_YOUR_WRITES)
            .await
            .map_err(ApiError::internal)?;
        if !applied {
            tracing::warn!(tenant_id, version, "tenants view did not catch up in time");
        }
        Ok(applied)
    }
}
