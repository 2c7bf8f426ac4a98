//! The Secret aggregate: one path of the secret store and its versions,
//! with Vault KV v2 semantics (check-and-set, soft delete and undelete,
//! destroy, `max_versions`, `delete_version_after`) and two states of
//! QNSP's (`deprecated` versions, rollback).
//!
//! Events never carry a value: only version numbers, states, sizes, actors
//! and a keyed fingerprint of each value (so that two versions can be
//! compared and a leaked candidate checked without the value). Values are
//! sealed in their own table, named from the events by a value id, so that
//! destroying a version really destroys it (`docs/secrets.md`).
//!
//! A secret's id is derived from (tenant, environment, path), as a key's is
//! from its name: paths are unique without a lookup, and concurrent first
//! writes to one path race on one aggregate.
//!
//! Leaks of a secret are their own aggregate ([`LeakageIncident`]).

mod aggregate;
mod commands;
mod events;
mod incident;
mod read;

pub use aggregate::{Secret, SecretError};
pub use commands::{
    parse_duration, secret_id_for, MetadataUpdate, NewValue, SecretCommand, SecretPath,
    DEFAULT_MAX_VERSIONS, MAX_CUSTOM_METADATA, MAX_DELETE_VERSION_AFTER_SECS, MAX_MAX_VERSIONS,
    MAX_VALUE_BYTES, MAX_VERSIONS_PER_COMMAND,
};
pub use events::{DestroyCause, SecretEvent, SecretReadEvent};
pub use incident::{
    IncidentCommand, IncidentError, IncidentEvent, IncidentStatus, LeakageIncident, NewIncident,
    Severity,
};
pub use read::{RecordRead, SecretRead, SecretReadError};

use std::fmt;
use std::str::FromStr;

/// Every event type of the Secret and LeakageIncident aggregates (the
/// timeline shows them only to callers with `secrets:read`).
pub const EVENT_TYPES: [&str; 10] = [
    "SecretCreated",
    "SecretVersionCreated",
    "SecretVersionsDeleted",
    "SecretVersionsUndeleted",
    "SecretVersionsDestroyed",
    "SecretVersionDeprecated",
    "SecretMetadataSet",
    "SecretDeleted",
    "LeakageIncidentReported",
    "LeakageIncidentUpdated",
];

use serde::{Deserialize, Serialize};

/// A version's state. A version is `active` when written; `deprecated`
/// is still readable but flagged; `deleted` is a soft delete that
/// `undelete` reverses; `destroyed` is permanent (its value is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    Active,
    Deprecated,
    Deleted,
    Destroyed,
}

impl VersionState {
    pub const ALL: [VersionState; 4] = [
        VersionState::Active,
        VersionState::Deprecated,
        VersionState::Deleted,
        VersionState::Destroyed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            VersionState::Active => "active",
            VersionState::Deprecated => "deprecated",
            VersionState::Deleted => "deleted",
            VersionState::Destroyed => "destroyed",
        }
    }

    /// Whether the version's value may be read.
    pub fn readable(&self) -> bool {
        matches!(self, VersionState::Active | VersionState::Deprecated)
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for VersionState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("unknown version state '{s}'; expected active, deprecated, deleted or destroyed")
            })
    }
}
