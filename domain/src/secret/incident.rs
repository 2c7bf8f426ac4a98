//! The LeakageIncident aggregate: a report that a secret was seen where it
//! should not be (QNSP's leakage detection). Reported by a caller, or
//! opened by a leak check that matched an active version; then
//! investigated, and resolved or dismissed as a false positive.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::text::{limits, optional_text, required_text, FieldProblem};
use crate::{Environment, IncidentId, SecretId, TenantId};

pub use crate::finding::Severity;

/// Where an incident stands. `resolved` and `false_positive` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Investigating,
    Resolved,
    FalsePositive,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 4] = [
        IncidentStatus::Open,
        IncidentStatus::Investigating,
        IncidentStatus::Resolved,
        IncidentStatus::FalsePositive,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::FalsePositive => "false_positive",
        }
    }

    /// Open or under investigation: the secret counts as leaked.
    pub fn is_open(&self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::Investigating)
    }
}

impl std::fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncidentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IncidentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status '{s}'; expected open, investigating, resolved or false_positive")
            })
    }
}

/// An incident to report, as the edge parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    pub incident_id: IncidentId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub secret_id: SecretId,
    pub path: String,
    pub source: String,
    pub location: Option<String>,
    pub severity: Severity,
    pub details: Option<String>,
    /// The version a leak check matched (an incident it opened).
    pub matched_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentCommand {
    Report {
        incident: Box<NewIncident>,
        actor: String,
        at: DateTime<Utc>,
    },
    /// `None` leaves a field as it is.
    Update {
        status: Option<IncidentStatus>,
        resolution: Option<String>,
        notes: Option<String>,
        actor: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IncidentEvent {
    LeakageIncidentReported {
        incident_id: IncidentId,
        tenant_id: TenantId,
        environment: Environment,
        secret_id: SecretId,
        path: String,
        source: String,
        location: Option<String>,
        severity: Severity,
        details: Option<String>,
        matched_version: Option<u32>,
        reported_by: String,
        reported_at: DateTime<Utc>,
    },
    LeakageIncidentUpdated {
        incident_id: IncidentId,
        status: IncidentStatus,
        resolution: Option<String>,
        notes: Option<String>,
        updated_by: String,
        updated_at: DateTime<Utc>,
    },
}

impl DomainEvent for IncidentEvent {
    fn event_type(&self) -> String {
        match self {
            IncidentEvent::LeakageIncidentReported { .. } => "LeakageIncidentReported",
            IncidentEvent::LeakageIncidentUpdated { .. } => "LeakageIncidentUpdated",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncidentError {
    #[error("incident not found")]
    NotFound,
    #[error("the incident exists")]
    AlreadyExists,
    #[error("invalid incident: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// 409 invalid_transition.
    #[error("the incident is {0}; it cannot change")]
    Closed(IncidentStatus),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakageIncident {
    reported: Option<Reported>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Reported {
    id: IncidentId,
    status: IncidentStatus,
    resolution: Option<String>,
    notes: Option<String>,
}

fn text(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<&str>,
    limit: crate::TextLimit,
) -> Option<String> {
    optional_text(field, value, limit)
        .map_err(|problem| problems.push(problem))
        .ok()
        .flatten()
}

impl LeakageIncident {
    pub fn status(&self) -> Option<IncidentStatus> {
        self.reported.as_ref().map(|r| r.status)
    }

    pub fn decide(&self, command: IncidentCommand) -> Result<Vec<IncidentEvent>, IncidentError> {
        match command {
            IncidentCommand::Report {
                incident,
                actor,
                at,
            } => {
                if self.reported.is_some() {
                    return Err(IncidentError::AlreadyExists);
                }
                let mut problems = Vec::new();
                let source = required_text("source", &incident.source, limits::LEAK_SOURCE)
                    .map_err(|problem| problems.push(problem))
                    .unwrap_or_default();
                let location = text(
                    &mut problems,
                    "location",
                    incident.location.as_deref(),
                    limits::LEAK_LOCATION,
                );
                let details = text(
                    &mut problems,
                    "details",
                    incident.details.as_deref(),
                    limits::REASON,
                );
                if !problems.is_empty() {
                    return Err(IncidentError::Invalid(problems));
                }
                Ok(vec![IncidentEvent::LeakageIncidentReported {
                    incident_id: incident.incident_id,
                    tenant_id: incident.tenant_id,
                    environment: incident.environment,
                    secret_id: incident.secret_id,
                    path: incident.path,
                    source,
                    location,
                    severity: incident.severity,
                    details,
                    matched_version: incident.matched_version,
                    reported_by: actor,
                    reported_at: at,
                }])
            }
            IncidentCommand::Update {
                status,
                resolution,
                notes,
                actor,
                at,
            } => {
                let reported = self.reported.as_ref().ok_or(IncidentError::NotFound)?;
                if !reported.status.is_open() {
                    return Err(IncidentError::Closed(reported.status));
                }
                let mut problems = Vec::new();
                let resolution = match resolution {
                    Some(text_) => text(&mut problems, "resolution", Some(&text_), limits::REASON),
                    None => reported.resolution.clone(),
                };
                let notes = match notes {
                    Some(text_) => text(&mut problems, "notes", Some(&text_), limits::REASON),
                    None => reported.notes.clone(),
                };
                let status = status.unwrap_or(reported.status);
                if status == IncidentStatus::Open
                    && reported.status == IncidentStatus::Investigating
                {
                    problems.push(FieldProblem::new(
                        "status",
                        "an incident under investigation cannot go back to open",
                    ));
                }
                if !status.is_open() && resolution.is_none() {
                    problems.push(FieldProblem::new(
                        "resolution",
                        "is required to close an incident",
                    ));
                }
                if !problems.is_empty() {
                    return Err(IncidentError::Invalid(problems));
                }
                if status == reported.status
                    && resolution == reported.resolution
                    && notes == reported.notes
                {
                    return Ok(Vec::new());
                }
                Ok(vec![IncidentEvent::LeakageIncidentUpdated {
                    incident_id: reported.id,
                    status,
                    resolution,
                    notes,
                    updated_by: actor,
                    updated_at: at,
                }])
            }
        }
    }
}

impl Aggregate for LeakageIncident {
    const TYPE: &'static str = "LeakageIncident";
    type Command = IncidentCommand;
    type Event = IncidentEvent;
    type Error = IncidentError;
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
            IncidentEvent::LeakageIncidentReported { incident_id, .. } => {
                self.reported = Some(Reported {
                    id: incident_id,
                    status: IncidentStatus::Open,
                    resolution: None,
                    notes: None,
                });
            }
            IncidentEvent::LeakageIncidentUpdated {
                status,
                resolution,
                notes,
                ..
            } => {
                if let Some(reported) = self.reported.as_mut() {
                    reported.status = status;
                    reported.resolution = resolution;
                    reported.notes = notes;
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

    type IncidentTest = TestFramework<LeakageIncident>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn id() -> IncidentId {
        IncidentId::from_uuid(Uuid::from_u128(3))
    }

    fn secret() -> SecretId {
        SecretId::from_uuid(Uuid::from_u128(4))
    }

    fn tenant() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(5))
    }

    fn report(source: &str) -> IncidentCommand {
        IncidentCommand::Report {
            incident: Box::new(NewIncident {
                incident_id: id(),
                tenant_id: tenant(),
                environment: Environment::Live,
                secret_id: secret(),
                path: "app/db".into(),
                source: source.into(),
                location: Some("https://paste.example/x".into()),
                severity: Severity::High,
                details: None,
                matched_version: None,
            }),
            actor: "sec-team".into(),
            at: t0(),
        }
    }

    fn reported() -> IncidentEvent {
        IncidentEvent::LeakageIncidentReported {
            incident_id: id(),
            tenant_id: tenant(),
            environment: Environment::Live,
            secret_id: secret(),
            path: "app/db".into(),
            source: "pastebin".into(),
            location: Some("https://paste.example/x".into()),
            severity: Severity::High,
            details: None,
            matched_version: None,
            reported_by: "sec-team".into(),
            reported_at: t0(),
        }
    }

    fn update(status: IncidentStatus, resolution: Option<&str>) -> IncidentCommand {
        IncidentCommand::Update {
            status: Some(status),
            resolution: resolution.map(str::to_string),
            notes: None,
            actor: "sec-team".into(),
            at: t0(),
        }
    }

    fn updated(status: IncidentStatus, resolution: Option<&str>) -> IncidentEvent {
        IncidentEvent::LeakageIncidentUpdated {
            incident_id: id(),
            status,
            resolution: resolution.map(str::to_string),
            notes: None,
            updated_by: "sec-team".into(),
            updated_at: t0(),
        }
    }

    #[test]
    fn given_nothing_when_a_leak_is_reported_then_an_open_incident_exists() {
        IncidentTest::with(())
            .given_no_previous_events()
            .when(report(" pastebin "))
            .then_expect_events(vec![reported()]);
        IncidentTest::with(())
            .given_no_previous_events()
            .when(report(" "))
            .then_expect_error(IncidentError::Invalid(vec![FieldProblem::new(
                "source",
                "is required",
            )]));
    }

    #[test]
    fn given_an_open_incident_when_investigated_and_resolved_then_it_is_closed_for_good() {
        IncidentTest::with(())
            .given(vec![reported()])
            .when(update(IncidentStatus::Investigating, None))
            .then_expect_events(vec![updated(IncidentStatus::Investigating, None)]);
        IncidentTest::with(())
            .given(vec![reported()])
            .when(update(IncidentStatus::Resolved, None))
            .then_expect_error(IncidentError::Invalid(vec![FieldProblem::new(
                "resolution",
                "is required to close an incident",
            )]));
        let closed = vec![
            reported(),
            updated(IncidentStatus::Resolved, Some("rotated")),
        ];
        IncidentTest::with(())
            .given(closed)
            .when(update(IncidentStatus::Investigating, None))
            .then_expect_error(IncidentError::Closed(IncidentStatus::Resolved));
    }

    #[test]
    fn given_an_investigation_when_set_back_to_open_then_it_is_refused() {
        IncidentTest::with(())
            .given(vec![
                reported(),
                updated(IncidentStatus::Investigating, None),
            ])
            .when(update(IncidentStatus::Open, None))
            .then_expect_error(IncidentError::Invalid(vec![FieldProblem::new(
                "status",
                "an incident under investigation cannot go back to open",
            )]));
    }
}
