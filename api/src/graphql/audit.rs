//! The audit trail over GraphQL: `auditEvents` (cursors are seqs),
//! `auditVerification`, and `subscription { auditEvents }` live, through
//! the same follower as the SSE stream (`app::audit`).

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object, Subscription};
use chrono::{DateTime, Utc};
use futures_util::stream::{Stream, StreamExt};
use palisade_infra::readmodel::AuditFilter as Filter;

use super::error::argument_names;
use super::error::GraphqlResult as _;
use super::types::{consistent, first_of, list_cost, number_cursor, Consistency};
use super::{app, authorized, graphql_error, Draining};
use crate::app::audit;
use crate::app::auth::AuditRead;
use crate::app::Error;
use crate::views::audit::{AuditEventView, ChainReportView};

/// What re-walking the audit chain costs in the complexity limit: it reads
/// and hashes every record of the partition, so a document holds at most a
/// few of them (`MAX_COMPLEXITY` / this).
pub(crate) const AUDIT_VERIFICATION_COST: usize = 1_000;

/// The filters of `GET /v1/audit/events`.
#[derive(InputObject, Default, Clone)]
pub struct AuditFilter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    /// At most 50 distinct event types.
    pub event_type: Option<Vec<String>>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl From<AuditFilter> for Filter {
    /// As given; the use case checks it, as for REST.
    fn from(f: AuditFilter) -> Self {
        Filter {
            aggregate_type: f.aggregate_type,
            aggregate_id: f.aggregate_id,
            event_types: f.event_type.unwrap_or_default(),
            actor: f.actor,
            since: f.since,
            until: f.until,
        }
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, oldest first; cursors are seqs. Scope `audit:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AuditFilter>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Connection<String, AuditEventView, EmptyFields, EmptyFields>> {
        let caller = authorized::<AuditRead>(ctx)?;
        let limit = first_of(first)?;
        let after_seq = after
            .as_deref()
            .map(number_cursor)
            .transpose()?
            .unwrap_or(0);
        let filter = audit::checked_filter(filter.unwrap_or_default().into())
            .map_err(argument_names)
            .graphql()?;
        consistent(ctx, consistency).await?;
        let page = audit::list(app(ctx), &caller, filter, after_seq, limit)
            .await
            .graphql()?;
        let mut connection = Connection::new(after_seq > 0, page.next_cursor.is_some());
        connection.edges.extend(
            page.records
                .into_iter()
                .map(|r| Edge::new(r.seq.to_string(), AuditEventView::from(r))),
        );
        Ok(connection)
    }

    /// Re-walks the audit chain, as `GET /v1/audit/verify`.
    #[graphql(complexity = "AUDIT_VERIFICATION_COST")]
    async fn audit_verification(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<ChainReportView> {
        let caller = authorized::<AuditRead>(ctx)?;
        let report = audit::verify(app(ctx), &caller).await.graphql()?;
        Ok(report.into())
    }
}

#[derive(Default)]
pub struct AuditSubscription;

#[Subscription]
impl AuditSubscription {
    /// Audit records as they are committed. From now on by default; `after`
    /// (a seq) replays what followed it first. Scope `audit:read`.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        after: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditEventView>>> {
        let caller = authorized::<AuditRead>(ctx)?;
        let app = app(ctx);
        let filter = audit::checked_filter(filter.unwrap_or_default().into())
            .map_err(argument_names)
            .graphql()?;
        let after = match after {
            Some(seq) if seq < 0 => {
                return Err(graphql_error(Error::invalid("after", "must be 0 or more")))
            }
            Some(seq) => seq,
            None => audit::last_seq(app, &caller).await.graphql()?,
        };
        let draining = ctx.data_unchecked::<Draining>().0.clone();
        let records = audit::follow_for(app, &caller, filter, after, draining).graphql()?;
        Ok(records.map(|record| record.map(AuditEventView::from).graphql()))
    }
}
