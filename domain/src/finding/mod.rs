//! The Finding aggregate: one security issue on one asset, deduplicated by
//! fingerprint, triaged through a small lifecycle. The transition table is
//! [`Status::after`]; every command that moves a finding goes through it.

mod aggregate;
mod commands;
mod events;
mod identity;

pub use crate::text::FieldProblem;
pub use aggregate::{Finding, FindingError};
pub use commands::{fingerprint_source, FindingCommand, FindingDetails, NewFinding, ValidDetails};
pub use events::FindingEvent;
pub use identity::{asset_id_for, finding_id_for, Fingerprint};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// 4 for critical down to 0 for info: sorts by seriousness.
    pub fn rank(&self) -> i64 {
        match self {
            Severity::Critical => 4,
            Severity::High => 3,
            Severity::Medium => 2,
            Severity::Low => 1,
            Severity::Info => 0,
        }
    }

    /// The defaults (`docs/findings.md`) when a finding gives no likelihood and impact.
    pub fn default_likelihood_impact(&self) -> (f64, f64) {
        match self {
            Severity::Critical => (0.9, 1.0),
            Severity::High => (0.7, 0.8),
            Severity::Medium => (0.5, 0.5),
            Severity::Low => (0.3, 0.2),
            Severity::Info => (0.0, 0.0),
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("unknown severity '{s}'; expected one of critical, high, medium, low, info")
            })
    }
}

/// Where a finding stands in triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    Confirmed,
    Dismissed,
    RiskAccepted,
    Remediated,
}

/// What moves a finding from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    Confirm,
    Dismiss,
    AcceptRisk,
    Remediate,
    Reopen,
    /// A risk acceptance reached its expiry.
    ExpireAcceptance,
    /// A remediated finding was seen again.
    Regress,
}

impl Transition {
    pub fn as_str(&self) -> &'static str {
        match self {
            Transition::Confirm => "confirm",
            Transition::Dismiss => "dismiss",
            Transition::AcceptRisk => "accept risk",
            Transition::Remediate => "remediate",
            Transition::Reopen => "reopen",
            Transition::ExpireAcceptance => "expire the risk acceptance",
            Transition::Regress => "regress",
        }
    }
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::Confirmed,
        Status::Dismissed,
        Status::RiskAccepted,
        Status::Remediated,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Confirmed => "confirmed",
            Status::Dismissed => "dismissed",
            Status::RiskAccepted => "risk_accepted",
            Status::Remediated => "remediated",
        }
    }

    /// Only open and confirmed findings count towards risk.
    pub fn counts_for_risk(&self) -> bool {
        matches!(self, Status::Open | Status::Confirmed)
    }

    /// The transition table: the status after `transition`, or None when
    /// it is impossible from here. README's table is this function.
    ///
    /// | from \ to      | confirm   | dismiss   | accept risk   | remediate  | reopen | expire acceptance | regress |
    /// |----------------|-----------|-----------|---------------|------------|--------|-------------------|---------|
    /// | open           | confirmed | dismissed | risk_accepted | remediated | –      | –                 | –       |
    /// | confirmed      | –         | dismissed | risk_accepted | remediated | –      | –                 | –       |
    /// | dismissed      | –         | –         | –             | –          | open   | –                 | –       |
    /// | risk_accepted  | –         | –         | –             | remediated | open   | open              | –       |
    /// | remediated     | –         | –         | –             | –          | open   | –                 | open    |
    pub fn after(self, transition: Transition) -> Option<Status> {
        use Status::*;
        use Transition::*;
        match (self, transition) {
            (Open, Confirm) => Some(Confirmed),
            (Open | Confirmed, Dismiss) => Some(Dismissed),
            (Open | Confirmed, AcceptRisk) => Some(RiskAccepted),
            (Open | Confirmed | RiskAccepted, Remediate) => Some(Remediated),
            (Dismissed | RiskAccepted | Remediated, Reopen) => Some(Open),
            (RiskAccepted, ExpireAcceptance) => Some(Open),
            (Remediated, Regress) => Some(Open),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown status '{s}'; expected one of open, confirmed, dismissed, risk_accepted, remediated"))
    }
}
