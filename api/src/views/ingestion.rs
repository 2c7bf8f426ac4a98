//! Ingestion jobs as the API shows them (`/v1/ingestion/jobs` and the
//! GraphQL fields alike): status, options, the file, counts, the first
//! item errors and timings.

use async_graphql::SimpleObject;
use serde::Serialize;
use utoipa::ToSchema;

use palisade_projections::IngestionJobRow;

use super::format_time;

/// What a job did; every count exact.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "IngestionCounts")]
pub struct CountsView {
    /// Findings the report holds (DefectDojo's count).
    pub parsed: u64,
    /// New findings.
    pub created: u64,
    /// Findings seen before (re-observed), regressions included.
    pub deduplicated: u64,
    /// Remediated findings seen again (among the deduplicated).
    pub reopened: u64,
    /// Findings below `minimum_severity`, not ingested.
    pub skipped: u64,
    /// Findings of the product and scope the report no longer holds,
    /// remediated by close-old.
    pub closed: u64,
    /// Items that could not be ingested.
    pub errors: u64,
    /// Report items processed so far (findings and item errors).
    pub items_processed: u64,
}

/// One report item that did not become a finding.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "IngestionItemError")]
pub struct ItemErrorView {
    /// Where in the report: a JSON path, a line, or an XML element.
    pub at: String,
    pub reason: String,
}

/// The uploaded file.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "IngestionFile")]
pub struct FileView {
    pub name: Option<String>,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// How far the parser has read (bytes of `size_bytes`): the job's
    /// progress while it runs.
    pub bytes_read: u64,
}

/// A scanner report's ingestion job.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "IngestionJob")]
pub struct IngestionJobView {
    #[schema(example = "job_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub job_id: String,
    /// `pending`, `processing`, `completed` or `failed`.
    pub status: String,
    /// `sarif`, `nuclei`, `zap` or `burp`.
    pub format: String,
    /// True when the uploader named the format (else it was detected).
    pub format_declared: bool,
    pub product: Option<String>,
    pub scope: Option<String>,
    pub close_old: bool,
    pub minimum_severity: Option<String>,
    pub tags: Vec<String>,
    pub file: FileView,
    pub counts: CountsView,
    /// The first 100 item errors (`counts.errors` counts them all).
    pub errors: Vec<ItemErrorView>,
    /// Why it failed (where parsing stopped, for a malformed report).
    pub failure: Option<String>,
    /// Runs so far: 1, or more when a restart interrupted it.
    pub attempts: u32,
    /// What to do next.
    pub message: String,
    pub submitted_by: String,
    pub submitted_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// From start to end (or to now, while processing).
    pub duration_ms: Option<i64>,
}

impl From<IngestionJobRow> for IngestionJobView {
    fn from(row: IngestionJobRow) -> Self {
        let message = match row.status.as_str() {
            "pending" => format!("Queued; follow GET /v1/ingestion/jobs/{}", row.id),
            "processing" => format!(
                "Processing: {} report items so far; follow GET /v1/ingestion/jobs/{}",
                row.counts.items, row.id
            ),
            "completed" => format!(
                "Completed: {} findings parsed, {} created, {} deduplicated, {} closed, {} errors",
                row.counts.parsed,
                row.counts.created,
                row.counts.deduplicated,
                row.counts.closed,
                row.counts.errors
            ),
            _ => format!(
                "Failed: {}",
                row.failure.as_deref().unwrap_or("see failure")
            ),
        };
        let duration_ms = row
            .started_at
            .map(|start| (row.ended_at.unwrap_or(row.updated_at) - start).num_milliseconds());
        let c = row.counts;
        Self {
            job_id: row.id,
            status: row.status.as_str().into(),
            format: row.options.format.as_str().into(),
            format_declared: row.options.declared,
            product: row.options.product,
            scope: row.options.scope,
            close_old: row.options.close_old,
            minimum_severity: row.options.minimum_severity.map(|s| s.as_str().into()),
            tags: row.options.tags,
            file: FileView {
                name: row.file.name,
                size_bytes: row.file.size_bytes,
                sha256: row.file.sha256,
                bytes_read: row.bytes_read,
            },
            counts: CountsView {
                parsed: c.parsed,
                created: c.created,
                deduplicated: c.deduplicated,
                reopened: c.reopened,
                skipped: c.skipped,
                closed: c.closed,
                errors: c.errors,
                items_processed: c.items,
            },
            errors: row
                .errors
                .into_iter()
                .map(|e| ItemErrorView {
                    at: e.at,
                    reason: e.reason,
                })
                .collect(),
            failure: row.failure,
            attempts: row.attempts,
            message,
            submitted_by: row.submitted_by,
            submitted_at: format_time(&row.submitted_at),
            started_at: row.started_at.as_ref().map(format_time),
            ended_at: row.ended_at.as_ref().map(format_time),
            duration_ms,
        }
    }
}
