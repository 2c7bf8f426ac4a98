use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::{valid_description, valid_rotation_period, valid_tags};
use super::{
    Algorithm, KeyCommand, KeyEvent, KeyState, KeyUpdate, KeyVersion, NewKeyVersion, Operation,
    DEFAULT_PENDING_WINDOW_DAYS, PENDING_WINDOW_DAYS, ROTATION_GRACE_DAYS,
};
use crate::text::FieldProblem;
use crate::KeyId;

/// Why a key command, or an operation with a key, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// 404 not_found.
    #[error("key not found")]
    NotFound,
    /// 409 conflict: the name is taken in this tenant environment.
    #[error("a key with this name exists")]
    AlreadyExists,
    /// 422 validation_error, one problem per field.
    #[error("invalid key: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// 409 invalid_transition: the command makes no sense in this state.
    #[error("cannot {action} a key that is {state}")]
    InvalidTransition {
        action: &'static str,
        state: KeyState,
    },
    /// Another rotation added the version first; decide again.
    #[error("version {latest} is the latest; the rotation raced another")]
    RotationRaced { latest: u32 },
    /// The scheduler asked for something not due yet (a rotation before its
    /// period, a destroy before the deletion date).
    #[error("not due until {due}")]
    NotDue { due: DateTime<Utc> },
    /// 409 key_disabled.
    #[error("the key is disabled")]
    Disabled,
    /// 409 key_pending_deletion.
    #[error("the key is pending deletion")]
    PendingDeletion,
    /// 410 key_destroyed.
    #[error("the key is destroyed")]
    Destroyed,
    /// 422 key_version_too_old.
    #[error("version {version} is below the key's minimum decryption version {min}")]
    VersionTooOld { version: u32, min: u32 },
    /// 422 key_version_unknown.
    #[error("version {version} does not exist; the latest is {latest}")]
    VersionUnknown { version: u32, latest: u32 },
    /// 422 unsupported_operation.
    #[error("a {algorithm} key cannot {operation}")]
    UnsupportedOperation {
        algorithm: Algorithm,
        operation: Operation,
    },
}

impl KeyError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        KeyError::Invalid(vec![FieldProblem::new(field, message)])
    }
}

/// What an operation needs to know of a key to be allowed: the one rule,
/// used by the aggregate and by the replicas' in-memory copies alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    pub algorithm: Algorithm,
    pub state: KeyState,
    pub latest_version: u32,
    pub min_decryption_version: u32,
}

impl KeyUse {
    /// The version `operation` uses: `version` (a ciphertext's or a
    /// signature's) for operations that read old versions, else the latest.
    /// Refused when the state, the algorithm or the version forbids it.
    pub fn check(&self, operation: Operation, version: Option<u32>) -> Result<u32, KeyError> {
        match self.state {
            KeyState::Enabled => {}
            KeyState::Disabled => return Err(KeyError::Disabled),
            KeyState::PendingDeletion => return Err(KeyError::PendingDeletion),
            KeyState::Destroyed => return Err(KeyError::Destroyed),
        }
        if !self.algorithm.supports(operation) {
            return Err(KeyError::UnsupportedOperation {
                algorithm: self.algorithm,
                operation,
            });
        }
        let Some(version) = version.filter(|_| operation.reads_old_versions()) else {
            return Ok(self.latest_version);
        };
        if version > self.latest_version || version == 0 {
            return Err(KeyError::VersionUnknown {
                version,
                latest: self.latest_version,
            });
        }
        if version < self.min_decryption_version {
            return Err(KeyError::VersionTooOld {
                version,
                min: self.min_decryption_version,
            });
        }
        Ok(version)
    }
}

/// The key's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    created: Option<CreatedKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CreatedKey {
    id: KeyId,
    usage: KeyUse,
    description: Option<String>,
    tags: Vec<String>,
    rotation_period_days: Option<u32>,
    /// When the latest version was made (creation or the last rotation).
    last_rotated_at: DateTime<Utc>,
    deletion_date: Option<DateTime<Utc>>,
    /// The version the scheduler recorded as overdue a rotation.
    #[serde(default)]
    overdue_version: Option<u32>,
    #[serde(default)]
    replaced_by: Option<KeyId>,
}

impl CreatedKey {
    fn state(&self) -> KeyState {
        self.usage.state
    }

    fn refuse(&self, action: &'static str) -> KeyError {
        KeyError::InvalidTransition {
            action,
            state: self.state(),
        }
    }

    fn next_rotation_at(&self) -> Option<DateTime<Utc>> {
        self.rotation_period_days
            .map(|days| self.last_rotated_at + Duration::days(i64::from(days)))
    }

    fn rotation_due_at(&self) -> DateTime<Utc> {
        rotation_due_at(
            self.usage.algorithm,
            self.rotation_period_days,
            self.last_rotated_at,
        )
    }
}

/// When a key's latest version is due a rotation: its rotation period
/// after it was made, or without one the policy's cryptoperiod for its
/// algorithm ([`super::policy::AlgorithmPolicy::cryptoperiod_days`]).
pub fn rotation_due_at(
    algorithm: Algorithm,
    rotation_period_days: Option<u32>,
    last_rotated_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let days = rotation_period_days.unwrap_or(super::policy::policy(algorithm).cryptoperiod_days);
    last_rotated_at + Duration::days(i64::from(days))
}

impl Key {
    pub fn id(&self) -> Option<KeyId> {
        self.created.as_ref().map(|key| key.id)
    }

    /// What an operation with this key is checked against.
    pub fn usage(&self) -> Option<KeyUse> {
        self.created.as_ref().map(|key| key.usage)
    }

    /// When the scheduler should rotate it, if automatic rotation is on.
    pub fn next_rotation_at(&self) -> Option<DateTime<Utc>> {
        self.created.as_ref().and_then(CreatedKey::next_rotation_at)
    }

    fn existing(&self) -> Result<&CreatedKey, KeyError> {
        self.created.as_ref().ok_or(KeyError::NotFound)
    }

    /// The events `command` produces, or why it is refused.
    pub fn decide(&self, command: KeyCommand) -> Result<Vec<KeyEvent>, KeyError> {
        if let KeyCommand::Create { key, at } = command {
            if self.created.is_some() {
                return Err(KeyError::AlreadyExists);
            }
            let mut problems = Vec::new();
            let description = valid_description(&mut problems, key.description.as_deref());
            let tags = valid_tags(&mut problems, &key.tags);
            valid_rotation_period(&mut problems, key.rotation_period_days);
            if let Err(problem) = valid_material(key.algorithm, &key.first_version) {
                problems.push(problem);
            }
            if !problems.is_empty() {
                return Err(KeyError::Invalid(problems));
            }
            return Ok(vec![KeyEvent::KeyCreated {
                key_id: key.key_id,
                tenant_id: key.tenant_id,
                environment: key.environment,
                name: key.name.as_str().to_string(),
                algorithm: key.algorithm,
                description,
                tags,
                rotation_period_days: key.rotation_period_days,
                first_version: version(1, key.first_version, at),
                created_at: at,
            }]);
        }
        let key = self.existing()?;
        let key_id = key.id;
        let state = key.state();
        Ok(match command {
            KeyCommand::Create { .. } => unreachable!("handled above"),
            KeyCommand::Rotate {
                version: number,
                material,
                automatic,
                at,
            } => {
                if state != KeyState::Enabled {
                    return Err(key.refuse("rotate"));
                }
                let latest = key.usage.latest_version;
                if number != latest + 1 {
                    return Err(KeyError::RotationRaced { latest });
                }
                if automatic {
                    match key.next_rotation_at() {
                        Some(due) if due <= at => {}
                        Some(due) => return Err(KeyError::NotDue { due }),
                        None => return Err(key.refuse("automatically rotate")),
                    }
                }
                valid_material(key.usage.algorithm, &material)
                    .map_err(|problem| KeyError::Invalid(vec![problem]))?;
                vec![KeyEvent::KeyRotated {
                    key_id,
                    new_version: version(number, material, at),
                    automatic,
                    rotated_at: at,
                }]
            }
            KeyCommand::Update { update, at } => update_events(key, update, at)?,
            KeyCommand::MarkRotationOverdue { at } => {
                let latest = key.usage.latest_version;
                if state != KeyState::Enabled || key.overdue_version == Some(latest) {
                    return Ok(Vec::new());
                }
                let due_at = key.rotation_due_at();
                if due_at + Duration::days(ROTATION_GRACE_DAYS) > at {
                    return Err(KeyError::NotDue {
                        due: due_at + Duration::days(ROTATION_GRACE_DAYS),
                    });
                }
                vec![KeyEvent::KeyRotationOverdue {
                    key_id,
                    version: latest,
                    due_at,
                    marked_at: at,
                }]
            }
            KeyCommand::Disable { at } => match state {
                KeyState::Enabled => vec![KeyEvent::KeyDisabled {
                    key_id,
                    disabled_at: at,
                }],
                KeyState::Disabled => Vec::new(),
                _ => return Err(key.refuse("disable")),
            },
            KeyCommand::Enable { at } => match state {
                KeyState::Disabled => vec![KeyEvent::KeyEnabled {
                    key_id,
                    enabled_at: at,
                }],
                KeyState::Enabled => Vec::new(),
                _ => return Err(key.refuse("enable")),
            },
            KeyCommand::ScheduleDeletion {
                pending_window_days,
                at,
            } => {
                if !matches!(state, KeyState::Enabled | KeyState::Disabled) {
                    return Err(key.refuse("schedule the deletion of"));
                }
                let days = pending_window_days.unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
                if !PENDING_WINDOW_DAYS.contains(&days) {
                    return Err(KeyError::invalid(
                        "pending_window_days",
                        format!(
                            "must be {} to {} days",
                            PENDING_WINDOW_DAYS.start(),
                            PENDING_WINDOW_DAYS.end()
                        ),
                    ));
                }
                vec![KeyEvent::KeyDeletionScheduled {
                    key_id,
                    pending_window_days: days,
                    deletion_date: at + Duration::days(i64::from(days)),
                    scheduled_at: at,
                }]
            }
            KeyCommand::CancelDeletion { at } => {
                if state != KeyState::PendingDeletion {
                    return Err(key.refuse("cancel the deletion of"));
                }
                vec![KeyEvent::KeyDeletionCancelled {
                    key_id,
                    cancelled_at: at,
                }]
            }
            KeyCommand::Destroy { at } => {
                if state != KeyState::PendingDeletion {
                    return Err(key.refuse("destroy"));
                }
                match key.deletion_date {
                    Some(due) if due > at => return Err(KeyError::NotDue { due }),
                    _ => vec![KeyEvent::KeyDestroyed {
                        key_id,
                        destroyed_at: at,
                    }],
                }
            }
        })
    }
}

fn version(number: u32, material: NewKeyVersion, at: DateTime<Utc>) -> KeyVersion {
    KeyVersion {
        version: number,
        material_id: material.material_id,
        public_key: material.public_key,
        created_at: at,
    }
}

/// A version's material reference: a public key exactly when the algorithm
/// has one.
fn valid_material(algorithm: Algorithm, material: &NewKeyVersion) -> Result<(), FieldProblem> {
    if material.material_id.is_empty() {
        return Err(FieldProblem::new("material", "has no sealed row"));
    }
    match (algorithm.is_asymmetric(), &material.public_key) {
        (true, None) => Err(FieldProblem::new(
            "public_key",
            format!("a {algorithm} key needs its public key"),
        )),
        (false, Some(_)) => Err(FieldProblem::new(
            "public_key",
            format!("a {algorithm} key has no public key"),
        )),
        _ => Ok(()),
    }
}

fn update_events(
    key: &CreatedKey,
    update: KeyUpdate,
    at: DateTime<Utc>,
) -> Result<Vec<KeyEvent>, KeyError> {
    if !matches!(key.state(), KeyState::Enabled | KeyState::Disabled) {
        return Err(key.refuse("update"));
    }
    let mut problems = Vec::new();
    let description = match &update.description {
        Some(description) => valid_description(&mut problems, description.as_deref()),
        None => key.description.clone(),
    };
    let tags = match &update.tags {
        Some(tags) => valid_tags(&mut problems, tags),
        None => key.tags.clone(),
    };
    let rotation_period_days = match update.rotation_period_days {
        Some(days) => {
            valid_rotation_period(&mut problems, days);
            days
        }
        None => key.rotation_period_days,
    };
    let latest = key.usage.latest_version;
    if update.replaced_by == Some(Some(key.id)) {
        problems.push(FieldProblem::new(
            "replaced_by",
            "a key cannot replace itself",
        ));
    }
    if let Some(min) = update.min_decryption_version {
        if min == 0 || min > latest {
            problems.push(FieldProblem::new(
                "min_decryption_version",
                format!("must be 1 to {latest} (the latest version)"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(KeyError::Invalid(problems));
    }
    let mut events = Vec::new();
    if description != key.description
        || tags != key.tags
        || rotation_period_days != key.rotation_period_days
    {
        events.push(KeyEvent::KeyUpdated {
            key_id: key.id,
            description,
            tags,
            rotation_period_days,
            updated_at: at,
        });
    }
    if let Some(min) = update
        .min_decryption_version
        .filter(|min| *min != key.usage.min_decryption_version)
    {
        events.push(KeyEvent::MinDecryptionVersionSet {
            key_id: key.id,
            min_decryption_version: min,
            set_at: at,
        });
    }
    if let Some(replaced_by) = update
        .replaced_by
        .filter(|replaced_by| *replaced_by != key.replaced_by)
    {
        events.push(KeyEvent::KeyReplacementSet {
            key_id: key.id,
            replaced_by,
            set_at: at,
        });
    }
    Ok(events)
}

impl Aggregate for Key {
    const TYPE: &'static str = "Key";
    type Command = KeyCommand;
    type Event = KeyEvent;
    type Error = KeyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let KeyEvent::KeyCreated {
            key_id,
            algorithm,
            description,
            tags,
            rotation_period_days,
            created_at,
            ..
        } = event
        {
            self.created = Some(CreatedKey {
                id: key_id,
                usage: KeyUse {
                    algorithm,
                    state: KeyState::Enabled,
                    latest_version: 1,
                    min_decryption_version: 1,
                },
                description,
                tags,
                rotation_period_days,
                last_rotated_at: created_at,
                deletion_date: None,
                overdue_version: None,
                replaced_by: None,
            });
            return;
        }
        let Some(key) = self.created.as_mut() else {
            return;
        };
        match event {
            KeyEvent::KeyCreated { .. } => {}
            KeyEvent::KeyRotated {
                new_version,
                rotated_at,
                ..
            } => {
                key.usage.latest_version = new_version.version;
                key.last_rotated_at = rotated_at;
            }
            KeyEvent::KeyReplacementSet { replaced_by, .. } => key.replaced_by = replaced_by,
            KeyEvent::KeyRotationOverdue { version, .. } => key.overdue_version = Some(version),
            KeyEvent::KeyUpdated {
                description,
                tags,
                rotation_period_days,
                ..
            } => {
                key.description = description;
                key.tags = tags;
                key.rotation_period_days = rotation_period_days;
            }
            KeyEvent::MinDecryptionVersionSet {
                min_decryption_version,
                ..
            } => key.usage.min_decryption_version = min_decryption_version,
            KeyEvent::KeyDisabled { .. } | KeyEvent::KeyDeletionCancelled { .. } => {
                key.usage.state = KeyState::Disabled;
                key.deletion_date = None;
            }
            KeyEvent::KeyEnabled { .. } => key.usage.state = KeyState::Enabled,
            KeyEvent::KeyDeletionScheduled { deletion_date, .. } => {
                key.usage.state = KeyState::PendingDeletion;
                key.deletion_date = Some(deletion_date);
            }
            KeyEvent::KeyDestroyed { .. } => key.usage.state = KeyState::Destroyed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::key::{key_id_for, KeyName, NewKey};
    use crate::{Environment, TenantId};

    type KeyTest = TestFramework<Key>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn days(n: i64) -> DateTime<Utc> {
        t0() + Duration::days(n)
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(7))
    }

    fn id() -> KeyId {
        key_id_for(
            &tenant(),
            Environment::Live,
            &KeyName::parse("payments").unwrap(),
        )
    }

    fn material(n: u32, algorithm: Algorithm) -> NewKeyVersion {
        NewKeyVersion {
            material_id: format!("mat-{n}"),
            public_key: algorithm.is_asymmetric().then(|| format!("pub-{n}")),
        }
    }

    fn new_key(algorithm: Algorithm, rotation_period_days: Option<u32>) -> NewKey {
        NewKey {
            key_id: id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            name: KeyName::parse("payments").unwrap(),
            algorithm,
            description: Some(" card data ".into()),
            tags: vec!["PCI".into(), "pci".into(), "db".into()],
            rotation_period_days,
            first_version: material(1, algorithm),
        }
    }

    fn create(algorithm: Algorithm, rotation_period_days: Option<u32>) -> KeyCommand {
        KeyCommand::Create {
            key: Box::new(new_key(algorithm, rotation_period_days)),
            at: t0(),
        }
    }

    fn created(algorithm: Algorithm, rotation_period_days: Option<u32>) -> KeyEvent {
        KeyEvent::KeyCreated {
            key_id: id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            name: "payments".into(),
            algorithm,
            description: Some("card data".into()),
            tags: vec!["db".into(), "pci".into()],
            rotation_period_days,
            first_version: KeyVersion {
                version: 1,
                material_id: "mat-1".into(),
                public_key: algorithm.is_asymmetric().then(|| "pub-1".into()),
                created_at: t0(),
            },
            created_at: t0(),
        }
    }

    fn aes() -> KeyEvent {
        created(Algorithm::Aes256Gcm, None)
    }

    fn rotate(n: u32, at: DateTime<Utc>) -> KeyCommand {
        KeyCommand::Rotate {
            version: n,
            material: material(n, Algorithm::Aes256Gcm),
            automatic: false,
            at,
        }
    }

    fn rotated(n: u32, at: DateTime<Utc>, automatic: bool) -> KeyEvent {
        KeyEvent::KeyRotated {
            key_id: id(),
            new_version: KeyVersion {
                version: n,
                material_id: format!("mat-{n}"),
                public_key: None,
                created_at: at,
            },
            automatic,
            rotated_at: at,
        }
    }

    fn disabled() -> KeyEvent {
        KeyEvent::KeyDisabled {
            key_id: id(),
            disabled_at: days(1),
        }
    }

    fn scheduled(window: u32) -> KeyEvent {
        KeyEvent::KeyDeletionScheduled {
            key_id: id(),
            pending_window_days: window,
            deletion_date: days(1 + i64::from(window)),
            scheduled_at: days(1),
        }
    }

    fn destroyed() -> KeyEvent {
        KeyEvent::KeyDestroyed {
            key_id: id(),
            destroyed_at: days(31),
        }
    }

    fn invalid_transition(action: &'static str, state: KeyState) -> KeyError {
        KeyError::InvalidTransition { action, state }
    }

    fn fields(error: KeyError) -> Vec<String> {
        match error {
            KeyError::Invalid(problems) => problems.into_iter().map(|p| p.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    fn refused(given: Vec<KeyEvent>, command: KeyCommand) -> KeyError {
        let mut key = Key::default();
        for event in given {
            key.apply(event);
        }
        key.decide(command).expect_err("the command was accepted")
    }

    #[test]
    fn given_a_key_past_its_cryptoperiod_when_the_scheduler_looks_then_it_is_overdue_once_per_version(
    ) {
        // No rotation period: AES-256's policy cryptoperiod, two years.
        let due = t0() + Duration::days(730);
        let overdue = |version, marked_at| KeyEvent::KeyRotationOverdue {
            key_id: id(),
            version,
            due_at: due,
            marked_at,
        };
        assert_eq!(
            refused(vec![aes()], KeyCommand::MarkRotationOverdue { at: due }),
            KeyError::NotDue {
                due: due + Duration::days(1)
            }
        );
        let late = due + Duration::days(1);
        KeyTest::with(())
            .given(vec![aes()])
            .when(KeyCommand::MarkRotationOverdue { at: late })
            .then_expect_events(vec![overdue(1, late)]);
        // Already recorded for version 1: nothing more.
        KeyTest::with(())
            .given(vec![aes(), overdue(1, late)])
            .when(KeyCommand::MarkRotationOverdue { at: late })
            .then_expect_events(Vec::new());
        // A disabled key is not in use: nothing to record.
        KeyTest::with(())
            .given(vec![aes(), disabled()])
            .when(KeyCommand::MarkRotationOverdue { at: late })
            .then_expect_events(Vec::new());
        // A rotation starts a new period.
        assert!(matches!(
            refused(
                vec![aes(), overdue(1, late), rotated(2, late, false)],
                KeyCommand::MarkRotationOverdue { at: late }
            ),
            KeyError::NotDue { .. }
        ));
        // A rotation period of its own wins over the policy's.
        let period = t0() + Duration::days(91);
        KeyTest::with(())
            .given(vec![created(Algorithm::Aes256Gcm, Some(90))])
            .when(KeyCommand::MarkRotationOverdue { at: period })
            .then_expect_events(vec![KeyEvent::KeyRotationOverdue {
                key_id: id(),
                version: 1,
                due_at: t0() + Duration::days(90),
                marked_at: period,
            }]);
    }

    #[test]
    fn given_a_key_when_a_replacement_is_named_then_it_is_linked_never_to_itself() {
        let other = KeyId::from_uuid(Uuid::from_u128(99));
        let replace = |replaced_by| KeyCommand::Update {
            update: KeyUpdate {
                replaced_by: Some(replaced_by),
                ..KeyUpdate::default()
            },
            at: days(1),
        };
        let linked = KeyEvent::KeyReplacementSet {
            key_id: id(),
            replaced_by: Some(other),
            set_at: days(1),
        };
        KeyTest::with(())
            .given(vec![aes()])
            .when(replace(Some(other)))
            .then_expect_events(vec![linked.clone()]);
        KeyTest::with(())
            .given(vec![aes(), linked.clone()])
            .when(replace(Some(other)))
            .then_expect_events(Vec::new());
        KeyTest::with(())
            .given(vec![aes(), linked])
            .when(replace(None))
            .then_expect_events(vec![KeyEvent::KeyReplacementSet {
                key_id: id(),
                replaced_by: None,
                set_at: days(1),
            }]);
        assert_eq!(
            fields(refused(vec![aes()], replace(Some(id())))),
            vec!["replaced_by"]
        );
    }

    #[test]
    fn given_nothing_when_a_key_is_created_then_it_is_enabled_at_version_one() {
        KeyTest::with(())
            .given_no_previous_events()
            .when(create(Algorithm::Aes256Gcm, None))
            .then_expect_events(vec![aes()]);
        KeyTest::with(())
            .given_no_previous_events()
            .when(create(Algorithm::MlDsa65, Some(365)))
            .then_expect_events(vec![created(Algorithm::MlDsa65, Some(365))]);
    }

    #[test]
    fn given_a_key_when_one_is_created_with_its_name_then_it_is_refused() {
        KeyTest::with(())
            .given(vec![aes()])
            .when(create(Algorithm::Aes256Gcm, None))
            .then_expect_error(KeyError::AlreadyExists);
    }

    #[test]
    fn given_nothing_when_a_key_breaks_the_rules_then_every_bad_field_is_named() {
        let mut key = new_key(Algorithm::Ed25519, Some(89));
        key.description = Some("bad\u{7}".into());
        key.tags = vec![String::new()];
        key.first_version.public_key = None;
        let error = refused(
            Vec::new(),
            KeyCommand::Create {
                key: Box::new(key),
                at: t0(),
            },
        );
        assert_eq!(
            fields(error),
            vec![
                "description",
                "tags[0]",
                "rotation_period_days",
                "public_key"
            ]
        );
        let mut symmetric = new_key(Algorithm::HmacSha256, Some(2561));
        symmetric.first_version.public_key = Some("pub".into());
        symmetric.tags = vec!["t".into(); MAX_TAGS_PLUS_ONE];
        let error = refused(
            Vec::new(),
            KeyCommand::Create {
                key: Box::new(symmetric),
                at: t0(),
            },
        );
        assert_eq!(
            fields(error),
            vec!["tags", "rotation_period_days", "public_key"]
        );
    }

    const MAX_TAGS_PLUS_ONE: usize = crate::key::MAX_KEY_TAGS + 1;

    #[test]
    fn given_nothing_when_any_other_command_arrives_then_the_key_is_not_found() {
        for command in [
            rotate(2, days(1)),
            KeyCommand::Disable { at: days(1) },
            KeyCommand::Destroy { at: days(1) },
        ] {
            assert_eq!(refused(Vec::new(), command), KeyError::NotFound);
        }
    }

    #[test]
    fn given_an_enabled_key_when_it_is_rotated_then_the_next_version_is_added() {
        KeyTest::with(())
            .given(vec![aes(), rotated(2, days(1), false)])
            .when(rotate(3, days(2)))
            .then_expect_events(vec![rotated(3, days(2), false)]);
    }

    #[test]
    fn given_a_rotation_when_another_names_the_same_version_then_it_raced() {
        KeyTest::with(())
            .given(vec![aes(), rotated(2, days(1), false)])
            .when(rotate(2, days(2)))
            .then_expect_error(KeyError::RotationRaced { latest: 2 });
        KeyTest::with(())
            .given(vec![aes()])
            .when(rotate(4, days(2)))
            .then_expect_error(KeyError::RotationRaced { latest: 1 });
    }

    #[test]
    fn given_a_disabled_or_deleted_key_when_it_is_rotated_then_it_is_refused() {
        assert_eq!(
            refused(vec![aes(), disabled()], rotate(2, days(2))),
            invalid_transition("rotate", KeyState::Disabled)
        );
        assert_eq!(
            refused(vec![aes(), scheduled(30)], rotate(2, days(2))),
            invalid_transition("rotate", KeyState::PendingDeletion)
        );
        assert_eq!(
            refused(vec![aes(), scheduled(30), destroyed()], rotate(2, days(40))),
            invalid_transition("rotate", KeyState::Destroyed)
        );
    }

    #[test]
    fn given_a_rotation_period_when_the_scheduler_rotates_then_only_a_due_key_rotates() {
        let automatic = |at| KeyCommand::Rotate {
            version: 2,
            material: material(2, Algorithm::Aes256Gcm),
            automatic: true,
            at,
        };
        KeyTest::with(())
            .given(vec![created(Algorithm::Aes256Gcm, Some(90))])
            .when(automatic(days(90)))
            .then_expect_events(vec![rotated(2, days(90), true)]);
        KeyTest::with(())
            .given(vec![created(Algorithm::Aes256Gcm, Some(90))])
            .when(automatic(days(89)))
            .then_expect_error(KeyError::NotDue { due: days(90) });
        // The period counts from the latest version.
        KeyTest::with(())
            .given(vec![
                created(Algorithm::Aes256Gcm, Some(90)),
                rotated(2, days(50), false),
            ])
            .when(KeyCommand::Rotate {
                version: 3,
                material: material(3, Algorithm::Aes256Gcm),
                automatic: true,
                at: days(100),
            })
            .then_expect_error(KeyError::NotDue { due: days(140) });
        KeyTest::with(())
            .given(vec![aes()])
            .when(automatic(days(1000)))
            .then_expect_error(invalid_transition(
                "automatically rotate",
                KeyState::Enabled,
            ));
    }

    #[test]
    fn given_an_asymmetric_key_when_a_rotation_lacks_its_public_key_then_it_is_refused() {
        let error = refused(
            vec![created(Algorithm::EcdsaP256, None)],
            KeyCommand::Rotate {
                version: 2,
                material: material(2, Algorithm::Aes256Gcm),
                automatic: false,
                at: days(1),
            },
        );
        assert_eq!(fields(error), vec!["public_key"]);
    }

    #[test]
    fn given_a_key_when_it_is_updated_then_only_changes_are_recorded() {
        KeyTest::with(())
            .given(vec![aes()])
            .when(KeyCommand::Update {
                update: KeyUpdate {
                    description: Some(Some("card data".into())),
                    tags: Some(vec!["pci".into(), "DB".into()]),
                    ..KeyUpdate::default()
                },
                at: days(1),
            })
            .then_expect_events(Vec::new());
        KeyTest::with(())
            .given(vec![aes(), rotated(2, days(1), false)])
            .when(KeyCommand::Update {
                update: KeyUpdate {
                    description: Some(None),
                    rotation_period_days: Some(Some(180)),
                    min_decryption_version: Some(2),
                    ..KeyUpdate::default()
                },
                at: days(2),
            })
            .then_expect_events(vec![
                KeyEvent::KeyUpdated {
                    key_id: id(),
                    description: None,
                    tags: vec!["db".into(), "pci".into()],
                    rotation_period_days: Some(180),
                    updated_at: days(2),
                },
                KeyEvent::MinDecryptionVersionSet {
                    key_id: id(),
                    min_decryption_version: 2,
                    set_at: days(2),
                },
            ]);
    }

    #[test]
    fn given_a_key_when_the_minimum_version_is_out_of_range_then_it_is_refused() {
        for min in [0, 3] {
            let error = refused(
                vec![aes(), rotated(2, days(1), false)],
                KeyCommand::Update {
                    update: KeyUpdate {
                        min_decryption_version: Some(min),
                        ..KeyUpdate::default()
                    },
                    at: days(2),
                },
            );
            assert_eq!(fields(error), vec!["min_decryption_version"]);
        }
        assert_eq!(
            refused(
                vec![aes(), scheduled(7)],
                KeyCommand::Update {
                    update: KeyUpdate::default(),
                    at: days(2)
                }
            ),
            invalid_transition("update", KeyState::PendingDeletion)
        );
    }

    #[test]
    fn given_an_enabled_key_when_it_is_disabled_and_enabled_then_each_is_recorded_once() {
        KeyTest::with(())
            .given(vec![aes()])
            .when(KeyCommand::Disable { at: days(1) })
            .then_expect_events(vec![disabled()]);
        KeyTest::with(())
            .given(vec![aes(), disabled()])
            .when(KeyCommand::Disable { at: days(2) })
            .then_expect_events(Vec::new());
        KeyTest::with(())
            .given(vec![aes(), disabled()])
            .when(KeyCommand::Enable { at: days(2) })
            .then_expect_events(vec![KeyEvent::KeyEnabled {
                key_id: id(),
                enabled_at: days(2),
            }]);
        KeyTest::with(())
            .given(vec![aes()])
            .when(KeyCommand::Enable { at: days(2) })
            .then_expect_events(Vec::new());
    }

    #[test]
    fn given_a_key_pending_deletion_when_it_is_enabled_or_disabled_then_it_is_refused() {
        assert_eq!(
            refused(
                vec![aes(), scheduled(30)],
                KeyCommand::Enable { at: days(2) }
            ),
            invalid_transition("enable", KeyState::PendingDeletion)
        );
        assert_eq!(
            refused(
                vec![aes(), scheduled(30)],
                KeyCommand::Disable { at: days(2) }
            ),
            invalid_transition("disable", KeyState::PendingDeletion)
        );
    }

    #[test]
    fn given_a_key_when_its_deletion_is_scheduled_then_the_window_defaults_to_thirty_days() {
        KeyTest::with(())
            .given(vec![aes()])
            .when(KeyCommand::ScheduleDeletion {
                pending_window_days: None,
                at: days(1),
            })
            .then_expect_events(vec![scheduled(30)]);
        KeyTest::with(())
            .given(vec![aes(), disabled()])
            .when(KeyCommand::ScheduleDeletion {
                pending_window_days: Some(7),
                at: days(1),
            })
            .then_expect_events(vec![scheduled(7)]);
    }

    #[test]
    fn given_a_key_when_the_window_is_out_of_range_or_already_pending_then_it_is_refused() {
        for window in [6, 31] {
            let error = refused(
                vec![aes()],
                KeyCommand::ScheduleDeletion {
                    pending_window_days: Some(window),
                    at: days(1),
                },
            );
            assert_eq!(fields(error), vec!["pending_window_days"]);
        }
        assert_eq!(
            refused(
                vec![aes(), scheduled(30)],
                KeyCommand::ScheduleDeletion {
                    pending_window_days: None,
                    at: days(2)
                }
            ),
            invalid_transition("schedule the deletion of", KeyState::PendingDeletion)
        );
    }

    #[test]
    fn given_a_key_pending_deletion_when_it_is_cancelled_then_it_is_disabled() {
        let cancelled = KeyEvent::KeyDeletionCancelled {
            key_id: id(),
            cancelled_at: days(2),
        };
        KeyTest::with(())
            .given(vec![aes(), scheduled(30)])
            .when(KeyCommand::CancelDeletion { at: days(2) })
            .then_expect_events(vec![cancelled.clone()]);
        let mut key = Key::default();
        for event in [aes(), scheduled(30), cancelled] {
            key.apply(event);
        }
        assert_eq!(key.usage().unwrap().state, KeyState::Disabled);
        assert_eq!(
            refused(vec![aes()], KeyCommand::CancelDeletion { at: days(2) }),
            invalid_transition("cancel the deletion of", KeyState::Enabled)
        );
    }

    #[test]
    fn given_a_key_pending_deletion_when_the_window_ends_then_it_is_destroyed() {
        KeyTest::with(())
            .given(vec![aes(), scheduled(30)])
            .when(KeyCommand::Destroy { at: days(31) })
            .then_expect_events(vec![destroyed()]);
        KeyTest::with(())
            .given(vec![aes(), scheduled(30)])
            .when(KeyCommand::Destroy { at: days(30) })
            .then_expect_error(KeyError::NotDue { due: days(31) });
        assert_eq!(
            refused(vec![aes()], KeyCommand::Destroy { at: days(31) }),
            invalid_transition("destroy", KeyState::Enabled)
        );
    }

    #[test]
    fn given_a_destroyed_key_when_anything_arrives_then_it_is_refused() {
        let given = || vec![aes(), scheduled(30), destroyed()];
        for (command, action) in [
            (KeyCommand::Enable { at: days(40) }, "enable"),
            (KeyCommand::Disable { at: days(40) }, "disable"),
            (
                KeyCommand::CancelDeletion { at: days(40) },
                "cancel the deletion of",
            ),
            (KeyCommand::Destroy { at: days(40) }, "destroy"),
            (
                KeyCommand::ScheduleDeletion {
                    pending_window_days: None,
                    at: days(40),
                },
                "schedule the deletion of",
            ),
        ] {
            assert_eq!(
                refused(given(), command),
                invalid_transition(action, KeyState::Destroyed)
            );
        }
    }

    #[test]
    fn given_each_state_when_an_operation_is_checked_then_only_an_enabled_key_works() {
        let mut usage = KeyUse {
            algorithm: Algorithm::Aes256Gcm,
            state: KeyState::Enabled,
            latest_version: 3,
            min_decryption_version: 2,
        };
        assert_eq!(usage.check(Operation::Encrypt, None), Ok(3));
        // Encryption always uses the latest version, whatever is named.
        assert_eq!(usage.check(Operation::Encrypt, Some(1)), Ok(3));
        assert_eq!(usage.check(Operation::Decrypt, Some(2)), Ok(2));
        assert_eq!(
            usage.check(Operation::Decrypt, Some(1)),
            Err(KeyError::VersionTooOld { version: 1, min: 2 })
        );
        assert_eq!(
            usage.check(Operation::Decrypt, Some(4)),
            Err(KeyError::VersionUnknown {
                version: 4,
                latest: 3
            })
        );
        assert_eq!(
            usage.check(Operation::Sign, None),
            Err(KeyError::UnsupportedOperation {
                algorithm: Algorithm::Aes256Gcm,
                operation: Operation::Sign
            })
        );
        for (state, error) in [
            (KeyState::Disabled, KeyError::Disabled),
            (KeyState::PendingDeletion, KeyError::PendingDeletion),
            (KeyState::Destroyed, KeyError::Destroyed),
        ] {
            usage.state = state;
            assert_eq!(usage.check(Operation::Decrypt, Some(3)), Err(error));
        }
    }
}
