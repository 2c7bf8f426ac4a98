//! Audit records and the chain's verification as the API shows them.

use palisade_infra::readmodel::ChainReport;
use palisade_projections::AuditRecord;
use serde::Serialize;
use utoipa::ToSchema;

/// One audit record: an event, redacted and hash-chained.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "AuditEvent")]
pub struct AuditEventView {
    /// Dense per tenant environment: 1, 2, 3 …
    pub seq: i64,
    pub id: String,
    pub occurred_at: String,
    pub tenant_id: String,
    /// `live` or `test`.
    pub environment: String,
    pub actor: String,
    /// `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub summary: String,
    /// The event's fields; secrets removed, identifying values
    /// `hmac-sha256:…`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub prev_hash: String,
    /// SHA-256(prev_hash ‖ canonical JSON of the record without hash).
    pub hash: String,
}

impl From<AuditRecord> for AuditEventView {
    fn from(r: AuditRecord) -> Self {
        Self {
            seq: r.seq,
            id: r.id,
            occurred_at: r.occurred_at,
            tenant_id: r.tenant_id,
            environment: r.environment.as_str().into(),
            actor: r.actor,
            actor_type: r.actor_type.as_str().into(),
            api_key_id: r.api_key_id,
            request_id: r.request_id,
            aggregate_type: r.aggregate_type,
            aggregate_id: r.aggregate_id,
            event_type: r.event_type,
            summary: r.summary,
            data: r.data,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

/// The result of walking the chain.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "AuditVerification")]
pub struct ChainReportView {
    /// True when every record is present, in order, and unchanged.
    pub verified: bool,
    /// The last seq of the chain (0 when empty).
    pub last_seq: i64,
    /// The first record that does not fit; null when intact.
    pub first_broken_seq: Option<i64>,
}

impl From<ChainReport> for ChainReportView {
    fn from(report: ChainReport) -> Self {
        let ChainReport {
            verified,
            last_seq,
            first_broken_seq,
        } = report;
        Self {
            verified,
            last_seq,
            first_broken_seq,
        }
    }
}
