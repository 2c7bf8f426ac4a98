//! The access view (`docs/access.md`): one row per policy, one per
//! request (with its reviews and, once approved, its grant), and one row
//! per (grant, permission) while the grant lasts: the index that
//! `POST /v1/access/check` reads. A grant's row goes when it is revoked or
//! its end is recorded; until then the check compares its `expires_at`
//! with the clock, so a grant is inactive from that instant on whenever
//! the scheduler records it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::grant::RequestStatus;
use palisade_domain::grant::{Decision, PolicyEvent, PolicySpec, PolicyTerms, RequestEvent};
use palisade_domain::Environment;
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// A policy as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub spec: PolicySpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
}

/// One review of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRow {
    pub reviewer: String,
    pub decision: Decision,
    pub reason: Option<String>,
    pub modified_duration_minutes: Option<u32>,
    pub at: DateTime<Utc>,
}

/// A request as the view holds it; once approved, the grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessRequestRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub requester: String,
    pub resource_type: String,
    pub resource_id: String,
    pub permissions: Vec<String>,
    pub justification: String,
    pub duration_minutes: u32,
    pub ticket_reference: Option<String>,
    pub policy: PolicyTerms,
    /// The status recorded by the last event ([`AccessRequestRow::status_at`]
    /// is the one a reader sees).
    pub status: RequestStatus,
    pub pending_until: DateTime<Utc>,
    pub requested_at: DateTime<Utc>,
    pub reviews: Vec<ReviewRow>,
    pub approvers: Vec<String>,
    /// Why it was approved or denied (the deciding review's reason, or the
    /// auto-approval's conditions).
    pub decision_reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The grant's duration, after any reviewer shortened it.
    pub granted_minutes: Option<u32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub denied_by: Option<String>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
    /// When it left `pending` or `approved` for good.
    pub closed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl AccessRequestRow {
    /// The status at `at`, as the aggregate judges it: an approved grant
    /// past its `expires_at` has ended and a pending request past its TTL
    /// has expired, whether or not the scheduler recorded it yet.
    pub fn status_at(&self, at: DateTime<Utc>) -> RequestStatus {
        match self.status {
            RequestStatus::Approved if self.expires_at.is_some_and(|end| end <= at) => {
                RequestStatus::Ended
            }
            RequestStatus::Pending if self.pending_until <= at => RequestStatus::Expired,
            status => status,
        }
    }

    /// When the scheduler has something to record for it: a pending
    /// request's TTL, a grant's end; None once closed.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match self.status {
            RequestStatus::Pending => Some(self.pending_until),
            RequestStatus::Approved => self.expires_at,
            _ => None,
        }
    }
}

/// Storage of the access view.
#[async_trait]
pub trait AccessStore: Send {
    async fn policy(&mut self, id: &str) -> Result<Option<PolicyRow>, StoreError>;
    async fn save_policy(&mut self, policy: &PolicyRow) -> Result<(), StoreError>;
    async fn access_request(&mut self, id: &str) -> Result<Option<AccessRequestRow>, StoreError>;
    async fn save_access_request(&mut self, request: &AccessRequestRow) -> Result<(), StoreError>;
    /// Adds the check index's rows of an approved request, one per
    /// permission.
    async fn add_grant(&mut self, request: &AccessRequestRow) -> Result<(), StoreError>;
    /// Removes the check index's rows of a request.
    async fn remove_grant(&mut self, request_id: &str) -> Result<(), StoreError>;
}

/// Keeps the access view.
pub struct AccessProjection;

impl AccessProjection {
    pub const NAME: &'static str = "access";
}

#[async_trait]
impl Projection for AccessProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["access_policies", "access_requests", "access_grants"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            "AccessPolicy" => apply_policy(event, store).await,
            "AccessRequest" => apply_request(event, store).await,
            _ => Ok(()),
        }
    }
}

async fn apply_policy(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn AccessStore>()?;
    match event.decode::<PolicyEvent>()? {
        PolicyEvent::AccessPolicyCreated {
            policy_id,
            tenant_id,
            environment,
            spec,
            created_at,
        } => {
            let row = PolicyRow {
                id: policy_id.to_string(),
                tenant_id: tenant_id.to_string(),
                environment,
                spec,
                created_at,
                updated_at: created_at,
                version: event.sequence,
            };
            store.save_policy(&row).await?;
        }
        PolicyEvent::AccessPolicyUpdated {
            policy_id,
            spec,
            updated_at,
        } => {
            if let Some(mut row) = store.policy(&policy_id.to_string()).await? {
                row.spec = spec;
                row.updated_at = updated_at;
                row.version = event.sequence;
                store.save_policy(&row).await?;
            }
        }
        PolicyEvent::AccessPolicyDisabled {
            policy_id,
            disabled_at,
        } => {
            if let Some(mut row) = store.policy(&policy_id.to_string()).await? {
                row.spec.enabled = false;
                row.updated_at = disabled_at;
                row.version = event.sequence;
                store.save_policy(&row).await?;
            }
        }
    }
    Ok(())
}

async fn apply_request(
    event: &FeedEvent,
    store: &mut dyn ReadModelStore,
) -> Result<(), ProjectionError> {
    let store = store.view::<dyn AccessStore>()?;
    let request_event = event.decode::<RequestEvent>()?;
    if let RequestEvent::AccessRequested {
        request_id,
        tenant_id,
        environment,
        requester,
        resource_type,
        resource_id,
        permissions,
        justification,
        duration_minutes,
        ticket_reference,
        policy,
        pending_until,
        requested_at,
    } = request_event
    {
        let row = AccessRequestRow {
            id: request_id.to_string(),
            tenant_id: tenant_id.to_string(),
            environment,
            requester,
            resource_type,
            resource_id,
            permissions,
            justification,
            duration_minutes,
            ticket_reference,
            policy,
            status: RequestStatus::Pending,
            pending_until,
            requested_at,
            reviews: Vec::new(),
            approvers: Vec::new(),
            decision_reason: None,
            approved_at: None,
            granted_minutes: None,
            expires_at: None,
            denied_by: None,
            revoked_by: None,
            revoke_reason: None,
            closed_at: None,
            updated_at: requested_at,
            version: event.sequence,
        };
        store.save_access_request(&row).await?;
        return Ok(());
    }
    let Some(mut row) = store.access_request(&event.aggregate_id).await? else {
        return Ok(());
    };
    row.version = event.sequence;
    let mut grant_ends = false;
    match request_event {
        RequestEvent::AccessRequested { .. } => unreachable!("handled above"),
        RequestEvent::AccessReviewed {
            reviewer,
            decision,
            reason,
            modified_duration_minutes,
            reviewed_at,
            ..
        } => {
            row.reviews.push(ReviewRow {
                reviewer,
                decision,
                reason,
                modified_duration_minutes,
                at: reviewed_at,
            });
            row.updated_at = reviewed_at;
        }
        RequestEvent::AccessApproved {
            approvers,
            reason,
            duration_minutes,
            expires_at,
            approved_at,
            ..
        } => {
            row.status = RequestStatus::Approved;
            row.approvers = approvers;
            row.decision_reason = reason;
            row.granted_minutes = Some(duration_minutes);
            row.expires_at = Some(expires_at);
            row.approved_at = Some(approved_at);
            row.updated_at = approved_at;
            store.add_grant(&row).await?;
        }
        RequestEvent::AccessDenied {
            by,
            reason,
            denied_at,
            ..
        } => {
            row.status = RequestStatus::Denied;
            row.denied_by = Some(by);
            row.decision_reason = reason;
            row.closed_at = Some(denied_at);
            row.updated_at = denied_at;
        }
        RequestEvent::AccessWithdrawn { withdrawn_at, .. } => {
            row.status = RequestStatus::Withdrawn;
            row.closed_at = Some(withdrawn_at);
            row.updated_at = withdrawn_at;
        }
        RequestEvent::AccessRevoked {
            by,
            reason,
            revoked_at,
            ..
        } => {
            row.status = RequestStatus::Revoked;
            row.revoked_by = Some(by);
            row.revoke_reason = Some(reason);
            row.closed_at = Some(revoked_at);
            row.updated_at = revoked_at;
            grant_ends = true;
        }
        RequestEvent::AccessRequestExpired { expired_at, .. } => {
            row.status = RequestStatus::Expired;
            row.closed_at = Some(row.pending_until.min(expired_at));
            row.updated_at = expired_at;
        }
        RequestEvent::AccessEnded {
            expires_at,
            recorded_at,
            ..
        } => {
            row.status = RequestStatus::Ended;
            row.closed_at = Some(expires_at);
            row.updated_at = recorded_at;
            grant_ends = true;
        }
    }
    if grant_ends {
        store.remove_grant(&row.id).await?;
    }
    store.save_access_request(&row).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use palisade_domain::grant::{AccessRequest, NewAccessRequest, RequestCommand};
    use palisade_domain::{AccessRequestId, PolicyId, TenantId};
    use uuid::Uuid;

    use super::*;
    use crate::memory::InMemory;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap()
    }

    fn feed(sequence: i64, event: &RequestEvent) -> FeedEvent {
        let payload = serde_json::to_value(event).unwrap();
        let event_type = payload.as_object().unwrap().keys().next().unwrap().clone();
        FeedEvent {
            position: crate::FeedPosition {
                tx: sequence,
                position: sequence,
            },
            aggregate_type: "AccessRequest".into(),
            aggregate_id: AccessRequestId::from_uuid(Uuid::from_u128(7)).to_string(),
            sequence,
            event_type,
            event_version: "1".into(),
            payload,
            metadata: Default::default(),
            recorded_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn an_approval_indexes_the_grant_and_a_revoke_removes_it() {
        let request = NewAccessRequest {
            request_id: AccessRequestId::from_uuid(Uuid::from_u128(7)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(1)),
            environment: Environment::Live,
            requester: "dev".into(),
            resource_type: "database".into(),
            resource_id: "db-1".into(),
            permissions: vec!["read".into(), "write".into()],
            justification: "INC-1".into(),
            duration_minutes: 30,
            ticket_reference: None,
            policy: Some(PolicyTerms {
                policy_id: PolicyId::from_uuid(Uuid::from_u128(2)),
                max_duration_minutes: 60,
                approvals_required: 1,
                approver_principals: vec![],
                approver_scopes: vec![],
                request_ttl_minutes: 60,
            }),
            auto_approval: Some("auto-approved: test".into()),
        };
        let events = AccessRequest::default()
            .decide(RequestCommand::Request {
                request: Box::new(request),
                at: t0(),
            })
            .unwrap();
        let mut store = InMemory::default();
        for (i, event) in events.iter().enumerate() {
            AccessProjection
                .apply(&feed(i as i64 + 1, event), &mut store)
                .await
                .unwrap();
        }
        let row = store.access_requests.values().next().unwrap().clone();
        assert_eq!(row.status, RequestStatus::Approved);
        assert_eq!(row.approvers, vec!["system:auto-approve".to_string()]);
        assert_eq!(row.expires_at, Some(t0() + Duration::minutes(30)));
        assert_eq!(store.grants.len(), 2);
        // Time-true: ended from expires_at on, before anything is recorded.
        let end = t0() + Duration::minutes(30);
        assert_eq!(
            row.status_at(end - Duration::milliseconds(1)),
            RequestStatus::Approved
        );
        assert_eq!(row.status_at(end), RequestStatus::Ended);
        let revoked = RequestEvent::AccessRevoked {
            request_id: AccessRequestId::from_uuid(Uuid::from_u128(7)),
            by: "alice".into(),
            reason: "done".into(),
            revoked_at: t0() + Duration::minutes(5),
        };
        AccessProjection
            .apply(&feed(3, &revoked), &mut store)
            .await
            .unwrap();
        assert!(store.grants.is_empty());
        let row = store.access_requests.values().next().unwrap();
        assert_eq!(row.status_at(end), RequestStatus::Revoked);
        assert_eq!(row.due_at(), None);
    }
}
