//! KMS alert rules and alerts (`docs/kms-analytics.md`), scope
//! `keys:admin`: rules are created, changed and deleted here; the
//! evaluator (`palisade_infra::process::KmsAlertEvaluator`) judges them as
//! usage arrives and records the alerts, which are listed and
//! acknowledged here.

use chrono::Utc;
use palisade_domain::finding::Severity;
use palisade_domain::kms::{
    Alert, AlertCommand, AlertRule, AlertRuleCommand, AlertRuleSpec, AlertRuleUpdate, Comparison,
    Condition, KmsError, Metric, Window as AlertWindow, MAX_RULE_KEYS,
};
use palisade_domain::{AlertRuleId, KeyId};
use palisade_infra::keyring::usage::FlushScope;
use palisade_infra::process::KmsAlertEvaluator;
use palisade_infra::readmodel::kms::{
    get_alert, get_alert_rule, list_alert_rules, list_alerts, AlertFilter, MAX_ALERT_RULES,
};
use palisade_infra::readmodel::{get_key, Page, Partition, Window};
use palisade_infra::CommandError;
use palisade_projections::{AlertRow, AlertRuleRow, KeysProjection};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::KeysAdmin;
use super::{App, Authorized, Error, Result};

/// A rule's condition as a request gives it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionRequest {
    /// `operation_count`, `bytes_processed` or `error_rate`.
    pub metric: String,
    /// `gt` or `lt`.
    pub operator: String,
    /// ≥ 0; an error rate is a fraction from 0 to 1.
    pub threshold: f64,
    /// `1h` (the clock hour) or `24h` (the UTC day).
    pub window: String,
}

/// The body of `POST /v1/kms/analytics/alert-rules`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertRuleRequest {
    pub name: String,
    /// Keys (ids or names) the rule watches; empty or absent: every key.
    #[serde(default)]
    pub key_ids: Vec<String>,
    pub condition: ConditionRequest,
    /// The alerts' severity; `medium` when absent.
    #[serde(default)]
    pub severity: Option<String>,
    /// `true` when absent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /v1/kms/analytics/alert-rules/{id}`: absent fields
/// are left as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlertRuleRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key_ids: Option<Vec<String>>,
    #[serde(default)]
    pub condition: Option<ConditionRequest>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl From<KmsError> for Error {
    fn from(error: KmsError) -> Self {
        let message = error.to_string();
        match error {
            KmsError::NotFound => Error::not_found("Not found"),
            KmsError::AlreadyExists => Error::conflict("It exists already"),
            KmsError::Invalid(problems) => Error::Validation(problems),
            KmsError::InvalidTransition { .. } => {
                Error::InvalidTransition(super::keys::capitalized(&message))
            }
        }
    }
}

impl From<CommandError<KmsError>> for Error {
    fn from(error: CommandError<KmsError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "KMS"),
        }
    }
}

fn parse_condition(request: &ConditionRequest) -> Result<Condition> {
    let metric = Metric::ALL
        .into_iter()
        .find(|m| m.as_str() == request.metric.trim())
        .ok_or_else(|| {
            Error::invalid(
                "condition.metric",
                "must be operation_count, bytes_processed or error_rate",
            )
        })?;
    let operator = match request.operator.trim() {
        "gt" => Comparison::Gt,
        "lt" => Comparison::Lt,
        _ => return Err(Error::invalid("condition.operator", "must be gt or lt")),
    };
    let window = match request.window.trim() {
        "1h" => AlertWindow::Hour,
        "24h" => AlertWindow::Day,
        _ => return Err(Error::invalid("condition.window", "must be 1h or 24h")),
    };
    Ok(Condition {
        metric,
        operator,
        threshold: request.threshold,
        window,
    })
}

fn parse_severity(text: &str) -> Result<Severity> {
    text.trim()
        .parse()
        .map_err(|message: String| Error::invalid("severity", message))
}

/// The keys a rule names: each one of the partition's (by id or name).
async fn rule_keys(app: &App, partition: &Partition, keys: &[String]) -> Result<Vec<KeyId>> {
    if keys.len() > MAX_RULE_KEYS {
        return Err(Error::invalid(
            "key_ids",
            format!("at most {MAX_RULE_KEYS} keys (none for every key)"),
        ));
    }
    let mut ids = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let unknown =
            || Error::invalid(&format!("key_ids[{i}]"), "names no key of this environment");
        let id = super::keys::resolve(partition, key).map_err(|_| unknown())?;
        if get_key(app.store.read_pool(), partition, &id)
            .await?
            .is_none()
        {
            return Err(unknown());
        }
        ids.push(KeyId::parse(&id).map_err(|_| unknown())?);
    }
    Ok(ids)
}

async fn view_rule(app: &App, partition: &Partition, id: &str) -> Result<AlertRuleRow> {
    get_alert_rule(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Alert rule not found"))
}

/// Waits until the keys view shows the aggregate at `version`.
pub(super) async fn settle(
    app: &App,
    aggregate_type: &str,
    id: &str,
    version: usize,
) -> Result<()> {
    if !app
        .await_view(KeysProjection::NAME, aggregate_type, id, version)
        .await?
    {
        return Err(Error::NotInEffect(
            "The change is recorded, but the keys view did not apply it within 10 s; retry to see it".into(),
        ));
    }
    Ok(())
}

pub async fn create_rule(
    app: &App,
    context: &Authorized<KeysAdmin>,
    request: CreateAlertRuleRequest,
) -> Result<AlertRuleRow> {
    let partition = context.principal.partition();
    let condition = parse_condition(&request.condition)?;
    let severity = match &request.severity {
        Some(text) => parse_severity(text)?,
        None => Severity::Medium,
    };
    let key_ids = rule_keys(app, &partition, &request.key_ids).await?;
    // One count, not the rules themselves.
    let one = Window {
        offset: 0,
        limit: 1,
    };
    let existing = list_alert_rules(app.store.read_pool(), &partition, one).await?;
    if existing.total >= i64::from(MAX_ALERT_RULES) {
        return Err(Error::conflict(format!(
            "An environment holds at most {MAX_ALERT_RULES} alert rules; delete one first"
        )));
    }
    let rule_id = AlertRuleId::from_uuid(uuid::Uuid::new_v4());
    let command = AlertRuleCommand::Create {
        rule_id,
        tenant_id: context.principal.tenant_id,
        environment: context.principal.environment,
        spec: AlertRuleSpec {
            name: request.name,
            key_ids,
            condition,
            severity,
            enabled: request.enabled.unwrap_or(true),
        },
        at: Utc::now(),
    };
    let id = rule_id.to_string();
    let version = app
        .commands
        .execute::<AlertRule>(&id, command, (), &context.metadata())
        .await?;
    settle(app, "KmsAlertRule", &id, version).await?;
    view_rule(app, &partition, &id).await
}

pub async fn get_rule(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id: &str,
) -> Result<AlertRuleRow> {
    view_rule(app, &context.principal.partition(), id).await
}

pub async fn list_rules(
    app: &App,
    context: &Authorized<KeysAdmin>,
    window: impl Into<Window>,
) -> Result<Page<AlertRuleRow>> {
    Ok(list_alert_rules(
        app.store.read_pool(),
        &context.principal.partition(),
        window,
    )
    .await?)
}

pub async fn update_rule(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id: &str,
    request: UpdateAlertRuleRequest,
) -> Result<AlertRuleRow> {
    let partition = context.principal.partition();
    view_rule(app, &partition, id).await?;
    let update = AlertRuleUpdate {
        name: request.name,
        key_ids: match &request.key_ids {
            Some(keys) => Some(rule_keys(app, &partition, keys).await?),
            None => None,
        },
        condition: request
            .condition
            .as_ref()
            .map(parse_condition)
            .transpose()?,
        severity: request
            .severity
            .as_deref()
            .map(parse_severity)
            .transpose()?,
        enabled: request.enabled,
    };
    let command = AlertRuleCommand::Update {
        update,
        at: Utc::now(),
    };
    let version = app
        .commands
        .execute::<AlertRule>(id, command, (), &context.metadata())
        .await?;
    settle(app, "KmsAlertRule", id, version).await?;
    view_rule(app, &partition, id).await
}

/// Deletes the rule (its alerts stay); answers it as it was.
pub async fn delete_rule(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id: &str,
) -> Result<AlertRuleRow> {
    let partition = context.principal.partition();
    let rule = view_rule(app, &partition, id).await?;
    let command = AlertRuleCommand::Delete { at: Utc::now() };
    let version = app
        .commands
        .execute::<AlertRule>(id, command, (), &context.metadata())
        .await?;
    settle(app, "KmsAlertRule", id, version).await?;
    Ok(rule)
}

/// What this replica counted so far is recorded, judged by the evaluator,
/// and its alerts are in the keys view.
async fn settle_alerts(app: &App, partition: &Partition) -> Result<()> {
    app.key_usage
        .flush(
            &app.commands,
            None,
            FlushScope::Partition(&partition.tenant_id, partition.environment),
        )
        .await
        .map_err(Error::internal)?;
    app.await_consumer(KmsAlertEvaluator::NAME).await?;
    app.await_views(&[KeysProjection::NAME]).await
}

/// Alerts, newest first, by acknowledgement and severity.
pub async fn alerts(
    app: &App,
    context: &Authorized<KeysAdmin>,
    acknowledged: Option<bool>,
    severity: &Option<String>,
    window: impl Into<Window>,
) -> Result<Page<AlertRow>> {
    let partition = context.principal.partition();
    let filter = AlertFilter {
        acknowledged,
        severity: super::input::comma_list("severity", severity)?,
    };
    settle_alerts(app, &partition).await?;
    Ok(list_alerts(app.store.read_pool(), &partition, &filter, window).await?)
}

pub async fn acknowledge(app: &App, context: &Authorized<KeysAdmin>, id: &str) -> Result<AlertRow> {
    let partition = context.principal.partition();
    let pool = app.store.read_pool();
    get_alert(pool, &partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Alert not found"))?;
    let command = AlertCommand::Acknowledge {
        by: context.principal.key_id.to_string(),
        at: Utc::now(),
    };
    let version = app
        .commands
        .execute::<Alert>(id, command, (), &context.metadata())
        .await?;
    settle(app, "KmsAlert", id, version).await?;
    get_alert(pool, &partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Alert not found"))
}
