use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::ids::derived_uuid;
use crate::text::{limits, optional_text, required_text, FieldProblem};
use crate::{Environment, SecretId, TenantId};

/// Versions a secret keeps unless its metadata says otherwise (Vault's default).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The most `max_versions` may be.
pub const MAX_MAX_VERSIONS: u32 = 1_000;
/// `custom_metadata` pairs per secret (Vault's limit).
pub const MAX_CUSTOM_METADATA: usize = 64;
/// The largest value (1 MiB); larger is 413.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// The longest `delete_version_after` (10 years).
pub const MAX_DELETE_VERSION_AFTER_SECS: u64 = 10 * 365 * 24 * 3600;
/// Versions one delete, undelete or destroy names.
pub const MAX_VERSIONS_PER_COMMAND: usize = 100;
/// The longest path.
const MAX_PATH: usize = 512;

/// The secret a path addresses within a tenant environment.
pub fn secret_id_for(
    tenant_id: &TenantId,
    environment: Environment,
    path: &SecretPath,
) -> SecretId {
    SecretId::from_uuid(derived_uuid(&[
        "secret",
        &tenant_id.to_string(),
        environment.as_str(),
        path.as_str(),
    ]))
}

/// A secret's path: `/`-separated segments of `A-Z a-z 0-9 . _ -`, at
/// most 512 characters, no empty segment and no `.` or `..` segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath(String);

impl SecretPath {
    pub fn parse(text: &str) -> Result<Self, FieldProblem> {
        let problem = |message: &str| FieldProblem::new("path", message);
        if text.is_empty() {
            return Err(problem("is required"));
        }
        if text.len() > MAX_PATH {
            return Err(problem("must be at most 512 characters"));
        }
        for segment in text.split('/') {
            if segment.is_empty() {
                return Err(problem(
                    "must not start or end with / or hold an empty segment (//)",
                ));
            }
            if segment == "." || segment == ".." {
                return Err(problem("must not hold a . or .. segment"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(problem(
                    "segments may hold only letters, digits and . _ -, separated by /",
                ));
            }
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SecretPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value as the edge sealed it: the id of its sealed row, the data key
/// it was sealed under, its size and its keyed fingerprint. Never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewValue {
    pub value_id: String,
    pub data_key_id: String,
    pub size: u64,
    pub fingerprint: String,
}

/// A change to a secret's metadata; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    /// Seconds; `Some(None)` (or `Some(Some(0))`) turns it off.
    pub delete_version_after: Option<Option<u64>>,
    /// Replaces every pair.
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

/// What may be asked of a secret. Time and the actor come in with the
/// command: the domain reads no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretCommand {
    /// Writes version `version`, which must be the current version + 1
    /// (the edge sealed the value for that number; a write that raced is
    /// refused with [`super::SecretError::Raced`] and sealed again). The
    /// first write creates the secret (its data key is `value.data_key_id`).
    Put {
        tenant_id: TenantId,
        environment: Environment,
        path: SecretPath,
        version: u32,
        value: NewValue,
        cas: Option<u32>,
        /// The tenant environment's default: check-and-set on every write.
        cas_required_by_default: bool,
        reason: Option<String>,
        actor: String,
        at: DateTime<Utc>,
    },
    /// Writes version `version` with the value of `from` (readable), sealed
    /// again by the edge.
    /// Check-and-set as for [`SecretCommand::Put`]: a rollback is a write.
    Rollback {
        from: u32,
        version: u32,
        value: NewValue,
        cas: Option<u32>,
        cas_required_by_default: bool,
        reason: Option<String>,
        actor: String,
        at: DateTime<Utc>,
    },
    /// Soft-deletes versions (the current one when empty).
    Delete {
        versions: Vec<u32>,
        at: DateTime<Utc>,
    },
    Undelete {
        versions: Vec<u32>,
        at: DateTime<Utc>,
    },
    Destroy {
        versions: Vec<u32>,
        at: DateTime<Utc>,
    },
    Deprecate {
        version: u32,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    SetMetadata {
        update: MetadataUpdate,
        at: DateTime<Utc>,
    },
    /// By the scheduler: soft-deletes the versions older than
    /// `delete_version_after`. Records nothing when none is due.
    ExpireVersions { at: DateTime<Utc> },
    /// Destroys every version and removes the metadata: the path is free.
    DeleteAll { at: DateTime<Utc> },
}

pub(super) fn valid_reason(
    problems: &mut Vec<FieldProblem>,
    reason: Option<&str>,
) -> Option<String> {
    optional_text("reason", reason, limits::REASON)
        .map_err(|problem| problems.push(problem))
        .ok()
        .flatten()
}

pub(super) fn valid_custom_metadata(
    problems: &mut Vec<FieldProblem>,
    pairs: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    if pairs.len() > MAX_CUSTOM_METADATA {
        problems.push(FieldProblem::new(
            "custom_metadata",
            format!("at most {MAX_CUSTOM_METADATA} pairs"),
        ));
        return BTreeMap::new();
    }
    let mut valid = BTreeMap::new();
    for (name, value) in pairs {
        let name = required_text("custom_metadata", name, limits::SECRET_METADATA_KEY);
        let value = optional_text(
            "custom_metadata",
            Some(value),
            limits::SECRET_METADATA_VALUE,
        );
        match (name, value) {
            (Ok(name), Ok(value)) => {
                valid.insert(name, value.unwrap_or_default());
            }
            (Err(problem), _) | (_, Err(problem)) => problems.push(FieldProblem::new(
                "custom_metadata",
                format!(
                    "names are 1–128 and values 0–512 characters: {}",
                    problem.message
                ),
            )),
        }
    }
    valid
}

/// Parses a duration as Vault writes one: seconds (`3600`), or numbers
/// with units `s`, `m`, `h`, `d` (`768h`, `1h30m`). `0` or `0s` is zero.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let refused = || format!("'{text}' is not a duration (seconds, or e.g. 30m, 12h, 7d, 1h30m)");
    if text.is_empty() || text.len() > 32 {
        return Err(refused());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(refused()),
        };
        let n: u64 = number.parse().map_err(|_| refused())?;
        number.clear();
        total = n
            .checked_mul(unit)
            .and_then(|part| total.checked_add(part))
            .ok_or_else(refused)?;
    }
    if !number.is_empty() {
        return Err(refused());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_slash_separated_segments_of_their_alphabet() {
        for good in ["app/db/password", "a", "team-1/svc_2/v1.2/key"] {
            assert!(SecretPath::parse(good).is_ok(), "{good} was refused");
        }
        for bad in [
            "",
            "/app",
            "app/",
            "app//db",
            "app/../db",
            "./app",
            "has space",
            "ünïcode/x",
            "a?b",
            &"a".repeat(513),
        ] {
            assert!(SecretPath::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(SecretPath::parse(&format!("{}/b", "a".repeat(510))).is_ok());
    }

    #[test]
    fn ids_are_derived_per_tenant_environment_and_path() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let path = SecretPath::parse("app/db").unwrap();
        let id = secret_id_for(&tenant, Environment::Live, &path);
        assert_eq!(id, secret_id_for(&tenant, Environment::Live, &path));
        assert_ne!(id, secret_id_for(&tenant, Environment::Test, &path));
        let other = SecretPath::parse("app/dc").unwrap();
        assert_ne!(id, secret_id_for(&tenant, Environment::Live, &other));
    }

    #[test]
    fn durations_read_as_vault_writes_them() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        for bad in ["", "h", "1w", "1.5h", "10h5", "-1", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad} was accepted");
        }
    }
}
