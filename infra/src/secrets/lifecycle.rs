//! The secret commands that touch values: a write (or a rollback) seals
//! the value for the next version and only then appends the event that
//! names it, sealing again when another write took that version first;
//! destroying versions and deleting a secret append their events and then
//! delete the rows. Shared by the application layer and the scheduler.
//!
//! A row whose event never lands (a lost race, a refused command) is
//! deleted at once; a crash between the two leaves a row no event names,
//! which nothing reads and the secret's deletion deletes with the rest.

use chrono::{DateTime, Utc};
use palisade_domain::secret::{
    NewValue, Secret, SecretCommand, SecretError, SecretEvent, SecretPath,
};
use palisade_domain::{Environment, EventMetadata, TenantId};

use super::{
    forget_data_key, forget_value, shred_secret, shred_versions, SecretValue, SecretVault, ValueAt,
    VaultError,
};
use crate::{CommandError, Commands, Store};

/// How often a write that lost a race to another is sealed and tried again.
const WRITE_ATTEMPTS: usize = 100;

impl From<VaultError> for CommandError<SecretError> {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::Store(error) if error.is_transient() => {
                CommandError::Unavailable(error.to_string())
            }
            VaultError::Database(error) if crate::store::is_transient(&error) => {
                CommandError::Unavailable(error.to_string())
            }
            other => CommandError::Store(other.to_string()),
        }
    }
}

/// Whether the outcome proves the event was not appended (see
/// `keyring::lifecycle`): only then may the row it would name go.
fn not_appended<T>(outcome: &Result<T, CommandError<SecretError>>) -> bool {
    matches!(
        outcome,
        Err(CommandError::Rejected(_))
            | Err(CommandError::Conflict)
            | Err(CommandError::VersionMismatch { .. })
    )
}

/// A write to make.
pub struct SecretToWrite<'a> {
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub path: &'a SecretPath,
    pub secret_id: &'a str,
    pub cas: Option<u32>,
    pub cas_required_by_default: bool,
    /// A rollback: the version whose value this is.
    pub rollback_of: Option<u32>,
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// A write made: its version, the secret's aggregate version afterwards,
/// and the versions `max_versions` destroyed (their rows are gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub version: u32,
    pub aggregate_version: usize,
    pub destroyed: Vec<u32>,
}

/// Writes `value` as the secret's next version (or, with `rollback_of`,
/// as a rollback to that version, whose value it must be).
pub async fn write(
    store: &Store,
    commands: &Commands,
    vault: &SecretVault,
    request: SecretToWrite<'_>,
    value: &SecretValue,
    metadata: &EventMetadata,
) -> Result<Written, CommandError<SecretError>> {
    let tenant_id = request.tenant_id.to_string();
    let fingerprint = vault.fingerprint(
        &tenant_id,
        request.environment,
        request.secret_id,
        value.expose(),
    );
    for _ in 0..WRITE_ATTEMPTS {
        let (secret, _) = commands.load::<Secret>(request.secret_id).await?;
        let (data_key_id, new_key) = match secret.data_key_id() {
            Some(id) => (id.to_string(), false),
            None if request.rollback_of.is_some() => {
                return Err(CommandError::Rejected(SecretError::NotFound))
            }
            None => (
                vault
                    .new_data_key(store, &tenant_id, request.secret_id)
                    .await?,
                true,
            ),
        };
        let version = secret.current_version() + 1;
        let at = ValueAt {
            tenant_id: &tenant_id,
            secret_id: request.secret_id,
            data_key_id: &data_key_id,
            version,
        };
        let value_id = vault.seal(store, &at, value).await?;
        let new_value = NewValue {
            value_id: value_id.clone(),
            data_key_id: data_key_id.clone(),
            size: value.len() as u64,
            fingerprint: fingerprint.clone(),
        };
        let command = match request.rollback_of {
            Some(from) => SecretCommand::Rollback {
                from,
                version,
                value: new_value,
                cas: request.cas,
                cas_required_by_default: request.cas_required_by_default,
                reason: request.reason.clone(),
                actor: request.actor.clone(),
                at: request.at,
            },
            None => SecretCommand::Put {
                tenant_id: request.tenant_id,
                environment: request.environment,
                path: request.path.clone(),
                version,
                value: new_value,
                cas: request.cas,
                cas_required_by_default: request.cas_required_by_default,
                reason: request.reason.clone(),
                actor: request.actor.clone(),
                at: request.at,
            },
        };
        let outcome = commands
            .execute_returning::<Secret>(request.secret_id, command, (), metadata, None)
            .await;
        if not_appended(&outcome) {
            forget_value(store, &value_id).await?;
            if new_key {
                forget_data_key(store, &data_key_id).await?;
            }
        }
        match outcome {
            Ok(executed) => {
                let destroyed = destroyed_versions(&executed.events);
                shred(store, request.secret_id, &executed.events).await?;
                return Ok(Written {
                    version,
                    aggregate_version: executed.version,
                    destroyed,
                });
            }
            Err(CommandError::Rejected(SecretError::Raced { .. }))
            | Err(CommandError::Conflict) => {
                tokio::task::yield_now().await;
            }
            Err(other) => return Err(other),
        }
    }
    Err(CommandError::Conflict)
}

/// The versions these events destroyed (by request or by `max_versions`).
pub fn destroyed_versions(events: &[SecretEvent]) -> Vec<u32> {
    destroyed_rows(events)
        .into_iter()
        .flat_map(|(_, versions)| versions)
        .collect()
}

/// What these events destroyed: per data key (generation), the versions.
fn destroyed_rows(events: &[SecretEvent]) -> Vec<(String, Vec<u32>)> {
    events
        .iter()
        .filter_map(|event| match event {
            SecretEvent::SecretVersionsDestroyed {
                data_key_id,
                versions,
                ..
            } => Some((data_key_id.clone(), versions.clone())),
            _ => None,
        })
        .collect()
}

/// Deletes the rows of what `events` destroyed.
async fn shred(store: &Store, secret_id: &str, events: &[SecretEvent]) -> Result<(), VaultError> {
    for (data_key_id, versions) in destroyed_rows(events) {
        shred_versions(store, secret_id, &data_key_id, &versions).await?;
    }
    for event in events {
        if let SecretEvent::SecretDeleted { data_key_id, .. } = event {
            shred_secret(store, secret_id, data_key_id).await?;
        }
    }
    Ok(())
}

/// Runs a command that may destroy versions (destroy, lower
/// `max_versions`) or the whole secret, and deletes their rows once its
/// events are appended. Returns the secret's version afterwards and the
/// events.
pub async fn command(
    store: &Store,
    commands: &Commands,
    secret_id: &str,
    command: SecretCommand,
    metadata: &EventMetadata,
    expected_version: Option<usize>,
) -> Result<(usize, Vec<SecretEvent>), CommandError<SecretError>> {
    let executed = commands
        .execute_returning::<Secret>(secret_id, command, (), metadata, expected_version)
        .await?;
    shred(store, secret_id, &executed.events).await?;
    Ok((executed.version, executed.events))
}
