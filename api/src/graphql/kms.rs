//! KMS analytics and crypto agility over GraphQL (`app::kms`,
//! `app::kms_alerts`, `app::kms_migrations`), scope `keys:admin`: the same
//! read models and commands as `/v1/kms`.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};

use super::error::{graphql_error, GraphqlResult as _};
use super::types::{list_cost, page_connection, window, Total};
use super::{app, authorized};
use crate::app::auth::KeysAdmin;
use crate::app::kms::{self, Bucketing};
use crate::app::kms_alerts::{
    self, ConditionRequest, CreateAlertRuleRequest, UpdateAlertRuleRequest,
};
use crate::app::kms_migrations::{
    self, CreateMigrationPlanRequest, PlanScopeRequest, TargetAlgorithmsRequest,
    UpdateMigrationPlanRequest,
};
use crate::app::Error;
use crate::views::kms::{
    counts, AlertRuleView, AlertView, AlgorithmInventory, ApplicationUsage, KeySummary,
    MigrationPlanView, MigrationReadinessView, OperationCount, PolicyRow, PqcAdoption,
    RiskAssessment, UsageAnalytics,
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

// ------------------------------------------------- alert rules and plans

/// A rule's condition.
#[derive(InputObject)]
pub struct KmsConditionInput {
    /// `operation_count`, `bytes_processed` or `error_rate`.
    pub metric: String,
    /// `gt` or `lt`.
    pub operator: String,
    pub threshold: f64,
    /// `1h` or `24h`.
    pub window: String,
}

impl From<KmsConditionInput> for ConditionRequest {
    fn from(input: KmsConditionInput) -> Self {
        ConditionRequest {
            metric: input.metric,
            operator: input.operator,
            threshold: input.threshold,
            window: input.window,
        }
    }
}

#[derive(InputObject)]
pub struct CreateKmsAlertRuleInput {
    pub name: String,
    /// Keys (ids or names); empty or absent: every key.
    pub key_ids: Option<Vec<String>>,
    pub condition: KmsConditionInput,
    /// `medium` when absent.
    pub severity: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct UpdateKmsAlertRuleInput {
    pub id: String,
    pub name: Option<String>,
    pub key_ids: Option<Vec<String>>,
    pub condition: Option<KmsConditionInput>,
    pub severity: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct KmsTargetAlgorithmsInput {
    pub signing: Option<String>,
    pub encryption: Option<String>,
    pub key_exchange: Option<String>,
}

impl From<KmsTargetAlgorithmsInput> for TargetAlgorithmsRequest {
    fn from(input: KmsTargetAlgorithmsInput) -> Self {
        TargetAlgorithmsRequest {
            signing: input.signing,
            encryption: input.encryption,
            key_exchange: input.key_exchange,
        }
    }
}

/// `keyIds` or `algorithms`, not both.
#[derive(InputObject)]
pub struct KmsPlanScopeInput {
    pub key_ids: Option<Vec<String>>,
    pub algorithms: Option<Vec<String>>,
}

impl From<KmsPlanScopeInput> for PlanScopeRequest {
    fn from(input: KmsPlanScopeInput) -> Self {
        PlanScopeRequest {
            key_ids: input.key_ids,
            algorithms: input.algorithms,
        }
    }
}

#[derive(InputObject)]
pub struct CreateMigrationPlanInput {
    pub name: String,
    pub target_algorithms: KmsTargetAlgorithmsInput,
    pub scope: KmsPlanScopeInput,
}

#[derive(InputObject)]
pub struct UpdateMigrationPlanInput {
    pub id: String,
    pub name: Option<String>,
    pub target_algorithms: Option<KmsTargetAlgorithmsInput>,
    pub scope: Option<KmsPlanScopeInput>,
    /// `active`, `completed` or `cancelled`.
    pub status: Option<String>,
}

#[derive(Default)]
pub struct KmsAlertsQuery;

#[Object]
impl KmsAlertsQuery {
    /// The environment's alert rules, newest first. Scope `keys:admin`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn kms_alert_rules(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AlertRuleView, Total, EmptyFields>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let window = window(first, after)?;
        let page = kms_alerts::list_rules(app(ctx), &caller, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// Alerts the rules raised, newest first. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + list_cost(first, child_complexity)")]
    async fn kms_alerts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        acknowledged: Option<bool>,
        #[graphql(desc = "`critical`, `high`, `medium`, `low`, `info`")] severity: Option<
            Vec<String>,
        >,
    ) -> async_graphql::Result<Connection<String, AlertView, Total, EmptyFields>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let window = window(first, after)?;
        let severity = severity.map(|values| values.join(","));
        let page = kms_alerts::alerts(app(ctx), &caller, acknowledged, &severity, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// The environment's migration plans with their progress, newest
    /// first. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + list_cost(first, child_complexity)")]
    async fn migration_plans(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "`draft`, `active`, `completed`, `cancelled`")] status: Option<
            Vec<String>,
        >,
    ) -> async_graphql::Result<Connection<String, MigrationPlanView, Total, EmptyFields>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let window = window(first, after)?;
        let status = status.map(|values| values.join(","));
        let page = kms_migrations::list_plans(app(ctx), &caller, &status, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One migration plan; null when unknown. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn migration_plan(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<MigrationPlanView>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        match kms_migrations::get_plan(app(ctx), &caller, &id).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(graphql_error(error)),
        }
    }

    /// Readiness for a quantum computer, 0–100. Scope `keys:admin`.
    #[graphql(complexity = "ANALYTICS_COST + child_complexity")]
    async fn migration_readiness(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<MigrationReadinessView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(kms_migrations::readiness(app(ctx), &caller)
            .await
            .graphql()?
            .into())
    }
}

#[derive(Default)]
pub struct KmsMutation;

#[Object]
impl KmsMutation {
    /// Creates an alert rule over key usage. Scope `keys:admin`.
    async fn create_kms_alert_rule(
        &self,
        ctx: &Context<'_>,
        input: CreateKmsAlertRuleInput,
    ) -> async_graphql::Result<AlertRuleView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = CreateAlertRuleRequest {
            name: input.name,
            key_ids: input.key_ids.unwrap_or_default(),
            condition: input.condition.into(),
            severity: input.severity,
            enabled: input.enabled,
        };
        Ok(kms_alerts::create_rule(app(ctx), &caller, request)
            .await
            .graphql()?
            .into())
    }

    /// Changes an alert rule. Scope `keys:admin`.
    async fn update_kms_alert_rule(
        &self,
        ctx: &Context<'_>,
        input: UpdateKmsAlertRuleInput,
    ) -> async_graphql::Result<AlertRuleView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = UpdateAlertRuleRequest {
            name: input.name,
            key_ids: input.key_ids,
            condition: input.condition.map(Into::into),
            severity: input.severity,
            enabled: input.enabled,
        };
        Ok(
            kms_alerts::update_rule(app(ctx), &caller, &input.id, request)
                .await
                .graphql()?
                .into(),
        )
    }

    /// Deletes an alert rule (its alerts stay). Scope `keys:admin`.
    async fn delete_kms_alert_rule(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<AlertRuleView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(kms_alerts::delete_rule(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }

    /// Acknowledges an alert, once. Scope `keys:admin`.
    async fn acknowledge_kms_alert(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<AlertView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(kms_alerts::acknowledge(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }

    /// Drafts a migration plan. Scope `keys:admin`.
    async fn create_migration_plan(
        &self,
        ctx: &Context<'_>,
        input: CreateMigrationPlanInput,
    ) -> async_graphql::Result<MigrationPlanView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = CreateMigrationPlanRequest {
            name: input.name,
            target_algorithms: input.target_algorithms.into(),
            scope: input.scope.into(),
        };
        Ok(kms_migrations::create_plan(app(ctx), &caller, request)
            .await
            .graphql()?
            .into())
    }

    /// Changes or moves a migration plan. Scope `keys:admin`.
    async fn update_migration_plan(
        &self,
        ctx: &Context<'_>,
        input: UpdateMigrationPlanInput,
    ) -> async_graphql::Result<MigrationPlanView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = UpdateMigrationPlanRequest {
            name: input.name,
            target_algorithms: input.target_algorithms.map(Into::into),
            scope: input.scope.map(Into::into),
            status: input.status,
        };
        Ok(
            kms_migrations::update_plan(app(ctx), &caller, &input.id, request)
                .await
                .graphql()?
                .into(),
        )
    }
}
