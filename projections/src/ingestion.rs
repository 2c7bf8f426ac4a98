//! The ingestion jobs view (`docs/ingestion.md`): one row per uploaded
//! scanner report, with its status, options, counts, the first item
//! errors and its timings. `GET /v1/ingestion/jobs` reads it, and the
//! ingestion runner finds the jobs to run in it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::ingestion::{
    IngestionEvent, ItemError, JobCounts, JobFile, JobOptions, JobStatus,
};
use palisade_domain::{Environment, EventMetadata};
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// A job as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestionJobRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub status: JobStatus,
    pub options: JobOptions,
    pub file: JobFile,
    pub counts: JobCounts,
    /// How far into the report the parser has read (bytes), for progress.
    #[serde(default)]
    pub bytes_read: u64,
    /// The first item errors (at most `MAX_KEPT_ERRORS`).
    pub errors: Vec<ItemError>,
    pub attempts: u32,
    /// Why it failed.
    pub failure: Option<String>,
    /// Who uploaded it.
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl IngestionJobRow {
    /// The row an `IngestionJobSubmitted` event creates; None for any other.
    pub fn submitted(
        event: &IngestionEvent,
        metadata: &EventMetadata,
        version: i64,
    ) -> Option<Self> {
        let IngestionEvent::IngestionJobSubmitted {
            job_id,
            options,
            file,
            at,
        } = event
        else {
            return None;
        };
        Some(Self {
            id: job_id.to_string(),
            tenant_id: metadata.tenant_id.clone(),
            environment: metadata.environment,
            status: JobStatus::Pending,
            options: options.clone(),
            file: file.clone(),
            counts: JobCounts::default(),
            bytes_read: 0,
            errors: Vec::new(),
            attempts: 0,
            failure: None,
            submitted_by: metadata.actor.clone(),
            submitted_at: *at,
            started_at: None,
            ended_at: None,
            updated_at: *at,
            version,
        })
    }
}

/// Storage of the ingestion jobs view.
#[async_trait]
pub trait IngestionStore: Send {
    async fn job(&mut self, id: &str) -> Result<Option<IngestionJobRow>, StoreError>;
    async fn save_job(&mut self, job: &IngestionJobRow) -> Result<(), StoreError>;
}

/// Keeps the ingestion jobs view.
pub struct IngestionProjection;

impl IngestionProjection {
    pub const NAME: &'static str = "ingestion";
}

#[async_trait]
impl Projection for IngestionProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["ingestion_jobs"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "IngestionJob" {
            return Ok(());
        }
        let store = store.view::<dyn IngestionStore>()?;
        let job_event = event.decode::<IngestionEvent>()?;
        let metadata = event.typed_metadata()?;
        if let Some(row) = IngestionJobRow::submitted(&job_event, &metadata, event.sequence) {
            store.save_job(&row).await?;
            return Ok(());
        }
        let Some(mut row) = store.job(&event.aggregate_id).await? else {
            return Ok(());
        };
        row.version = event.sequence;
        match job_event {
            IngestionEvent::IngestionJobSubmitted { .. } => unreachable!("handled above"),
            IngestionEvent::IngestionJobStarted { attempt, at, .. } => {
                row.status = JobStatus::Processing;
                row.attempts = attempt;
                row.started_at.get_or_insert(at);
                row.updated_at = at;
            }
            IngestionEvent::IngestionJobProgressed {
                batch,
                errors,
                bytes_read,
                at,
                ..
            } => {
                row.counts.add(&batch);
                row.bytes_read = row.bytes_read.max(bytes_read);
                row.errors.extend(errors);
                row.updated_at = at;
            }
            IngestionEvent::IngestionJobCompleted { counts, at } => {
                row.status = JobStatus::Completed;
                row.counts = counts;
                row.bytes_read = row.file.size_bytes;
                row.ended_at = Some(at);
                row.updated_at = at;
            }
            IngestionEvent::IngestionJobFailed { reason, counts, at } => {
                row.status = JobStatus::Failed;
                row.counts = counts;
                row.failure = Some(reason);
                row.ended_at = Some(at);
                row.updated_at = at;
            }
        }
        store.save_job(&row).await?;
        Ok(())
    }
}
