//! KMS alert rules and the alerts they raise.
//!
//! A rule (`KmsAlertRule`) watches one metric of key usage — operations,
//! bytes processed or the error rate — over a fixed window (the clock hour
//! or the UTC day, as CloudWatch periods are fixed), for some keys or all
//! of a tenant environment's. An alert (`KmsAlert`) is one rule's verdict
//! on one key's window: its id is derived from (rule, key, window start),
//! so the evaluator may ask for it again after a crash or a replay and
//! nothing is recorded twice. An alert is acknowledged once.

use chrono::{DateTime, Duration, DurationRound, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{valid_name, KmsError};
use crate::finding::Severity;
use crate::ids::derived_uuid;
use crate::text::{limits, required_text, FieldProblem};
use crate::{AlertId, AlertRuleId, Environment, KeyId, TenantId, MAX_LIST_ITEMS};

/// Keys one rule may name (none = every key of the tenant environment).
pub const MAX_RULE_KEYS: usize = MAX_LIST_ITEMS;

/// What a rule measures over its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Every operation asked of the key, whether it succeeded or not.
    OperationCount,
    /// Bytes of input the successful operations processed.
    BytesProcessed,
    /// Refused or failed operations / all operations, 0 to 1 (0 without
    /// operations).
    ErrorRate,
}

impl Metric {
    pub const ALL: [Metric; 3] = [
        Metric::OperationCount,
        Metric::BytesProcessed,
        Metric::ErrorRate,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Metric::OperationCount => "operation_count",
            Metric::BytesProcessed => "bytes_processed",
            Metric::ErrorRate => "error_rate",
        }
    }
}

/// How the metric is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// Above: judged as usage arrives, so the alert comes with the usage
    /// that crossed the threshold.
    Gt,
    /// Below: judged on a window that has ended (when the key's usage of a
    /// later window arrives); a window without any usage is not judged.
    Lt,
}

impl Comparison {
    pub fn as_str(&self) -> &'static str {
        match self {
            Comparison::Gt => "gt",
            Comparison::Lt => "lt",
        }
    }
}

/// The fixed period a rule sums over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Window {
    /// The clock hour (UTC).
    #[serde(rename = "1h")]
    Hour,
    /// The UTC day.
    #[serde(rename = "24h")]
    Day,
}

impl Window {
    pub fn as_str(&self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "24h",
        }
    }

    pub fn length(&self) -> Duration {
        match self {
            Window::Hour => Duration::hours(1),
            Window::Day => Duration::days(1),
        }
    }

    /// The start of the window `at` falls in.
    pub fn start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.length()).unwrap_or(at)
    }
}

/// Usage summed over one key's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageWindow {
    pub succeeded: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl UsageWindow {
    pub fn value(&self, metric: Metric) -> f64 {
        let operations = self.succeeded.saturating_add(self.errors);
        match metric {
            Metric::OperationCount => operations as f64,
            Metric::BytesProcessed => self.bytes as f64,
            Metric::ErrorRate if operations == 0 => 0.0,
            Metric::ErrorRate => self.errors as f64 / operations as f64,
        }
    }
}

/// When a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub metric: Metric,
    pub operator: Comparison,
    pub threshold: f64,
    pub window: Window,
}

impl Condition {
    /// The metric's value over the window.
    pub fn metric_value(&self, usage: &UsageWindow) -> f64 {
        usage.value(self.metric)
    }

    pub fn holds(&self, usage: &UsageWindow) -> bool {
        let value = usage.value(self.metric);
        match self.operator {
            Comparison::Gt => value > self.threshold,
            Comparison::Lt => value < self.threshold,
        }
    }

    fn check(&self, problems: &mut Vec<FieldProblem>) {
        let field = "condition.threshold";
        if !self.threshold.is_finite() || self.threshold < 0.0 {
            problems.push(FieldProblem::new(field, "must be a number ≥ 0"));
        } else if self.metric == Metric::ErrorRate && self.threshold > 1.0 {
            problems.push(FieldProblem::new(
                field,
                "an error rate is a fraction from 0 to 1",
            ));
        } else if self.threshold > 1e15 {
            problems.push(FieldProblem::new(field, "must be at most 10^15"));
        }
    }
}

/// A rule as created.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleSpec {
    pub name: String,
    /// Empty: every key of the tenant environment.
    pub key_ids: Vec<KeyId>,
    pub condition: Condition,
    pub severity: Severity,
    pub enabled: bool,
}

/// A change to a rule; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertRuleUpdate {
    pub name: Option<String>,
    pub key_ids: Option<Vec<KeyId>>,
    pub condition: Option<Condition>,
    pub severity: Option<Severity>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertRuleCommand {
    Create {
        rule_id: AlertRuleId,
        tenant_id: TenantId,
        environment: Environment,
        spec: AlertRuleSpec,
        at: DateTime<Utc>,
    },
    Update {
        update: AlertRuleUpdate,
        at: DateTime<Utc>,
    },
    Delete {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertRuleEvent {
    KmsAlertRuleCreated {
        rule_id: AlertRuleId,
        tenant_id: TenantId,
        environment: Environment,
        name: String,
        key_ids: Vec<KeyId>,
        condition: Condition,
        severity: Severity,
        enabled: bool,
        created_at: DateTime<Utc>,
    },
    /// The rule's new values, whole.
    KmsAlertRuleUpdated {
        rule_id: AlertRuleId,
        name: String,
        key_ids: Vec<KeyId>,
        condition: Condition,
        severity: Severity,
        enabled: bool,
        updated_at: DateTime<Utc>,
    },
    /// The rule raises nothing more; its alerts stay.
    KmsAlertRuleDeleted {
        rule_id: AlertRuleId,
        deleted_at: DateTime<Utc>,
    },
}

impl DomainEvent for AlertRuleEvent {
    fn event_type(&self) -> String {
        match self {
            AlertRuleEvent::KmsAlertRuleCreated { .. } => "KmsAlertRuleCreated",
            AlertRuleEvent::KmsAlertRuleUpdated { .. } => "KmsAlertRuleUpdated",
            AlertRuleEvent::KmsAlertRuleDeleted { .. } => "KmsAlertRuleDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RuleState {
    id: AlertRuleId,
    name: String,
    key_ids: Vec<KeyId>,
    condition: Condition,
    severity: Severity,
    enabled: bool,
    deleted: bool,
}

/// An alert rule's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    state: Option<RuleState>,
}

fn valid_keys(problems: &mut Vec<FieldProblem>, keys: &[KeyId]) -> Vec<KeyId> {
    if keys.len() > MAX_RULE_KEYS {
        problems.push(FieldProblem::new(
            "key_ids",
            format!("at most {MAX_RULE_KEYS} keys (none for every key)"),
        ));
    }
    let mut keys = keys.to_vec();
    keys.sort();
    keys.dedup();
    keys
}

impl AlertRule {
    pub fn decide(&self, command: AlertRuleCommand) -> Result<Vec<AlertRuleEvent>, KmsError> {
        let mut problems = Vec::new();
        if let AlertRuleCommand::Create {
            rule_id,
            tenant_id,
            environment,
            spec,
            at,
        } = command
        {
            if self.state.is_some() {
                return Err(KmsError::AlreadyExists);
            }
            let name = valid_name(&mut problems, &spec.name);
            let key_ids = valid_keys(&mut problems, &spec.key_ids);
            spec.condition.check(&mut problems);
            if !problems.is_empty() {
                return Err(KmsError::Invalid(problems));
            }
            return Ok(vec![AlertRuleEvent::KmsAlertRuleCreated {
                rule_id,
                tenant_id,
                environment,
                name,
                key_ids,
                condition: spec.condition,
                severity: spec.severity,
                enabled: spec.enabled,
                created_at: at,
            }]);
        }
        let rule = self
            .state
            .as_ref()
            .filter(|rule| !rule.deleted)
            .ok_or(KmsError::NotFound)?;
        Ok(match command {
            AlertRuleCommand::Create { .. } => unreachable!("handled above"),
            AlertRuleCommand::Update { update, at } => {
                let name = match &update.name {
                    Some(name) => valid_name(&mut problems, name),
                    None => rule.name.clone(),
                };
                let key_ids = match &update.key_ids {
                    Some(keys) => valid_keys(&mut problems, keys),
                    None => rule.key_ids.clone(),
                };
                let condition = update.condition.unwrap_or(rule.condition);
                condition.check(&mut problems);
                if !problems.is_empty() {
                    return Err(KmsError::Invalid(problems));
                }
                let severity = update.severity.unwrap_or(rule.severity);
                let enabled = update.enabled.unwrap_or(rule.enabled);
                if name == rule.name
                    && key_ids == rule.key_ids
                    && condition == rule.condition
                    && severity == rule.severity
                    && enabled == rule.enabled
                {
                    return Ok(Vec::new());
                }
                vec![AlertRuleEvent::KmsAlertRuleUpdated {
                    rule_id: rule.id,
                    name,
                    key_ids,
                    condition,
                    severity,
                    enabled,
                    updated_at: at,
                }]
            }
            AlertRuleCommand::Delete { at } => vec![AlertRuleEvent::KmsAlertRuleDeleted {
                rule_id: rule.id,
                deleted_at: at,
            }],
        })
    }
}

impl Aggregate for AlertRule {
    const TYPE: &'static str = "KmsAlertRule";
    type Command = AlertRuleCommand;
    type Event = AlertRuleEvent;
    type Error = KmsError;
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
            AlertRuleEvent::KmsAlertRuleCreated {
                rule_id,
                name,
                key_ids,
                condition,
                severity,
                enabled,
                ..
            }
            | AlertRuleEvent::KmsAlertRuleUpdated {
                rule_id,
                name,
                key_ids,
                condition,
                severity,
                enabled,
                ..
            } => {
                self.state = Some(RuleState {
                    id: rule_id,
                    name,
                    key_ids,
                    condition,
                    severity,
                    enabled,
                    deleted: false,
                });
            }
            AlertRuleEvent::KmsAlertRuleDeleted { .. } => {
                if let Some(rule) = self.state.as_mut() {
                    rule.deleted = true;
                }
            }
        }
    }
}

/// The alert a rule raises on a key's window: the same for every
/// evaluation of that window.
pub fn alert_id_for(
    rule_id: &AlertRuleId,
    key_id: &KeyId,
    window: Window,
    window_start: DateTime<Utc>,
) -> AlertId {
    AlertId::from_uuid(derived_uuid(&[
        "kms-alert",
        &rule_id.to_string(),
        &key_id.to_string(),
        window.as_str(),
        &window_start.to_rfc3339(),
    ]))
}

/// What the evaluator found: a rule's condition held over a key's window.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggeredAlert {
    pub alert_id: AlertId,
    pub rule_id: AlertRuleId,
    pub rule_name: String,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub key_id: KeyId,
    pub condition: Condition,
    pub window_start: DateTime<Utc>,
    pub value: f64,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AlertCommand {
    /// Records the alert; nothing when it is recorded already.
    Trigger {
        alert: Box<TriggeredAlert>,
        at: DateTime<Utc>,
    },
    /// Once: a second acknowledgement is refused.
    Acknowledge { by: String, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlertEvent {
    KmsAlertTriggered {
        alert_id: AlertId,
        rule_id: AlertRuleId,
        rule_name: String,
        tenant_id: TenantId,
        environment: Environment,
        key_id: KeyId,
        condition: Condition,
        window_start: DateTime<Utc>,
        /// The metric's value when the rule fired.
        value: f64,
        severity: Severity,
        triggered_at: DateTime<Utc>,
    },
    KmsAlertAcknowledged {
        alert_id: AlertId,
        acknowledged_by: String,
        acknowledged_at: DateTime<Utc>,
    },
}

impl DomainEvent for AlertEvent {
    fn event_type(&self) -> String {
        match self {
            AlertEvent::KmsAlertTriggered { .. } => "KmsAlertTriggered",
            AlertEvent::KmsAlertAcknowledged { .. } => "KmsAlertAcknowledged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// An alert's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    id: Option<AlertId>,
    acknowledged: bool,
}

impl Alert {
    pub fn decide(&self, command: AlertCommand) -> Result<Vec<AlertEvent>, KmsError> {
        match command {
            AlertCommand::Trigger { alert, at } => {
                if self.id.is_some() {
                    return Ok(Vec::new());
                }
                let alert = *alert;
                Ok(vec![AlertEvent::KmsAlertTriggered {
                    alert_id: alert.alert_id,
                    rule_id: alert.rule_id,
                    rule_name: alert.rule_name,
                    tenant_id: alert.tenant_id,
                    environment: alert.environment,
                    key_id: alert.key_id,
                    condition: alert.condition,
                    window_start: alert.window_start,
                    value: alert.value,
                    severity: alert.severity,
                    triggered_at: at,
                }])
            }
            AlertCommand::Acknowledge { by, at } => {
                let alert_id = self.id.ok_or(KmsError::NotFound)?;
                if self.acknowledged {
                    return Err(KmsError::InvalidTransition {
                        action: "acknowledge",
                        subject: "alert",
                        state: "acknowledged",
                    });
                }
                let by = required_text("acknowledged_by", &by, limits::PRINCIPAL)
                    .map_err(|problem| KmsError::Invalid(vec![problem]))?;
                Ok(vec![AlertEvent::KmsAlertAcknowledged {
                    alert_id,
                    acknowledged_by: by,
                    acknowledged_at: at,
                }])
            }
        }
    }
}

impl Aggregate for Alert {
    const TYPE: &'static str = "KmsAlert";
    type Command = AlertCommand;
    type Event = AlertEvent;
    type Error = KmsError;
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
            AlertEvent::KmsAlertTriggered { alert_id, .. } => self.id = Some(alert_id),
            AlertEvent::KmsAlertAcknowledged { .. } => self.acknowledged = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap()
    }

    fn rule_id() -> AlertRuleId {
        AlertRuleId::from_uuid(Uuid::from_u128(1))
    }

    fn key() -> KeyId {
        KeyId::from_uuid(Uuid::from_u128(2))
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(3))
    }

    fn condition(metric: Metric, operator: Comparison, threshold: f64) -> Condition {
        Condition {
            metric,
            operator,
            threshold,
            window: Window::Hour,
        }
    }

    fn spec() -> AlertRuleSpec {
        AlertRuleSpec {
            name: " burst ".into(),
            key_ids: vec![key(), key()],
            condition: condition(Metric::OperationCount, Comparison::Gt, 5.0),
            severity: Severity::High,
            enabled: true,
        }
    }

    fn create(spec: AlertRuleSpec) -> AlertRuleCommand {
        AlertRuleCommand::Create {
            rule_id: rule_id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            spec,
            at: t0(),
        }
    }

    fn created() -> AlertRuleEvent {
        AlertRuleEvent::KmsAlertRuleCreated {
            rule_id: rule_id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            name: "burst".into(),
            key_ids: vec![key()],
            condition: condition(Metric::OperationCount, Comparison::Gt, 5.0),
            severity: Severity::High,
            enabled: true,
            created_at: t0(),
        }
    }

    fn refused_fields(command: AlertRuleCommand) -> Vec<String> {
        match AlertRule::default().decide(command) {
            Err(KmsError::Invalid(problems)) => problems.into_iter().map(|p| p.field).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn given_nothing_when_a_rule_is_created_then_its_name_is_trimmed_and_keys_deduplicated() {
        TestFramework::<AlertRule>::with(())
            .given_no_previous_events()
            .when(create(spec()))
            .then_expect_events(vec![created()]);
        TestFramework::<AlertRule>::with(())
            .given(vec![created()])
            .when(create(spec()))
            .then_expect_error(KmsError::AlreadyExists);
    }

    #[test]
    fn a_rule_with_a_bad_threshold_or_too_many_keys_is_refused() {
        let bad = |condition| AlertRuleSpec {
            condition,
            ..spec()
        };
        for threshold in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                refused_fields(create(bad(condition(
                    Metric::OperationCount,
                    Comparison::Gt,
                    threshold
                )))),
                vec!["condition.threshold"]
            );
        }
        assert_eq!(
            refused_fields(create(bad(condition(
                Metric::ErrorRate,
                Comparison::Gt,
                2.0
            )))),
            vec!["condition.threshold"]
        );
        let many = (0..=MAX_RULE_KEYS as u128)
            .map(|n| KeyId::from_uuid(Uuid::from_u128(100 + n)))
            .collect();
        assert_eq!(
            refused_fields(create(AlertRuleSpec {
                key_ids: many,
                name: "".into(),
                ..spec()
            })),
            vec!["name", "key_ids"]
        );
    }

    #[test]
    fn given_a_rule_when_it_is_updated_or_deleted_then_only_changes_are_recorded() {
        let update = |update| AlertRuleCommand::Update { update, at: t0() };
        TestFramework::<AlertRule>::with(())
            .given(vec![created()])
            .when(update(AlertRuleUpdate {
                enabled: Some(false),
                ..AlertRuleUpdate::default()
            }))
            .then_expect_events(vec![AlertRuleEvent::KmsAlertRuleUpdated {
                rule_id: rule_id(),
                name: "burst".into(),
                key_ids: vec![key()],
                condition: condition(Metric::OperationCount, Comparison::Gt, 5.0),
                severity: Severity::High,
                enabled: false,
                updated_at: t0(),
            }]);
        TestFramework::<AlertRule>::with(())
            .given(vec![created()])
            .when(update(AlertRuleUpdate {
                enabled: Some(true),
                ..AlertRuleUpdate::default()
            }))
            .then_expect_events(Vec::new());
        let deleted = AlertRuleEvent::KmsAlertRuleDeleted {
            rule_id: rule_id(),
            deleted_at: t0(),
        };
        TestFramework::<AlertRule>::with(())
            .given(vec![created()])
            .when(AlertRuleCommand::Delete { at: t0() })
            .then_expect_events(vec![deleted.clone()]);
        TestFramework::<AlertRule>::with(())
            .given(vec![created(), deleted])
            .when(update(AlertRuleUpdate::default()))
            .then_expect_error(KmsError::NotFound);
    }

    #[test]
    fn conditions_compare_the_windows_metric_with_the_threshold() {
        let usage = UsageWindow {
            succeeded: 6,
            errors: 2,
            bytes: 6144,
        };
        assert!(condition(Metric::OperationCount, Comparison::Gt, 5.0).holds(&usage));
        assert!(!condition(Metric::OperationCount, Comparison::Gt, 8.0).holds(&usage));
        assert!(condition(Metric::BytesProcessed, Comparison::Lt, 10_000.0).holds(&usage));
        assert!(condition(Metric::ErrorRate, Comparison::Gt, 0.2).holds(&usage));
        assert!(!condition(Metric::ErrorRate, Comparison::Gt, 0.25).holds(&usage));
        assert_eq!(UsageWindow::default().value(Metric::ErrorRate), 0.0);
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 59, 0).unwrap();
        assert_eq!(
            Window::Hour.start(at),
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
        );
        assert_eq!(
            Window::Day.start(at),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
        );
    }

    fn triggered_alert() -> TriggeredAlert {
        let window_start = Window::Hour.start(t0());
        TriggeredAlert {
            alert_id: alert_id_for(&rule_id(), &key(), Window::Hour, window_start),
            rule_id: rule_id(),
            rule_name: "burst".into(),
            tenant_id: tenant(),
            environment: Environment::Live,
            key_id: key(),
            condition: condition(Metric::OperationCount, Comparison::Gt, 5.0),
            window_start,
            value: 6.0,
            severity: Severity::High,
        }
    }

    fn triggered() -> AlertEvent {
        let alert = triggered_alert();
        AlertEvent::KmsAlertTriggered {
            alert_id: alert.alert_id,
            rule_id: alert.rule_id,
            rule_name: alert.rule_name,
            tenant_id: alert.tenant_id,
            environment: alert.environment,
            key_id: alert.key_id,
            condition: alert.condition,
            window_start: alert.window_start,
            value: alert.value,
            severity: alert.severity,
            triggered_at: t0(),
        }
    }

    #[test]
    fn given_an_alert_when_it_is_triggered_again_then_nothing_more_is_recorded() {
        let trigger = || AlertCommand::Trigger {
            alert: Box::new(triggered_alert()),
            at: t0(),
        };
        TestFramework::<Alert>::with(())
            .given_no_previous_events()
            .when(trigger())
            .then_expect_events(vec![triggered()]);
        TestFramework::<Alert>::with(())
            .given(vec![triggered()])
            .when(trigger())
            .then_expect_events(Vec::new());
        // One id per rule, key and window.
        let next = Window::Hour.start(t0()) + Duration::hours(1);
        assert_ne!(
            alert_id_for(&rule_id(), &key(), Window::Hour, next),
            triggered_alert().alert_id
        );
        let start = Window::Hour.start(t0());
        assert_ne!(
            alert_id_for(&rule_id(), &key(), Window::Day, start),
            alert_id_for(&rule_id(), &key(), Window::Hour, start),
        );
    }

    #[test]
    fn given_an_alert_when_it_is_acknowledged_then_a_second_time_is_refused() {
        let acknowledge = || AlertCommand::Acknowledge {
            by: "apk_1".into(),
            at: t0(),
        };
        let acknowledged = AlertEvent::KmsAlertAcknowledged {
            alert_id: triggered_alert().alert_id,
            acknowledged_by: "apk_1".into(),
            acknowledged_at: t0(),
        };
        TestFramework::<Alert>::with(())
            .given(vec![triggered()])
            .when(acknowledge())
            .then_expect_events(vec![acknowledged.clone()]);
        TestFramework::<Alert>::with(())
            .given(vec![triggered(), acknowledged])
            .when(acknowledge())
            .then_expect_error(KmsError::InvalidTransition {
                action: "acknowledge",
                subject: "alert",
                state: "acknowledged",
            });
        TestFramework::<Alert>::with(())
            .given_no_previous_events()
            .when(acknowledge())
            .then_expect_error(KmsError::NotFound);
    }
}
