//! What the KMS knows beyond single keys: alert rules over key usage and
//! the alerts they raise (`alert.rs`), post-quantum migration plans
//! (`migration.rs`), and the key-hygiene rules that turn a neglected or
//! weak key into a finding (`hygiene.rs`). Each aggregate follows the
//! keys' conventions: time comes in with the command, ids are chosen at the
//! edge or derived, and every refusal is a [`KmsError`].

pub mod alert;
pub mod hygiene;
pub mod migration;

pub use alert::{
    alert_id_for, Alert, AlertCommand, AlertEvent, AlertRule, AlertRuleCommand, AlertRuleEvent,
    AlertRuleSpec, AlertRuleUpdate, Comparison, Condition, Metric, TriggeredAlert, UsageWindow,
    Window, MAX_RULE_KEYS,
};
pub use migration::{
    MigrationPlan, NewMigrationPlan, PlanCommand, PlanEvent, PlanScope, PlanStatus, PlanTerms,
    PlanUpdate, TargetAlgorithms,
};

use crate::text::{limits, required_text, FieldProblem};

/// A rule's or a plan's name: trimmed, 1–100 characters of one line.
fn valid_name(problems: &mut Vec<FieldProblem>, name: &str) -> String {
    required_text("name", name, limits::KMS_NAME).unwrap_or_else(|problem| {
        problems.push(problem);
        String::new()
    })
}

/// Why a command on an alert rule, an alert or a migration plan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// 404 not_found.
    #[error("not found")]
    NotFound,
    /// 409 conflict: it exists already.
    #[error("it exists already")]
    AlreadyExists,
    /// 422 validation_error, one problem per field.
    #[error("invalid: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// 409 invalid_transition: not in this state.
    #[error("cannot {action} a {subject} that is {state}")]
    InvalidTransition {
        action: &'static str,
        subject: &'static str,
        state: &'static str,
    },
}
