use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Environment, SecretId, TenantId};

/// Why versions were destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestroyCause {
    /// Someone asked for it.
    Requested,
    /// A write (or a lower `max_versions`) pushed them past `max_versions`.
    MaxVersions,
}

/// What happened to a secret. Past tense, versioned, never rewritten; no
/// event carries a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SecretEvent {
    /// The first write to a free path (again after a [`SecretEvent::SecretDeleted`]).
    SecretCreated {
        secret_id: SecretId,
        tenant_id: TenantId,
        environment: Environment,
        path: String,
        /// The row of the data key its values are sealed under.
        data_key_id: String,
        created_at: DateTime<Utc>,
    },
    SecretVersionCreated {
        secret_id: SecretId,
        version: u32,
        /// Names the version's sealed row.
        value_id: String,
        /// Bytes of the value.
        size: u64,
        /// HMAC-SHA256 of the value under the tenant's fingerprint key.
        fingerprint: String,
        reason: Option<String>,
        /// Set by a rollback: the version whose value this one copies.
        rolled_back_from: Option<u32>,
        created_by: String,
        created_at: DateTime<Utc>,
    },
    /// Soft deletes; `automatic` when `delete_version_after` passed.
    SecretVersionsDeleted {
        secret_id: SecretId,
        versions: Vec<u32>,
        automatic: bool,
        deleted_at: DateTime<Utc>,
    },
    SecretVersionsUndeleted {
        secret_id: SecretId,
        versions: Vec<u32>,
        undeleted_at: DateTime<Utc>,
    },
    /// The versions' values are gone for good.
    SecretVersionsDestroyed {
        secret_id: SecretId,
        /// The data key of the generation these versions belong to, whose
        /// rows are deleted (never a later generation's).
        data_key_id: String,
        versions: Vec<u32>,
        cause: DestroyCause,
        destroyed_at: DateTime<Utc>,
    },
    SecretVersionDeprecated {
        secret_id: SecretId,
        version: u32,
        reason: Option<String>,
        deprecated_at: DateTime<Utc>,
    },
    /// The metadata as it is now (every field).
    SecretMetadataSet {
        secret_id: SecretId,
        max_versions: u32,
        cas_required: bool,
        /// Seconds after which a version is soft-deleted; None: never.
        delete_version_after: Option<u64>,
        custom_metadata: BTreeMap<String, String>,
        set_at: DateTime<Utc>,
    },
    /// Every version destroyed, the data key and the metadata removed.
    SecretDeleted {
        secret_id: SecretId,
        /// The data key whose row goes with it.
        data_key_id: String,
        deleted_at: DateTime<Utc>,
    },
}

impl SecretEvent {
    pub fn secret_id(&self) -> SecretId {
        match self {
            SecretEvent::SecretCreated { secret_id, .. }
            | SecretEvent::SecretVersionCreated { secret_id, .. }
            | SecretEvent::SecretVersionsDeleted { secret_id, .. }
            | SecretEvent::SecretVersionsUndeleted { secret_id, .. }
            | SecretEvent::SecretVersionsDestroyed { secret_id, .. }
            | SecretEvent::SecretVersionDeprecated { secret_id, .. }
            | SecretEvent::SecretMetadataSet { secret_id, .. }
            | SecretEvent::SecretDeleted { secret_id, .. } => *secret_id,
        }
    }
}

impl DomainEvent for SecretEvent {
    fn event_type(&self) -> String {
        match self {
            SecretEvent::SecretCreated { .. } => "SecretCreated",
            SecretEvent::SecretVersionCreated { .. } => "SecretVersionCreated",
            SecretEvent::SecretVersionsDeleted { .. } => "SecretVersionsDeleted",
            SecretEvent::SecretVersionsUndeleted { .. } => "SecretVersionsUndeleted",
            SecretEvent::SecretVersionsDestroyed { .. } => "SecretVersionsDestroyed",
            SecretEvent::SecretVersionDeprecated { .. } => "SecretVersionDeprecated",
            SecretEvent::SecretMetadataSet { .. } => "SecretMetadataSet",
            SecretEvent::SecretDeleted { .. } => "SecretDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A value read, recorded before the value is answered. Its own aggregate
/// per read (`SecretRead`, named by the secret and the request), so that
/// reads never race each other or the secret's writes, and a retried read
/// is recorded once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SecretReadEvent {
    SecretRead {
        secret_id: SecretId,
        tenant_id: TenantId,
        environment: Environment,
        path: String,
        version: u32,
        actor: String,
        request_id: String,
        read_at: DateTime<Utc>,
    },
}

impl DomainEvent for SecretReadEvent {
    fn event_type(&self) -> String {
        "SecretRead".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
