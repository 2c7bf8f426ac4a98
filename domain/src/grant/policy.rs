//! The AccessPolicy aggregate: which resource types it covers, how long a
//! grant may last, how many approvals it needs and from whom, how long a
//! request may wait, and when a request approves itself.

use chrono::{DateTime, FixedOffset, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::AccessError;
use crate::text::{limits, required_text, FieldProblem, MAX_LIST_ITEMS};
use crate::{Environment, PolicyId, Scope, TenantId};

/// The longest grant (14 days).
pub const MAX_DURATION_MINUTES: u32 = 14 * 24 * 60;
/// The most approvals a policy may require.
pub const MAX_APPROVALS: u32 = 10;
/// How long a pending request lives unless the policy says otherwise.
pub const DEFAULT_REQUEST_TTL_MINUTES: u32 = 24 * 60;
/// The longest a request may wait (7 days).
pub const MAX_REQUEST_TTL_MINUTES: u32 = 7 * 24 * 60;

/// Hours of the day in a fixed UTC offset (`start` inclusive, `end`
/// exclusive; a window may wrap midnight: 22:00–06:00; `start` = `end` is
/// the whole day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
    /// `UTC`, or an offset such as `+02:00` or `-05:00`.
    pub timezone: String,
}

fn time_of(field: &str, text: &str) -> Result<NaiveTime, FieldProblem> {
    let refused = || FieldProblem::new(field, "must be a time of day as HH:MM");
    let digits =
        |range: std::ops::Range<usize>| text.as_bytes()[range].iter().all(u8::is_ascii_digit);
    if text.len() != 5 || text.as_bytes()[2] != b':' || !digits(0..2) || !digits(3..5) {
        return Err(refused());
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| refused())
}

/// `UTC`, `Z`, or `±HH:MM` up to ±14:59 (see [`TIMEZONE_PATTERN`]).
fn offset_of(text: &str) -> Result<FixedOffset, FieldProblem> {
    let refused = || {
        FieldProblem::new(
            "auto_approve.time_window.timezone",
            "must be UTC or an offset such as +02:00",
        )
    };
    if text == "UTC" || text == "Z" {
        return FixedOffset::east_opt(0).ok_or_else(refused);
    }
    let bytes = text.as_bytes();
    let sign = match bytes.first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(refused()),
    };
    let digit = |i: usize| {
        bytes
            .get(i)
            .filter(|b| b.is_ascii_digit())
            .map(|b| i32::from(b - b'0'))
    };
    let (Some(h1), Some(h2), Some(b':'), Some(m1), Some(m2), None) = (
        digit(1),
        digit(2),
        bytes.get(3).copied(),
        digit(4),
        digit(5),
        bytes.get(6),
    ) else {
        return Err(refused());
    };
    let (hours, minutes) = (h1 * 10 + h2, m1 * 10 + m2);
    if hours > 14 || minutes > 59 {
        return Err(refused());
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60)).ok_or_else(refused)
}

/// What [`TimeWindow::timezone`] may be.
pub const TIMEZONE_PATTERN: &str = "^(UTC|Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$";
/// What [`TimeWindow::start`] and `end` may be.
pub const TIME_OF_DAY_PATTERN: &str = "^([01][0-9]|2[0-3]):[0-5][0-9]$";

impl TimeWindow {
    fn check(&self) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        for (field, text) in [
            ("auto_approve.time_window.start", &self.start),
            ("auto_approve.time_window.end", &self.end),
        ] {
            if let Err(problem) = time_of(field, text) {
                problems.push(problem);
            }
        }
        if let Err(problem) = offset_of(&self.timezone) {
            problems.push(problem);
        }
        problems
    }

    /// Whether `at` falls inside the window (false for a window that does
    /// not parse: it was checked when the policy was written).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let (Ok(start), Ok(end), Ok(offset)) = (
            time_of("start", &self.start),
            time_of("end", &self.end),
            offset_of(&self.timezone),
        ) else {
            return false;
        };
        let local = at.with_timezone(&offset).time();
        if start == end {
            // The whole day.
            return true;
        }
        if start < end {
            start <= local && local < end
        } else {
            local >= start || local < end
        }
    }
}

/// When a request approves itself: every condition given must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoApprove {
    pub time_window: Option<TimeWindow>,
    /// The asset named by the request's resource id has at most this risk
    /// score (0–100; an asset without findings scores 0).
    pub max_asset_risk: Option<f64>,
}

/// A policy to create, as the edge parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPolicy {
    pub policy_id: PolicyId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub name: String,
    pub resource_types: Vec<String>,
    pub max_duration_minutes: u32,
    pub approvals_required: u32,
    pub approver_principals: Vec<String>,
    pub approver_scopes: Vec<Scope>,
    pub request_ttl_minutes: u32,
    pub auto_approve: Option<AutoApprove>,
    pub enabled: bool,
}

/// A change to a policy; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyUpdate {
    pub name: Option<String>,
    pub resource_types: Option<Vec<String>>,
    pub max_duration_minutes: Option<u32>,
    pub approvals_required: Option<u32>,
    pub approver_principals: Option<Vec<String>>,
    pub approver_scopes: Option<Vec<Scope>>,
    pub request_ttl_minutes: Option<u32>,
    /// `Some(None)` turns auto-approval off.
    pub auto_approve: Option<Option<AutoApprove>>,
    pub enabled: Option<bool>,
}

/// What a request takes from its policy when it is made (a later change of
/// the policy does not change a request already made).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyTerms {
    pub policy_id: PolicyId,
    pub max_duration_minutes: u32,
    pub approvals_required: u32,
    pub approver_principals: Vec<String>,
    pub approver_scopes: Vec<Scope>,
    pub request_ttl_minutes: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    Create {
        policy: Box<NewPolicy>,
        at: DateTime<Utc>,
    },
    Update {
        update: Box<PolicyUpdate>,
        at: DateTime<Utc>,
    },
    Disable {
        at: DateTime<Utc>,
    },
}

/// The policy's whole definition, as created or as it is after an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    pub name: String,
    pub resource_types: Vec<String>,
    pub max_duration_minutes: u32,
    pub approvals_required: u32,
    pub approver_principals: Vec<String>,
    pub approver_scopes: Vec<Scope>,
    pub request_ttl_minutes: u32,
    pub auto_approve: Option<AutoApprove>,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PolicyEvent {
    AccessPolicyCreated {
        policy_id: PolicyId,
        tenant_id: TenantId,
        environment: Environment,
        spec: PolicySpec,
        created_at: DateTime<Utc>,
    },
    AccessPolicyUpdated {
        policy_id: PolicyId,
        spec: PolicySpec,
        updated_at: DateTime<Utc>,
    },
    AccessPolicyDisabled {
        policy_id: PolicyId,
        disabled_at: DateTime<Utc>,
    },
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> String {
        match self {
            PolicyEvent::AccessPolicyCreated { .. } => "AccessPolicyCreated",
            PolicyEvent::AccessPolicyUpdated { .. } => "AccessPolicyUpdated",
            PolicyEvent::AccessPolicyDisabled { .. } => "AccessPolicyDisabled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A resource type: 1–64 of `A-Z a-z 0-9 . _ - : @ /`, as given (no
/// surrounding space: a type is matched exactly).
pub const RESOURCE_TYPE_PATTERN: &str = "^[A-Za-z0-9._:@/-]{1,64}$";

fn valid_type(term: &str) -> bool {
    (1..=limits::ACCESS_TERM.max_chars).contains(&term.len())
        && term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:@/".contains(&b))
}

/// A list of a policy's terms: resource types (exact, see
/// [`RESOURCE_TYPE_PATTERN`]) or principals (the text rule, trimmed);
/// sorted, duplicates dropped.
fn valid_terms(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    terms: &[String],
    min: usize,
) -> Vec<String> {
    if terms.len() < min {
        problems.push(FieldProblem::new(field, format!("needs at least {min}")));
    }
    if terms.len() > MAX_LIST_ITEMS {
        problems.push(FieldProblem::new(
            field,
            format!("at most {MAX_LIST_ITEMS}"),
        ));
        return Vec::new();
    }
    let mut valid = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let name = format!("{field}[{i}]");
        if field == "resource_types" {
            if valid_type(term) {
                valid.push(term.clone());
            } else {
                problems.push(FieldProblem::new(
                    &name,
                    "must be 1 to 64 of letters, digits and . _ - : @ /",
                ));
            }
            continue;
        }
        match required_text(&name, term, limits::PRINCIPAL) {
            Ok(term) => valid.push(term),
            Err(problem) => problems.push(problem),
        }
    }
    valid.sort();
    valid.dedup();
    valid
}

impl PolicySpec {
    /// The rules every definition keeps, at create and at update.
    fn checked(mut self) -> Result<Self, AccessError> {
        let mut problems = Vec::new();
        self.name = required_text("name", &self.name, limits::POLICY_NAME)
            .map_err(|p| problems.push(p))
            .unwrap_or_default();
        self.resource_types = valid_terms(&mut problems, "resource_types", &self.resource_types, 1);
        self.approver_principals = valid_terms(
            &mut problems,
            "approver_principals",
            &self.approver_principals,
            0,
        );
        if !(1..=MAX_DURATION_MINUTES).contains(&self.max_duration_minutes) {
            problems.push(FieldProblem::new(
                "max_duration_minutes",
                format!("must be 1 to {MAX_DURATION_MINUTES} (14 days)"),
            ));
        }
        if !(1..=MAX_APPROVALS).contains(&self.approvals_required) {
            problems.push(FieldProblem::new(
                "approvals_required",
                format!("must be 1 to {MAX_APPROVALS}"),
            ));
        }
        if !(1..=MAX_REQUEST_TTL_MINUTES).contains(&self.request_ttl_minutes) {
            problems.push(FieldProblem::new(
                "request_ttl_minutes",
                format!("must be 1 to {MAX_REQUEST_TTL_MINUTES} (7 days)"),
            ));
        }
        self.approver_scopes.sort();
        self.approver_scopes.dedup();
        if let Some(auto) = &self.auto_approve {
            if let Some(window) = &auto.time_window {
                problems.extend(window.check());
            }
            if auto
                .max_asset_risk
                .is_some_and(|risk| !(0.0..=100.0).contains(&risk))
            {
                problems.push(FieldProblem::new(
                    "auto_approve.max_asset_risk",
                    "must be 0 to 100",
                ));
            }
            if auto.time_window.is_none() && auto.max_asset_risk.is_none() {
                problems.push(FieldProblem::new(
                    "auto_approve",
                    "needs a time_window, a max_asset_risk or both (or null for none)",
                ));
            }
        }
        if !problems.is_empty() {
            return Err(AccessError::Invalid(problems));
        }
        Ok(self)
    }
}

/// The policy's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessPolicy {
    created: Option<(PolicyId, PolicySpec)>,
}

impl AccessPolicy {
    /// The policy's definition as its events say (None before creation).
    pub fn spec(&self) -> Option<&PolicySpec> {
        self.created.as_ref().map(|(_, spec)| spec)
    }

    pub fn decide(&self, command: PolicyCommand) -> Result<Vec<PolicyEvent>, AccessError> {
        match command {
            PolicyCommand::Create { policy, at } => {
                if self.created.is_some() {
                    return Err(AccessError::AlreadyExists);
                }
                let policy = *policy;
                let spec = PolicySpec {
                    name: policy.name,
                    resource_types: policy.resource_types,
                    max_duration_minutes: policy.max_duration_minutes,
                    approvals_required: policy.approvals_required,
                    approver_principals: policy.approver_principals,
                    approver_scopes: policy.approver_scopes,
                    request_ttl_minutes: policy.request_ttl_minutes,
                    auto_approve: policy.auto_approve,
                    enabled: policy.enabled,
                }
                .checked()?;
                Ok(vec![PolicyEvent::AccessPolicyCreated {
                    policy_id: policy.policy_id,
                    tenant_id: policy.tenant_id,
                    environment: policy.environment,
                    spec,
                    created_at: at,
                }])
            }
            PolicyCommand::Update { update, at } => {
                let (policy_id, current) = self.created.as_ref().ok_or(AccessError::NotFound)?;
                let update = *update;
                let spec = PolicySpec {
                    name: update.name.unwrap_or_else(|| current.name.clone()),
                    resource_types: update
                        .resource_types
                        .unwrap_or_else(|| current.resource_types.clone()),
                    max_duration_minutes: update
                        .max_duration_minutes
                        .unwrap_or(current.max_duration_minutes),
                    approvals_required: update
                        .approvals_required
                        .unwrap_or(current.approvals_required),
                    approver_principals: update
                        .approver_principals
                        .unwrap_or_else(|| current.approver_principals.clone()),
                    approver_scopes: update
                        .approver_scopes
                        .unwrap_or_else(|| current.approver_scopes.clone()),
                    request_ttl_minutes: update
                        .request_ttl_minutes
                        .unwrap_or(current.request_ttl_minutes),
                    auto_approve: update
                        .auto_approve
                        .unwrap_or_else(|| current.auto_approve.clone()),
                    enabled: update.enabled.unwrap_or(current.enabled),
                }
                .checked()?;
                if &spec == current {
                    return Ok(Vec::new());
                }
                Ok(vec![PolicyEvent::AccessPolicyUpdated {
                    policy_id: *policy_id,
                    spec,
                    updated_at: at,
                }])
            }
            PolicyCommand::Disable { at } => {
                let (policy_id, current) = self.created.as_ref().ok_or(AccessError::NotFound)?;
                if !current.enabled {
                    return Ok(Vec::new());
                }
                Ok(vec![PolicyEvent::AccessPolicyDisabled {
                    policy_id: *policy_id,
                    disabled_at: at,
                }])
            }
        }
    }
}

impl Aggregate for AccessPolicy {
    const TYPE: &'static str = "AccessPolicy";
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = AccessError;
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
        match event {
            PolicyEvent::AccessPolicyCreated {
                policy_id, spec, ..
            } => self.created = Some((policy_id, spec)),
            PolicyEvent::AccessPolicyUpdated { spec, .. } => {
                if let Some((_, current)) = self.created.as_mut() {
                    *current = spec;
                }
            }
            PolicyEvent::AccessPolicyDisabled { .. } => {
                if let Some((_, current)) = self.created.as_mut() {
                    current.enabled = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    type PolicyTest = TestFramework<AccessPolicy>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn new_policy() -> NewPolicy {
        NewPolicy {
            policy_id: PolicyId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            name: " Prod databases ".into(),
            resource_types: vec!["database".into(), "database".into()],
            max_duration_minutes: 120,
            approvals_required: 2,
            approver_principals: vec!["alice".into()],
            approver_scopes: vec![Scope::AccessApprove],
            request_ttl_minutes: DEFAULT_REQUEST_TTL_MINUTES,
            auto_approve: None,
            enabled: true,
        }
    }

    fn spec() -> PolicySpec {
        PolicySpec {
            name: "Prod databases".into(),
            resource_types: vec!["database".into()],
            max_duration_minutes: 120,
            approvals_required: 2,
            approver_principals: vec!["alice".into()],
            approver_scopes: vec![Scope::AccessApprove],
            request_ttl_minutes: DEFAULT_REQUEST_TTL_MINUTES,
            auto_approve: None,
            enabled: true,
        }
    }

    fn created() -> PolicyEvent {
        PolicyEvent::AccessPolicyCreated {
            policy_id: PolicyId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            spec: spec(),
            created_at: t0(),
        }
    }

    #[test]
    fn given_nothing_when_a_policy_is_created_then_its_terms_are_kept_clean() {
        PolicyTest::with(())
            .given_no_previous_events()
            .when(PolicyCommand::Create {
                policy: Box::new(new_policy()),
                at: t0(),
            })
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn given_bad_terms_when_created_then_each_field_is_named() {
        let mut bad = new_policy();
        bad.resource_types = vec![];
        bad.max_duration_minutes = MAX_DURATION_MINUTES + 1;
        bad.approvals_required = 0;
        bad.auto_approve = Some(AutoApprove {
            time_window: None,
            max_asset_risk: Some(101.0),
        });
        PolicyTest::with(())
            .given_no_previous_events()
            .when(PolicyCommand::Create {
                policy: Box::new(bad),
                at: t0(),
            })
            .then_expect_error(AccessError::Invalid(vec![
                FieldProblem::new("resource_types", "needs at least 1"),
                FieldProblem::new("max_duration_minutes", "must be 1 to 20160 (14 days)"),
                FieldProblem::new("approvals_required", "must be 1 to 10"),
                FieldProblem::new("auto_approve.max_asset_risk", "must be 0 to 100"),
            ]));
    }

    #[test]
    fn given_a_policy_when_updated_or_disabled_then_only_changes_are_recorded() {
        let update = PolicyUpdate {
            approvals_required: Some(1),
            ..PolicyUpdate::default()
        };
        let mut changed = spec();
        changed.approvals_required = 1;
        PolicyTest::with(())
            .given(vec![created()])
            .when(PolicyCommand::Update {
                update: Box::new(update),
                at: t0(),
            })
            .then_expect_events(vec![PolicyEvent::AccessPolicyUpdated {
                policy_id: PolicyId::from_uuid(Uuid::from_u128(1)),
                spec: changed,
                updated_at: t0(),
            }]);
        PolicyTest::with(())
            .given(vec![created()])
            .when(PolicyCommand::Update {
                update: Box::default(),
                at: t0(),
            })
            .then_expect_events(vec![]);
        let disabled = PolicyEvent::AccessPolicyDisabled {
            policy_id: PolicyId::from_uuid(Uuid::from_u128(1)),
            disabled_at: t0(),
        };
        PolicyTest::with(())
            .given(vec![created()])
            .when(PolicyCommand::Disable { at: t0() })
            .then_expect_events(vec![disabled.clone()]);
        PolicyTest::with(())
            .given(vec![created(), disabled])
            .when(PolicyCommand::Disable { at: t0() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn time_windows_hold_in_their_offset_and_may_wrap_midnight() {
        let office = TimeWindow {
            start: "09:00".into(),
            end: "17:00".into(),
            timezone: "+02:00".into(),
        };
        // 08:30 UTC is 10:30 at +02:00.
        assert!(office.contains(Utc.with_ymd_and_hms(2026, 1, 1, 8, 30, 0).unwrap()));
        assert!(!office.contains(Utc.with_ymd_and_hms(2026, 1, 1, 15, 0, 0).unwrap()));
        assert!(office.contains(Utc.with_ymd_and_hms(2026, 1, 1, 7, 0, 0).unwrap()));
        assert!(!office.contains(Utc.with_ymd_and_hms(2026, 1, 1, 6, 59, 0).unwrap()));
        let night = TimeWindow {
            start: "22:00".into(),
            end: "06:00".into(),
            timezone: "UTC".into(),
        };
        assert!(night.contains(Utc.with_ymd_and_hms(2026, 1, 1, 23, 0, 0).unwrap()));
        assert!(night.contains(Utc.with_ymd_and_hms(2026, 1, 1, 5, 59, 0).unwrap()));
        assert!(!night.contains(Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()));
        let bad = TimeWindow {
            start: "25:00".into(),
            end: "06:00".into(),
            timezone: "Europe/Paris".into(),
        };
        assert_eq!(bad.check().len(), 2);
    }
}
