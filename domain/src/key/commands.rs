use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};

use super::Algorithm;
use crate::ids::derived_uuid;
use crate::text::{limits, optional_text, required_text, FieldProblem, MAX_LIST_ITEMS};
use crate::{Environment, KeyId, TenantId};

/// Days between automatic rotations, when set (AWS KMS's range).
pub const ROTATION_PERIOD_DAYS: RangeInclusive<u32> = 90..=2560;
/// How long after a rotation falls due the scheduler waits before it
/// records the key as overdue (its own rotation job runs first).
pub const ROTATION_GRACE_DAYS: i64 = 1;
/// Days a scheduled deletion waits (AWS KMS's range and default).
pub const PENDING_WINDOW_DAYS: RangeInclusive<u32> = 7..=30;
pub const DEFAULT_PENDING_WINDOW_DAYS: u32 = 30;
/// Tags per key.
pub const MAX_KEY_TAGS: usize = MAX_LIST_ITEMS;

/// The key a name addresses within a tenant environment.
pub fn key_id_for(tenant_id: &TenantId, environment: Environment, name: &KeyName) -> KeyId {
    KeyId::from_uuid(derived_uuid(&[
        "key",
        &tenant_id.to_string(),
        environment.as_str(),
        name.as_str(),
    ]))
}

/// A key's name: 1–128 of `A-Z a-z 0-9 . _ -` (one path segment), and
/// not something that reads as a key id (`{id}` in a path takes either).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(text: &str) -> Result<Self, FieldProblem> {
        let name = required_text("name", text, limits::KEY_NAME)?;
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(FieldProblem::new(
                "name",
                "may hold only letters, digits and . _ -",
            ));
        }
        if KeyId::parse(&name).is_ok() {
            return Err(FieldProblem::new("name", "must not look like a key id"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A version's material as the edge generated and sealed it: its public
/// half (if any) and the id of its sealed row. Never the secret half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKeyVersion {
    pub material_id: String,
    pub public_key: Option<String>,
}

/// A key to create, as the edge parsed it (the name already checked: the
/// id is derived from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub key_id: KeyId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub name: KeyName,
    pub algorithm: Algorithm,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub rotation_period_days: Option<u32>,
    pub first_version: NewKeyVersion,
}

/// A change to a key's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUpdate {
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// `Some(None)` turns automatic rotation off.
    pub rotation_period_days: Option<Option<u32>>,
    pub min_decryption_version: Option<u32>,
    /// `Some(None)` removes the link to a replacement key.
    pub replaced_by: Option<Option<KeyId>>,
}

/// What may be asked of a key. Time comes in with the command (`at`): the
/// domain reads no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCommand {
    Create {
        key: Box<NewKey>,
        at: DateTime<Utc>,
    },
    /// Adds version `version`, which must be the latest + 1 (the edge sealed
    /// its material for that number; a rotation that raced is refused and
    /// tried again).
    Rotate {
        version: u32,
        material: NewKeyVersion,
        /// By the scheduler: refused unless the rotation period has elapsed.
        automatic: bool,
        at: DateTime<Utc>,
    },
    Update {
        update: KeyUpdate,
        at: DateTime<Utc>,
    },
    Disable {
        at: DateTime<Utc>,
    },
    Enable {
        at: DateTime<Utc>,
    },
    /// From the scheduler: records that the latest version is overdue a
    /// rotation. Records nothing when already recorded for this version,
    /// or when the key is not enabled; refused before it is due.
    MarkRotationOverdue {
        at: DateTime<Utc>,
    },
    ScheduleDeletion {
        pending_window_days: Option<u32>,
        at: DateTime<Utc>,
    },
    CancelDeletion {
        at: DateTime<Utc>,
    },
    /// By the scheduler, once the deletion date has come.
    Destroy {
        at: DateTime<Utc>,
    },
}

/// The rules for a key's descriptive settings, shared by create and update.
pub(super) fn valid_description(
    problems: &mut Vec<FieldProblem>,
    description: Option<&str>,
) -> Option<String> {
    match optional_text("description", description, limits::KEY_DESCRIPTION) {
        Ok(description) => description,
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

pub(super) fn valid_tags(problems: &mut Vec<FieldProblem>, tags: &[String]) -> Vec<String> {
    if tags.len() > MAX_KEY_TAGS {
        problems.push(FieldProblem::new("tags", format!("at most {MAX_KEY_TAGS}")));
    }
    let mut valid: Vec<String> = tags
        .iter()
        .enumerate()
        .filter_map(
            |(i, tag)| match required_text(&format!("tags[{i}]"), tag, limits::TAG) {
                Ok(tag) => Some(tag.to_lowercase()),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
        )
        .collect();
    valid.sort();
    valid.dedup();
    valid
}

pub(super) fn valid_rotation_period(problems: &mut Vec<FieldProblem>, days: Option<u32>) {
    if days.is_some_and(|days| !ROTATION_PERIOD_DAYS.contains(&days)) {
        problems.push(FieldProblem::new(
            "rotation_period_days",
            format!(
                "must be {} to {} days, or null for no automatic rotation",
                ROTATION_PERIOD_DAYS.start(),
                ROTATION_PERIOD_DAYS.end()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_to_their_alphabet_and_never_read_as_ids() {
        assert!(KeyName::parse("payments.db-key_1").is_ok());
        for bad in [
            "",
            "has space",
            "has/slash",
            "ünïcode",
            "key_0123456789abcdef0123456789abcdef",
            &"a".repeat(129),
        ] {
            assert!(KeyName::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn ids_are_derived_per_tenant_environment_and_name() {
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let other = TenantId::from_uuid(uuid::Uuid::from_u128(2));
        let name = KeyName::parse("k").unwrap();
        let id = key_id_for(&tenant, Environment::Live, &name);
        assert_eq!(id, key_id_for(&tenant, Environment::Live, &name));
        assert_ne!(id, key_id_for(&tenant, Environment::Test, &name));
        assert_ne!(id, key_id_for(&other, Environment::Live, &name));
    }
}
