//! The caller's tenant, and the projections' progress, over GraphQL.

use async_graphql::{Context, Object};

use super::error::GraphqlResult as _;
use super::{app, authorized, context};
use crate::app::auth::TenantAdmin;
use crate::app::tenants;
use crate::views::tenants::{ProjectionStatusView, TenantView};

#[derive(Default)]
pub struct TenantsQuery;

#[Object]
impl TenantsQuery {
    /// The caller's tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<TenantView> {
        let row = tenants::own(app(ctx), context(ctx)?).await.graphql()?;
        Ok(row.into())
    }
}

#[derive(Default)]
pub struct ProjectionsQuery;

#[Object]
impl ProjectionsQuery {
    /// Each projection's checkpoint and lag. Scope `tenant:admin`.
    async fn projections(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProjectionStatusView>> {
        authorized::<TenantAdmin>(ctx)?;
        let statuses = app(ctx).projection_status().await.graphql()?;
        Ok(statuses
            .into_iter()
            .map(ProjectionStatusView::from)
            .collect())
    }
}
