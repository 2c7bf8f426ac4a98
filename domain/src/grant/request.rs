//! The AccessRequest aggregate: one principal's request for access to one
//! resource, its reviews, and — once approved — the grant it became,
//! active from the approval until `expires_at`.
//!
//! Teleport's rules: the requester never reviews their own request; each
//! reviewer reviews once; any deny decides at once; `approved` only when
//! the policy's N distinct approvals are in; nothing is reviewed after the
//! decision; revoke ends a grant at once.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{AccessError, PolicyTerms};
use crate::text::{limits, optional_text, required_text, FieldProblem, MAX_LIST_ITEMS};
use crate::{AccessRequestId, Environment, Scope, TenantId};

/// Who approves a request whose policy's auto-approval conditions held.
pub const AUTO_APPROVER: &str = "system:auto-approve";

/// Where a request stands. `approved` is the grant, active until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Approved,
    Denied,
    Withdrawn,
    /// Never approved in time (the policy's request TTL passed).
    Expired,
    /// The access time is over.
    Ended,
    Revoked,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Pending,
        RequestStatus::Approved,
        RequestStatus::Denied,
        RequestStatus::Withdrawn,
        RequestStatus::Expired,
        RequestStatus::Ended,
        RequestStatus::Revoked,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Withdrawn => "withdrawn",
            RequestStatus::Expired => "expired",
            RequestStatus::Ended => "ended",
            RequestStatus::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RequestStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RequestStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = RequestStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown status '{s}'; expected one of {}", names.join(", "))
            })
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

/// A request as the edge parsed it, with the terms of the policy that
/// covers its resource type (None: no enabled policy does) and, when the
/// policy's auto-approval conditions held at request time, why.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAccessRequest {
    pub request_id: AccessRequestId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub requester: String,
    pub resource_type: String,
    pub resource_id: String,
    pub permissions: Vec<String>,
    pub justification: String,
    pub duration_minutes: u32,
    pub ticket_reference: Option<String>,
    pub policy: Option<PolicyTerms>,
    pub auto_approval: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RequestCommand {
    Request {
        request: Box<NewAccessRequest>,
        at: DateTime<Utc>,
    },
    Review {
        reviewer: String,
        reviewer_scopes: Vec<Scope>,
        decision: Decision,
        reason: Option<String>,
        modified_duration_minutes: Option<u32>,
        at: DateTime<Utc>,
    },
    Withdraw {
        by: String,
        at: DateTime<Utc>,
    },
    Revoke {
        by: String,
        reason: String,
        at: DateTime<Utc>,
    },
    /// By the scheduler: a pending request past its TTL expires, a grant
    /// past its `expires_at` ends. [`AccessError::NotDue`] otherwise.
    Expire {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestEvent {
    AccessRequested {
        request_id: AccessRequestId,
        tenant_id: TenantId,
        environment: Environment,
        requester: String,
        resource_type: String,
        resource_id: String,
        permissions: Vec<String>,
        justification: String,
        duration_minutes: u32,
        ticket_reference: Option<String>,
        policy: PolicyTerms,
        /// When the request expires unless decided.
        pending_until: DateTime<Utc>,
        requested_at: DateTime<Utc>,
    },
    AccessReviewed {
        request_id: AccessRequestId,
        reviewer: String,
        decision: Decision,
        reason: Option<String>,
        modified_duration_minutes: Option<u32>,
        reviewed_at: DateTime<Utc>,
    },
    /// The grant: active from `approved_at` until `expires_at`.
    AccessApproved {
        request_id: AccessRequestId,
        approvers: Vec<String>,
        reason: Option<String>,
        duration_minutes: u32,
        expires_at: DateTime<Utc>,
        approved_at: DateTime<Utc>,
    },
    AccessDenied {
        request_id: AccessRequestId,
        by: String,
        reason: Option<String>,
        denied_at: DateTime<Utc>,
    },
    AccessWithdrawn {
        request_id: AccessRequestId,
        withdrawn_at: DateTime<Utc>,
    },
    AccessRevoked {
        request_id: AccessRequestId,
        by: String,
        reason: String,
        revoked_at: DateTime<Utc>,
    },
    /// Pending past the policy's request TTL.
    AccessRequestExpired {
        request_id: AccessRequestId,
        expired_at: DateTime<Utc>,
    },
    /// The grant's time is over (recorded by the scheduler; the grant was
    /// inactive from `expires_at` on, whenever this lands).
    AccessEnded {
        request_id: AccessRequestId,
        expires_at: DateTime<Utc>,
        recorded_at: DateTime<Utc>,
    },
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> String {
        match self {
            RequestEvent::AccessRequested { .. } => "AccessRequested",
            RequestEvent::AccessReviewed { .. } => "AccessReviewed",
            RequestEvent::AccessApproved { .. } => "AccessApproved",
            RequestEvent::AccessDenied { .. } => "AccessDenied",
            RequestEvent::AccessWithdrawn { .. } => "AccessWithdrawn",
            RequestEvent::AccessRevoked { .. } => "AccessRevoked",
            RequestEvent::AccessRequestExpired { .. } => "AccessRequestExpired",
            RequestEvent::AccessEnded { .. } => "AccessEnded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// The request's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRequest {
    made: Option<Made>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Made {
    id: AccessRequestId,
    requester: String,
    policy: PolicyTerms,
    duration_minutes: u32,
    pending_until: DateTime<Utc>,
    status: RequestStatus,
    reviewers: BTreeSet<String>,
    approvers: Vec<String>,
    /// The shortest duration an approver asked for, if any did.
    modified_duration_minutes: Option<u32>,
    expires_at: Option<DateTime<Utc>>,
}

impl Made {
    /// The status at `at`: an approved grant past its `expires_at` has
    /// ended, a pending request past its TTL has expired, whether or not
    /// the scheduler has recorded it.
    fn status_at(&self, at: DateTime<Utc>) -> RequestStatus {
        match self.status {
            RequestStatus::Approved if self.expires_at.is_some_and(|end| end <= at) => {
                RequestStatus::Ended
            }
            RequestStatus::Pending if self.pending_until <= at => RequestStatus::Expired,
            status => status,
        }
    }

    fn refuse(&self, action: &'static str, at: DateTime<Utc>) -> AccessError {
        AccessError::InvalidTransition {
            action,
            status: self.status_at(at),
        }
    }

    fn may_approve(&self, reviewer: &str, scopes: &[Scope]) -> bool {
        let named = self
            .policy
            .approver_principals
            .iter()
            .any(|p| p == reviewer);
        let scoped = if self.policy.approver_scopes.is_empty()
            && self.policy.approver_principals.is_empty()
        {
            // No approvers named: keys with `access:approve`.
            scopes.contains(&Scope::AccessApprove)
        } else {
            self.policy
                .approver_scopes
                .iter()
                .any(|scope| scopes.contains(scope))
        };
        named || scoped
    }
}

fn valid_permissions(problems: &mut Vec<FieldProblem>, permissions: &[String]) -> Vec<String> {
    if permissions.is_empty() {
        problems.push(FieldProblem::new("permissions", "needs at least 1"));
    }
    if permissions.len() > MAX_LIST_ITEMS {
        problems.push(FieldProblem::new(
            "permissions",
            format!("at most {MAX_LIST_ITEMS}"),
        ));
        return Vec::new();
    }
    let mut valid: Vec<String> = permissions
        .iter()
        .enumerate()
        .filter_map(|(i, permission)| {
            required_text(
                &format!("permissions[{i}]"),
                permission,
                limits::ACCESS_TERM,
            )
            .map_err(|problem| problems.push(problem))
            .ok()
        })
        .collect();
    valid.sort();
    valid.dedup();
    valid
}

impl AccessRequest {
    pub fn status_at(&self, at: DateTime<Utc>) -> Option<RequestStatus> {
        self.made.as_ref().map(|made| made.status_at(at))
    }

    /// Whether the grant gives access at `at`.
    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.status_at(at) == Some(RequestStatus::Approved)
    }

    fn made(&self) -> Result<&Made, AccessError> {
        self.made.as_ref().ok_or(AccessError::NotFound)
    }

    pub fn decide(&self, command: RequestCommand) -> Result<Vec<RequestEvent>, AccessError> {
        if let RequestCommand::Request { request, at } = command {
            if self.made.is_some() {
                return Err(AccessError::AlreadyExists);
            }
            return make(*request, at);
        }
        let made = self.made()?;
        let id = made.id;
        Ok(match command {
            RequestCommand::Request { .. } => unreachable!("handled above"),
            RequestCommand::Review {
                reviewer,
                reviewer_scopes,
                decision,
                reason,
                modified_duration_minutes,
                at,
            } => {
                if made.status_at(at) != RequestStatus::Pending {
                    return Err(made.refuse("review", at));
                }
                if reviewer == made.requester {
                    return Err(AccessError::SelfReview);
                }
                if !made.may_approve(&reviewer, &reviewer_scopes) {
                    return Err(AccessError::NotApprover(reviewer));
                }
                if made.reviewers.contains(&reviewer) {
                    return Err(AccessError::AlreadyReviewed(reviewer));
                }
                let mut problems = Vec::new();
                let reason = optional_text("reason", reason.as_deref(), limits::REASON)
                    .map_err(|p| problems.push(p))
                    .ok()
                    .flatten();
                if let Some(minutes) = modified_duration_minutes {
                    if minutes == 0 || minutes > made.duration_minutes {
                        problems.push(FieldProblem::new(
                            "modified_duration",
                            format!(
                                "must be 1 to {} (the requested duration)",
                                made.duration_minutes
                            ),
                        ));
                    }
                }
                if !problems.is_empty() {
                    return Err(AccessError::Invalid(problems));
                }
                let mut events = vec![RequestEvent::AccessReviewed {
                    request_id: id,
                    reviewer: reviewer.clone(),
                    decision,
                    reason: reason.clone(),
                    modified_duration_minutes,
                    reviewed_at: at,
                }];
                match decision {
                    Decision::Deny => events.push(RequestEvent::AccessDenied {
                        request_id: id,
                        by: reviewer,
                        reason,
                        denied_at: at,
                    }),
                    Decision::Approve => {
                        let mut approvers = made.approvers.clone();
                        approvers.push(reviewer);
                        if approvers.len() as u32 >= made.policy.approvals_required {
                            let duration = [
                                Some(made.duration_minutes),
                                made.modified_duration_minutes,
                                modified_duration_minutes,
                            ]
                            .into_iter()
                            .flatten()
                            .min()
                            .unwrap_or(made.duration_minutes);
                            events.push(RequestEvent::AccessApproved {
                                request_id: id,
                                approvers,
                                reason,
                                duration_minutes: duration,
                                expires_at: at + Duration::minutes(i64::from(duration)),
                                approved_at: at,
                            });
                        }
                    }
                }
                events
            }
            RequestCommand::Withdraw { by, at } => {
                if by != made.requester {
                    return Err(AccessError::NotRequester);
                }
                if made.status_at(at) != RequestStatus::Pending {
                    return Err(made.refuse("withdraw", at));
                }
                vec![RequestEvent::AccessWithdrawn {
                    request_id: id,
                    withdrawn_at: at,
                }]
            }
            RequestCommand::Revoke { by, reason, at } => {
                if made.status_at(at) != RequestStatus::Approved {
                    return Err(made.refuse("revoke", at));
                }
                let reason = required_text("reason", &reason, limits::REASON)
                    .map_err(|problem| AccessError::Invalid(vec![problem]))?;
                vec![RequestEvent::AccessRevoked {
                    request_id: id,
                    by,
                    reason,
                    revoked_at: at,
                }]
            }
            RequestCommand::Expire { at } => match (made.status, made.status_at(at)) {
                (RequestStatus::Pending, RequestStatus::Expired) => {
                    vec![RequestEvent::AccessRequestExpired {
                        request_id: id,
                        expired_at: at,
                    }]
                }
                (RequestStatus::Approved, RequestStatus::Ended) => {
                    vec![RequestEvent::AccessEnded {
                        request_id: id,
                        expires_at: made.expires_at.unwrap_or(at),
                        recorded_at: at,
                    }]
                }
                _ => return Err(AccessError::NotDue),
            },
        })
    }
}

/// The events of a new request: refused without a policy or beyond its
/// terms; approved at once when auto-approval held.
fn make(request: NewAccessRequest, at: DateTime<Utc>) -> Result<Vec<RequestEvent>, AccessError> {
    let mut problems = Vec::new();
    let text = |problems: &mut Vec<FieldProblem>, field: &str, value: &str, limit| {
        required_text(field, value, limit)
            .map_err(|p| problems.push(p))
            .unwrap_or_default()
    };
    let resource_type = text(
        &mut problems,
        "resource_type",
        &request.resource_type,
        limits::ACCESS_TERM,
    );
    let resource_id = text(
        &mut problems,
        "resource_id",
        &request.resource_id,
        limits::RESOURCE_ID,
    );
    let justification = text(
        &mut problems,
        "justification",
        &request.justification,
        limits::JUSTIFICATION,
    );
    let ticket_reference = optional_text(
        "ticket_reference",
        request.ticket_reference.as_deref(),
        limits::TICKET_REFERENCE,
    )
    .map_err(|p| problems.push(p))
    .ok()
    .flatten();
    let permissions = valid_permissions(&mut problems, &request.permissions);
    if !problems.is_empty() {
        return Err(AccessError::Invalid(problems));
    }
    let Some(policy) = request.policy else {
        return Err(AccessError::NoPolicy(resource_type));
    };
    if request.duration_minutes == 0 || request.duration_minutes > policy.max_duration_minutes {
        return Err(AccessError::invalid(
            "duration_minutes",
            format!(
                "must be 1 to {} (the policy's maximum)",
                policy.max_duration_minutes
            ),
        ));
    }
    let pending_until = at + Duration::minutes(i64::from(policy.request_ttl_minutes));
    let mut events = vec![RequestEvent::AccessRequested {
        request_id: request.request_id,
        tenant_id: request.tenant_id,
        environment: request.environment,
        requester: request.requester,
        resource_type,
        resource_id,
        permissions,
        justification,
        duration_minutes: request.duration_minutes,
        ticket_reference,
        policy,
        pending_until,
        requested_at: at,
    }];
    if let Some(reason) = request.auto_approval {
        events.push(RequestEvent::AccessApproved {
            request_id: request.request_id,
            approvers: vec![AUTO_APPROVER.to_string()],
            reason: Some(reason),
            duration_minutes: request.duration_minutes,
            expires_at: at + Duration::minutes(i64::from(request.duration_minutes)),
            approved_at: at,
        });
    }
    Ok(events)
}

impl Aggregate for AccessRequest {
    const TYPE: &'static str = "AccessRequest";
    type Command = RequestCommand;
    type Event = RequestEvent;
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
        if let RequestEvent::AccessRequested {
            request_id,
            requester,
            duration_minutes,
            policy,
            pending_until,
            ..
        } = event
        {
            self.made = Some(Made {
                id: request_id,
                requester,
                policy,
                duration_minutes,
                pending_until,
                status: RequestStatus::Pending,
                reviewers: BTreeSet::new(),
                approvers: Vec::new(),
                modified_duration_minutes: None,
                expires_at: None,
            });
            return;
        }
        let Some(made) = self.made.as_mut() else {
            return;
        };
        match event {
            RequestEvent::AccessRequested { .. } => {}
            RequestEvent::AccessReviewed {
                reviewer,
                decision,
                modified_duration_minutes,
                ..
            } => {
                made.reviewers.insert(reviewer.clone());
                if decision == Decision::Approve {
                    made.approvers.push(reviewer);
                    made.modified_duration_minutes =
                        [made.modified_duration_minutes, modified_duration_minutes]
                            .into_iter()
                            .flatten()
                            .min();
                }
            }
            RequestEvent::AccessApproved { expires_at, .. } => {
                made.status = RequestStatus::Approved;
                made.expires_at = Some(expires_at);
            }
            RequestEvent::AccessDenied { .. } => made.status = RequestStatus::Denied,
            RequestEvent::AccessWithdrawn { .. } => made.status = RequestStatus::Withdrawn,
            RequestEvent::AccessRevoked { .. } => made.status = RequestStatus::Revoked,
            RequestEvent::AccessRequestExpired { .. } => made.status = RequestStatus::Expired,
            RequestEvent::AccessEnded { .. } => made.status = RequestStatus::Ended,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::PolicyId;

    type RequestTest = TestFramework<AccessRequest>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap()
    }

    fn minutes(n: i64) -> DateTime<Utc> {
        t0() + Duration::minutes(n)
    }

    fn id() -> AccessRequestId {
        AccessRequestId::from_uuid(Uuid::from_u128(9))
    }

    fn terms(approvals: u32) -> PolicyTerms {
        PolicyTerms {
            policy_id: PolicyId::from_uuid(Uuid::from_u128(1)),
            max_duration_minutes: 120,
            approvals_required: approvals,
            approver_principals: vec![],
            approver_scopes: vec![],
            request_ttl_minutes: 60,
        }
    }

    fn new_request(approvals: u32) -> NewAccessRequest {
        NewAccessRequest {
            request_id: id(),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            requester: "dev".into(),
            resource_type: "database".into(),
            resource_id: "db-prod-1".into(),
            permissions: vec!["read".into(), "read".into()],
            justification: "INC-42 investigation".into(),
            duration_minutes: 60,
            ticket_reference: None,
            policy: Some(terms(approvals)),
            auto_approval: None,
        }
    }

    fn requested(approvals: u32) -> RequestEvent {
        RequestEvent::AccessRequested {
            request_id: id(),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            requester: "dev".into(),
            resource_type: "database".into(),
            resource_id: "db-prod-1".into(),
            permissions: vec!["read".into()],
            justification: "INC-42 investigation".into(),
            duration_minutes: 60,
            ticket_reference: None,
            policy: terms(approvals),
            pending_until: minutes(60),
            requested_at: t0(),
        }
    }

    fn review(reviewer: &str, decision: Decision, at: DateTime<Utc>) -> RequestCommand {
        RequestCommand::Review {
            reviewer: reviewer.into(),
            reviewer_scopes: vec![Scope::AccessApprove],
            decision,
            reason: None,
            modified_duration_minutes: None,
            at,
        }
    }

    fn reviewed(reviewer: &str, decision: Decision, at: DateTime<Utc>) -> RequestEvent {
        RequestEvent::AccessReviewed {
            request_id: id(),
            reviewer: reviewer.into(),
            decision,
            reason: None,
            modified_duration_minutes: None,
            reviewed_at: at,
        }
    }

    fn approved(approvers: &[&str], at: DateTime<Utc>, duration: u32) -> RequestEvent {
        RequestEvent::AccessApproved {
            request_id: id(),
            approvers: approvers.iter().map(|a| a.to_string()).collect(),
            reason: None,
            duration_minutes: duration,
            expires_at: at + Duration::minutes(i64::from(duration)),
            approved_at: at,
        }
    }

    #[test]
    fn given_a_policy_when_requested_then_the_request_is_pending_until_its_ttl() {
        RequestTest::with(())
            .given_no_previous_events()
            .when(RequestCommand::Request {
                request: Box::new(new_request(1)),
                at: t0(),
            })
            .then_expect_events(vec![requested(1)]);
    }

    #[test]
    fn given_no_policy_or_a_long_duration_when_requested_then_it_is_refused() {
        let mut none = new_request(1);
        none.policy = None;
        RequestTest::with(())
            .given_no_previous_events()
            .when(RequestCommand::Request {
                request: Box::new(none),
                at: t0(),
            })
            .then_expect_error(AccessError::NoPolicy("database".into()));
        let mut long = new_request(1);
        long.duration_minutes = 121;
        RequestTest::with(())
            .given_no_previous_events()
            .when(RequestCommand::Request {
                request: Box::new(long),
                at: t0(),
            })
            .then_expect_error(AccessError::invalid(
                "duration_minutes",
                "must be 1 to 120 (the policy's maximum)",
            ));
    }

    #[test]
    fn given_a_pending_request_when_the_requester_reviews_it_then_it_is_refused() {
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(review("dev", Decision::Approve, minutes(1)))
            .then_expect_error(AccessError::SelfReview);
    }

    #[test]
    fn given_two_approvals_required_when_one_approves_then_it_stays_pending_and_the_second_activates_it(
    ) {
        RequestTest::with(())
            .given(vec![requested(2)])
            .when(review("alice", Decision::Approve, minutes(1)))
            .then_expect_events(vec![reviewed("alice", Decision::Approve, minutes(1))]);
        RequestTest::with(())
            .given(vec![
                requested(2),
                reviewed("alice", Decision::Approve, minutes(1)),
            ])
            .when(review("alice", Decision::Approve, minutes(2)))
            .then_expect_error(AccessError::AlreadyReviewed("alice".into()));
        RequestTest::with(())
            .given(vec![
                requested(2),
                reviewed("alice", Decision::Approve, minutes(1)),
            ])
            .when(review("bob", Decision::Approve, minutes(2)))
            .then_expect_events(vec![
                reviewed("bob", Decision::Approve, minutes(2)),
                approved(&["alice", "bob"], minutes(2), 60),
            ]);
    }

    #[test]
    fn given_a_pending_request_when_anyone_denies_then_it_is_decided_and_closed_to_reviews() {
        let denied = RequestEvent::AccessDenied {
            request_id: id(),
            by: "alice".into(),
            reason: None,
            denied_at: minutes(1),
        };
        RequestTest::with(())
            .given(vec![requested(2)])
            .when(review("alice", Decision::Deny, minutes(1)))
            .then_expect_events(vec![
                reviewed("alice", Decision::Deny, minutes(1)),
                denied.clone(),
            ]);
        RequestTest::with(())
            .given(vec![
                requested(2),
                reviewed("alice", Decision::Deny, minutes(1)),
                denied,
            ])
            .when(review("bob", Decision::Approve, minutes(2)))
            .then_expect_error(AccessError::InvalidTransition {
                action: "review",
                status: RequestStatus::Denied,
            });
    }

    #[test]
    fn given_a_reviewer_without_the_policys_approval_then_the_review_is_refused() {
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Review {
                reviewer: "mallory".into(),
                reviewer_scopes: vec![Scope::AccessRequest],
                decision: Decision::Approve,
                reason: None,
                modified_duration_minutes: None,
                at: minutes(1),
            })
            .then_expect_error(AccessError::NotApprover("mallory".into()));
    }

    #[test]
    fn given_an_approval_with_a_shorter_duration_then_the_grant_takes_it() {
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Review {
                reviewer: "alice".into(),
                reviewer_scopes: vec![Scope::AccessApprove],
                decision: Decision::Approve,
                reason: None,
                modified_duration_minutes: Some(15),
                at: minutes(1),
            })
            .then_expect_events(vec![
                RequestEvent::AccessReviewed {
                    request_id: id(),
                    reviewer: "alice".into(),
                    decision: Decision::Approve,
                    reason: None,
                    modified_duration_minutes: Some(15),
                    reviewed_at: minutes(1),
                },
                approved(&["alice"], minutes(1), 15),
            ]);
    }

    #[test]
    fn given_a_grant_then_it_is_active_until_expires_at_and_not_an_instant_after() {
        let mut request = AccessRequest::default();
        for event in [
            requested(1),
            reviewed("alice", Decision::Approve, minutes(1)),
            approved(&["alice"], minutes(1), 60),
        ] {
            request.apply(event);
        }
        let end = minutes(61);
        assert!(request.is_active(end - Duration::milliseconds(1)));
        assert!(!request.is_active(end));
        assert_eq!(request.status_at(end), Some(RequestStatus::Ended));
        // The scheduler records the end once, and refuses before it.
        assert_eq!(
            request.decide(RequestCommand::Expire {
                at: end - Duration::seconds(1)
            }),
            Err(AccessError::NotDue)
        );
        assert_eq!(
            request.decide(RequestCommand::Expire { at: end }),
            Ok(vec![RequestEvent::AccessEnded {
                request_id: id(),
                expires_at: end,
                recorded_at: end,
            }])
        );
    }

    #[test]
    fn given_a_pending_request_past_its_ttl_then_it_expires_and_takes_no_review() {
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Expire { at: minutes(60) })
            .then_expect_events(vec![RequestEvent::AccessRequestExpired {
                request_id: id(),
                expired_at: minutes(60),
            }]);
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(review("alice", Decision::Approve, minutes(61)))
            .then_expect_error(AccessError::InvalidTransition {
                action: "review",
                status: RequestStatus::Expired,
            });
    }

    #[test]
    fn given_a_grant_when_revoked_then_it_ends_at_once() {
        let grant = vec![
            requested(1),
            reviewed("alice", Decision::Approve, minutes(1)),
            approved(&["alice"], minutes(1), 60),
        ];
        RequestTest::with(())
            .given(grant.clone())
            .when(RequestCommand::Revoke {
                by: "secops".into(),
                reason: "incident closed".into(),
                at: minutes(5),
            })
            .then_expect_events(vec![RequestEvent::AccessRevoked {
                request_id: id(),
                by: "secops".into(),
                reason: "incident closed".into(),
                revoked_at: minutes(5),
            }]);
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Revoke {
                by: "secops".into(),
                reason: "x".into(),
                at: minutes(5),
            })
            .then_expect_error(AccessError::InvalidTransition {
                action: "revoke",
                status: RequestStatus::Pending,
            });
    }

    #[test]
    fn given_auto_approval_when_requested_then_it_is_approved_by_the_system_at_once() {
        let mut auto = new_request(2);
        auto.auto_approval = Some("inside 09:00-17:00 +00:00; asset risk 25 ≤ 50".into());
        RequestTest::with(())
            .given_no_previous_events()
            .when(RequestCommand::Request {
                request: Box::new(auto),
                at: t0(),
            })
            .then_expect_events(vec![
                requested(2),
                RequestEvent::AccessApproved {
                    request_id: id(),
                    approvers: vec![AUTO_APPROVER.into()],
                    reason: Some("inside 09:00-17:00 +00:00; asset risk 25 ≤ 50".into()),
                    duration_minutes: 60,
                    expires_at: minutes(60),
                    approved_at: t0(),
                },
            ]);
    }

    #[test]
    fn given_a_pending_request_only_the_requester_withdraws_it() {
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Withdraw {
                by: "alice".into(),
                at: minutes(1),
            })
            .then_expect_error(AccessError::NotRequester);
        RequestTest::with(())
            .given(vec![requested(1)])
            .when(RequestCommand::Withdraw {
                by: "dev".into(),
                at: minutes(1),
            })
            .then_expect_events(vec![RequestEvent::AccessWithdrawn {
                request_id: id(),
                withdrawn_at: minutes(1),
            }]);
    }
}
