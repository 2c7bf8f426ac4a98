//! Just-in-time access (`docs/access.md`), with Teleport's access-request
//! semantics: an [`AccessPolicy`] says who may approve access to which
//! resource types, for how long and when it approves itself; an
//! [`AccessRequest`] is one principal's request, reviewed by others, and
//! once approved it is the grant, active until its `expires_at`.
//!
//! Time comes in with every command (the domain reads no clock), and the
//! grant's activity is a function of time ([`AccessRequest::is_active`]):
//! a grant is not active one instant after it ends, whether or not the
//! scheduler has recorded its end yet.

mod policy;
mod request;

pub use policy::{
    AccessPolicy, AutoApprove, NewPolicy, PolicyCommand, PolicyEvent, PolicySpec, PolicyTerms,
    PolicyUpdate, TimeWindow, DEFAULT_REQUEST_TTL_MINUTES, MAX_APPROVALS, MAX_DURATION_MINUTES,
    MAX_REQUEST_TTL_MINUTES, RESOURCE_TYPE_PATTERN, TIMEZONE_PATTERN, TIME_OF_DAY_PATTERN,
};
pub use request::{
    AccessRequest, Decision, NewAccessRequest, RequestCommand, RequestEvent, RequestStatus,
    AUTO_APPROVER,
};

use crate::text::FieldProblem;

/// Every event of the access aggregates (the timeline shows them only to
/// callers with `access:approve`).
pub const EVENT_TYPES: [&str; 11] = [
    "AccessPolicyCreated",
    "AccessPolicyUpdated",
    "AccessPolicyDisabled",
    "AccessRequested",
    "AccessReviewed",
    "AccessApproved",
    "AccessDenied",
    "AccessWithdrawn",
    "AccessRevoked",
    "AccessRequestExpired",
    "AccessEnded",
];

/// Why a policy or request command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// 404 not_found.
    #[error("not found")]
    NotFound,
    /// 409 conflict.
    #[error("it exists already")]
    AlreadyExists,
    /// 422 validation_error, one problem per field.
    #[error("invalid: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// 422 no_policy: no enabled policy covers the resource type.
    #[error("no enabled policy covers resource type '{0}'")]
    NoPolicy(String),
    /// 403 self_review: the requester reviewed their own request.
    #[error("a requester cannot review their own request")]
    SelfReview,
    /// 403 forbidden: the reviewer is not one of the policy's approvers.
    #[error("{0} is not an approver of this request's policy")]
    NotApprover(String),
    /// 409 already_reviewed.
    #[error("{0} has reviewed this request already")]
    AlreadyReviewed(String),
    /// 409 invalid_transition: the request is no longer in a state that
    /// allows the command (decided, withdrawn, expired, ended, revoked).
    #[error("cannot {action} a request that is {status}")]
    InvalidTransition {
        action: &'static str,
        status: RequestStatus,
    },
    /// 403 forbidden: only the requester may withdraw.
    #[error("only the requester may withdraw a request")]
    NotRequester,
    /// The scheduler asked for an expiry that is not due.
    #[error("nothing is due")]
    NotDue,
}

impl AccessError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        AccessError::Invalid(vec![FieldProblem::new(field, message)])
    }
}
