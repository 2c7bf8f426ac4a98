//! Scanner-report ingestion over GraphQL (`app::ingestion`):
//! `ingestionJobs` and `ingestionJob`. Uploads stay REST
//! (`POST /v1/ingestion/upload`, multipart or a raw body).

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputObject, Object};
use palisade_domain::ingestion::{Format, JobStatus};

use super::error::{graphql_error, GraphqlResult as _};
use super::types::{list_cost, page_connection, parsed, window, Total};
use super::{app, authorized};
use crate::app::auth::FindingsRead;
use crate::app::ingestion::{self, JobQuery};
use crate::app::Error;
use crate::views::ingestion::IngestionJobView;

/// What `ingestionJobs` filters by.
#[derive(InputObject, Default)]
pub struct IngestionJobFilter {
    /// `pending`, `processing`, `completed`, `failed`.
    pub status: Option<Vec<String>>,
    /// `sarif`, `nuclei`, `zap`, `burp`.
    pub format: Option<Vec<String>>,
}

#[derive(Default)]
pub struct IngestionQuery;

#[Object]
impl IngestionQuery {
    /// The environment's ingestion jobs, newest first. Scope `findings:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn ingestion_jobs(
        &self,
        ctx: &Context<'_>,
        filter: Option<IngestionJobFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, IngestionJobView, Total, EmptyFields>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        let filter = filter.unwrap_or_default();
        let query = JobQuery {
            statuses: parsed::<JobStatus>("status", filter.status)?,
            formats: parsed::<Format>("format", filter.format)?,
        };
        let window = window(first, after)?;
        let page = ingestion::jobs(app(ctx), &caller, query, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One job: status, counts, item errors, timings; null when there is
    /// none. Scope `findings:read`.
    async fn ingestion_job(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<IngestionJobView>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        match ingestion::job(app(ctx), &caller, &id).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(graphql_error(error)),
        }
    }
}
