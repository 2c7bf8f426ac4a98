use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{Algorithm, Operation};
use crate::{Environment, KeyId, TenantId};

/// One version of a key, as its events record it: never its secret half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// 1, 2, 3 … without gaps.
    pub version: u32,
    /// Names this version's row of sealed material (a random UUID chosen
    /// when the material was generated), so that a row sealed by a
    /// rotation that lost a race is never mistaken for the winner's.
    pub material_id: String,
    /// The public key, base64 of its standard encoding (SEC1 uncompressed
    /// for P-256, raw for Ed25519, FIPS 203/204 for ML-KEM/ML-DSA); `None`
    /// for symmetric keys.
    pub public_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Operations counted for one (version, operation, application) in one
/// minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    pub version: u32,
    pub operation: Operation,
    pub application: String,
    /// Operations that succeeded.
    pub count: u64,
    /// Operations refused or failed (a failed decrypt, a disabled key).
    pub errors: u64,
    /// Bytes of input processed by the successful ones.
    pub bytes: u64,
}

/// What happened to a key. Past tense, versioned, never rewritten; no event
/// carries secret material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyEvent {
    KeyCreated {
        key_id: KeyId,
        tenant_id: TenantId,
        environment: Environment,
        name: String,
        algorithm: Algorithm,
        description: Option<String>,
        tags: Vec<String>,
        rotation_period_days: Option<u32>,
        first_version: KeyVersion,
        created_at: DateTime<Utc>,
    },
    KeyRotated {
        key_id: KeyId,
        new_version: KeyVersion,
        /// By the scheduler because the rotation period elapsed.
        automatic: bool,
        rotated_at: DateTime<Utc>,
    },
    /// The new values of the key's descriptive settings.
    KeyUpdated {
        key_id: KeyId,
        description: Option<String>,
        tags: Vec<String>,
        rotation_period_days: Option<u32>,
        updated_at: DateTime<Utc>,
    },
    MinDecryptionVersionSet {
        key_id: KeyId,
        min_decryption_version: u32,
        set_at: DateTime<Utc>,
    },
    KeyDisabled {
        key_id: KeyId,
        disabled_at: DateTime<Utc>,
    },
    KeyEnabled {
        key_id: KeyId,
        enabled_at: DateTime<Utc>,
    },
    KeyDeletionScheduled {
        key_id: KeyId,
        pending_window_days: u32,
        deletion_date: DateTime<Utc>,
        scheduled_at: DateTime<Utc>,
    },
    /// The key is `disabled` again (as AWS KMS does).
    KeyDeletionCancelled {
        key_id: KeyId,
        cancelled_at: DateTime<Utc>,
    },
    /// Every version's material is deleted; the key can never be used again.
    KeyDestroyed {
        key_id: KeyId,
        destroyed_at: DateTime<Utc>,
    },
    /// The key that takes this one's place (a migration to another
    /// algorithm), or `None` when the link is removed.
    KeyReplacementSet {
        key_id: KeyId,
        replaced_by: Option<KeyId>,
        set_at: DateTime<Utc>,
    },
    /// By the scheduler: the latest version outlived its rotation period
    /// (or, without one, the policy's cryptoperiod) and a day's grace.
    /// Cleared by the next rotation.
    KeyRotationOverdue {
        key_id: KeyId,
        version: u32,
        due_at: DateTime<Utc>,
        marked_at: DateTime<Utc>,
    },
}

impl KeyEvent {
    pub fn key_id(&self) -> KeyId {
        match self {
            KeyEvent::KeyCreated { key_id, .. }
            | KeyEvent::KeyRotated { key_id, .. }
            | KeyEvent::KeyUpdated { key_id, .. }
            | KeyEvent::MinDecryptionVersionSet { key_id, .. }
            | KeyEvent::KeyDisabled { key_id, .. }
            | KeyEvent::KeyEnabled { key_id, .. }
            | KeyEvent::KeyDeletionScheduled { key_id, .. }
            | KeyEvent::KeyDeletionCancelled { key_id, .. }
            | KeyEvent::KeyDestroyed { key_id, .. }
            | KeyEvent::KeyReplacementSet { key_id, .. }
            | KeyEvent::KeyRotationOverdue { key_id, .. } => *key_id,
        }
    }
}

impl DomainEvent for KeyEvent {
    fn event_type(&self) -> String {
        match self {
            KeyEvent::KeyCreated { .. } => "KeyCreated",
            KeyEvent::KeyRotated { .. } => "KeyRotated",
            KeyEvent::KeyUpdated { .. } => "KeyUpdated",
            KeyEvent::MinDecryptionVersionSet { .. } => "MinDecryptionVersionSet",
            KeyEvent::KeyDisabled { .. } => "KeyDisabled",
            KeyEvent::KeyEnabled { .. } => "KeyEnabled",
            KeyEvent::KeyDeletionScheduled { .. } => "KeyDeletionScheduled",
            KeyEvent::KeyDeletionCancelled { .. } => "KeyDeletionCancelled",
            KeyEvent::KeyDestroyed { .. } => "KeyDestroyed",
            KeyEvent::KeyReplacementSet { .. } => "KeyReplacementSet",
            KeyEvent::KeyRotationOverdue { .. } => "KeyRotationOverdue",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// What a key's usage log records: a minute's operations on one key,
/// counted in memory and flushed as one event (the hot path appends
/// nothing). Its own stream per key and minute ([`super::KeyUsageMinute`]),
/// so usage never races, lengthens or re-versions the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyUsageEvent {
    KeyUsageRecorded {
        key_id: KeyId,
        minute: DateTime<Utc>,
        usage: Vec<KeyUsage>,
    },
}

impl DomainEvent for KeyUsageEvent {
    fn event_type(&self) -> String {
        "KeyUsageRecorded".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
