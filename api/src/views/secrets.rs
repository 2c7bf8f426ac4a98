//! Secrets as the API shows them: metadata and versions (never values),
//! and a value only in the answer of the read that returned it.

use std::collections::BTreeMap;

use palisade_infra::readmodel::{SecretStats, SecretWithVersions};
use palisade_projections::{SecretActivityRow, SecretRow, SecretVersionRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;
use crate::app::leakage::LeakCheck;
use crate::app::secrets::{Comparison, ReadValue, SecretDetail, SecretWritten, SecretsConfig};

/// What a write answers.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "SecretWritten")]
pub struct SecretWrittenView {
    pub path: String,
    pub version: u32,
    pub created_at: String,
    /// Versions this write destroyed (`max_versions`).
    pub destroyed_versions: Vec<u32>,
}

impl From<SecretWritten> for SecretWrittenView {
    fn from(written: SecretWritten) -> Self {
        Self {
            path: written.path,
            version: written.version,
            created_at: format_time(&written.created_at),
            destroyed_versions: written.destroyed,
        }
    }
}

/// A value on its way out: serialised from the zeroizing buffer itself
/// (never copied into a plain `String`); `Debug` shows nothing.
pub struct ExposedValue(palisade_infra::secrets::SecretValue);

impl Serialize for ExposedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Values are written as JSON strings, so they are UTF-8.
        match std::str::from_utf8(self.0.expose()) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => serializer.serialize_str(&String::from_utf8_lossy(self.0.expose())),
        }
    }
}

impl std::fmt::Debug for ExposedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A version's value, as one read answers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretValueView {
    pub path: String,
    pub version: u32,
    /// The value (the read is recorded in the audit trail).
    #[schema(value_type = String)]
    pub value: ExposedValue,
    /// `active` or `deprecated`.
    pub state: String,
    pub created_at: String,
    pub created_by: String,
}

impl From<ReadValue> for SecretValueView {
    fn from(read: ReadValue) -> Self {
        Self {
            path: read.path,
            version: read.version.version,
            value: ExposedValue(read.value),
            state: read.version.state.as_str().into(),
            created_at: format_time(&read.version.created_at),
            created_by: read.version.created_by,
        }
    }
}

/// One version in a secret's metadata.
#[derive(async_graphql::SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "SecretVersion")]
pub struct SecretVersionView {
    pub version: u32,
    /// `active`, `deprecated`, `deleted` or `destroyed`.
    pub state: String,
    pub created_at: String,
    pub created_by: String,
    /// When it was soft-deleted, or when `delete_version_after` will.
    pub deletion_time: Option<String>,
    /// Bytes of the value.
    pub size: u64,
    /// The version a rollback copied.
    pub rolled_back_from: Option<u32>,
}

impl From<&SecretVersionRow> for SecretVersionView {
    fn from(row: &SecretVersionRow) -> Self {
        Self {
            version: row.version,
            state: row.state.as_str().into(),
            created_at: format_time(&row.created_at),
            created_by: row.created_by.clone(),
            deletion_time: row.deletion_time.as_ref().map(format_time),
            size: row.size,
            rolled_back_from: row.rolled_back_from,
        }
    }
}

/// A duration as Vault shows one: seconds with `s`.
fn duration(seconds: Option<u64>) -> String {
    format!("{}s", seconds.unwrap_or(0))
}

/// A secret's metadata and versions (never values).
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretMetadataView {
    pub path: String,
    pub current_version: u32,
    /// The oldest version kept (older ones were destroyed by `max_versions`).
    pub oldest_version: u32,
    pub max_versions: u32,
    pub cas_required: bool,
    /// `0s` when off.
    pub delete_version_after: String,
    pub custom_metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
    /// An open leakage incident was reported after the current version
    /// was written (a new version clears it).
    pub leaked: bool,
    /// By version number.
    pub versions: BTreeMap<String, SecretVersionView>,
}

impl From<SecretDetail> for SecretMetadataView {
    fn from(detail: SecretDetail) -> Self {
        let mut view = Self::from(detail.found);
        view.leaked = detail.leaked;
        view
    }
}

impl From<SecretWithVersions> for SecretMetadataView {
    fn from(found: SecretWithVersions) -> Self {
        let secret = found.secret;
        Self {
            leaked: false,
            oldest_version: secret.oldest_version(),
            path: secret.path,
            current_version: secret.current_version,
            max_versions: secret.max_versions,
            cas_required: secret.cas_required,
            delete_version_after: duration(secret.delete_version_after),
            custom_metadata: secret.custom_metadata,
            created_at: format_time(&secret.created_at),
            updated_at: format_time(&secret.updated_at),
            versions: found
                .versions
                .iter()
                .map(|v| (v.version.to_string(), SecretVersionView::from(v)))
                .collect(),
        }
    }
}

/// A secret in a list.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "SecretSummary")]
pub struct SecretSummaryView {
    pub path: String,
    pub current_version: u32,
    pub oldest_version: u32,
    pub updated_at: String,
}

impl From<SecretRow> for SecretSummaryView {
    fn from(secret: SecretRow) -> Self {
        Self {
            oldest_version: secret.oldest_version(),
            path: secret.path,
            current_version: secret.current_version,
            updated_at: format_time(&secret.updated_at),
        }
    }
}

/// One side of a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparedVersionView {
    pub version: u32,
    pub created_at: String,
    /// The value's keyed fingerprint (HMAC-SHA256 under a tenant key).
    pub fingerprint: String,
}

impl From<SecretVersionRow> for ComparedVersionView {
    fn from(row: SecretVersionRow) -> Self {
        Self {
            version: row.version,
            created_at: format_time(&row.created_at),
            fingerprint: row.fingerprint,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonView {
    pub different: bool,
    pub version1: ComparedVersionView,
    pub version2: ComparedVersionView,
}

impl From<Comparison> for ComparisonView {
    fn from(comparison: Comparison) -> Self {
        Self {
            different: comparison.different,
            version1: comparison.version1.into(),
            version2: comparison.version2.into(),
        }
    }
}

/// One entry of a secret's audit.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretActivityView {
    /// `created`, `read`, `deprecated`, `deleted`, `undeleted`,
    /// `destroyed`, `rolled_back`, `metadata_updated` or `secret_deleted`.
    pub action: String,
    pub versions: Vec<u32>,
    pub actor: String,
    pub request_id: Option<String>,
    pub at: String,
}

impl From<SecretActivityRow> for SecretActivityView {
    fn from(row: SecretActivityRow) -> Self {
        Self {
            action: row.action,
            versions: row.versions,
            actor: row.actor,
            request_id: row.request_id,
            at: format_time(&row.at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretStatsView {
    pub total_secrets: i64,
    pub total_versions: i64,
    pub average_versions_per_secret: f64,
    /// Versions by state.
    pub by_state: BTreeMap<String, i64>,
}

impl From<SecretStats> for SecretStatsView {
    fn from(stats: SecretStats) -> Self {
        let average = if stats.total_secrets == 0 {
            0.0
        } else {
            super::round_score(stats.total_versions as f64 / stats.total_secrets as f64)
        };
        Self {
            total_secrets: stats.total_secrets,
            total_versions: stats.total_versions,
            average_versions_per_secret: average,
            by_state: stats
                .by_state
                .into_iter()
                .map(|(state, n)| (state.as_str().to_string(), n))
                .collect(),
        }
    }
}

/// A leak check's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeakCheckView {
    pub matched: bool,
    /// The version the candidate equals.
    pub version: Option<u32>,
    /// That version's state.
    pub state: Option<String>,
    /// The incident a match with an active version opened (or the open
    /// one it belongs to).
    pub incident_id: Option<String>,
}

impl From<LeakCheck> for LeakCheckView {
    fn from(check: LeakCheck) -> Self {
        Self {
            matched: check.matched,
            version: check.version,
            state: check.state.map(|s| s.as_str().to_string()),
            incident_id: check.incident_id,
        }
    }
}

/// One entry of an incident's timeline.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "LeakageIncidentEntry")]
pub struct IncidentEntryView {
    pub status: String,
    pub resolution: Option<String>,
    pub notes: Option<String>,
    pub by: String,
    pub at: String,
}

/// A leakage incident.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "LeakageIncident")]
pub struct IncidentView {
    #[schema(example = "lki_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub path: String,
    pub source: String,
    pub location: Option<String>,
    pub severity: String,
    pub details: Option<String>,
    /// The version a leak check matched, when a check opened it.
    pub matched_version: Option<u32>,
    /// `open`, `investigating`, `resolved` or `false_positive`.
    pub status: String,
    pub resolution: Option<String>,
    pub notes: Option<String>,
    pub reported_by: String,
    pub reported_at: String,
    pub updated_at: String,
    pub timeline: Vec<IncidentEntryView>,
}

impl From<palisade_projections::IncidentRow> for IncidentView {
    fn from(row: palisade_projections::IncidentRow) -> Self {
        Self {
            id: row.id,
            path: row.path,
            source: row.source,
            location: row.location,
            severity: row.severity.as_str().into(),
            details: row.details,
            matched_version: row.matched_version,
            status: row.status.as_str().into(),
            resolution: row.resolution,
            notes: row.notes,
            reported_by: row.reported_by,
            reported_at: format_time(&row.reported_at),
            updated_at: format_time(&row.updated_at),
            timeline: row
                .timeline
                .into_iter()
                .map(|entry| IncidentEntryView {
                    status: entry.status.as_str().into(),
                    resolution: entry.resolution,
                    notes: entry.notes,
                    by: entry.by,
                    at: format_time(&entry.at),
                })
                .collect(),
        }
    }
}

/// One `custom_metadata` pair (GraphQL has no maps).
#[derive(async_graphql::SimpleObject, Debug, Clone)]
pub struct MetadataPair {
    pub name: String,
    pub value: String,
}

/// A secret as GraphQL shows it: its metadata and versions as a list
/// (REST shows Vault's map by version number). Never a value.
#[derive(async_graphql::SimpleObject, Debug)]
#[graphql(name = "Secret")]
pub struct SecretGraph {
    pub path: String,
    pub current_version: u32,
    pub oldest_version: u32,
    pub max_versions: u32,
    pub cas_required: bool,
    /// `0s` when off.
    pub delete_version_after: String,
    pub custom_metadata: Vec<MetadataPair>,
    pub created_at: String,
    pub updated_at: String,
    pub leaked: bool,
    /// Oldest first.
    pub versions: Vec<SecretVersionView>,
}

impl From<SecretDetail> for SecretGraph {
    fn from(detail: SecretDetail) -> Self {
        let view = SecretMetadataView::from(detail);
        let mut versions: Vec<SecretVersionView> = view.versions.into_values().collect();
        versions.sort_by_key(|v| v.version);
        Self {
            path: view.path,
            current_version: view.current_version,
            oldest_version: view.oldest_version,
            max_versions: view.max_versions,
            cas_required: view.cas_required,
            delete_version_after: view.delete_version_after,
            custom_metadata: view
                .custom_metadata
                .into_iter()
                .map(|(name, value)| MetadataPair { name, value })
                .collect(),
            created_at: view.created_at,
            updated_at: view.updated_at,
            leaked: view.leaked,
            versions,
        }
    }
}

/// The secret store's defaults in the caller's environment.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "SecretsConfig")]
pub struct SecretsConfigView {
    /// Every write needs `cas`.
    pub cas_required: bool,
}

impl From<SecretsConfig> for SecretsConfigView {
    fn from(config: SecretsConfig) -> Self {
        Self {
            cas_required: config.cas_required,
        }
    }
}
