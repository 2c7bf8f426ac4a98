//! Assets over GraphQL: `assets` and `asset` (`app::assets`).

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object};
use palisade_infra::readmodel::{AssetFilter as Filter, AssetSort};

use super::error::argument_names;
use super::error::GraphqlResult as _;
use super::types::{consistent, list_cost, page_connection, window, Consistency, SortOrder, Total};
use super::{app, authorized};
use crate::app::assets;
use crate::app::auth::FindingsRead;
use crate::views::assets::AssetView;

#[derive(InputObject, Default)]
pub struct AssetFilter {
    /// Case-insensitive substring of the identifier.
    pub search: Option<String>,
    pub min_risk: Option<f64>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum AssetSortField {
    #[default]
    Risk,
    OpenFindings,
    LastSeen,
}

#[derive(InputObject, Default)]
pub struct AssetSortInput {
    #[graphql(default)]
    pub field: AssetSortField,
    #[graphql(default)]
    pub order: SortOrder,
}

#[derive(Default)]
pub struct AssetsQuery;

#[Object]
impl AssetsQuery {
    /// Assets, as `GET /v1/assets`. Scope `findings:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn assets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<AssetFilter>,
        sort: Option<AssetSortInput>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Connection<String, AssetView, Total, EmptyFields>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        let window = window(first, after)?;
        let filter = filter.unwrap_or_default();
        let filter = Filter {
            search: filter.search,
            min_risk: filter.min_risk,
        };
        let sort = sort.unwrap_or_default();
        let field = match sort.field {
            AssetSortField::Risk => AssetSort::Risk,
            AssetSortField::OpenFindings => AssetSort::OpenFindings,
            AssetSortField::LastSeen => AssetSort::LastSeen,
        };
        consistent(ctx, consistency).await?;
        let page = assets::list(app(ctx), &caller, filter, field, sort.order.into(), window)
            .await
            .map_err(argument_names)
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One asset by id (`ast_…`) or identifier; null when unknown.
    async fn asset(
        &self,
        ctx: &Context<'_>,
        id: String,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Option<AssetView>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        consistent(ctx, consistency).await?;
        let row = assets::find(app(ctx), &caller, &id).await.graphql()?;
        Ok(row.map(AssetView::from))
    }
}
