use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{FindingCommand, FindingEvent, Severity, Status, Transition};
use crate::text::{limits, optional_text, required_text, FieldProblem, TextLimit};
use crate::FindingId;

/// Why a finding command was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FindingError {
    /// 404 not_found.
    #[error("finding not found")]
    NotFound,
    /// 409 conflict: the id is taken.
    #[error("finding already exists")]
    AlreadyExists,
    /// 409 invalid_transition, naming the current status.
    #[error("cannot {} a finding that is {status}", transition.as_str())]
    InvalidTransition {
        status: Status,
        transition: Transition,
    },
    /// 422 validation_error, one item per field.
    #[error("invalid finding: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
}

fn invalid(field: &str, message: &str) -> FindingError {
    FindingError::Invalid(vec![FieldProblem {
        field: field.into(),
        message: message.into(),
    }])
}

/// The rule for text ([`crate::text`]), refusing as a finding does.
fn required(field: &str, value: &str, limit: TextLimit) -> Result<String, FindingError> {
    required_text(field, value, limit).map_err(|problem| FindingError::Invalid(vec![problem]))
}

fn optional(
    field: &str,
    value: Option<&str>,
    limit: TextLimit,
) -> Result<Option<String>, FindingError> {
    optional_text(field, value, limit).map_err(|problem| FindingError::Invalid(vec![problem]))
}

/// The finding's decision state: only what commands need to decide.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    state: Option<State>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    id: FindingId,
    status: Status,
    severity: Severity,
    occurrences: u64,
    accepted_until: Option<DateTime<Utc>>,
    assignee: Option<String>,
    tickets: BTreeSet<(String, String)>,
    comments: BTreeSet<String>,
}

impl Finding {
    pub fn status(&self) -> Option<Status> {
        self.state.as_ref().map(|s| s.status)
    }

    pub fn severity(&self) -> Option<Severity> {
        self.state.as_ref().map(|s| s.severity)
    }

    pub fn occurrences(&self) -> u64 {
        self.state.as_ref().map_or(0, |s| s.occurrences)
    }

    fn existing(&self) -> Result<&State, FindingError> {
        self.state.as_ref().ok_or(FindingError::NotFound)
    }

    /// The status after `transition`, or the 409 that names the current one.
    fn moved(state: &State, transition: Transition) -> Result<Status, FindingError> {
        state
            .status
            .after(transition)
            .ok_or(FindingError::InvalidTransition {
                status: state.status,
                transition,
            })
    }

    /// The events a command produces; empty when it changes nothing.
    fn decide(&self, command: FindingCommand) -> Result<Vec<FindingEvent>, FindingError> {
        use FindingCommand as C;
        use FindingEvent as E;
        if let C::Ingest(new) = command {
            if self.state.is_some() {
                return Err(FindingError::AlreadyExists);
            }
            // Valid by construction (`ValidDetails`, `Fingerprint`).
            let new = *new;
            return Ok(vec![E::FindingIngested {
                finding_id: new.finding_id,
                asset_id: new.asset_id,
                details: Box::new(new.details.into_inner()),
                fingerprint: new.fingerprint.into_string(),
                observed_at: new.observed_at,
            }]);
        }
        let state = self.existing()?;
        let events = match command {
            C::Ingest(_) => unreachable!("handled above"),
            C::Reobserve { observed_at } => {
                let mut events = vec![E::FindingReobserved {
                    occurrences: state.occurrences + 1,
                    observed_at,
                }];
                if let Some(Status::Open) = state.status.after(Transition::Regress) {
                    events.push(E::FindingReopened {
                        reason: Some("seen again after remediation".into()),
                        regression: true,
                        at: observed_at,
                    });
                }
                events
            }
            C::UpdateReport { details, at } => {
                let details = details.into_inner();
                let mut events = Vec::new();
                if details.severity != state.severity {
                    events.push(E::FindingSeverityChanged {
                        from: state.severity,
                        to: details.severity,
                        reason: Some(format!("reported by {}", details.product)),
                        at,
                    });
                }
                events.insert(
                    0,
                    E::FindingReportUpdated {
                        details: Box::new(details),
                        at,
                    },
                );
                events
            }
            C::ChangeSeverity {
                severity,
                reason,
                at,
            } => {
                let reason = optional("reason", reason.as_deref(), limits::REASON)?;
                if severity == state.severity {
                    vec![]
                } else {
                    vec![E::FindingSeverityChanged {
                        from: state.severity,
                        to: severity,
                        reason,
                        at,
                    }]
                }
            }
            C::Confirm { at } => {
                Self::moved(state, Transition::Confirm)?;
                vec![E::FindingConfirmed { at }]
            }
            C::Dismiss { reason, at } => {
                Self::moved(state, Transition::Dismiss)?;
                vec![E::FindingDismissed {
                    reason: required("reason", &reason, limits::REASON)?,
                    at,
                }]
            }
            C::AcceptRisk {
                reason,
                expires_at,
                at,
            } => {
                Self::moved(state, Transition::AcceptRisk)?;
                let reason = required("reason", &reason, limits::REASON)?;
                if expires_at <= at {
                    return Err(invalid("expires_at", "must be in the future"));
                }
                if expires_at > at + Duration::days(365) {
                    return Err(invalid("expires_at", "must be within a year"));
                }
                vec![E::FindingRiskAccepted {
                    reason,
                    expires_at,
                    at,
                }]
            }
            C::Remediate { at } => {
                Self::moved(state, Transition::Remediate)?;
                vec![E::FindingRemediated { reason: None, at }]
            }
            C::Close { reason, at } => match state.status {
                Status::Open | Status::Confirmed => vec![E::FindingRemediated {
                    reason: Some(required("reason", &reason, limits::REASON)?),
                    at,
                }],
                // Triaged (dismissed, accepted) or closed already: untouched.
                _ => vec![],
            },
            C::Reopen { reason, at } => {
                Self::moved(state, Transition::Reopen)?;
                vec![E::FindingReopened {
                    reason: optional("reason", reason.as_deref(), limits::REASON)?,
                    regression: false,
                    at,
                }]
            }
            C::ExpireRiskAcceptance { at } => match state.accepted_until {
                Some(until) if state.status == Status::RiskAccepted && until <= at => {
                    vec![E::FindingRiskAcceptanceExpired { at }]
                }
                _ => vec![],
            },
            C::Assign { assignee, at } => {
                let assignee = match assignee {
                    Some(a) => Some(required("assignee", &a, limits::ASSIGNEE)?),
                    None => None,
                };
                if assignee == state.assignee {
                    vec![]
                } else {
                    vec![E::FindingAssigned { assignee, at }]
                }
            }
            C::LinkTicket {
                system,
                ticket_id,
                at,
            } => {
                let system = required("system", &system, limits::TICKET_SYSTEM)?;
                let ticket_id = required("ticket_id", &ticket_id, limits::TICKET_ID)?;
                if state.tickets.contains(&(system.clone(), ticket_id.clone())) {
                    vec![]
                } else {
                    vec![E::FindingTicketLinked {
                        system,
                        ticket_id,
                        at,
                    }]
                }
            }
            C::Comment {
                comment_id,
                body,
                at,
            } => {
                let body = required("body", &body, limits::COMMENT_BODY)?;
                if state.comments.contains(&comment_id) {
                    vec![]
                } else {
                    vec![E::FindingCommented {
                        comment_id,
                        body,
                        at,
                    }]
                }
            }
        };
        Ok(events)
    }
}

impl Aggregate for Finding {
    const TYPE: &'static str = "Finding";
    type Command = FindingCommand;
    type Event = FindingEvent;
    type Error = FindingError;
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
        use FindingEvent as E;
        if let E::FindingIngested {
            finding_id,
            details,
            ..
        } = &event
        {
            self.state = Some(State {
                id: *finding_id,
                status: Status::Open,
                severity: details.severity,
                occurrences: 1,
                accepted_until: None,
                assignee: None,
                tickets: BTreeSet::new(),
                comments: BTreeSet::new(),
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            E::FindingIngested { .. } | E::FindingReportUpdated { .. } => {}
            E::FindingReobserved { occurrences, .. } => state.occurrences = occurrences,
            E::FindingSeverityChanged { to, .. } => state.severity = to,
            E::FindingConfirmed { .. } => state.status = Status::Confirmed,
            E::FindingDismissed { .. } => state.status = Status::Dismissed,
            E::FindingRiskAccepted { expires_at, .. } => {
                state.status = Status::RiskAccepted;
                state.accepted_until = Some(expires_at);
            }
            E::FindingRiskAcceptanceExpired { .. } | E::FindingReopened { .. } => {
                state.status = Status::Open;
                state.accepted_until = None;
            }
            E::FindingRemediated { .. } => {
                state.status = Status::Remediated;
                state.accepted_until = None;
            }
            E::FindingAssigned { assignee, .. } => state.assignee = assignee,
            E::FindingTicketLinked {
                system, ticket_id, ..
            } => {
                state.tickets.insert((system, ticket_id));
            }
            E::FindingCommented { comment_id, .. } => {
                state.comments.insert(comment_id);
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
    use crate::finding::{FindingDetails, Fingerprint, NewFinding};
    use crate::AssetId;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn details() -> FindingDetails {
        FindingDetails {
            product: "custom".into(),
            category: "vulnerability".into(),
            title: " SQL Injection ".into(),
            description: String::new(),
            severity: Severity::High,
            asset_identifier: "app.example.com".into(),
            likelihood: Some(0.8),
            impact: Some(0.9),
            cve: Some("cve-2024-12345".into()),
            cvss_score: Some(8.1),
            cwe: Some("89".into()),
            location: None,
            references: vec![],
            tags: vec!["Web".into(), "web".into(), "pci".into()],
            scope: None,
        }
    }

    fn ingest() -> FindingCommand {
        FindingCommand::Ingest(Box::new(NewFinding {
            finding_id: FindingId::from_uuid(Uuid::from_u128(1)),
            asset_id: AssetId::from_uuid(Uuid::from_u128(2)),
            details: details().validated().unwrap(),
            fingerprint: Fingerprint::parse("fp").unwrap(),
            observed_at: t0(),
        }))
    }

    fn ingested() -> FindingEvent {
        FindingEvent::FindingIngested {
            finding_id: FindingId::from_uuid(Uuid::from_u128(1)),
            asset_id: AssetId::from_uuid(Uuid::from_u128(2)),
            details: Box::new(details().validated().unwrap().into_inner()),
            fingerprint: "fp".into(),
            observed_at: t0(),
        }
    }

    /// The events that bring a new finding to `status`.
    fn history(status: Status) -> Vec<FindingEvent> {
        use FindingEvent as E;
        let mut events = vec![ingested()];
        match status {
            Status::Open => {}
            Status::Confirmed => events.push(E::FindingConfirmed { at: t0() }),
            Status::Dismissed => events.push(E::FindingDismissed {
                reason: "noise".into(),
                at: t0(),
            }),
            Status::RiskAccepted => events.push(E::FindingRiskAccepted {
                reason: "compensating control".into(),
                expires_at: t0() + Duration::days(30),
                at: t0(),
            }),
            Status::Remediated => events.push(E::FindingRemediated {
                reason: None,
                at: t0(),
            }),
        }
        events
    }

    async fn decide(
        given: Vec<FindingEvent>,
        when: FindingCommand,
    ) -> Result<Vec<FindingEvent>, FindingError> {
        TestFramework::<Finding>::with(())
            .given(given)
            .when_async(when)
            .await
            .inspect_result()
    }

    fn command_for(transition: Transition) -> FindingCommand {
        match transition {
            Transition::Confirm => FindingCommand::Confirm { at: t0() },
            Transition::Dismiss => FindingCommand::Dismiss {
                reason: "false positive".into(),
                at: t0(),
            },
            Transition::AcceptRisk => FindingCommand::AcceptRisk {
                reason: "WAF rule".into(),
                expires_at: t0() + Duration::days(90),
                at: t0(),
            },
            Transition::Remediate => FindingCommand::Remediate { at: t0() },
            Transition::Reopen => FindingCommand::Reopen {
                reason: None,
                at: t0(),
            },
            Transition::ExpireAcceptance | Transition::Regress => {
                unreachable!("not a user command")
            }
        }
    }

    #[tokio::test]
    async fn ingesting_records_the_validated_details() {
        TestFramework::<Finding>::with(())
            .given_no_previous_events()
            .when_async(ingest())
            .await
            .then_expect_events(vec![ingested()]);
        let FindingEvent::FindingIngested { details, .. } = ingested() else {
            unreachable!()
        };
        assert_eq!(details.title, "SQL Injection");
        assert_eq!(
            (details.cve.as_deref(), details.cwe.as_deref()),
            (Some("CVE-2024-12345"), Some("CWE-89"))
        );
        assert_eq!(details.tags, vec!["pci".to_string(), "web".to_string()]);
    }

    #[tokio::test]
    async fn a_finding_is_ingested_once() {
        assert_eq!(
            decide(vec![ingested()], ingest()).await,
            Err(FindingError::AlreadyExists)
        );
    }

    #[tokio::test]
    async fn invalid_details_name_every_bad_field() {
        let mut bad = details();
        bad.title = "  ".into();
        bad.likelihood = Some(1.5);
        bad.cvss_score = Some(11.0);
        bad.cve = Some("CVE-24-1".into());
        // Parsed once: an ingest can only carry details that passed.
        let Err(FindingError::Invalid(problems)) = bad.validated() else {
            panic!("expected 422")
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["title", "likelihood", "cvss_score", "cve"]);
    }

    /// Every user transition from every status: allowed ones record their
    /// event, the others are refused naming the current status.
    #[tokio::test]
    async fn every_transition_follows_the_table() {
        let transitions = [
            Transition::Confirm,
            Transition::Dismiss,
            Transition::AcceptRisk,
            Transition::Remediate,
            Transition::Reopen,
        ];
        for status in Status::ALL {
            for transition in transitions {
                let result = decide(history(status), command_for(transition)).await;
                match status.after(transition) {
                    Some(_) => assert!(
                        matches!(result.as_deref(), Ok([_])),
                        "{status} → {} should record one event: {result:?}",
                        transition.as_str()
                    ),
                    None => assert_eq!(
                        result,
                        Err(FindingError::InvalidTransition { status, transition }),
                        "{status} → {} should be refused",
                        transition.as_str()
                    ),
                }
            }
        }
    }

    #[test]
    fn the_table_has_the_documented_shape() {
        use Status::*;
        use Transition::*;
        assert_eq!(Open.after(Confirm), Some(Confirmed));
        assert_eq!(Confirmed.after(Confirm), None);
        assert_eq!(Dismissed.after(Remediate), None);
        assert_eq!(RiskAccepted.after(Remediate), Some(Remediated));
        assert_eq!(Remediated.after(Dismiss), None);
        assert_eq!(Open.after(Reopen), None);
        assert_eq!(Remediated.after(Regress), Some(Open));
        assert_eq!(Open.after(Regress), None);
        let refused = FindingError::InvalidTransition {
            status: Dismissed,
            transition: Confirm,
        };
        assert_eq!(
            refused.to_string(),
            "cannot confirm a finding that is dismissed"
        );
    }

    #[tokio::test]
    async fn dismissing_needs_a_reason() {
        let command = FindingCommand::Dismiss {
            reason: " ".into(),
            at: t0(),
        };
        assert_eq!(
            decide(history(Status::Open), command).await,
            Err(invalid("reason", "is required"))
        );
    }

    #[tokio::test]
    async fn risk_acceptance_needs_a_reason_and_an_expiry_within_a_year() {
        let accept = |days: i64, reason: &str| FindingCommand::AcceptRisk {
            reason: reason.into(),
            expires_at: t0() + Duration::days(days),
            at: t0(),
        };
        assert_eq!(
            decide(history(Status::Open), accept(0, "ok")).await,
            Err(invalid("expires_at", "must be in the future"))
        );
        assert_eq!(
            decide(history(Status::Open), accept(366, "ok")).await,
            Err(invalid("expires_at", "must be within a year"))
        );
        assert_eq!(
            decide(history(Status::Open), accept(30, "")).await,
            Err(invalid("reason", "is required"))
        );
        assert!(decide(history(Status::Open), accept(365, "ok"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn an_accepted_risk_expires_only_once_its_date_has_passed() {
        let expire = |at| FindingCommand::ExpireRiskAcceptance { at };
        let accepted = history(Status::RiskAccepted);
        assert_eq!(
            decide(accepted.clone(), expire(t0() + Duration::days(29))).await,
            Ok(vec![])
        );
        let at = t0() + Duration::days(30);
        assert_eq!(
            decide(accepted.clone(), expire(at)).await,
            Ok(vec![FindingEvent::FindingRiskAcceptanceExpired { at }])
        );
        // Idempotent: a second firing, or one after a reopen, records nothing.
        let mut expired = accepted;
        expired.push(FindingEvent::FindingRiskAcceptanceExpired { at });
        assert_eq!(decide(expired, expire(at)).await, Ok(vec![]));
        assert_eq!(decide(history(Status::Open), expire(at)).await, Ok(vec![]));
    }

    #[tokio::test]
    async fn close_old_remediates_open_findings_only() {
        let close = || FindingCommand::Close {
            reason: "no longer in the report of ingestion job job_1".into(),
            at: t0(),
        };
        for status in [Status::Open, Status::Confirmed] {
            assert_eq!(
                decide(history(status), close()).await,
                Ok(vec![FindingEvent::FindingRemediated {
                    reason: Some("no longer in the report of ingestion job job_1".into()),
                    at: t0()
                }])
            );
        }
        for status in [Status::Dismissed, Status::RiskAccepted, Status::Remediated] {
            assert_eq!(
                decide(history(status), close()).await,
                Ok(vec![]),
                "{status:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_newer_report_updates_scanner_fields_and_its_severity() {
        let mut reported = details();
        reported.title = "SQL injection in /login".into();
        reported.severity = Severity::Critical;
        let valid = reported.clone().validated().unwrap();
        let events = decide(
            history(Status::Dismissed),
            FindingCommand::UpdateReport {
                details: Box::new(valid),
                at: t0(),
            },
        )
        .await
        .unwrap();
        let types: Vec<String> = events
            .iter()
            .map(cqrs_es::DomainEvent::event_type)
            .collect();
        assert_eq!(types, ["FindingReportUpdated", "FindingSeverityChanged"]);
        // Triage is the user's: the status stays.
        let mut finding = Finding::default();
        for event in history(Status::Dismissed).into_iter().chain(events) {
            finding.apply(event);
        }
        assert_eq!(finding.status(), Some(Status::Dismissed));
        assert_eq!(finding.severity(), Some(Severity::Critical));
    }

    #[tokio::test]
    async fn seeing_a_finding_again_counts_it_and_reopens_a_remediated_one() {
        let later = t0() + Duration::hours(1);
        assert_eq!(
            decide(
                history(Status::Open),
                FindingCommand::Reobserve { observed_at: later }
            )
            .await,
            Ok(vec![FindingEvent::FindingReobserved {
                occurrences: 2,
                observed_at: later
            }])
        );
        assert_eq!(
            decide(
                history(Status::Remediated),
                FindingCommand::Reobserve { observed_at: later }
            )
            .await,
            Ok(vec![
                FindingEvent::FindingReobserved {
                    occurrences: 2,
                    observed_at: later
                },
                FindingEvent::FindingReopened {
                    reason: Some("seen again after remediation".into()),
                    regression: true,
                    at: later
                },
            ])
        );
        let dismissed = decide(
            history(Status::Dismissed),
            FindingCommand::Reobserve { observed_at: later },
        )
        .await;
        assert_eq!(
            dismissed.map(|e| e.len()),
            Ok(1),
            "a dismissed finding stays dismissed"
        );
    }

    #[tokio::test]
    async fn repeated_assignments_links_and_comments_record_nothing() {
        let assign = FindingCommand::Assign {
            assignee: Some("alice".into()),
            at: t0(),
        };
        let assigned = FindingEvent::FindingAssigned {
            assignee: Some("alice".into()),
            at: t0(),
        };
        assert_eq!(
            decide(history(Status::Open), assign.clone()).await,
            Ok(vec![assigned.clone()])
        );
        let mut given = history(Status::Open);
        given.push(assigned);
        assert_eq!(decide(given, assign).await, Ok(vec![]));
        let link = FindingCommand::LinkTicket {
            system: "jira".into(),
            ticket_id: "SEC-1".into(),
            at: t0(),
        };
        let linked = decide(history(Status::Open), link.clone()).await.unwrap();
        let mut given = history(Status::Open);
        given.extend(linked);
        assert_eq!(decide(given, link).await, Ok(vec![]));
        let comment = FindingCommand::Comment {
            comment_id: "c1".into(),
            body: "looking".into(),
            at: t0(),
        };
        let commented = decide(history(Status::Open), comment.clone())
            .await
            .unwrap();
        let mut given = history(Status::Open);
        given.extend(commented);
        assert_eq!(decide(given, comment).await, Ok(vec![]));
    }

    #[tokio::test]
    async fn severity_changes_record_both_levels() {
        let change = FindingCommand::ChangeSeverity {
            severity: Severity::Critical,
            reason: None,
            at: t0(),
        };
        assert_eq!(
            decide(history(Status::Open), change).await,
            Ok(vec![FindingEvent::FindingSeverityChanged {
                from: Severity::High,
                to: Severity::Critical,
                reason: None,
                at: t0()
            }])
        );
        let same = FindingCommand::ChangeSeverity {
            severity: Severity::High,
            reason: None,
            at: t0(),
        };
        assert_eq!(decide(history(Status::Open), same).await, Ok(vec![]));
    }

    /// The fields a refused command names.
    async fn refused_fields(given: Vec<FindingEvent>, when: FindingCommand) -> Vec<String> {
        match decide(given, when).await {
            Err(FindingError::Invalid(problems)) => problems.into_iter().map(|p| p.field).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn given_an_open_finding_when_a_reason_is_too_long_or_has_nul_then_it_is_refused() {
        let long = "x".repeat(900_000);
        let reopen = |reason: &str| FindingCommand::Reopen {
            reason: Some(reason.into()),
            at: t0(),
        };
        let change = |reason: &str| FindingCommand::ChangeSeverity {
            severity: Severity::Low,
            reason: Some(reason.into()),
            at: t0(),
        };
        for reason in [long.as_str(), "a\0b"] {
            assert_eq!(
                refused_fields(history(Status::Open), change(reason)).await,
                ["reason"]
            );
            assert_eq!(
                refused_fields(history(Status::Dismissed), reopen(reason)).await,
                ["reason"]
            );
            let dismiss = FindingCommand::Dismiss {
                reason: reason.into(),
                at: t0(),
            };
            assert_eq!(
                refused_fields(history(Status::Open), dismiss).await,
                ["reason"]
            );
        }
        // A multi-line reason is fine.
        assert!(decide(history(Status::Open), change("first\nsecond"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn given_an_open_finding_when_a_comment_or_ticket_or_assignee_has_a_control_character_then_it_is_refused(
    ) {
        let comment = FindingCommand::Comment {
            comment_id: "c1".into(),
            body: "nul \0 here".into(),
            at: t0(),
        };
        assert_eq!(
            refused_fields(history(Status::Open), comment).await,
            ["body"]
        );
        let link = FindingCommand::LinkTicket {
            system: "jira".into(),
            ticket_id: "SEC-1\nInjected: yes".into(),
            at: t0(),
        };
        assert_eq!(
            refused_fields(history(Status::Open), link).await,
            ["ticket_id"]
        );
        let assign = FindingCommand::Assign {
            assignee: Some("bob\u{1b}[31m".into()),
            at: t0(),
        };
        assert_eq!(
            refused_fields(history(Status::Open), assign).await,
            ["assignee"]
        );
        let lines = FindingCommand::Comment {
            comment_id: "c2".into(),
            body: "line one\n\tline two".into(),
            at: t0(),
        };
        assert!(decide(history(Status::Open), lines).await.is_ok());
    }

    #[tokio::test]
    async fn given_no_finding_when_ingested_details_carry_nul_then_every_such_field_is_named() {
        let mut bad = details();
        bad.description = "desc \0".into();
        bad.title = "ti\u{85}tle".into();
        bad.tags = vec!["ok".into(), "t\0".into()];
        let _ = bad;
        assert_eq!(
            Fingerprint::parse("fp\0").map_err(|p| p.field),
            Err("fingerprint".to_string())
        );
        let mut bad = details();
        bad.description = "desc \0".into();
        bad.title = "ti\u{85}tle".into();
        bad.tags = vec!["ok".into(), "t\0".into()];
        assert_eq!(
            bad.validated().map_err(|e| match e {
                FindingError::Invalid(problems) =>
                    problems.into_iter().map(|p| p.field).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }),
            Err(vec![
                "title".to_string(),
                "description".into(),
                "tags[1]".into()
            ])
        );
    }

    #[tokio::test]
    async fn commands_to_an_unknown_finding_are_not_found() {
        assert_eq!(
            decide(vec![], FindingCommand::Confirm { at: t0() }).await,
            Err(FindingError::NotFound)
        );
    }
}
