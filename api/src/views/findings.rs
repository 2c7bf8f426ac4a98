//! Findings as the API shows them: a finding, an ingest's answer, a bulk
//! ingest's results, and history entries.

use palisade_projections::FindingRow;
use serde::Serialize;
use utoipa::ToSchema;

use super::{format_time, round_score, FieldError};
use crate::app::findings::{BulkOutcome, HistoryRecord, Ingested};

/// The asset a finding is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetRef {
    pub id: String,
    pub identifier: String,
}

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Ticket")]
pub struct TicketView {
    pub system: String,
    pub ticket_id: String,
    pub linked_at: String,
}

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Comment")]
pub struct CommentView {
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

/// A finding as the API shows it.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Finding", complex)]
pub struct FindingView {
    /// `fnd_…`
    pub id: String,
    /// `open`, `confirmed`, `dismissed`, `risk_accepted` or `remediated`.
    #[graphql(skip)]
    pub status: String,
    /// Why it was dismissed, accepted or reopened.
    pub status_reason: Option<String>,
    #[graphql(skip)]
    pub severity: String,
    /// 0–100: `100 × likelihood × impact` while open or confirmed, else 0.
    pub risk_score: f64,
    pub occurrences: i64,
    pub first_seen: String,
    pub last_seen: String,
    #[graphql(skip)]
    pub asset: AssetRef,
    pub product: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub likelihood: Option<f64>,
    pub impact: Option<f64>,
    pub cve: Option<String>,
    pub cvss_score: Option<f64>,
    pub cwe: Option<String>,
    pub location: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub fingerprint: String,
    pub assignee: Option<String>,
    pub risk_accepted_until: Option<String>,
    pub tickets: Vec<TicketView>,
    pub comments: Vec<CommentView>,
    /// `live` or `test` (sandbox).
    #[graphql(skip)]
    pub environment: String,
    /// The aggregate's version, also sent as `ETag`.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<FindingRow> for FindingView {
    fn from(row: FindingRow) -> Self {
        let d = row.details;
        Self {
            id: row.id,
            status: row.status.as_str().into(),
            status_reason: row.status_reason,
            severity: d.severity.as_str().into(),
            risk_score: round_score(row.risk_score),
            occurrences: row.occurrences,
            first_seen: format_time(&row.first_seen),
            last_seen: format_time(&row.last_seen),
            asset: AssetRef {
                id: row.asset_id,
                identifier: d.asset_identifier,
            },
            product: d.product,
            category: d.category,
            title: d.title,
            description: d.description,
            likelihood: d.likelihood,
            impact: d.impact,
            cve: d.cve,
            cvss_score: d.cvss_score,
            cwe: d.cwe,
            location: d.location,
            references: d.references,
            tags: d.tags,
            fingerprint: row.fingerprint,
            assignee: row.assignee,
            risk_accepted_until: row.accepted_until.as_ref().map(format_time),
            tickets: row
                .tickets
                .into_iter()
                .map(|t| TicketView {
                    system: t.system,
                    ticket_id: t.ticket_id,
                    linked_at: format_time(&t.linked_at),
                })
                .collect(),
            comments: row
                .comments
                .into_iter()
                .map(|c| CommentView {
                    id: c.id,
                    author: c.author,
                    body: c.body,
                    created_at: format_time(&c.created_at),
                })
                .collect(),
            environment: row.environment.as_str().into(),
            version: row.version,
            created_at: format_time(&row.created_at),
            updated_at: format_time(&row.updated_at),
        }
    }
}

/// The answer to an ingest: the finding, and whether it already existed.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "IngestFindingPayload")]
pub struct IngestedFinding {
    #[serde(flatten)]
    pub finding: FindingView,
    /// True when the fingerprint matched an existing finding, which was
    /// re-observed (occurrences + 1) instead of created.
    pub deduplicated: bool,
}

/// One item's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemResult {
    pub index: usize,
    /// `created`, `deduplicated` or `failed`.
    pub status: &'static str,
    pub id: Option<String>,
    pub error: Option<BulkItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemError {
    pub code: String,
    pub message: String,
    pub details: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkIngestResult {
    pub created: usize,
    pub deduplicated: usize,
    pub failed: usize,
    pub results: Vec<BulkItemResult>,
}

/// One entry of a finding's history.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "HistoryEntry")]
pub struct HistoryEntry {
    pub sequence: i64,
    pub event_type: String,
    pub occurred_at: String,
    pub actor: String,
    /// `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub request_id: Option<String>,
    /// The event itself.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<Ingested> for IngestedFinding {
    fn from(ingested: Ingested) -> Self {
        Self {
            finding: ingested.finding.into(),
            deduplicated: ingested.deduplicated,
        }
    }
}

impl BulkIngestResult {
    /// The results of a bulk ingest, one per item in order, and the counts.
    pub fn from_outcomes(outcomes: Vec<BulkOutcome>) -> Self {
        let mut result = BulkIngestResult {
            created: 0,
            deduplicated: 0,
            failed: 0,
            results: Vec::with_capacity(outcomes.len()),
        };
        for (index, outcome) in outcomes.into_iter().enumerate() {
            let item = match outcome {
                Ok((id, deduplicated)) => {
                    if deduplicated {
                        result.deduplicated += 1;
                    } else {
                        result.created += 1;
                    }
                    BulkItemResult {
                        index,
                        status: if deduplicated {
                            "deduplicated"
                        } else {
                            "created"
                        },
                        id: Some(id),
                        error: None,
                    }
                }
                Err(error) => {
                    result.failed += 1;
                    BulkItemResult {
                        index,
                        status: "failed",
                        id: None,
                        error: Some(BulkItemError {
                            code: error.code().to_string(),
                            message: error.to_string(),
                            details: error.problems().iter().map(FieldError::from).collect(),
                        }),
                    }
                }
            };
            result.results.push(item);
        }
        result
    }
}

impl From<HistoryRecord> for HistoryEntry {
    fn from(record: HistoryRecord) -> Self {
        Self {
            sequence: record.sequence,
            event_type: record.event_type,
            occurred_at: format_time(&record.metadata.occurred_at),
            actor: record.metadata.actor,
            actor_type: record.metadata.actor_type.as_str().into(),
            request_id: record.metadata.request_id,
            data: record.data,
        }
    }
}
