//! One-line, human descriptions of events, shared by the timeline and the
//! audit trail. Each describes what happened, never a secret: the inputs
//! are the events themselves, which hold no key values or secret values.

use palisade_domain::finding::FindingEvent;
use palisade_domain::key::{KeyEvent, KeyUsageEvent};
use palisade_domain::kms::{AlertEvent, AlertRuleEvent, PlanEvent};
use palisade_domain::risk::RiskLedgerEvent;
use palisade_domain::tenant::TenantEvent;

/// A finding's event; `subject` names the finding (its quoted title on the
/// timeline, its id in the audit trail).
pub fn finding(event: &FindingEvent, subject: &str) -> String {
    use FindingEvent as E;
    match event {
        E::FindingIngested { details, .. } => format!(
            "Finding '{}' ({}) found on {}",
            details.title, details.severity, details.asset_identifier
        ),
        E::FindingReobserved { occurrences, .. } => {
            format!("Finding {subject} seen again ({occurrences} occurrences)")
        }
        E::FindingReportUpdated { details, .. } => {
            format!(
                "Finding {subject} updated by a new report of {}",
                details.product
            )
        }
        E::FindingSeverityChanged { from, to, .. } => {
            format!("Finding {subject} severity changed from {from} to {to}")
        }
        E::FindingConfirmed { .. } => format!("Finding {subject} confirmed"),
        E::FindingDismissed { reason, .. } => format!("Finding {subject} dismissed: {reason}"),
        E::FindingRiskAccepted {
            reason, expires_at, ..
        } => format!(
            "Risk of finding {subject} accepted until {}: {reason}",
            expires_at.format("%Y-%m-%d")
        ),
        E::FindingRiskAcceptanceExpired { .. } => {
            format!("Risk acceptance of finding {subject} expired; reopened")
        }
        E::FindingRemediated { .. } => format!("Finding {subject} remediated"),
        E::FindingReopened {
            regression: true, ..
        } => format!("Finding {subject} reopened: seen again after remediation"),
        E::FindingReopened { .. } => format!("Finding {subject} reopened"),
        E::FindingAssigned {
            assignee: Some(who),
            ..
        } => format!("Finding {subject} assigned to {who}"),
        E::FindingAssigned { assignee: None, .. } => format!("Finding {subject} unassigned"),
        E::FindingTicketLinked {
            system, ticket_id, ..
        } => format!("Finding {subject} linked to {system} ticket {ticket_id}"),
        E::FindingCommented { .. } => format!("Comment on finding {subject}"),
    }
}

/// A tenant's event.
pub fn tenant(event: &TenantEvent) -> String {
    use TenantEvent as E;
    match event {
        E::TenantCreated { name, plan, .. } => format!("Tenant '{name}' created on plan {plan}"),
        E::TenantPlanChanged { from, to, .. } => format!("Plan changed from {from} to {to}"),
        E::TenantSuspended {
            reason: Some(reason),
            ..
        } => format!("Tenant suspended: {reason}"),
        E::TenantSuspended { reason: None, .. } => "Tenant suspended".to_string(),
        E::TenantReactivated { .. } => "Tenant reactivated".to_string(),
        E::ApiKeyIssued {
            key_id,
            name,
            principal,
            environment,
            scopes,
            ..
        } => {
            let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
            format!(
                "API key '{name}' ({key_id}, {environment}) issued to {principal} with scopes {}",
                scopes.join(", ")
            )
        }
        E::ApiKeyRevoked { key_id, .. } => format!("API key {key_id} revoked"),
        E::TenantSecretsConfigured {
            environment,
            cas_required,
            ..
        } => format!(
            "Secret writes in {environment} {} check-and-set",
            if *cas_required {
                "require"
            } else {
                "no longer require"
            }
        ),
    }
}

/// The risk ledger's event.
pub fn risk_ledger(event: &RiskLedgerEvent) -> String {
    let RiskLedgerEvent::RiskScoreRecalculated {
        previous,
        recalculated,
        ..
    } = event;
    format!("Risk score recalculated: {previous:.2} → {recalculated:.2}")
}

/// A key's event; `subject` names the key (its name on the timeline).
pub fn key(event: &KeyEvent, subject: &str) -> String {
    use KeyEvent as E;
    match event {
        E::KeyCreated {
            name, algorithm, ..
        } => format!("Key '{name}' ({algorithm}) created"),
        E::KeyRotated {
            new_version,
            automatic: true,
            ..
        } => format!(
            "Key {subject} rotated automatically to version {}",
            new_version.version
        ),
        E::KeyRotated { new_version, .. } => {
            format!("Key {subject} rotated to version {}", new_version.version)
        }
        E::KeyUpdated { .. } => format!("Key {subject} settings changed"),
        E::MinDecryptionVersionSet {
            min_decryption_version,
            ..
        } => format!("Key {subject} now refuses versions below {min_decryption_version}"),
        E::KeyDisabled { .. } => format!("Key {subject} disabled"),
        E::KeyEnabled { .. } => format!("Key {subject} enabled"),
        E::KeyDeletionScheduled { deletion_date, .. } => format!(
            "Key {subject} scheduled for deletion on {}",
            deletion_date.format("%Y-%m-%d %H:%M UTC")
        ),
        E::KeyDeletionCancelled { .. } => {
            format!("Deletion of key {subject} cancelled; the key is disabled")
        }
        E::KeyDestroyed { .. } => format!("Key {subject} destroyed; its material is deleted"),
        E::KeyReplacementSet {
            replaced_by: Some(by),
            ..
        } => format!("Key {subject} is replaced by key {by}"),
        E::KeyReplacementSet { .. } => format!("Key {subject} no longer names a replacement"),
        E::KeyRotationOverdue {
            version, due_at, ..
        } => format!(
            "Key {subject} version {version} is overdue for rotation (due {})",
            due_at.format("%Y-%m-%d %H:%M UTC")
        ),
    }
}

/// An alert rule's event.
pub fn kms_alert_rule(event: &AlertRuleEvent) -> String {
    match event {
        AlertRuleEvent::KmsAlertRuleCreated {
            name, condition, ..
        } => format!(
            "KMS alert rule '{name}' created: {} {} {} in {}",
            condition.metric.as_str(),
            condition.operator.as_str(),
            condition.threshold,
            condition.window.as_str()
        ),
        AlertRuleEvent::KmsAlertRuleUpdated { name, .. } => {
            format!("KMS alert rule '{name}' changed")
        }
        AlertRuleEvent::KmsAlertRuleDeleted { rule_id, .. } => {
            format!("KMS alert rule {rule_id} deleted")
        }
    }
}

/// An alert's event.
pub fn kms_alert(event: &AlertEvent) -> String {
    match event {
        AlertEvent::KmsAlertTriggered {
            rule_name,
            key_id,
            condition,
            value,
            ..
        } => format!(
            "KMS alert '{rule_name}' on key {key_id}: {} {value} {} {} in {}",
            condition.metric.as_str(),
            condition.operator.as_str(),
            condition.threshold,
            condition.window.as_str()
        ),
        AlertEvent::KmsAlertAcknowledged {
            alert_id,
            acknowledged_by,
            ..
        } => format!("KMS alert {alert_id} acknowledged by {acknowledged_by}"),
    }
}

/// A migration plan's event.
pub fn kms_migration_plan(event: &PlanEvent) -> String {
    match event {
        PlanEvent::MigrationPlanCreated { name, .. } => {
            format!("Migration plan '{name}' drafted")
        }
        PlanEvent::MigrationPlanUpdated { name, .. } => {
            format!("Migration plan '{name}' changed")
        }
        PlanEvent::MigrationPlanActivated { plan_id, .. } => {
            format!("Migration plan {plan_id} activated")
        }
        PlanEvent::MigrationPlanCompleted { plan_id, .. } => {
            format!("Migration plan {plan_id} completed")
        }
        PlanEvent::MigrationPlanCancelled { plan_id, .. } => {
            format!("Migration plan {plan_id} cancelled")
        }
    }
}

/// A key's usage log's event.
pub fn key_usage(event: &KeyUsageEvent) -> String {
    let KeyUsageEvent::KeyUsageRecorded {
        key_id,
        minute,
        usage,
    } = event;
    let operations: u64 = usage.iter().map(|u| u.count + u.errors).sum();
    format!(
        "Key {key_id} used {operations} times in the minute from {}",
        minute.format("%Y-%m-%d %H:%M UTC")
    )
}

fn versions(list: &[u32]) -> String {
    let names: Vec<String> = list.iter().map(u32::to_string).collect();
    match list {
        [one] => format!("version {one}"),
        _ => format!("versions {}", names.join(", ")),
    }
}

/// A secret's event (never a value: the events hold none).
pub fn secret(event: &palisade_domain::secret::SecretEvent, subject: &str) -> String {
    use palisade_domain::secret::{DestroyCause, SecretEvent as E};
    match event {
        E::SecretCreated { path, .. } => format!("Secret '{path}' created"),
        E::SecretVersionCreated {
            version,
            rolled_back_from: Some(from),
            ..
        } => format!("Secret {subject} rolled back to version {from} as version {version}"),
        E::SecretVersionCreated { version, .. } => {
            format!("Secret {subject} version {version} written")
        }
        E::SecretVersionsDeleted {
            versions: list,
            automatic,
            ..
        } => {
            let why = if *automatic {
                " (delete_version_after)"
            } else {
                ""
            };
            format!("Secret {subject} {} deleted{why}", versions(list))
        }
        E::SecretVersionsUndeleted { versions: list, .. } => {
            format!("Secret {subject} {} undeleted", versions(list))
        }
        E::SecretVersionsDestroyed {
            versions: list,
            cause,
            ..
        } => {
            let why = match cause {
                DestroyCause::Requested => "",
                DestroyCause::MaxVersions => " (max_versions)",
            };
            format!("Secret {subject} {} destroyed{why}", versions(list))
        }
        E::SecretVersionDeprecated { version, .. } => {
            format!("Secret {subject} version {version} deprecated")
        }
        E::SecretMetadataSet { .. } => format!("Secret {subject} metadata changed"),
        E::SecretDeleted { .. } => format!("Secret {subject} deleted with every version"),
    }
}

/// A value read.
pub fn secret_read(event: &palisade_domain::secret::SecretReadEvent) -> String {
    let palisade_domain::secret::SecretReadEvent::SecretRead {
        path,
        version,
        actor,
        ..
    } = event;
    format!("Secret '{path}' version {version} read by {actor}")
}

/// A leakage incident's event.
pub fn incident(event: &palisade_domain::secret::IncidentEvent) -> String {
    use palisade_domain::secret::IncidentEvent as E;
    match event {
        E::LeakageIncidentReported {
            path,
            source,
            severity,
            ..
        } => format!("Leak of secret '{path}' reported ({severity}) from {source}"),
        E::LeakageIncidentUpdated {
            incident_id,
            status,
            ..
        } => format!("Leakage incident {incident_id} is {status}"),
    }
}

/// An access policy's event.
pub fn access_policy(event: &palisade_domain::grant::PolicyEvent) -> String {
    use palisade_domain::grant::PolicyEvent as E;
    match event {
        E::AccessPolicyCreated {
            policy_id, spec, ..
        } => format!(
            "Access policy '{}' ({policy_id}) created for {}: {} approval(s), at most {} min",
            spec.name,
            spec.resource_types.join(", "),
            spec.approvals_required,
            spec.max_duration_minutes
        ),
        E::AccessPolicyUpdated {
            policy_id, spec, ..
        } => format!(
            "Access policy '{}' ({policy_id}) changed{}",
            spec.name,
            if spec.enabled { "" } else { " (disabled)" }
        ),
        E::AccessPolicyDisabled { policy_id, .. } => {
            format!("Access policy {policy_id} disabled")
        }
    }
}

fn because(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|reason| format!(": {}", one_line(reason)))
        .unwrap_or_default()
}

/// Free text on one line (a justification or reason may hold line breaks,
/// which must not forge a second line in a summary).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An access request's event, naming requester, reviewers and reasons.
pub fn access_request(event: &palisade_domain::grant::RequestEvent) -> String {
    use palisade_domain::grant::{Decision, RequestEvent as E};
    match event {
        E::AccessRequested {
            request_id,
            requester,
            resource_type,
            resource_id,
            permissions,
            duration_minutes,
            justification,
            ..
        } => format!(
            "{requester} requested {} on {resource_type} '{resource_id}' for {duration_minutes} min ({request_id}): {}",
            permissions.join(", "),
            one_line(justification)
        ),
        E::AccessReviewed {
            request_id,
            reviewer,
            decision,
            reason,
            ..
        } => {
            let verb = match decision {
                Decision::Approve => "approved",
                Decision::Deny => "denied",
            };
            format!("{reviewer} {verb} access request {request_id}{}", because(reason))
        }
        E::AccessApproved {
            request_id,
            approvers,
            reason,
            expires_at,
            ..
        } => format!(
            "Access request {request_id} granted by {} until {}{}",
            approvers.join(", "),
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            because(reason)
        ),
        E::AccessDenied {
            request_id,
            by,
            reason,
            ..
        } => format!("Access request {request_id} denied by {by}{}", because(reason)),
        E::AccessWithdrawn { request_id, .. } => {
            format!("Access request {request_id} withdrawn by its requester")
        }
        E::AccessRevoked {
            request_id,
            by,
            reason,
            ..
        } => format!(
            "Access grant {request_id} revoked by {by}: {}",
            one_line(reason)
        ),
        E::AccessRequestExpired { request_id, .. } => {
            format!("Access request {request_id} expired undecided")
        }
        E::AccessEnded {
            request_id,
            expires_at,
            ..
        } => format!(
            "Access grant {request_id} ended at {}",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    }
}

/// A webhook endpoint's event; `subject` is its id. Never a secret: the
/// events name secret rows, not values.
pub fn webhook(event: &palisade_domain::webhook::WebhookEvent, subject: &str) -> String {
    use palisade_domain::webhook::WebhookEvent as E;
    match event {
        E::WebhookCreated { spec, .. } => {
            format!("Webhook {subject} created for {}", one_line(&spec.url))
        }
        E::WebhookUpdated { changed, .. } => {
            format!("Webhook {subject} updated: {}", changed.join(", "))
        }
        E::WebhookSecretRotated { .. } => format!("Webhook {subject} signing secret rotated"),
        E::WebhookDisabled { cause, .. } => {
            format!("Webhook {subject} disabled ({})", cause.as_str())
        }
        E::WebhookEnabled { .. } => format!("Webhook {subject} enabled"),
        E::WebhookTestRequested { message_id, .. } => {
            format!("Test message {message_id} requested for webhook {subject}")
        }
        E::WebhookDeleted { .. } => format!("Webhook {subject} deleted"),
    }
}
