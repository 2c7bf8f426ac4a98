//! The secrets view: one row per secret (its metadata), one per version
//! (state, size, fingerprint and the id of its sealed row, never the
//! value), one per event of the secret's activity (`GET
//! /v1/secrets/audit/{path}`: writes, reads, state changes), and one per
//! leakage incident with its timeline.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use palisade_domain::secret::{
    DestroyCause, IncidentEvent, IncidentStatus, SecretEvent, SecretReadEvent, Severity,
    VersionState, DEFAULT_MAX_VERSIONS,
};
use palisade_domain::Environment;
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, FeedPosition, Projection, ProjectionError, ReadModelStore, StoreError};

/// A secret's metadata as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub path: String,
    pub data_key_id: String,
    pub current_version: u32,
    /// Versions up to this one were destroyed by `max_versions`.
    pub pruned_through: u32,
    pub max_versions: u32,
    pub cas_required: bool,
    /// Seconds; None: versions are never soft-deleted by age.
    pub delete_version_after: Option<u64>,
    pub custom_metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
}

impl SecretRow {
    /// The oldest version kept (Vault's `oldest_version`); 0 with none.
    pub fn oldest_version(&self) -> u32 {
        if self.current_version == 0 {
            0
        } else {
            self.pruned_through + 1
        }
    }
}

/// One version of a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretVersionRow {
    pub secret_id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub version: u32,
    pub state: VersionState,
    /// Kept while deleted, so that undelete restores it.
    pub deprecated: bool,
    pub value_id: String,
    pub data_key_id: String,
    pub fingerprint: String,
    pub size: u64,
    pub rolled_back_from: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// When it was soft-deleted, or when `delete_version_after` will.
    pub deletion_time: Option<DateTime<Utc>>,
}

impl SecretVersionRow {
    /// Sets `state` from the flags and `deletion_time` from the secret's
    /// `delete_version_after` (for readable versions).
    fn settle(&mut self, delete_version_after: Option<u64>, deleted_at: Option<DateTime<Utc>>) {
        if self.state == VersionState::Destroyed {
            self.deletion_time = None;
            return;
        }
        if let Some(at) = deleted_at {
            self.state = VersionState::Deleted;
            self.deletion_time = Some(at);
            return;
        }
        self.state = if self.deprecated {
            VersionState::Deprecated
        } else {
            VersionState::Active
        };
        self.deletion_time = delete_version_after
            .and_then(|secs| i64::try_from(secs).ok())
            .map(|secs| self.created_at + Duration::seconds(secs));
    }
}

/// One entry of a secret's activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretActivityRow {
    pub secret_id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub position: FeedPosition,
    /// `created`, `read`, `deprecated`, `deleted`, `undeleted`,
    /// `destroyed`, `rolled_back`, `metadata_updated`, `secret_deleted`.
    pub action: String,
    pub versions: Vec<u32>,
    pub actor: String,
    pub request_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// One entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEntry {
    pub status: IncidentStatus,
    pub resolution: Option<String>,
    pub notes: Option<String>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A leakage incident as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub secret_id: String,
    pub path: String,
    pub source: String,
    pub location: Option<String>,
    pub severity: Severity,
    pub details: Option<String>,
    pub matched_version: Option<u32>,
    pub status: IncidentStatus,
    pub resolution: Option<String>,
    pub notes: Option<String>,
    pub reported_by: String,
    pub reported_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timeline: Vec<IncidentEntry>,
    pub version: i64,
}

/// Storage of the secrets view.
#[async_trait]
pub trait SecretsStore: Send {
    async fn secret(&mut self, id: &str) -> Result<Option<SecretRow>, StoreError>;
    async fn save_secret(&mut self, secret: &SecretRow) -> Result<(), StoreError>;
    /// Removes the secret's metadata and versions (its activity stays).
    async fn delete_secret(&mut self, id: &str) -> Result<(), StoreError>;
    async fn secret_versions(&mut self, id: &str) -> Result<Vec<SecretVersionRow>, StoreError>;
    async fn save_secret_version(&mut self, version: &SecretVersionRow) -> Result<(), StoreError>;
    async fn add_secret_activity(&mut self, entry: &SecretActivityRow) -> Result<(), StoreError>;
    /// Records that a deleted secret's data key (and every value sealed
    /// under it) must be gone.
    async fn add_secret_tombstone(
        &mut self,
        secret_id: &str,
        data_key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>, StoreError>;
    async fn save_incident(&mut self, incident: &IncidentRow) -> Result<(), StoreError>;
}

/// Keeps the secrets view.
pub struct SecretsProjection;

impl SecretsProjection {
    pub const NAME: &'static str = "secrets";
}

fn actor_of(event: &FeedEvent) -> String {
    event
        .metadata
        .get("actor")
        .cloned()
        .unwrap_or_else(|| "unknown".into())
}

fn request_of(event: &FeedEvent) -> Option<String> {
    event.metadata.get("request_id").cloned()
}

#[async_trait]
impl Projection for SecretsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "secrets",
            "secret_versions",
            "secret_activity",
            "leakage_incidents",
            "secret_tombstones",
        ]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            "Secret" => apply_secret(event, store).await,
            "SecretRead" => apply_read(event, store).await,
            "LeakageIncident" => apply_incident(event, store).await,
            _ => Ok(()),
        }
    }
}

async fn apply_read(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn SecretsStore>()?;
    let SecretReadEvent::SecretRead {
        secret_id,
        tenant_id,
        environment,
        version,
        actor,
        request_id,
        read_at,
        ..
    } = event.decode::<SecretReadEvent>()?;
    store
        .add_secret_activity(&SecretActivityRow {
            secret_id: secret_id.to_string(),
            tenant_id: tenant_id.to_string(),
            environment,
            position: event.position,
            action: "read".into(),
            versions: vec![version],
            actor,
            request_id: Some(request_id),
            at: read_at,
        })
        .await?;
    Ok(())
}

async fn apply_secret(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn SecretsStore>()?;
    let secret_event = event.decode::<SecretEvent>()?;
    let id = secret_event.secret_id().to_string();
    if let SecretEvent::SecretCreated {
        tenant_id,
        environment,
        path,
        data_key_id,
        created_at,
        ..
    } = &secret_event
    {
        let row = SecretRow {
            id: id.clone(),
            tenant_id: tenant_id.to_string(),
            environment: *environment,
            path: path.clone(),
            data_key_id: data_key_id.clone(),
            current_version: 0,
            pruned_through: 0,
            max_versions: DEFAULT_MAX_VERSIONS,
            cas_required: false,
            delete_version_after: None,
            custom_metadata: BTreeMap::new(),
            created_at: *created_at,
            updated_at: *created_at,
            version: event.sequence,
        };
        store.save_secret(&row).await?;
        return Ok(());
    }
    let Some(mut secret) = store.secret(&id).await? else {
        return Ok(());
    };
    secret.version = event.sequence;
    let (entry, at) = match &secret_event {
        SecretEvent::SecretCreated { .. } => unreachable!("handled above"),
        SecretEvent::SecretVersionCreated {
            version,
            value_id,
            size,
            fingerprint,
            rolled_back_from,
            created_by,
            created_at,
            ..
        } => {
            secret.current_version = *version;
            let mut row = SecretVersionRow {
                secret_id: secret.id.clone(),
                tenant_id: secret.tenant_id.clone(),
                environment: secret.environment,
                version: *version,
                state: VersionState::Active,
                deprecated: false,
                value_id: value_id.clone(),
                data_key_id: secret.data_key_id.clone(),
                fingerprint: fingerprint.clone(),
                size: *size,
                rolled_back_from: *rolled_back_from,
                created_at: *created_at,
                created_by: created_by.clone(),
                deletion_time: None,
            };
            row.settle(secret.delete_version_after, None);
            store.save_secret_version(&row).await?;
            let action = if rolled_back_from.is_some() {
                "rolled_back"
            } else {
                "created"
            };
            (
                activity(
                    &secret,
                    event,
                    action,
                    vec![*version],
                    created_by.clone(),
                    *created_at,
                ),
                *created_at,
            )
        }
        SecretEvent::SecretVersionsDeleted {
            versions,

            deleted_at,
            ..
        } => {
            change_versions(store, &secret, versions, |row| {
                row.settle(None, Some(*deleted_at))
            })
            .await?;
            // Automatic ones are the scheduler's, whose name the metadata carries.
            let actor = actor_of(event);
            (
                activity(
                    &secret,
                    event,
                    "deleted",
                    versions.clone(),
                    actor,
                    *deleted_at,
                ),
                *deleted_at,
            )
        }
        SecretEvent::SecretVersionsUndeleted {
            versions,
            undeleted_at,
            ..
        } => {
            let after = secret.delete_version_after;
            change_versions(store, &secret, versions, |row| {
                row.state = VersionState::Active;
                row.settle(after, None)
            })
            .await?;
            (
                activity(
                    &secret,
                    event,
                    "undeleted",
                    versions.clone(),
                    actor_of(event),
                    *undeleted_at,
                ),
                *undeleted_at,
            )
        }
        SecretEvent::SecretVersionsDestroyed {
            versions,
            cause,
            destroyed_at,
            ..
        } => {
            change_versions(store, &secret, versions, |row| {
                row.state = VersionState::Destroyed;
                row.settle(None, None)
            })
            .await?;
            if *cause == DestroyCause::MaxVersions {
                let through = versions.iter().copied().max().unwrap_or(0);
                secret.pruned_through = secret.pruned_through.max(through);
            }
            (
                activity(
                    &secret,
                    event,
                    "destroyed",
                    versions.clone(),
                    actor_of(event),
                    *destroyed_at,
                ),
                *destroyed_at,
            )
        }
        SecretEvent::SecretVersionDeprecated {
            version,
            deprecated_at,
            ..
        } => {
            let after = secret.delete_version_after;
            change_versions(store, &secret, &[*version], |row| {
                row.deprecated = true;
                row.settle(after, None)
            })
            .await?;
            (
                activity(
                    &secret,
                    event,
                    "deprecated",
                    vec![*version],
                    actor_of(event),
                    *deprecated_at,
                ),
                *deprecated_at,
            )
        }
        SecretEvent::SecretMetadataSet {
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            set_at,
            ..
        } => {
            secret.max_versions = *max_versions;
            secret.cas_required = *cas_required;
            secret.delete_version_after = *delete_version_after;
            secret.custom_metadata = custom_metadata.clone();
            let after = *delete_version_after;
            let all: Vec<u32> = (1..=secret.current_version).collect();
            change_versions(store, &secret, &all, |row| {
                if row.state.readable() {
                    row.settle(after, None)
                }
            })
            .await?;
            (
                activity(
                    &secret,
                    event,
                    "metadata_updated",
                    Vec::new(),
                    actor_of(event),
                    *set_at,
                ),
                *set_at,
            )
        }
        SecretEvent::SecretDeleted {
            data_key_id,
            deleted_at,
            ..
        } => {
            store.delete_secret(&id).await?;
            store
                .add_secret_tombstone(&id, data_key_id, *deleted_at)
                .await?;
            let entry = activity(
                &secret,
                event,
                "secret_deleted",
                Vec::new(),
                actor_of(event),
                *deleted_at,
            );
            store.add_secret_activity(&entry).await?;
            return Ok(());
        }
    };
    secret.updated_at = at;
    store.save_secret(&secret).await?;
    store.add_secret_activity(&entry).await?;
    Ok(())
}

/// Applies `change` to the named versions the view has.
fn activity(
    secret: &SecretRow,
    event: &FeedEvent,
    action: &str,
    versions: Vec<u32>,
    actor: String,
    at: DateTime<Utc>,
) -> SecretActivityRow {
    SecretActivityRow {
        secret_id: secret.id.clone(),
        tenant_id: secret.tenant_id.clone(),
        environment: secret.environment,
        position: event.position,
        action: action.into(),
        versions,
        actor,
        request_id: request_of(event),
        at,
    }
}

async fn change_versions(
    store: &mut dyn SecretsStore,
    secret: &SecretRow,
    versions: &[u32],
    change: impl Fn(&mut SecretVersionRow),
) -> Result<(), StoreError> {
    for mut row in store.secret_versions(&secret.id).await? {
        if versions.contains(&row.version) {
            change(&mut row);
            store.save_secret_version(&row).await?;
        }
    }
    Ok(())
}

async fn apply_incident(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn SecretsStore>()?;
    match event.decode::<IncidentEvent>()? {
        IncidentEvent::LeakageIncidentReported {
            incident_id,
            tenant_id,
            environment,
            secret_id,
            path,
            source,
            location,
            severity,
            details,
            matched_version,
            reported_by,
            reported_at,
        } => {
            let row = IncidentRow {
                id: incident_id.to_string(),
                tenant_id: tenant_id.to_string(),
                environment,
                secret_id: secret_id.to_string(),
                path,
                source,
                location,
                severity,
                details,
                matched_version,
                status: IncidentStatus::Open,
                resolution: None,
                notes: None,
                timeline: vec![IncidentEntry {
                    status: IncidentStatus::Open,
                    resolution: None,
                    notes: None,
                    by: reported_by.clone(),
                    at: reported_at,
                }],
                reported_by,
                reported_at,
                updated_at: reported_at,
                version: event.sequence,
            };
            store.save_incident(&row).await?;
        }
        IncidentEvent::LeakageIncidentUpdated {
            incident_id,
            status,
            resolution,
            notes,
            updated_by,
            updated_at,
        } => {
            let Some(mut row) = store.incident(&incident_id.to_string()).await? else {
                return Ok(());
            };
            row.status = status;
            row.resolution = resolution.clone();
            row.notes = notes.clone();
            row.updated_at = updated_at;
            row.version = event.sequence;
            row.timeline.push(IncidentEntry {
                status,
                resolution,
                notes,
                by: updated_by,
                at: updated_at,
            });
            store.save_incident(&row).await?;
        }
    }
    Ok(())
}
