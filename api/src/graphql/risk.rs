//! Risk over GraphQL: `overview`, `riskHistory` and `recalculateRisk`
//! (`app::risk`).

use async_graphql::{Context, InputObject, Object};

use super::error::GraphqlResult as _;
use super::types::{consistent, Consistency};
use super::{app, authorized, context};
use crate::app::auth::FindingsRead;
use crate::app::input::days;
use crate::app::risk;
use crate::views::risk::{Overview, Recalculation, RiskPoint};

#[derive(Default)]
pub struct RiskQuery;

#[Object]
impl RiskQuery {
    /// Risk, counts and the riskiest assets, as `GET /v1/overview`.
    async fn overview(
        &self,
        ctx: &Context<'_>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Overview> {
        let caller = authorized::<FindingsRead>(ctx)?;
        consistent(ctx, consistency).await?;
        let overview = risk::overview(app(ctx), &caller).await.graphql()?;
        Ok(Overview::of(overview, &caller.principal))
    }

    /// One point a day for the last `days` days (1–365, default 30).
    async fn risk_history(
        &self,
        ctx: &Context<'_>,
        days: Option<i32>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Vec<RiskPoint>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        let days = self::days(days.map(i64::from)).graphql()?;
        consistent(ctx, consistency).await?;
        let series = risk::history(app(ctx), &caller, days).await.graphql()?;
        Ok(series.into_iter().map(RiskPoint::from).collect())
    }
}

#[derive(InputObject)]
pub struct RecalculateRiskInput {
    /// Compute and compare only; record nothing.
    #[graphql(default)]
    pub dry_run: bool,
}

#[derive(Default)]
pub struct RiskMutation;

#[Object]
impl RiskMutation {
    /// Recomputes the tenant's risk from its findings, from scratch; without
    /// `dryRun` records it and the views take the recomputed scores.
    async fn recalculate_risk(
        &self,
        ctx: &Context<'_>,
        input: RecalculateRiskInput,
    ) -> async_graphql::Result<Recalculation> {
        let caller = context(ctx)?;
        let recalculated = risk::recalculate(app(ctx), caller, input.dry_run)
            .await
            .graphql()?;
        Ok(recalculated.into())
    }
}
