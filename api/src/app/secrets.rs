//! Secret store use cases (`docs/secrets.md`): values and metadata are read
//! with `secrets:read`, every change needs `secrets:write`.
//!
//! A secret is addressed by its path; the path derives its id. A write
//! answers once the secrets view shows it, so a read right after it (on
//! any replica) sees the new version. A value read is recorded as a
//! `SecretRead` event before the value is answered: when it cannot be
//! recorded, the value is not answered.
//!
//! Values never leave this layer except as the answer of a read: they are
//! not in events, logs, errors or idempotency records (the value field is
//! marked secret for the idempotency store).

use chrono::Utc;
use palisade_domain::secret::{
    secret_id_for, MetadataUpdate, RecordRead, SecretCommand, SecretError, SecretPath, SecretRead,
    VersionState, MAX_VALUE_BYTES,
};
use palisade_domain::SecretId;
use palisade_infra::readmodel::{
    get_secret, get_secret_version, list_secrets, secret_activity, secret_stats, Page, Partition,
    SecretStats, SecretWithVersions, Window,
};
use palisade_infra::secrets::lifecycle::{self, SecretToWrite, Written};
use palisade_infra::secrets::{SecretValue, ValueAt, VaultError};
use palisade_infra::{CommandError, NewAggregate};
use palisade_projections::{
    Projection as _, SecretActivityRow, SecretVersionRow, SecretsProjection,
};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{SecretsRead, SecretsWrite, TenantAdmin};
use super::input::{json_optional_whole, json_secret_string, json_whole, json_whole_list};
use super::{App, Authorized, Error, Result};

// ---------------------------------------------------------------- requests

/// What a write carries besides the value.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteOptions {
    /// Why this version was written (kept with the version).
    pub reason: Option<String>,
}

/// `PUT /v1/secrets/data/{path}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteSecretRequest {
    /// The value (at most 1 MiB of UTF-8). Never stored in clear, logged
    /// or kept by idempotency.
    #[schema(value_type = String)]
    #[serde(deserialize_with = "json_secret_string")]
    pub value: Zeroizing<String>,
    /// Check-and-set: the version this write expects to be current (0: the
    /// secret must not exist).
    #[serde(default, deserialize_with = "json_optional_whole")]
    pub cas: Option<u32>,
    pub metadata: Option<WriteOptions>,
}

/// `PATCH /v1/secrets/metadata/{path}`; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMetadataRequest {
    /// 1 to 1000 (default 10): versions past it are destroyed, oldest first.
    #[serde(default, deserialize_with = "json_optional_whole")]
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    /// Seconds, or a duration such as `30m`, `768h`, `7d`; `0` or `0s`
    /// turns it off. A version older than this is soft-deleted.
    pub delete_version_after: Option<String>,
    /// At most 64 pairs; replaces every pair.
    pub custom_metadata: Option<std::collections::BTreeMap<String, String>>,
}

/// `POST /v1/secrets/delete/{path}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteVersionsRequest {
    /// The versions to soft-delete (the current one when absent or empty);
    /// versions the secret never had are left out.
    #[serde(default, deserialize_with = "json_whole_list")]
    pub versions: Vec<u32>,
}

/// `POST /v1/secrets/{undelete|destroy}/{path}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionsRequest {
    /// At least one; versions the secret never had are left out.
    #[serde(deserialize_with = "json_whole_list")]
    pub versions: Vec<u32>,
}

/// `POST /v1/secrets/rollback/{path}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose value the new version takes.
    #[serde(deserialize_with = "json_whole")]
    pub version: u32,
    /// Check-and-set, as for a write (required when the secret or the
    /// environment has `cas_required`).
    #[serde(default, deserialize_with = "json_optional_whole")]
    pub cas: Option<u32>,
    pub reason: Option<String>,
}

/// `POST /v1/secrets/deprecate/{path}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRequest {
    #[serde(deserialize_with = "json_whole")]
    pub version: u32,
    pub reason: Option<String>,
}

/// `POST /v1/secrets/compare/{path}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareRequest {
    #[serde(deserialize_with = "json_whole")]
    pub version1: u32,
    #[serde(deserialize_with = "json_whole")]
    pub version2: u32,
}

// ---------------------------------------------------------------- errors

impl From<SecretError> for Error {
    fn from(error: SecretError) -> Self {
        let message = super::keys::capitalized(&error.to_string());
        match error {
            SecretError::NotFound => Error::not_found("Secret not found"),
            SecretError::Invalid(problems) => Error::Validation(problems),
            SecretError::CasMismatch { current } => Error::CasMismatch { message, current },
            SecretError::CasRequired { current } => Error::CasRequired { message, current },
            SecretError::Raced { .. } => {
                Error::conflict("The secret was written concurrently; retry")
            }
            SecretError::VersionUnknown { .. } => Error::not_found(message),
            SecretError::InvalidTransition { .. } => Error::InvalidTransition(message),
        }
    }
}

impl From<CommandError<SecretError>> for Error {
    fn from(error: CommandError<SecretError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "secret"),
        }
    }
}

impl From<VaultError> for Error {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Gone => Error::VersionGone {
                message: "The version is destroyed; its value is gone".into(),
                state: VersionState::Destroyed.as_str().into(),
                deletion_time: None,
            },
            other => Error::internal(other),
        }
    }
}

// ---------------------------------------------------------------- helpers

/// The secret `path` names in the caller's partition, or 404 for a path
/// that cannot be one (a path is never refused as invalid on a read: it
/// simply names nothing).
fn addressed(context: &super::RequestContext, path: &str) -> Result<(SecretPath, SecretId)> {
    let path = SecretPath::parse(path).map_err(|_| Error::not_found("Secret not found"))?;
    let partition = context.principal.partition();
    let id = secret_id_for(&context.principal.tenant_id, partition.environment, &path);
    Ok((path, id))
}

/// The path of a write: an invalid one is a 422 naming the rule.
fn writable(context: &super::RequestContext, path: &str) -> Result<(SecretPath, SecretId)> {
    let path = SecretPath::parse(path)?;
    let partition = context.principal.partition();
    let id = secret_id_for(&context.principal.tenant_id, partition.environment, &path);
    Ok((path, id))
}

async fn view_secret(app: &App, partition: &Partition, id: &str) -> Result<SecretWithVersions> {
    get_secret(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Secret not found"))
}

/// Waits until the secrets view has applied the secret at `version`.
async fn settle(app: &App, secret_id: &str, version: usize) -> Result<()> {
    app.await_in_effect(SecretsProjection.name(), "Secret", secret_id, version)
        .await
}

/// A readable version, or 404 naming the state it is in.
fn readable(version: SecretVersionRow) -> Result<SecretVersionRow> {
    if version.state.readable() {
        return Ok(version);
    }
    Err(Error::VersionGone {
        message: format!(
            "Version {} is {}; its value cannot be read",
            version.version, version.state
        ),
        state: version.state.as_str().into(),
        deletion_time: version
            .deletion_time
            .as_ref()
            .map(crate::views::format_time),
    })
}

// ---------------------------------------------------------------- use cases

/// A write's answer.
#[derive(Debug, Clone)]
pub struct SecretWritten {
    pub path: String,
    pub version: u32,
    pub created_at: chrono::DateTime<Utc>,
    pub destroyed: Vec<u32>,
}

/// Writes the next version of the secret at `path` (creating it).
pub async fn write(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    request: WriteSecretRequest,
) -> Result<SecretWritten> {
    let (path, id) = writable(context, path)?;
    if request.value.len() > MAX_VALUE_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "The value exceeds the limit of {MAX_VALUE_BYTES} bytes"
        )));
    }
    let value = SecretValue::from_bytes(request.value.as_bytes().to_vec());
    let metadata = context.metadata();
    let partition = context.principal.partition();
    let write = SecretToWrite {
        tenant_id: context.principal.tenant_id,
        environment: partition.environment,
        path: &path,
        secret_id: &id.to_string(),
        cas: request.cas,
        cas_required_by_default: context.principal.secrets_cas_required,
        rollback_of: None,
        reason: request.metadata.and_then(|m| m.reason),
        actor: context.principal.name.clone(),
        at: metadata.occurred_at,
    };
    let written = lifecycle::write(
        &app.store,
        &app.commands,
        &app.secrets,
        write,
        &value,
        &metadata,
    )
    .await?;
    answered(app, &id, path, written, metadata.occurred_at).await
}

async fn answered(
    app: &App,
    id: &SecretId,
    path: SecretPath,
    written: Written,
    at: chrono::DateTime<Utc>,
) -> Result<SecretWritten> {
    settle(app, &id.to_string(), written.aggregate_version).await?;
    Ok(SecretWritten {
        path: path.as_str().to_string(),
        version: written.version,
        created_at: at,
        destroyed: written.destroyed,
    })
}

/// A value as read.
pub struct ReadValue {
    pub path: String,
    pub version: SecretVersionRow,
    pub value: SecretValue,
}

/// Reads a version's value (the current one by default), recording the
/// read first.
pub async fn read(
    app: &App,
    context: &Authorized<SecretsRead>,
    path: &str,
    version: Option<u32>,
) -> Result<ReadValue> {
    let (path, id) = addressed(context, path)?;
    let partition = context.principal.partition();
    let id_text = id.to_string();
    let found = get_secret_version(app.store.read_pool(), &partition, &id_text, version)
        .await?
        .ok_or_else(|| match version {
            Some(version) => Error::not_found(format!("The secret has no version {version}")),
            None => Error::not_found("Secret not found"),
        })?;
    let found = readable(found)?;
    let metadata = context.metadata();
    let record = RecordRead {
        secret_id: id,
        tenant_id: context.principal.tenant_id,
        environment: partition.environment,
        path: path.as_str().to_string(),
        version: found.version,
        actor: context.principal.name.clone(),
        request_id: metadata.request_id.clone().unwrap_or_default(),
        at: metadata.occurred_at,
    };
    let events = app
        .commands
        .decide_new::<SecretRead>(record, ())
        .await
        .map_err(|e| Error::internal(e.to_string()))?;
    let read = NewAggregate::<SecretRead> {
        aggregate_id: uuid::Uuid::new_v4().simple().to_string(),
        events,
    };
    app.commands
        .create_many(&[read], &metadata)
        .await
        .map_err(|error| match error {
            CommandError::Unavailable(cause) => Error::unavailable(cause),
            other => Error::internal(other.to_string()),
        })?;
    let at = ValueAt {
        tenant_id: &partition.tenant_id,
        secret_id: &id_text,
        data_key_id: &found.data_key_id,
        version: found.version,
    };
    let value = app.secrets.open(&app.store, &at, &found.value_id).await?;
    Ok(ReadValue {
        path: path.as_str().to_string(),
        version: found,
        value,
    })
}

/// A secret's metadata and versions, and whether it counts as leaked.
#[derive(Debug, Clone)]
pub struct SecretDetail {
    pub found: SecretWithVersions,
    /// An open leakage incident was reported after the current version.
    pub leaked: bool,
}

async fn detailed(app: &App, found: SecretWithVersions) -> Result<SecretDetail> {
    let current = found
        .versions
        .iter()
        .find(|v| v.version == found.secret.current_version)
        .map(|v| v.created_at);
    let leaked = super::leakage::leaked(app, &found.secret.id, current).await?;
    Ok(SecretDetail { found, leaked })
}

/// The secret `path` names, for any use case of the caller's (404 when
/// there is none).
pub(super) async fn metadata_of(
    app: &App,
    context: &super::RequestContext,
    path: &str,
) -> Result<SecretWithVersions> {
    let (_, id) = addressed(context, path)?;
    view_secret(app, &context.principal.partition(), &id.to_string()).await
}

/// A secret's metadata and versions (never values).
pub async fn metadata(
    app: &App,
    context: &Authorized<SecretsRead>,
    path: &str,
) -> Result<SecretDetail> {
    let found = metadata_of(app, context, path).await?;
    detailed(app, found).await
}

/// Changes a secret's metadata (only at `expected_version`, when given).
pub async fn update_metadata(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    request: UpdateMetadataRequest,
    expected_version: Option<usize>,
) -> Result<SecretDetail> {
    let delete_version_after = match request.delete_version_after.as_deref() {
        None => None,
        Some(text) => Some(Some(
            palisade_domain::secret::parse_duration(text)
                .map_err(|message| Error::invalid("delete_version_after", message))?,
        )),
    };
    let update = MetadataUpdate {
        max_versions: request.max_versions,
        cas_required: request.cas_required,
        delete_version_after,
        custom_metadata: request.custom_metadata,
    };
    let at = Utc::now();
    command(
        app,
        context,
        path,
        SecretCommand::SetMetadata { update, at },
        expected_version,
    )
    .await
}

/// Runs a command on an existing secret and answers it as the view shows
/// it afterwards.
async fn command(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    command: SecretCommand,
    expected_version: Option<usize>,
) -> Result<SecretDetail> {
    let (_, id) = addressed(context, path)?;
    let partition = context.principal.partition();
    let id = id.to_string();
    view_secret(app, &partition, &id).await?;
    let metadata = context.metadata();
    let (version, _) = lifecycle::command(
        &app.store,
        &app.commands,
        &id,
        command,
        &metadata,
        expected_version,
    )
    .await?;
    settle(app, &id, version).await?;
    detailed(app, view_secret(app, &partition, &id).await?).await
}

/// Destroys every version and removes the metadata; answers the secret
/// as it was.
pub async fn delete_all(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
) -> Result<SecretWithVersions> {
    let (_, id) = addressed(context, path)?;
    let partition = context.principal.partition();
    let id = id.to_string();
    let was = view_secret(app, &partition, &id).await?;
    let metadata = context.metadata();
    let (version, _) = lifecycle::command(
        &app.store,
        &app.commands,
        &id,
        SecretCommand::DeleteAll {
            at: metadata.occurred_at,
        },
        &metadata,
        None,
    )
    .await?;
    settle(app, &id, version).await?;
    Ok(was)
}

/// Soft-deletes, undeletes or destroys versions.
pub async fn change_versions(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    action: VersionsAction,
    versions: Vec<u32>,
) -> Result<SecretDetail> {
    let at = Utc::now();
    let command_ = match action {
        VersionsAction::Delete => SecretCommand::Delete { versions, at },
        VersionsAction::Undelete => SecretCommand::Undelete { versions, at },
        VersionsAction::Destroy => SecretCommand::Destroy { versions, at },
    };
    command(app, context, path, command_, None).await
}

/// Which of the three version commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionsAction {
    Delete,
    Undelete,
    Destroy,
}

/// Flags a version as deprecated (still readable).
pub async fn deprecate(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    request: VersionRequest,
) -> Result<SecretDetail> {
    let command_ = SecretCommand::Deprecate {
        version: request.version,
        reason: request.reason,
        at: Utc::now(),
    };
    command(app, context, path, command_, None).await
}

/// Writes a new version with the value of `request.version`.
pub async fn rollback(
    app: &App,
    context: &Authorized<SecretsWrite>,
    path: &str,
    request: RollbackRequest,
) -> Result<SecretWritten> {
    let (path, id) = addressed(context, path)?;
    let partition = context.principal.partition();
    let id_text = id.to_string();
    let from = get_secret_version(
        app.store.read_pool(),
        &partition,
        &id_text,
        Some(request.version),
    )
    .await?
    .ok_or_else(|| Error::not_found(format!("The secret has no version {}", request.version)))?;
    if !from.state.readable() {
        return Err(Error::InvalidTransition(format!(
            "Cannot roll back to version {}: it is {}",
            from.version, from.state
        )));
    }
    let at = ValueAt {
        tenant_id: &partition.tenant_id,
        secret_id: &id_text,
        data_key_id: &from.data_key_id,
        version: from.version,
    };
    let value = app.secrets.open(&app.store, &at, &from.value_id).await?;
    let metadata = context.metadata();
    let write = SecretToWrite {
        tenant_id: context.principal.tenant_id,
        environment: partition.environment,
        path: &path,
        secret_id: &id_text,
        cas: request.cas,
        cas_required_by_default: context.principal.secrets_cas_required,
        rollback_of: Some(from.version),
        reason: request.reason,
        actor: context.principal.name.clone(),
        at: metadata.occurred_at,
    };
    let written = lifecycle::write(
        &app.store,
        &app.commands,
        &app.secrets,
        write,
        &value,
        &metadata,
    )
    .await?;
    answered(app, &id, path, written, metadata.occurred_at).await
}

/// Two versions compared by their keyed fingerprints (never the values).
pub struct Comparison {
    pub different: bool,
    pub version1: SecretVersionRow,
    pub version2: SecretVersionRow,
}

pub async fn compare(
    app: &App,
    context: &Authorized<SecretsRead>,
    path: &str,
    request: CompareRequest,
) -> Result<Comparison> {
    let (_, id) = addressed(context, path)?;
    let found = view_secret(app, &context.principal.partition(), &id.to_string()).await?;
    let version = |number: u32| {
        found
            .versions
            .iter()
            .find(|v| v.version == number)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("The secret has no version {number}")))
    };
    // A destroyed version's value is gone, but its fingerprint is part of
    // its history: it still compares.
    let version1 = version(request.version1)?;
    let version2 = version(request.version2)?;
    Ok(Comparison {
        different: version1.fingerprint != version2.fingerprint,
        version1,
        version2,
    })
}

/// A page of the caller's secrets under `prefix`, by path.
pub async fn list(
    app: &App,
    context: &Authorized<SecretsRead>,
    prefix: Option<&str>,
    window: impl Into<Window>,
) -> Result<Page<palisade_projections::SecretRow>> {
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        if prefix.len() > 512 {
            return Err(Error::invalid("prefix", "must be at most 512 characters"));
        }
        // A prefix is a path, or one cut anywhere (`app/`, `app/d`).
        let whole = prefix.trim_end_matches('/');
        if !whole.is_empty() {
            SecretPath::parse(whole)
                .map_err(|problem| Error::invalid("prefix", problem.message))?;
        }
    }
    Ok(list_secrets(
        app.store.read_pool(),
        &context.principal.partition(),
        prefix,
        window.into(),
    )
    .await?)
}

/// A page of one secret's activity, oldest first.
pub async fn audit(
    app: &App,
    context: &Authorized<SecretsRead>,
    path: &str,
    window: impl Into<Window>,
) -> Result<Page<SecretActivityRow>> {
    let (_, id) = addressed(context, path)?;
    let partition = context.principal.partition();
    let page = secret_activity(
        app.store.read_pool(),
        &partition,
        &id.to_string(),
        window.into(),
    )
    .await?;
    if page.total == 0 {
        return Err(Error::not_found("Secret not found"));
    }
    Ok(page)
}

/// Counts over the caller's secrets.
pub async fn stats(app: &App, context: &Authorized<SecretsRead>) -> Result<SecretStats> {
    Ok(secret_stats(app.store.read_pool(), &context.principal.partition()).await?)
}

// ---------------------------------------------------------------- defaults

/// `PATCH /v1/secrets/config`: the caller's environment's defaults.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfigRequest {
    /// Every write in this environment needs `cas` (as if each secret had
    /// `cas_required`).
    pub cas_required: bool,
}

/// The secret store's defaults in the caller's environment.
#[derive(Debug, Clone, Copy)]
pub struct SecretsConfig {
    pub cas_required: bool,
}

/// The defaults, as the caller's key was authenticated with them.
pub fn config(context: &Authorized<SecretsRead>) -> SecretsConfig {
    SecretsConfig {
        cas_required: context.principal.secrets_cas_required,
    }
}

/// Sets the defaults of the caller's environment (Vault's engine-wide
/// `cas_required`); in force on this replica before the answer, on the
/// others as their key caches follow the tenants view.
pub async fn configure(
    app: &App,
    context: &Authorized<TenantAdmin>,
    request: SecretsConfigRequest,
) -> Result<SecretsConfig> {
    let metadata = context.metadata();
    let command = palisade_domain::tenant::TenantCommand::ConfigureSecrets {
        environment: context.principal.environment,
        cas_required: request.cas_required,
        at: metadata.occurred_at,
    };
    app.command_tenant(
        &context.principal.tenant_id.to_string(),
        command,
        &metadata,
        None,
    )
    .await?
    .in_effect()?;
    Ok(SecretsConfig {
        cas_required: request.cas_required,
    })
}
