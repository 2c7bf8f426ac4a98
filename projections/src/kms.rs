//! The KMS's other views, kept by the keys projection beside the keys
//! themselves (`keys.rs`): alert rules, the alerts they raised, and
//! migration plans. One row each, replaced whole as its aggregate changes.

use chrono::{DateTime, Utc};
use palisade_domain::finding::Severity;
use palisade_domain::kms::{
    AlertEvent, AlertRuleEvent, Condition, PlanEvent, PlanStatus, PlanTerms,
};
use palisade_domain::Environment;
use serde::{Deserialize, Serialize};

use crate::keys::KeysStore;
use crate::{FeedEvent, ProjectionError, ReadModelStore};

/// An alert rule as the view holds it (deleted rules are removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub name: String,
    pub key_ids: Vec<String>,
    pub condition: Condition,
    pub severity: Severity,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl AlertRuleRow {
    /// Whether the rule watches the key.
    pub fn watches(&self, key_id: &str) -> bool {
        self.key_ids.is_empty() || self.key_ids.iter().any(|k| k == key_id)
    }
}

/// An alert as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRow {
    pub id: String,
    pub rule_id: String,
    pub rule_name: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub key_id: String,
    pub condition: Condition,
    pub window_start: DateTime<Utc>,
    pub value: f64,
    pub severity: Severity,
    pub triggered_at: DateTime<Utc>,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A migration plan as the view holds it (its progress is counted over
/// the keys at read time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationPlanRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub name: String,
    pub terms: PlanTerms,
    pub status: PlanStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

fn unseen(event: &FeedEvent, what: &str) -> ProjectionError {
    ProjectionError::Failed(format!(
        "{} for {what} {} that the view has not seen created",
        event.event_type, event.aggregate_id
    ))
}

pub(crate) async fn apply_alert_rule(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn KeysStore>()?;
    match event.decode::<AlertRuleEvent>()? {
        AlertRuleEvent::KmsAlertRuleCreated {
            rule_id,
            tenant_id,
            environment,
            name,
            key_ids,
            condition,
            severity,
            enabled,
            created_at,
        } => {
            store
                .save_alert_rule(&AlertRuleRow {
                    id: rule_id.to_string(),
                    tenant_id: tenant_id.to_string(),
                    environment,
                    name,
                    key_ids: key_ids.iter().map(ToString::to_string).collect(),
                    condition,
                    severity,
                    enabled,
                    created_at,
                    updated_at: created_at,
                    version: event.sequence,
                })
                .await?;
        }
        AlertRuleEvent::KmsAlertRuleUpdated {
            name,
            key_ids,
            condition,
            severity,
            enabled,
            updated_at,
            ..
        } => {
            let mut row = store
                .alert_rule(&event.aggregate_id)
                .await?
                .ok_or_else(|| unseen(event, "alert rule"))?;
            row.name = name;
            row.key_ids = key_ids.iter().map(ToString::to_string).collect();
            row.condition = condition;
            row.severity = severity;
            row.enabled = enabled;
            row.updated_at = updated_at;
            row.version = event.sequence;
            store.save_alert_rule(&row).await?;
        }
        AlertRuleEvent::KmsAlertRuleDeleted { .. } => {
            store.delete_alert_rule(&event.aggregate_id).await?;
        }
    }
    Ok(())
}

pub(crate) async fn apply_alert(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn KeysStore>()?;
    match event.decode::<AlertEvent>()? {
        AlertEvent::KmsAlertTriggered {
            alert_id,
            rule_id,
            rule_name,
            tenant_id,
            environment,
            key_id,
            condition,
            window_start,
            value,
            severity,
            triggered_at,
        } => {
            store
                .save_alert(&AlertRow {
                    id: alert_id.to_string(),
                    rule_id: rule_id.to_string(),
                    rule_name,
                    tenant_id: tenant_id.to_string(),
                    environment,
                    key_id: key_id.to_string(),
                    condition,
                    window_start,
                    value,
                    severity,
                    triggered_at,
                    acknowledged: false,
                    acknowledged_by: None,
                    acknowledged_at: None,
                    version: event.sequence,
                })
                .await?;
        }
        AlertEvent::KmsAlertAcknowledged {
            acknowledged_by,
            acknowledged_at,
            ..
        } => {
            let mut row = store
                .alert(&event.aggregate_id)
                .await?
                .ok_or_else(|| unseen(event, "alert"))?;
            row.acknowledged = true;
            row.acknowledged_by = Some(acknowledged_by);
            row.acknowledged_at = Some(acknowledged_at);
            row.version = event.sequence;
            store.save_alert(&row).await?;
        }
    }
    Ok(())
}

pub(crate) async fn apply_plan(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn KeysStore>()?;
    let plan_event = event.decode::<PlanEvent>()?;
    if let PlanEvent::MigrationPlanCreated {
        plan_id,
        tenant_id,
        environment,
        name,
        terms,
        created_at,
    } = plan_event
    {
        return Ok(store
            .save_migration_plan(&MigrationPlanRow {
                id: plan_id.to_string(),
                tenant_id: tenant_id.to_string(),
                environment,
                name,
                terms,
                status: PlanStatus::Draft,
                created_at,
                updated_at: created_at,
                version: event.sequence,
            })
            .await?);
    }
    let mut row = store
        .migration_plan(&event.aggregate_id)
        .await?
        .ok_or_else(|| unseen(event, "migration plan"))?;
    let (status, at) = match plan_event {
        PlanEvent::MigrationPlanCreated { .. } => unreachable!("handled above"),
        PlanEvent::MigrationPlanUpdated {
            name,
            terms,
            updated_at,
            ..
        } => {
            row.name = name;
            row.terms = terms;
            (row.status, updated_at)
        }
        PlanEvent::MigrationPlanActivated { activated_at, .. } => {
            (PlanStatus::Active, activated_at)
        }
        PlanEvent::MigrationPlanCompleted { completed_at, .. } => {
            (PlanStatus::Completed, completed_at)
        }
        PlanEvent::MigrationPlanCancelled { cancelled_at, .. } => {
            (PlanStatus::Cancelled, cancelled_at)
        }
    };
    row.status = status;
    row.updated_at = at;
    row.version = event.sequence;
    store.save_migration_plan(&row).await?;
    Ok(())
}
