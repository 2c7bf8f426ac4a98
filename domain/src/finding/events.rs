use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::{FindingDetails, Severity};
use crate::{AssetId, FindingId};

/// What happened to a finding. Past tense, versioned, never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FindingEvent {
    FindingIngested {
        finding_id: FindingId,
        asset_id: AssetId,
        details: Box<FindingDetails>,
        fingerprint: String,
        observed_at: DateTime<Utc>,
    },
    FindingReobserved {
        occurrences: u64,
        observed_at: DateTime<Utc>,
    },
    /// The scanner-owned fields as a newer report gave them (severity
    /// changes are their own `FindingSeverityChanged`).
    FindingReportUpdated {
        details: Box<FindingDetails>,
        at: DateTime<Utc>,
    },
    FindingSeverityChanged {
        from: Severity,
        to: Severity,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    FindingConfirmed {
        at: DateTime<Utc>,
    },
    FindingDismissed {
        reason: String,
        at: DateTime<Utc>,
    },
    FindingRiskAccepted {
        reason: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    FindingRiskAcceptanceExpired {
        at: DateTime<Utc>,
    },
    FindingRemediated {
        /// Why, when the system closed it (a scanner report no longer holds it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// `regression`: reopened because a remediated finding was seen again.
    FindingReopened {
        reason: Option<String>,
        regression: bool,
        at: DateTime<Utc>,
    },
    FindingAssigned {
        assignee: Option<String>,
        at: DateTime<Utc>,
    },
    FindingTicketLinked {
        system: String,
        ticket_id: String,
        at: DateTime<Utc>,
    },
    FindingCommented {
        comment_id: String,
        body: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for FindingEvent {
    fn event_type(&self) -> String {
        match self {
            FindingEvent::FindingIngested { .. } => "FindingIngested",
            FindingEvent::FindingReobserved { .. } => "FindingReobserved",
            FindingEvent::FindingReportUpdated { .. } => "FindingReportUpdated",
            FindingEvent::FindingSeverityChanged { .. } => "FindingSeverityChanged",
            FindingEvent::FindingConfirmed { .. } => "FindingConfirmed",
            FindingEvent::FindingDismissed { .. } => "FindingDismissed",
            FindingEvent::FindingRiskAccepted { .. } => "FindingRiskAccepted",
            FindingEvent::FindingRiskAcceptanceExpired { .. } => "FindingRiskAcceptanceExpired",
            FindingEvent::FindingRemediated { .. } => "FindingRemediated",
            FindingEvent::FindingReopened { .. } => "FindingReopened",
            FindingEvent::FindingAssigned { .. } => "FindingAssigned",
            FindingEvent::FindingTicketLinked { .. } => "FindingTicketLinked",
            FindingEvent::FindingCommented { .. } => "FindingCommented",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
