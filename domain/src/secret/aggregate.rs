use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::{valid_custom_metadata, valid_reason};
use super::{
    DestroyCause, MetadataUpdate, NewValue, SecretCommand, SecretEvent, VersionState,
    DEFAULT_MAX_VERSIONS, MAX_DELETE_VERSION_AFTER_SECS, MAX_MAX_VERSIONS, MAX_VALUE_BYTES,
    MAX_VERSIONS_PER_COMMAND,
};
use crate::text::FieldProblem;
use crate::SecretId;

/// Why a secret command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// 404 not_found: no secret at this path.
    #[error("secret not found")]
    NotFound,
    /// 422 validation_error, one problem per field.
    #[error("invalid secret: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// 409 cas_mismatch.
    #[error("check-and-set failed: the current version is {current}")]
    CasMismatch { current: u32 },
    /// 422 cas_required.
    #[error("this secret requires check-and-set: send cas with the current version ({current})")]
    CasRequired { current: u32 },
    /// Another write took the version first (or the secret was deleted and
    /// written again); seal again and decide again.
    #[error("version {latest} is the latest; the write raced another")]
    Raced { latest: u32 },
    /// 422: a version this secret never had.
    #[error("version {version} does not exist; the current version is {current}")]
    VersionUnknown { version: u32, current: u32 },
    /// 409 invalid_transition: the version's state forbids the command.
    #[error("cannot {action} version {version}: it is {state}")]
    InvalidTransition {
        action: &'static str,
        version: u32,
        state: VersionState,
    },
}

impl SecretError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        SecretError::Invalid(vec![FieldProblem::new(field, message)])
    }
}

/// One version as the aggregate decides on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct VersionRecord {
    created_at: DateTime<Utc>,
    fingerprint: String,
    deprecated: bool,
    deleted: bool,
    destroyed: bool,
}

impl VersionRecord {
    fn state(&self) -> VersionState {
        if self.destroyed {
            VersionState::Destroyed
        } else if self.deleted {
            VersionState::Deleted
        } else if self.deprecated {
            VersionState::Deprecated
        } else {
            VersionState::Active
        }
    }
}

/// The secret's decision state: None while the path is free.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    live: Option<LiveSecret>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LiveSecret {
    id: SecretId,
    data_key_id: String,
    current_version: u32,
    /// Versions up to this one were destroyed by `max_versions` and are no
    /// longer kept here (the view keeps their history).
    pruned_through: u32,
    versions: BTreeMap<u32, VersionRecord>,
    max_versions: u32,
    cas_required: bool,
    delete_version_after: Option<u64>,
    custom_metadata: BTreeMap<String, String>,
}

impl LiveSecret {
    fn state_of(&self, version: u32) -> Result<VersionState, SecretError> {
        if version == 0 || version > self.current_version {
            return Err(SecretError::VersionUnknown {
                version,
                current: self.current_version,
            });
        }
        Ok(self
            .versions
            .get(&version)
            .map_or(VersionState::Destroyed, VersionRecord::state))
    }

    /// The distinct versions named (at most [`MAX_VERSIONS_PER_COMMAND`])
    /// that this secret has had; the others are left out, as Vault does.
    fn named(&self, versions: &[u32]) -> Result<BTreeSet<u32>, SecretError> {
        if versions.len() > MAX_VERSIONS_PER_COMMAND {
            return Err(SecretError::invalid(
                "versions",
                format!("at most {MAX_VERSIONS_PER_COMMAND}"),
            ));
        }
        Ok(versions
            .iter()
            .copied()
            .filter(|&version| self.state_of(version).is_ok())
            .collect())
    }

    fn with_state(&self, named: &BTreeSet<u32>, wanted: impl Fn(VersionState) -> bool) -> Vec<u32> {
        named
            .iter()
            .copied()
            .filter(|&v| self.state_of(v).is_ok_and(&wanted))
            .collect()
    }

    /// The versions a write of `version` (or a lower `max_versions`)
    /// pushes out: those not yet pruned, up to `version - max_versions`.
    fn pruned_by(&self, version: u32, max_versions: u32) -> Vec<u32> {
        let through = version.saturating_sub(max_versions);
        (self.pruned_through + 1..=through).collect()
    }
}

fn valid_value(problems: &mut Vec<FieldProblem>, value: &NewValue) {
    if value.value_id.is_empty() || value.data_key_id.is_empty() {
        problems.push(FieldProblem::new("value", "has no sealed row"));
    }
    if value.size > MAX_VALUE_BYTES as u64 {
        problems.push(FieldProblem::new(
            "value",
            format!("must be at most {MAX_VALUE_BYTES} bytes"),
        ));
    }
    if value.fingerprint.is_empty() {
        problems.push(FieldProblem::new("value", "has no fingerprint"));
    }
}

fn destroyed(
    live: &LiveSecret,
    versions: Vec<u32>,
    cause: DestroyCause,
    at: DateTime<Utc>,
) -> Option<SecretEvent> {
    (!versions.is_empty()).then(|| SecretEvent::SecretVersionsDestroyed {
        secret_id: live.id,
        data_key_id: live.data_key_id.clone(),
        versions,
        cause,
        destroyed_at: at,
    })
}

impl Secret {
    pub fn id(&self) -> Option<SecretId> {
        self.live.as_ref().map(|live| live.id)
    }

    /// The latest version number (0 when the path is free or has none).
    pub fn current_version(&self) -> u32 {
        self.live.as_ref().map_or(0, |live| live.current_version)
    }

    /// The data key the secret's values are sealed under (None while free).
    pub fn data_key_id(&self) -> Option<&str> {
        self.live.as_ref().map(|live| live.data_key_id.as_str())
    }

    /// The state of `version`, if the secret has had it.
    pub fn version_state(&self, version: u32) -> Option<VersionState> {
        self.live
            .as_ref()
            .and_then(|live| live.state_of(version).ok())
    }

    /// When the scheduler should next soft-delete a version, if ever.
    pub fn next_expiry(&self) -> Option<DateTime<Utc>> {
        let live = self.live.as_ref()?;
        let after = Duration::seconds(i64::try_from(live.delete_version_after?).ok()?);
        live.versions
            .values()
            .filter(|record| record.state().readable())
            .map(|record| record.created_at + after)
            .min()
    }

    fn existing(&self) -> Result<&LiveSecret, SecretError> {
        self.live.as_ref().ok_or(SecretError::NotFound)
    }

    /// The events `command` produces, or why it is refused.
    pub fn decide(&self, command: SecretCommand) -> Result<Vec<SecretEvent>, SecretError> {
        if let SecretCommand::Put {
            tenant_id,
            environment,
            path,
            version,
            value,
            cas,
            cas_required_by_default,
            reason,
            actor,
            at,
        } = command
        {
            let mut problems = Vec::new();
            let reason = valid_reason(&mut problems, reason.as_deref());
            valid_value(&mut problems, &value);
            if !problems.is_empty() {
                return Err(SecretError::Invalid(problems));
            }
            let current = self.current_version();
            if cas.is_some_and(|cas| cas != current) {
                return Err(SecretError::CasMismatch { current });
            }
            let required =
                cas_required_by_default || self.live.as_ref().is_some_and(|live| live.cas_required);
            if cas.is_none() && required {
                return Err(SecretError::CasRequired { current });
            }
            let mut events = Vec::new();
            let secret_id = match &self.live {
                None => {
                    if version != 1 {
                        return Err(SecretError::Raced { latest: 0 });
                    }
                    let secret_id = super::secret_id_for(&tenant_id, environment, &path);
                    events.push(SecretEvent::SecretCreated {
                        secret_id,
                        tenant_id,
                        environment,
                        path: path.as_str().to_string(),
                        data_key_id: value.data_key_id.clone(),
                        created_at: at,
                    });
                    secret_id
                }
                Some(live) => {
                    if version != current + 1 || value.data_key_id != live.data_key_id {
                        return Err(SecretError::Raced { latest: current });
                    }
                    live.id
                }
            };
            events.push(SecretEvent::SecretVersionCreated {
                secret_id,
                version,
                value_id: value.value_id,
                size: value.size,
                fingerprint: value.fingerprint,
                reason,
                rolled_back_from: None,
                created_by: actor,
                created_at: at,
            });
            if let Some(live) = &self.live {
                let pruned = live.pruned_by(version, live.max_versions);
                events.extend(destroyed(live, pruned, DestroyCause::MaxVersions, at));
            }
            return Ok(events);
        }
        let live = self.existing()?;
        let secret_id = live.id;
        let current = live.current_version;
        Ok(match command {
            SecretCommand::Put { .. } => unreachable!("handled above"),
            SecretCommand::Rollback {
                from,
                version,
                value,
                cas,
                cas_required_by_default,
                reason,
                actor,
                at,
            } => {
                if cas.is_some_and(|cas| cas != current) {
                    return Err(SecretError::CasMismatch { current });
                }
                if cas.is_none() && (cas_required_by_default || live.cas_required) {
                    return Err(SecretError::CasRequired { current });
                }
                let state = live.state_of(from)?;
                if !state.readable() {
                    return Err(SecretError::InvalidTransition {
                        action: "roll back to",
                        version: from,
                        state,
                    });
                }
                let mut problems = Vec::new();
                let reason = valid_reason(&mut problems, reason.as_deref());
                valid_value(&mut problems, &value);
                if !problems.is_empty() {
                    return Err(SecretError::Invalid(problems));
                }
                if version != current + 1 || value.data_key_id != live.data_key_id {
                    return Err(SecretError::Raced { latest: current });
                }
                let copied = live.versions.get(&from).map(|r| r.fingerprint.as_str());
                if copied != Some(value.fingerprint.as_str()) {
                    return Err(SecretError::invalid(
                        "value",
                        "is not the value of the version rolled back to",
                    ));
                }
                let mut events = vec![SecretEvent::SecretVersionCreated {
                    secret_id,
                    version,
                    value_id: value.value_id,
                    size: value.size,
                    fingerprint: value.fingerprint,
                    reason,
                    rolled_back_from: Some(from),
                    created_by: actor,
                    created_at: at,
                }];
                let pruned = live.pruned_by(version, live.max_versions);
                events.extend(destroyed(live, pruned, DestroyCause::MaxVersions, at));
                events
            }
            SecretCommand::Delete { versions, at } => {
                let versions = if versions.is_empty() {
                    if current == 0 {
                        return Err(SecretError::invalid("versions", "the secret has none"));
                    }
                    vec![current]
                } else {
                    versions
                };
                let named = live.named(&versions)?;
                let versions = live.with_state(&named, |state| state.readable());
                if versions.is_empty() {
                    return Ok(Vec::new());
                }
                vec![SecretEvent::SecretVersionsDeleted {
                    secret_id,
                    versions,
                    automatic: false,
                    deleted_at: at,
                }]
            }
            SecretCommand::Undelete { versions, at } => {
                if versions.is_empty() {
                    return Err(SecretError::invalid("versions", "name at least one"));
                }
                let named = live.named(&versions)?;
                let versions = live.with_state(&named, |state| state == VersionState::Deleted);
                if versions.is_empty() {
                    return Ok(Vec::new());
                }
                vec![SecretEvent::SecretVersionsUndeleted {
                    secret_id,
                    versions,
                    undeleted_at: at,
                }]
            }
            SecretCommand::Destroy { versions, at } => {
                if versions.is_empty() {
                    return Err(SecretError::invalid("versions", "name at least one"));
                }
                let named = live.named(&versions)?;
                let versions = live.with_state(&named, |state| state != VersionState::Destroyed);
                destroyed(live, versions, DestroyCause::Requested, at)
                    .into_iter()
                    .collect()
            }
            SecretCommand::Deprecate {
                version,
                reason,
                at,
            } => {
                let mut problems = Vec::new();
                let reason = valid_reason(&mut problems, reason.as_deref());
                if !problems.is_empty() {
                    return Err(SecretError::Invalid(problems));
                }
                match live.state_of(version)? {
                    VersionState::Active => vec![SecretEvent::SecretVersionDeprecated {
                        secret_id,
                        version,
                        reason,
                        deprecated_at: at,
                    }],
                    VersionState::Deprecated => Vec::new(),
                    state => {
                        return Err(SecretError::InvalidTransition {
                            action: "deprecate",
                            version,
                            state,
                        })
                    }
                }
            }
            SecretCommand::SetMetadata { update, at } => metadata_events(live, update, at)?,
            SecretCommand::ExpireVersions { at } => {
                let Some(after) = live
                    .delete_version_after
                    .and_then(|secs| i64::try_from(secs).ok())
                    .map(Duration::seconds)
                else {
                    return Ok(Vec::new());
                };
                let due: Vec<u32> = live
                    .versions
                    .iter()
                    .filter(|(_, record)| {
                        record.state().readable() && record.created_at + after <= at
                    })
                    .map(|(&version, _)| version)
                    .collect();
                if due.is_empty() {
                    return Ok(Vec::new());
                }
                vec![SecretEvent::SecretVersionsDeleted {
                    secret_id,
                    versions: due,
                    automatic: true,
                    deleted_at: at,
                }]
            }
            SecretCommand::DeleteAll { at } => vec![SecretEvent::SecretDeleted {
                secret_id,
                data_key_id: live.data_key_id.clone(),
                deleted_at: at,
            }],
        })
    }
}

fn metadata_events(
    live: &LiveSecret,
    update: MetadataUpdate,
    at: DateTime<Utc>,
) -> Result<Vec<SecretEvent>, SecretError> {
    let mut problems = Vec::new();
    let max_versions = update.max_versions.unwrap_or(live.max_versions);
    if !(1..=MAX_MAX_VERSIONS).contains(&max_versions) {
        problems.push(FieldProblem::new(
            "max_versions",
            format!("must be 1 to {MAX_MAX_VERSIONS}"),
        ));
    }
    let delete_version_after = match update.delete_version_after {
        Some(after) => after.filter(|secs| *secs > 0),
        None => live.delete_version_after,
    };
    if delete_version_after.is_some_and(|secs| secs > MAX_DELETE_VERSION_AFTER_SECS) {
        problems.push(FieldProblem::new(
            "delete_version_after",
            "must be at most 10 years (87600h)",
        ));
    }
    let custom_metadata = match &update.custom_metadata {
        Some(pairs) => valid_custom_metadata(&mut problems, pairs),
        None => live.custom_metadata.clone(),
    };
    if !problems.is_empty() {
        return Err(SecretError::Invalid(problems));
    }
    let cas_required = update.cas_required.unwrap_or(live.cas_required);
    let mut events = Vec::new();
    if max_versions != live.max_versions
        || cas_required != live.cas_required
        || delete_version_after != live.delete_version_after
        || custom_metadata != live.custom_metadata
    {
        events.push(SecretEvent::SecretMetadataSet {
            secret_id: live.id,
            max_versions,
            cas_required,
            delete_version_after,
            custom_metadata,
            set_at: at,
        });
    }
    let pruned = live.pruned_by(live.current_version, max_versions);
    events.extend(destroyed(live, pruned, DestroyCause::MaxVersions, at));
    Ok(events)
}

impl Aggregate for Secret {
    const TYPE: &'static str = "Secret";
    type Command = SecretCommand;
    type Event = SecretEvent;
    type Error = SecretError;
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
        if let SecretEvent::SecretCreated {
            secret_id,
            data_key_id,
            ..
        } = event
        {
            self.live = Some(LiveSecret {
                id: secret_id,
                data_key_id,
                current_version: 0,
                pruned_through: 0,
                versions: BTreeMap::new(),
                max_versions: DEFAULT_MAX_VERSIONS,
                cas_required: false,
                delete_version_after: None,
                custom_metadata: BTreeMap::new(),
            });
            return;
        }
        if let SecretEvent::SecretDeleted { .. } = event {
            self.live = None;
            return;
        }
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let each = |records: &mut BTreeMap<u32, VersionRecord>,
                    versions: &[u32],
                    change: fn(&mut VersionRecord)| {
            for version in versions {
                if let Some(record) = records.get_mut(version) {
                    change(record);
                }
            }
        };
        match event {
            SecretEvent::SecretCreated { .. } => {}
            SecretEvent::SecretVersionCreated {
                version,
                fingerprint,
                created_at,
                ..
            } => {
                live.current_version = version;
                live.versions.insert(
                    version,
                    VersionRecord {
                        created_at,
                        fingerprint,
                        deprecated: false,
                        deleted: false,
                        destroyed: false,
                    },
                );
            }
            SecretEvent::SecretVersionsDeleted { versions, .. } => {
                each(&mut live.versions, &versions, |record| {
                    record.deleted = true
                })
            }
            SecretEvent::SecretVersionsUndeleted { versions, .. } => {
                each(&mut live.versions, &versions, |record| {
                    record.deleted = false
                })
            }
            SecretEvent::SecretVersionsDestroyed {
                versions, cause, ..
            } => match cause {
                DestroyCause::Requested => each(&mut live.versions, &versions, |record| {
                    record.destroyed = true
                }),
                DestroyCause::MaxVersions => {
                    let through = versions.iter().copied().max().unwrap_or(0);
                    live.pruned_through = live.pruned_through.max(through);
                    live.versions.retain(|&version, _| version > through);
                }
            },
            SecretEvent::SecretVersionDeprecated { version, .. } => {
                if let Some(record) = live.versions.get_mut(&version) {
                    record.deprecated = true;
                }
            }
            SecretEvent::SecretMetadataSet {
                max_versions,
                cas_required,
                delete_version_after,
                custom_metadata,
                ..
            } => {
                live.max_versions = max_versions;
                live.cas_required = cas_required;
                live.delete_version_after = delete_version_after;
                live.custom_metadata = custom_metadata;
            }
            SecretEvent::SecretDeleted { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::secret::{secret_id_for, SecretPath};
    use crate::{Environment, TenantId};

    type SecretTest = TestFramework<Secret>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn hours(n: i64) -> DateTime<Utc> {
        t0() + Duration::hours(n)
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(7))
    }

    fn path() -> SecretPath {
        SecretPath::parse("app/db/password").unwrap()
    }

    fn id() -> SecretId {
        secret_id_for(&tenant(), Environment::Live, &path())
    }

    fn value(n: u32) -> NewValue {
        NewValue {
            value_id: format!("val-{n}"),
            data_key_id: "dk-1".into(),
            size: 8,
            fingerprint: format!("fp-{n}"),
        }
    }

    fn put(version: u32, cas: Option<u32>) -> SecretCommand {
        SecretCommand::Put {
            tenant_id: tenant(),
            environment: Environment::Live,
            path: path(),
            version,
            value: value(version),
            cas,
            cas_required_by_default: false,
            reason: None,
            actor: "ci".into(),
            at: hours(i64::from(version)),
        }
    }

    fn created() -> SecretEvent {
        SecretEvent::SecretCreated {
            secret_id: id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            path: "app/db/password".into(),
            data_key_id: "dk-1".into(),
            created_at: hours(1),
        }
    }

    fn version(n: u32) -> SecretEvent {
        version_with(n, &format!("fp-{n}"), None)
    }

    fn version_with(n: u32, fingerprint: &str, rolled_back_from: Option<u32>) -> SecretEvent {
        SecretEvent::SecretVersionCreated {
            secret_id: id(),
            version: n,
            value_id: format!("val-{n}"),
            size: 8,
            fingerprint: fingerprint.into(),
            reason: None,
            rolled_back_from,
            created_by: "ci".into(),
            created_at: hours(i64::from(n)),
        }
    }

    fn with_versions(n: u32) -> Vec<SecretEvent> {
        let mut events = vec![created()];
        events.extend((1..=n).map(version));
        events
    }

    fn metadata(update: MetadataUpdate) -> SecretCommand {
        SecretCommand::SetMetadata { update, at: t0() }
    }

    fn metadata_set(max_versions: u32, delete_version_after: Option<u64>) -> SecretEvent {
        SecretEvent::SecretMetadataSet {
            secret_id: id(),
            max_versions,
            cas_required: false,
            delete_version_after,
            custom_metadata: BTreeMap::new(),
            set_at: t0(),
        }
    }

    fn pruned(versions: Vec<u32>, at: DateTime<Utc>) -> SecretEvent {
        SecretEvent::SecretVersionsDestroyed {
            secret_id: id(),
            data_key_id: "dk-1".into(),
            versions,
            cause: DestroyCause::MaxVersions,
            destroyed_at: at,
        }
    }

    #[test]
    fn given_a_free_path_when_written_then_the_secret_is_created_at_version_1() {
        SecretTest::with(())
            .given_no_previous_events()
            .when(put(1, None))
            .then_expect_events(vec![created(), version(1)]);
        SecretTest::with(())
            .given_no_previous_events()
            .when(put(1, Some(0)))
            .then_expect_events(vec![created(), version(1)]);
    }

    #[test]
    fn given_a_version_when_written_with_the_current_cas_then_the_next_version_is_made() {
        SecretTest::with(())
            .given(with_versions(1))
            .when(put(2, Some(1)))
            .then_expect_events(vec![version(2)]);
    }

    #[test]
    fn given_a_version_when_the_cas_is_stale_then_the_write_is_refused_naming_the_current() {
        SecretTest::with(())
            .given(with_versions(2))
            .when(put(3, Some(1)))
            .then_expect_error(SecretError::CasMismatch { current: 2 });
        SecretTest::with(())
            .given(with_versions(1))
            .when(put(2, Some(0)))
            .then_expect_error(SecretError::CasMismatch { current: 1 });
        SecretTest::with(())
            .given_no_previous_events()
            .when(put(1, Some(3)))
            .then_expect_error(SecretError::CasMismatch { current: 0 });
    }

    #[test]
    fn given_cas_required_when_written_without_cas_then_it_is_refused() {
        let mut events = with_versions(1);
        events.push(SecretEvent::SecretMetadataSet {
            secret_id: id(),
            max_versions: DEFAULT_MAX_VERSIONS,
            cas_required: true,
            delete_version_after: None,
            custom_metadata: BTreeMap::new(),
            set_at: t0(),
        });
        SecretTest::with(())
            .given(events)
            .when(put(2, None))
            .then_expect_error(SecretError::CasRequired { current: 1 });
        let SecretCommand::Put { .. } = put(1, None) else {
            unreachable!()
        };
        let mut by_default = put(1, None);
        if let SecretCommand::Put {
            cas_required_by_default,
            ..
        } = &mut by_default
        {
            *cas_required_by_default = true;
        }
        SecretTest::with(())
            .given_no_previous_events()
            .when(by_default)
            .then_expect_error(SecretError::CasRequired { current: 0 });
    }

    #[test]
    fn given_a_write_sealed_for_a_taken_version_then_it_is_told_to_seal_again() {
        SecretTest::with(())
            .given(with_versions(2))
            .when(put(2, None))
            .then_expect_error(SecretError::Raced { latest: 2 });
        let mut other_key = put(3, None);
        if let SecretCommand::Put { value, .. } = &mut other_key {
            value.data_key_id = "dk-old".into();
        }
        SecretTest::with(())
            .given(with_versions(2))
            .when(other_key)
            .then_expect_error(SecretError::Raced { latest: 2 });
    }

    #[test]
    fn given_max_versions_3_when_a_fourth_and_fifth_are_written_then_the_oldest_are_destroyed() {
        let mut events = with_versions(3);
        events.push(metadata_set(3, None));
        SecretTest::with(())
            .given(events.clone())
            .when(put(4, None))
            .then_expect_events(vec![version(4), pruned(vec![1], hours(4))]);
        events.push(version(4));
        events.push(pruned(vec![1], hours(4)));
        SecretTest::with(())
            .given(events.clone())
            .when(put(5, None))
            .then_expect_events(vec![version(5), pruned(vec![2], hours(5))]);
        events.push(version(5));
        events.push(pruned(vec![2], hours(5)));
        let mut secret = Secret::default();
        for event in events {
            secret.apply(event);
        }
        assert_eq!(secret.version_state(1), Some(VersionState::Destroyed));
        assert_eq!(secret.version_state(2), Some(VersionState::Destroyed));
        assert_eq!(secret.version_state(3), Some(VersionState::Active));
    }

    #[test]
    fn given_versions_when_max_versions_is_lowered_then_the_excess_is_destroyed_at_once() {
        SecretTest::with(())
            .given(with_versions(5))
            .when(metadata(MetadataUpdate {
                max_versions: Some(2),
                ..MetadataUpdate::default()
            }))
            .then_expect_events(vec![metadata_set(2, None), pruned(vec![1, 2, 3], t0())]);
    }

    #[test]
    fn given_bad_metadata_when_set_then_each_field_is_named() {
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
        SecretTest::with(())
            .given(with_versions(1))
            .when(metadata(MetadataUpdate {
                max_versions: Some(0),
                delete_version_after: Some(Some(MAX_DELETE_VERSION_AFTER_SECS + 1)),
                custom_metadata: Some(many),
                ..MetadataUpdate::default()
            }))
            .then_expect_error(SecretError::Invalid(vec![
                FieldProblem::new("max_versions", "must be 1 to 1000"),
                FieldProblem::new("delete_version_after", "must be at most 10 years (87600h)"),
                FieldProblem::new("custom_metadata", "at most 64 pairs"),
            ]));
    }

    #[test]
    fn given_versions_when_soft_deleted_then_undelete_restores_them() {
        let deleted = SecretEvent::SecretVersionsDeleted {
            secret_id: id(),
            versions: vec![2],
            automatic: false,
            deleted_at: t0(),
        };
        SecretTest::with(())
            .given(with_versions(2))
            .when(SecretCommand::Delete {
                versions: vec![],
                at: t0(),
            })
            .then_expect_events(vec![deleted.clone()]);
        let mut events = with_versions(2);
        events.push(deleted);
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::Delete {
                versions: vec![2],
                at: t0(),
            })
            .then_expect_events(vec![]);
        SecretTest::with(())
            .given(events)
            .when(SecretCommand::Undelete {
                versions: vec![1, 2],
                at: t0(),
            })
            .then_expect_events(vec![SecretEvent::SecretVersionsUndeleted {
                secret_id: id(),
                versions: vec![2],
                undeleted_at: t0(),
            }]);
    }

    #[test]
    fn given_a_destroyed_version_then_it_can_never_be_undeleted_read_or_rolled_back_to() {
        let mut events = with_versions(2);
        events.push(SecretEvent::SecretVersionsDestroyed {
            secret_id: id(),
            data_key_id: "dk-1".into(),
            versions: vec![1],
            cause: DestroyCause::Requested,
            destroyed_at: t0(),
        });
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::Undelete {
                versions: vec![1],
                at: t0(),
            })
            .then_expect_events(vec![]);
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::Destroy {
                versions: vec![1],
                at: t0(),
            })
            .then_expect_events(vec![]);
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::Rollback {
                from: 1,
                version: 3,
                value: NewValue {
                    fingerprint: "fp-1".into(),
                    ..value(3)
                },
                cas: None,
                cas_required_by_default: false,
                reason: None,
                actor: "ci".into(),
                at: t0(),
            })
            .then_expect_error(SecretError::InvalidTransition {
                action: "roll back to",
                version: 1,
                state: VersionState::Destroyed,
            });
        let mut secret = Secret::default();
        for event in events {
            secret.apply(event);
        }
        assert!(!secret.version_state(1).unwrap().readable());
    }

    #[test]
    fn given_unknown_versions_when_named_then_they_are_left_out_or_refused_alone() {
        SecretTest::with(())
            .given(with_versions(2))
            .when(SecretCommand::Destroy {
                versions: vec![3, 0],
                at: t0(),
            })
            .then_expect_events(vec![]);
        SecretTest::with(())
            .given(with_versions(2))
            .when(SecretCommand::Deprecate {
                version: 3,
                reason: None,
                at: t0(),
            })
            .then_expect_error(SecretError::VersionUnknown {
                version: 3,
                current: 2,
            });
        SecretTest::with(())
            .given(with_versions(2))
            .when(SecretCommand::Undelete {
                versions: vec![],
                at: t0(),
            })
            .then_expect_error(SecretError::invalid("versions", "name at least one"));
    }

    #[test]
    fn given_a_readable_version_when_rolled_back_to_then_a_new_version_copies_it() {
        let rollback = |fingerprint: &str| SecretCommand::Rollback {
            from: 1,
            version: 3,
            value: NewValue {
                fingerprint: fingerprint.into(),
                ..value(3)
            },
            cas: None,
            cas_required_by_default: false,
            reason: None,
            actor: "ci".into(),
            at: hours(3),
        };
        SecretTest::with(())
            .given(with_versions(2))
            .when(rollback("fp-1"))
            .then_expect_events(vec![version_with(3, "fp-1", Some(1))]);
        SecretTest::with(())
            .given(with_versions(2))
            .when(rollback("fp-2"))
            .then_expect_error(SecretError::invalid(
                "value",
                "is not the value of the version rolled back to",
            ));
    }

    #[test]
    fn given_a_version_when_deprecated_then_it_stays_readable_and_a_deleted_one_cannot_be() {
        SecretTest::with(())
            .given(with_versions(1))
            .when(SecretCommand::Deprecate {
                version: 1,
                reason: Some("rotated".into()),
                at: t0(),
            })
            .then_expect_events(vec![SecretEvent::SecretVersionDeprecated {
                secret_id: id(),
                version: 1,
                reason: Some("rotated".into()),
                deprecated_at: t0(),
            }]);
        let mut events = with_versions(1);
        events.push(SecretEvent::SecretVersionsDeleted {
            secret_id: id(),
            versions: vec![1],
            automatic: false,
            deleted_at: t0(),
        });
        SecretTest::with(())
            .given(events)
            .when(SecretCommand::Deprecate {
                version: 1,
                reason: None,
                at: t0(),
            })
            .then_expect_error(SecretError::InvalidTransition {
                action: "deprecate",
                version: 1,
                state: VersionState::Deleted,
            });
    }

    #[test]
    fn given_delete_version_after_when_the_scheduler_comes_then_due_versions_are_soft_deleted() {
        let mut events = with_versions(2);
        events.push(metadata_set(DEFAULT_MAX_VERSIONS, Some(3600)));
        // Version 1 was made at 01:00, version 2 at 02:00.
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::ExpireVersions {
                at: hours(2) + Duration::minutes(30),
            })
            .then_expect_events(vec![SecretEvent::SecretVersionsDeleted {
                secret_id: id(),
                versions: vec![1],
                automatic: true,
                deleted_at: hours(2) + Duration::minutes(30),
            }]);
        SecretTest::with(())
            .given(events.clone())
            .when(SecretCommand::ExpireVersions {
                at: hours(1) + Duration::minutes(59),
            })
            .then_expect_events(vec![]);
        let mut secret = Secret::default();
        for event in events {
            secret.apply(event);
        }
        assert_eq!(secret.next_expiry(), Some(hours(2)));
    }

    #[test]
    fn given_a_secret_when_everything_is_deleted_then_the_path_is_free_again() {
        let deleted = SecretEvent::SecretDeleted {
            secret_id: id(),
            data_key_id: "dk-1".into(),
            deleted_at: t0(),
        };
        SecretTest::with(())
            .given(with_versions(2))
            .when(SecretCommand::DeleteAll { at: t0() })
            .then_expect_events(vec![deleted.clone()]);
        let mut events = with_versions(2);
        events.push(deleted);
        SecretTest::with(())
            .given(events.clone())
            .when(put(1, Some(0)))
            .then_expect_events(vec![created(), version(1)]);
        SecretTest::with(())
            .given(events)
            .when(SecretCommand::Destroy {
                versions: vec![1],
                at: t0(),
            })
            .then_expect_error(SecretError::NotFound);
    }

    #[test]
    fn given_an_oversized_value_or_a_bad_reason_then_the_write_is_refused() {
        let mut big = put(1, None);
        if let SecretCommand::Put { value, reason, .. } = &mut big {
            value.size = MAX_VALUE_BYTES as u64 + 1;
            *reason = Some("a\u{7}b".into());
        }
        SecretTest::with(())
            .given_no_previous_events()
            .when(big)
            .then_expect_error(SecretError::Invalid(vec![
            FieldProblem::new(
                "reason",
                "must not contain control characters other than line feed, carriage return and tab",
            ),
            FieldProblem::new("value", "must be at most 1048576 bytes"),
        ]));
    }
}
