//! `subscription { auditEvents(filter) }`: the audit trail live, through
//! the same follower as the SSE stream.

use async_graphql::{Context, Subscription as SubscriptionRoot};
use futures_util::stream::{Stream, StreamExt};
use palisade_domain::Scope;
use palisade_infra::readmodel::audit_last_seq;

use super::query::AuditFilter;
use super::{app, caller, graphql_error, Draining};
use crate::audit::{follow, Follow};
use crate::rest::audit::AuditEventView;
use crate::rest::ApiError;

pub struct Subscription;

#[SubscriptionRoot]
impl Subscription {
    /// Audit records as they are committed. From now on by default; `after`
    /// (a seq) replays what followed it first. Scope `audit:read`.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        after: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<AuditEventView>>> {
        let caller = caller(ctx, Some(Scope::AuditRead))?;
        let app = app(ctx).clone();
        let partition = caller.partition();
        let filter = filter.unwrap_or_default().parse()?;
        let after = match after {
            Some(seq) if seq < 0 => {
                return Err(graphql_error(ApiError::invalid_field(
                    "after",
                    "must be 0 or more",
                )))
            }
            Some(seq) => seq,
            None => audit_last_seq(app.store.read_pool(), &partition)
                .await
                .map_err(|e| graphql_error(ApiError::internal(e)))?,
        };
        let draining = ctx.data_unchecked::<Draining>().0.clone();
        let records = follow(
            app,
            Follow {
                partition,
                filter,
                after,
                key_id: caller.key_id,
            },
            draining,
        )
        .map_err(graphql_error)?;
        Ok(records.map(|record| record.map(AuditEventView::from).map_err(graphql_error)))
    }
}
