//! The ingestion jobs view's table (`ingestion_jobs`): the projection's
//! writes, the queries of `/v1/ingestion/jobs`, and the runner's question
//! (which jobs are pending or processing).

use async_trait::async_trait;
use palisade_domain::ingestion::{Format, JobStatus};
use palisade_projections::{IngestionJobRow, IngestionStore, StoreError, ViewRef};
use sqlx::AnyPool;

use super::findings::{from_doc, paged};
use super::kms::partition_doc;
use super::sql::{Sql, Value};
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use super::{Page, Partition, Window};
use crate::store::dialect_of;

pub(super) struct IngestionSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(IngestionSql { tx })
}

#[async_trait]
impl SqlStore for IngestionSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn IngestionStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

#[async_trait]
impl IngestionStore for IngestionSql {
    async fn job(&mut self, id: &str) -> Result<Option<IngestionJobRow>, StoreError> {
        super::batch_doc(&mut self.tx, "ingestion_jobs", id).await
    }

    async fn save_job(&mut self, job: &IngestionJobRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ingestion_jobs (id, tenant_id, environment, status, format, submitted_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        )
        .bind(&job.id)
        .bind(&job.tenant_id)
        .bind(job.environment.as_str())
        .bind(job.status.as_str())
        .bind(job.options.format.as_str())
        .bind(timestamp(&job.submitted_at))
        .bind(super::json_doc(job)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

// ------------------------------------------------------------------ reads

pub async fn get_ingestion_job(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<IngestionJobRow>, sqlx::Error> {
    partition_doc(pool, "ingestion_jobs", partition, id).await
}

/// What `GET /v1/ingestion/jobs` filters by; empty means any.
#[derive(Debug, Clone, Default)]
pub struct IngestionJobFilter {
    pub statuses: Vec<JobStatus>,
    pub formats: Vec<Format>,
}

/// A page of a partition's jobs, newest first.
pub async fn list_ingestion_jobs(
    pool: &AnyPool,
    partition: &Partition,
    filter: &IngestionJobFilter,
    window: impl Into<Window>,
) -> Result<Page<IngestionJobRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM ingestion_jobs");
    partition.restrict(&mut sql);
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    if !statuses.is_empty() {
        sql.and_in("status", &statuses);
    }
    let formats: Vec<&str> = filter.formats.iter().map(|f| f.as_str()).collect();
    if !formats.is_empty() {
        sql.and_in("format", &formats);
    }
    paged(
        pool,
        sql,
        " ORDER BY submitted_at DESC, id DESC",
        window.into(),
        from_doc,
    )
    .await
}

/// Every job of every tenant that is pending or processing, oldest
/// first (at most `limit`): the runner's work.
pub async fn open_ingestion_jobs(
    pool: &AnyPool,
    limit: i64,
) -> Result<Vec<IngestionJobRow>, sqlx::Error> {
    let mut sql = Sql::new(
        "SELECT doc FROM ingestion_jobs WHERE status IN ('pending', 'processing')
          ORDER BY submitted_at, id LIMIT ",
    );
    sql.bind(Value::Int(limit));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}
