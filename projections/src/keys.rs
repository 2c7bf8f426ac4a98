//! The keys view: one row per KMS key, one per key version (its public key
//! and the id of its sealed material row, never the material), and the
//! usage counted per minute from `KeyUsageRecorded`.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use palisade_domain::key::{
    rotation_due_at, Algorithm, KeyEvent, KeyState, KeyUsageEvent, KeyUse, Operation,
};
use palisade_domain::Environment;
use serde::{Deserialize, Serialize};

use crate::kms::{AlertRow, AlertRuleRow, MigrationPlanRow};
use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// A key as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub name: String,
    pub algorithm: Algorithm,
    pub state: KeyState,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub rotation_period_days: Option<u32>,
    pub latest_version: u32,
    pub min_decryption_version: u32,
    pub last_rotated_at: DateTime<Utc>,
    pub next_rotation_at: Option<DateTime<Utc>>,
    pub deletion_date: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The key that takes this one's place (a migration).
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// The scheduler recorded the latest version as overdue a rotation.
    #[serde(default)]
    pub rotation_overdue: bool,
    /// When an enabled key's latest version is due a rotation: its period,
    /// or the policy's cryptoperiod (the overdue check's column).
    #[serde(default)]
    pub rotation_due_at: Option<DateTime<Utc>>,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
}

impl KeyRow {
    /// What an operation with the key is checked against.
    pub fn usage(&self) -> KeyUse {
        KeyUse {
            algorithm: self.algorithm,
            state: self.state,
            latest_version: self.latest_version,
            min_decryption_version: self.min_decryption_version,
        }
    }

    fn schedule_rotation(&mut self) {
        self.next_rotation_at = self
            .rotation_period_days
            .filter(|_| self.state == KeyState::Enabled)
            .map(|days| self.last_rotated_at + Duration::days(i64::from(days)));
        self.rotation_due_at =
            (self.state == KeyState::Enabled && !self.rotation_overdue).then(|| {
                rotation_due_at(
                    self.algorithm,
                    self.rotation_period_days,
                    self.last_rotated_at,
                )
            });
    }
}

/// One version of a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyVersionRow {
    pub key_id: String,
    pub version: u32,
    pub material_id: String,
    /// Base64 of the public key; `None` for symmetric keys.
    pub public_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One minute's count of one (version, operation, application).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyUsageRow {
    pub key_id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub minute: DateTime<Utc>,
    pub version: u32,
    pub operation: Operation,
    pub application: String,
    pub count: u64,
    pub errors: u64,
    pub bytes: u64,
}

/// Storage of the keys view.
#[async_trait]
pub trait KeysStore: Send {
    async fn key(&mut self, id: &str) -> Result<Option<KeyRow>, StoreError>;
    async fn save_key(&mut self, key: &KeyRow) -> Result<(), StoreError>;
    async fn insert_key_version(&mut self, version: &KeyVersionRow) -> Result<(), StoreError>;
    /// Adds to the counts already kept for the same minute (a replayed
    /// flush of one minute from two replicas adds up).
    async fn add_key_usage(&mut self, usage: &[KeyUsageRow]) -> Result<(), StoreError>;
    async fn alert_rule(&mut self, id: &str) -> Result<Option<AlertRuleRow>, StoreError>;
    async fn save_alert_rule(&mut self, rule: &AlertRuleRow) -> Result<(), StoreError>;
    async fn delete_alert_rule(&mut self, id: &str) -> Result<(), StoreError>;
    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError>;
    async fn save_alert(&mut self, alert: &AlertRow) -> Result<(), StoreError>;
    async fn migration_plan(&mut self, id: &str) -> Result<Option<MigrationPlanRow>, StoreError>;
    async fn save_migration_plan(&mut self, plan: &MigrationPlanRow) -> Result<(), StoreError>;
}

/// Keeps the keys view.
pub struct KeysProjection;

impl KeysProjection {
    pub const NAME: &'static str = "keys";
}

#[async_trait]
impl Projection for KeysProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        // 2: replacement links, overdue rotations, alert rules, alerts and
        // migration plans.
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "keys",
            "key_versions",
            "key_usage",
            "kms_alert_rules",
            "kms_alerts",
            "kms_migration_plans",
        ]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            "Key" => {}
            "KeyUsage" => return apply_usage(event, store).await,
            "KmsAlertRule" => return crate::kms::apply_alert_rule(event, store).await,
            "KmsAlert" => return crate::kms::apply_alert(event, store).await,
            "KmsMigrationPlan" => return crate::kms::apply_plan(event, store).await,
            _ => return Ok(()),
        }
        let store = store.view::<dyn KeysStore>()?;
        let key_event = event.decode::<KeyEvent>()?;
        if let KeyEvent::KeyCreated {
            key_id,
            tenant_id,
            environment,
            name,
            algorithm,
            description,
            tags,
            rotation_period_days,
            first_version,
            created_at,
        } = key_event
        {
            let mut row = KeyRow {
                id: key_id.to_string(),
                tenant_id: tenant_id.to_string(),
                environment,
                name,
                algorithm,
                state: KeyState::Enabled,
                description,
                tags,
                rotation_period_days,
                latest_version: 1,
                min_decryption_version: 1,
                last_rotated_at: created_at,
                next_rotation_at: None,
                deletion_date: None,
                created_at,
                updated_at: created_at,
                last_used_at: None,
                replaced_by: None,
                rotation_overdue: false,
                rotation_due_at: None,
                version: event.sequence,
            };
            row.schedule_rotation();
            store.save_key(&row).await?;
            store
                .insert_key_version(&KeyVersionRow {
                    key_id: row.id.clone(),
                    version: 1,
                    material_id: first_version.material_id,
                    public_key: first_version.public_key,
                    created_at,
                })
                .await?;
            return Ok(());
        }
        let Some(mut row) = store.key(&event.aggregate_id).await? else {
            return Err(ProjectionError::Failed(format!(
                "{} for key {} that the view has not seen created",
                event.event_type, event.aggregate_id
            )));
        };
        row.version = event.sequence;
        match key_event {
            KeyEvent::KeyCreated { .. } => {}
            KeyEvent::KeyRotated {
                new_version,
                rotated_at,
                ..
            } => {
                row.latest_version = new_version.version;
                row.last_rotated_at = rotated_at;
                row.rotation_overdue = false;
                row.updated_at = rotated_at;
                store
                    .insert_key_version(&KeyVersionRow {
                        key_id: row.id.clone(),
                        version: new_version.version,
                        material_id: new_version.material_id,
                        public_key: new_version.public_key,
                        created_at: new_version.created_at,
                    })
                    .await?;
            }
            KeyEvent::KeyUpdated {
                description,
                tags,
                rotation_period_days,
                updated_at,
                ..
            } => {
                row.description = description;
                row.tags = tags;
                row.rotation_period_days = rotation_period_days;
                row.updated_at = updated_at;
            }
            KeyEvent::MinDecryptionVersionSet {
                min_decryption_version,
                set_at,
                ..
            } => {
                row.min_decryption_version = min_decryption_version;
                row.updated_at = set_at;
            }
            KeyEvent::KeyDisabled {
                disabled_at: at, ..
            }
            | KeyEvent::KeyDeletionCancelled {
                cancelled_at: at, ..
            } => {
                row.state = KeyState::Disabled;
                row.deletion_date = None;
                row.updated_at = at;
            }
            KeyEvent::KeyEnabled { enabled_at, .. } => {
                row.state = KeyState::Enabled;
                row.updated_at = enabled_at;
            }
            KeyEvent::KeyDeletionScheduled {
                deletion_date,
                scheduled_at,
                ..
            } => {
                row.state = KeyState::PendingDeletion;
                row.deletion_date = Some(deletion_date);
                row.updated_at = scheduled_at;
            }
            KeyEvent::KeyDestroyed { destroyed_at, .. } => {
                row.state = KeyState::Destroyed;
                row.updated_at = destroyed_at;
            }
            KeyEvent::KeyReplacementSet {
                replaced_by,
                set_at,
                ..
            } => {
                row.replaced_by = replaced_by.map(|id| id.to_string());
                row.updated_at = set_at;
            }
            KeyEvent::KeyRotationOverdue { marked_at, .. } => {
                row.rotation_overdue = true;
                row.updated_at = marked_at;
            }
        }
        row.schedule_rotation();
        store.save_key(&row).await?;
        Ok(())
    }
}

/// A minute's usage: its counts, and the key's `last_used_at` (not its
/// version: usage is not a change of the key).
async fn apply_usage(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn KeysStore>()?;
    let KeyUsageEvent::KeyUsageRecorded {
        key_id,
        minute,
        usage,
    } = event.decode::<KeyUsageEvent>()?;
    let Some(mut row) = store.key(&key_id.to_string()).await? else {
        return Err(ProjectionError::Failed(format!(
            "usage of key {key_id} that the view has not seen created"
        )));
    };
    let rows: Vec<KeyUsageRow> = usage
        .into_iter()
        .map(|u| KeyUsageRow {
            key_id: row.id.clone(),
            tenant_id: row.tenant_id.clone(),
            environment: row.environment,
            minute,
            version: u.version,
            operation: u.operation,
            application: u.application,
            count: u.count,
            errors: u.errors,
            bytes: u.bytes,
        })
        .collect();
    store.add_key_usage(&rows).await?;
    let last = minute + Duration::seconds(59);
    row.last_used_at = Some(row.last_used_at.map_or(last, |seen| seen.max(last)));
    store.save_key(&row).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use palisade_domain::key::{KeyUsage, KeyUsageEvent, KeyVersion};
    use palisade_domain::{KeyId, TenantId};

    use super::*;
    use crate::memory::InMemory;
    use crate::FeedPosition;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 9, 0, 0).unwrap()
    }

    fn key_id() -> KeyId {
        KeyId::from_uuid(uuid::Uuid::from_u128(5))
    }

    fn feed_event(sequence: i64, event: &impl serde::Serialize, aggregate_type: &str) -> FeedEvent {
        let payload = serde_json::to_value(event).unwrap();
        let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
        FeedEvent {
            position: FeedPosition {
                tx: 0,
                position: sequence,
            },
            aggregate_type: aggregate_type.into(),
            aggregate_id: key_id().to_string(),
            sequence,
            event_type,
            event_version: "1".into(),
            payload,
            metadata: HashMap::new(),
            recorded_at_ms: 0,
        }
    }

    fn version(n: u32, day: u32) -> KeyVersion {
        KeyVersion {
            version: n,
            material_id: format!("m{n}"),
            public_key: Some(format!("pk{n}")),
            created_at: at(day),
        }
    }

    async fn apply(store: &mut InMemory, events: &[KeyEvent]) {
        for (i, event) in events.iter().enumerate() {
            KeysProjection
                .apply(&feed_event(i as i64 + 1, event, "Key"), store)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_key_its_versions_its_states_and_its_usage_reach_the_view() {
        let mut store = InMemory::default();
        apply(
            &mut store,
            &[
                KeyEvent::KeyCreated {
                    key_id: key_id(),
                    tenant_id: TenantId::from_uuid(uuid::Uuid::from_u128(1)),
                    environment: Environment::Live,
                    name: "signer".into(),
                    algorithm: Algorithm::Ed25519,
                    description: None,
                    tags: vec!["release".into()],
                    rotation_period_days: Some(90),
                    first_version: version(1, 1),
                    created_at: at(1),
                },
                KeyEvent::KeyRotated {
                    key_id: key_id(),
                    new_version: version(2, 3),
                    automatic: false,
                    rotated_at: at(3),
                },
                KeyEvent::KeyDeletionScheduled {
                    key_id: key_id(),
                    pending_window_days: 7,
                    deletion_date: at(12),
                    scheduled_at: at(5),
                },
            ],
        )
        .await;
        let usage = KeyUsageEvent::KeyUsageRecorded {
            key_id: key_id(),
            minute: at(4),
            usage: vec![KeyUsage {
                version: 2,
                operation: Operation::Sign,
                application: "ci".into(),
                count: 5,
                errors: 1,
                bytes: 500,
            }],
        };
        KeysProjection
            .apply(&feed_event(1, &usage, "KeyUsage"), &mut store)
            .await
            .unwrap();
        let row = &store.keys[&key_id().to_string()];
        assert_eq!(row.latest_version, 2);
        assert_eq!(row.version, 3, "usage does not change the key's version");
        assert_eq!(row.state, KeyState::PendingDeletion);
        assert_eq!(row.deletion_date, Some(at(12)));
        // No rotation is due for a key that is not enabled.
        assert_eq!(row.next_rotation_at, None);
        assert_eq!(row.last_used_at, Some(at(4) + Duration::seconds(59)));
        assert_eq!(store.key_versions.len(), 2);
        assert_eq!(store.key_usage[0].count, 5);

        apply(
            &mut store,
            &[KeyEvent::KeyDeletionCancelled {
                key_id: key_id(),
                cancelled_at: at(6),
            }],
        )
        .await;
        let row = &store.keys[&key_id().to_string()];
        assert_eq!(row.state, KeyState::Disabled);
        assert_eq!(row.deletion_date, None);
    }
}
