//! The timeline over GraphQL (`app::timeline`), cursors as REST's.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, InputObject, Object};

use super::error::GraphqlResult as _;
use super::types::{consistent, first_of, list_cost, Consistency};
use super::{app, authorized, graphql_error};
use crate::app::auth::FindingsRead;
use crate::app::input::days;
use crate::app::timeline::{self, TimelineQuery as Query};
use crate::app::Error;
use crate::views::timeline::TimelineEntryView;

#[derive(InputObject, Default)]
pub struct TimelineFilter {
    /// Asset id (`ast_…`) or identifier.
    pub asset: Option<String>,
    pub finding: Option<String>,
    /// Event types, e.g. `FindingIngested`; at most 50 distinct ones.
    pub types: Option<Vec<String>>,
    /// How far back, 1 to 365 (default 30).
    pub days: Option<i32>,
}

#[derive(Default)]
pub struct TimelineQuery;

#[Object]
impl TimelineQuery {
    /// Every change, newest first, as `GET /v1/timeline`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TimelineFilter>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Connection<String, TimelineEntryView, EmptyFields, EmptyFields>>
    {
        let caller = authorized::<FindingsRead>(ctx)?;
        let limit = first_of(first)?;
        let filter = filter.unwrap_or_default();
        let days = days(filter.days.map(i64::from)).graphql()?;
        consistent(ctx, consistency).await?;
        let query = Query {
            days,
            asset: filter.asset,
            finding: filter.finding,
            types: filter.types.unwrap_or_default(),
            cursor: after.clone(),
            limit,
        };
        let page = match timeline::list(app(ctx), &caller, query).await {
            Ok(page) => page,
            // An unknown asset has no entries.
            Err(Error::NotFound(_)) => return Ok(Connection::new(false, false)),
            Err(error) => return Err(graphql_error(error)),
        };
        let mut connection = Connection::new(after.is_some(), page.next_cursor.is_some());
        // Each entry's cursor is where the page after it starts.
        let cursors = page.cursors();
        connection.edges.extend(
            page.entries
                .into_iter()
                .zip(cursors)
                .map(|(entry, cursor)| Edge::new(cursor, TimelineEntryView::from(entry))),
        );
        Ok(connection)
    }
}
