//! Just-in-time access as the API shows it (`/v1/access` and the GraphQL
//! fields alike): policies, requests with their reviews (a request's
//! status is judged at the time of the answer: a grant past its
//! `expires_at` shows `ended` before the scheduler records it), check
//! answers, statistics and simulations.

use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use palisade_projections::{AccessRequestRow, PolicyRow};

use super::format_time;
use crate::app::access::{CheckAnswer, Simulation};
use palisade_infra::readmodel::access::AccessStats;

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessTimeWindow")]
pub struct TimeWindowView {
    pub start: String,
    pub end: String,
    pub timezone: String,
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessAutoApprove")]
pub struct AutoApproveView {
    pub time_window: Option<TimeWindowView>,
    pub max_asset_risk: Option<f64>,
}

/// An access policy.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessPolicy")]
pub struct PolicyView {
    #[schema(example = "acp_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub name: String,
    pub resource_types: Vec<String>,
    pub max_duration_minutes: u32,
    pub approvals_required: u32,
    pub approver_principals: Vec<String>,
    pub approver_scopes: Vec<String>,
    pub request_ttl_minutes: u32,
    pub auto_approve: Option<AutoApproveView>,
    pub enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    /// The policy's version, for audit correlation.
    pub version: i64,
}

impl From<PolicyRow> for PolicyView {
    fn from(row: PolicyRow) -> Self {
        let spec = row.spec;
        Self {
            id: row.id,
            name: spec.name,
            resource_types: spec.resource_types,
            max_duration_minutes: spec.max_duration_minutes,
            approvals_required: spec.approvals_required,
            approver_principals: spec.approver_principals,
            approver_scopes: spec
                .approver_scopes
                .iter()
                .map(|s| s.as_str().to_string())
                .collect(),
            request_ttl_minutes: spec.request_ttl_minutes,
            auto_approve: spec.auto_approve.map(|auto| AutoApproveView {
                time_window: auto.time_window.map(|w| TimeWindowView {
                    start: w.start,
                    end: w.end,
                    timezone: w.timezone,
                }),
                max_asset_risk: auto.max_asset_risk,
            }),
            enabled: spec.enabled,
            created_at: format_time(&row.created_at),
            updated_at: format_time(&row.updated_at),
            version: row.version,
        }
    }
}

/// One review of a request.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessReview")]
pub struct ReviewView {
    pub reviewer: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub reason: Option<String>,
    pub modified_duration: Option<u32>,
    pub reviewed_at: String,
}

/// Who may review a request (from its policy's terms when it was made).
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessEligibleApprovers")]
pub struct EligibleApproversView {
    pub policy_id: String,
    pub approvals_required: u32,
    pub principals: Vec<String>,
    /// Keys with any of these scopes may review (with no principals and
    /// no scopes named: keys with `access:approve`).
    pub scopes: Vec<String>,
}

/// An access request; once approved, the grant.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessRequest")]
pub struct AccessRequestView {
    #[schema(example = "acr_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    /// `pending`, `approved` (active), `denied`, `withdrawn`, `expired`,
    /// `ended` or `revoked`, as of this answer.
    pub status: String,
    pub requester: String,
    pub resource_type: String,
    pub resource_id: String,
    pub permissions: Vec<String>,
    pub justification: String,
    pub duration_minutes: u32,
    pub ticket_reference: Option<String>,
    pub requested_at: String,
    /// A pending request expires then.
    pub pending_until: String,
    /// Who approved it (`system:auto-approve` when its policy's conditions
    /// held), in order.
    pub approvers: Vec<String>,
    pub eligible_approvers: EligibleApproversView,
    pub reviews: Vec<ReviewView>,
    /// The deciding review's reason, or the auto-approval's conditions.
    pub decision_reason: Option<String>,
    pub approved_at: Option<String>,
    /// The grant's length after any reviewer shortened it.
    pub granted_minutes: Option<u32>,
    /// The grant gives access until then (exclusive).
    pub expires_at: Option<String>,
    pub denied_by: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
    pub closed_at: Option<String>,
    pub updated_at: String,
    pub version: i64,
}

impl AccessRequestView {
    /// The request as it stands at `now`.
    pub fn at(row: AccessRequestRow, now: DateTime<Utc>) -> Self {
        let status = row.status_at(now);
        let closed_at = match (row.closed_at, status) {
            (Some(at), _) => Some(at),
            (None, palisade_domain::grant::RequestStatus::Ended) => row.expires_at,
            (None, palisade_domain::grant::RequestStatus::Expired) => Some(row.pending_until),
            (None, _) => None,
        };
        Self {
            id: row.id,
            status: status.as_str().into(),
            requester: row.requester,
            resource_type: row.resource_type,
            resource_id: row.resource_id,
            permissions: row.permissions,
            justification: row.justification,
            duration_minutes: row.duration_minutes,
            ticket_reference: row.ticket_reference,
            requested_at: format_time(&row.requested_at),
            pending_until: format_time(&row.pending_until),
            approvers: row.approvers,
            eligible_approvers: EligibleApproversView {
                policy_id: row.policy.policy_id.to_string(),
                approvals_required: row.policy.approvals_required,
                principals: row.policy.approver_principals,
                scopes: row
                    .policy
                    .approver_scopes
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
            },
            reviews: row
                .reviews
                .into_iter()
                .map(|review| ReviewView {
                    reviewer: review.reviewer,
                    decision: match review.decision {
                        palisade_domain::grant::Decision::Approve => "approve".into(),
                        palisade_domain::grant::Decision::Deny => "deny".into(),
                    },
                    reason: review.reason,
                    modified_duration: review.modified_duration_minutes,
                    reviewed_at: format_time(&review.at),
                })
                .collect(),
            decision_reason: row.decision_reason,
            approved_at: row.approved_at.as_ref().map(format_time),
            granted_minutes: row.granted_minutes,
            expires_at: row.expires_at.as_ref().map(format_time),
            denied_by: row.denied_by,
            revoked_by: row.revoked_by,
            revoke_reason: row.revoke_reason,
            closed_at: closed_at.as_ref().map(format_time),
            updated_at: format_time(&row.updated_at),
            version: row.version,
        }
    }
}

impl From<AccessRequestRow> for AccessRequestView {
    fn from(row: AccessRequestRow) -> Self {
        Self::at(row, Utc::now())
    }
}

/// The answer of `POST /v1/access/check`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CheckView {
    pub has_access: bool,
    /// The grant giving it (the one lasting longest).
    pub grant_id: Option<String>,
    pub expires_at: Option<String>,
}

impl From<CheckAnswer> for CheckView {
    fn from(answer: CheckAnswer) -> Self {
        Self {
            has_access: answer.grant.is_some(),
            grant_id: answer.grant.as_ref().map(|g| g.request_id.clone()),
            expires_at: answer.grant.as_ref().map(|g| format_time(&g.expires_at)),
        }
    }
}

#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessResourceCount")]
pub struct ResourceCountView {
    pub resource_type: String,
    pub count: i64,
}

/// `GET /v1/access/stats`.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "AccessStats")]
pub struct StatsView {
    /// `24h`, `7d` or `30d`: requests made in it.
    pub period: String,
    pub total_requests: i64,
    /// Of those, approved (by review or automatically).
    pub approved: i64,
    pub denied: i64,
    /// Expired undecided (recorded or past their TTL).
    pub expired: i64,
    /// From request to approval; null without approvals.
    pub average_approval_seconds: Option<f64>,
    /// Grants giving access now, whenever they were requested.
    pub active_grants: i64,
    pub top_resources: Vec<ResourceCountView>,
}

impl StatsView {
    pub fn of(period: &str, stats: AccessStats) -> Self {
        Self {
            period: period.to_string(),
            total_requests: stats.total_requests,
            approved: stats.approved,
            denied: stats.denied,
            expired: stats.expired,
            average_approval_seconds: stats
                .average_approval_seconds
                .map(|s| (s * 1000.0).round() / 1000.0),
            active_grants: stats.active_grants,
            top_resources: stats
                .top_resources
                .into_iter()
                .map(|(resource_type, count)| ResourceCountView {
                    resource_type,
                    count,
                })
                .collect(),
        }
    }
}

/// `POST /v1/access/simulate`: what a request would meet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SimulationView {
    /// Whether it would be accepted at all.
    pub allowed: bool,
    pub auto_approved: bool,
    pub reason: String,
    /// The id of the policy that covers it, if any.
    pub policy_id: Option<String>,
    /// That policy in full, for keys with `tenant:admin`.
    pub policy: Option<PolicyView>,
    /// Who could approve it, as its policy says.
    pub approvals_required: Option<u32>,
    pub approver_principals: Vec<String>,
    pub approver_scopes: Vec<String>,
}

impl From<Simulation> for SimulationView {
    fn from(simulation: Simulation) -> Self {
        let policy: Option<PolicyView> = simulation.policy.map(Into::into);
        let approver_scopes = match &policy {
            Some(p) if p.approver_scopes.is_empty() && p.approver_principals.is_empty() => {
                vec!["access:approve".to_string()]
            }
            Some(p) => p.approver_scopes.clone(),
            None => Vec::new(),
        };
        Self {
            allowed: simulation.allowed,
            auto_approved: simulation.auto_approved,
            reason: simulation.reason,
            approvals_required: policy.as_ref().map(|p| p.approvals_required),
            approver_principals: policy
                .as_ref()
                .map(|p| p.approver_principals.clone())
                .unwrap_or_default(),
            approver_scopes,
            policy_id: policy.as_ref().map(|p| p.id.clone()),
            policy: policy.filter(|_| simulation.policy_visible),
        }
    }
}
