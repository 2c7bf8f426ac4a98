//! KMS analytics and crypto agility over GraphQL (`app::kms`), scope
//! `keys:admin`: the same read models as `/v1/kms`.

use async_graphql::{ComplexObject, Context, Enum, Object};
use chrono::{DateTime, Utc};

use super::error::GraphqlResult as _;
use super::{app, authorized};
use crate::app::auth::KeysAdmin;
use crate::app::kms::{self, Bucketing};
use crate::views::kms::{
    counts, AlgorithmInventory, ApplicationUsage, KeySummary, OperationCount, PolicyRow,
    PqcAdoption, RiskAssessment, UsageAnalytics,
};

#[ComplexObject]
impl ApplicationUsage {
    /// Operations per operation name.
    async fn operation_counts(&self) -> Vec<OperationCount> {
        counts(&self.operation_counts)
    }
}

#[ComplexObject]
impl KeySummary {
    /// Operations per operation name.
    async fn operation_breakdown(&self) -> Vec<OperationCount> {
        counts(&self.operation_breakdown)
    }
}

/// How KMS usage is bucketed.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum KmsGranularity {
    #[default]
    Hour,
    Day,
    /// ISO weeks, from Monday.
    Week,
}

impl From<KmsGranularity> for Bucketing {
    fn from(granularity: KmsGranularity) -> Self {
        match granularity {
            KmsGranularity::Hour => Bucketing::Hour,
            KmsGranularity::Day => Bucketing::Day,
            KmsGranularity::Week => Bucketing::Week,
        }
    }
}

/// Each analytics field is a few grouped queries.
const ANALYTICS_COST: usize = 20;

#[derive(Default)]
pub struct KmsQuery;

#[Object]
impl KmsQuery {
    /// Usage per bucket, key and operation, with a summary. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn kms_usage(
        &self,
        ctx: &Context<'_>,
        key_id: Option<String>,
        operation: Option<String>,
        granularity: Option<KmsGranularity>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<UsageAnalytics> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let bucketing = granularity.unwrap_or_default().into();
        let usage = kms::usage(
            app(ctx),
            &caller,
            key_id,
            operation,
            bucketing,
            since,
            until,
        )
        .await
        .graphql()?;
        Ok(usage.into())
    }

    /// Usage per application, most active first. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn kms_applications(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Vec<ApplicationUsage>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let applications = kms::applications(app(ctx), &caller, since, until)
            .await
            .graphql()?;
        Ok(applications.into_iter().map(Into::into).collect())
    }

    /// One key's usage by operation and its top applications. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn kms_key_summary(
        &self,
        ctx: &Context<'_>,
        id: String,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<KeySummary> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let summary = kms::key_summary(app(ctx), &caller, &id, since, until)
            .await
            .graphql()?;
        Ok(summary.into())
    }

    /// The crypto policy, one row per algorithm. Scope `keys:admin`.
    async fn crypto_policy(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PolicyRow>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(kms::crypto_policy(&caller)
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Every algorithm with the caller's keys and use of it. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn algorithm_usage(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AlgorithmInventory> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let inventory = kms::algorithm_usage(app(ctx), &caller, since, until)
            .await
            .graphql()?;
        Ok(inventory.into())
    }

    /// Post-quantum adoption now and per day. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn pqc_adoption(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<PqcAdoption> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let adoption = kms::pqc_adoption(app(ctx), &caller, since, until)
            .await
            .graphql()?;
        Ok(adoption.into())
    }

    /// Quantum risk per algorithm, and overall. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn quantum_risk_assessment(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<RiskAssessment> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let assessment = kms::risk_assessment(app(ctx), &caller).await.graphql()?;
        Ok(assessment.into())
    }
}
