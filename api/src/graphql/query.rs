//! Queries over every read model: the REST filters and sorts, Relay
//! connections, and an optional `consistency` argument on each read.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};
use palisade_domain::Scope;
use palisade_infra::readmodel::{
    get_asset, get_finding, list_assets, list_audit, list_findings, list_timeline,
    verify_audit_chain, AssetFilter as AssetQuery, AssetSort, FindingFilter as FindingQuery,
    FindingSort, TimelineFilter as TimelineQuery,
};

use super::types::{
    consistent, number_cursor, offset_connection, window, Consistency, FindingStatus,
    SeverityLevel, SortOrder, Total, DEFAULT_FIRST, MAX_FIRST,
};
use super::{app, caller, graphql_error};
use crate::findings::FindingView;
use crate::rest::admin::ProjectionStatusView;
use crate::rest::assets::AssetView;
use crate::rest::audit::{AuditEventView, ChainReportView};
use crate::rest::query::{filter_text, filter_values};
use crate::rest::risk::{overview_of, risk_series, Overview, RiskPoint};
use crate::rest::timeline::{decode_cursor, encode_cursor, TimelineEntryView};
use crate::rest::ApiError;
use crate::tenants::{find_tenant, ApiKeyView, TenantView};

pub struct Query;

/// The filters of `GET /v1/findings`; lists for the multi-value ones. Text
/// filters take at most 200 characters (a validation error beyond).
#[derive(InputObject, Default)]
pub struct FindingFilter {
    pub product: Option<String>,
    pub category: Option<String>,
    pub severity: Option<Vec<SeverityLevel>>,
    pub status: Option<Vec<FindingStatus>>,
    /// Asset id (`ast_…`) or identifier.
    pub asset: Option<String>,
    pub cve: Option<String>,
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of title or description.
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// 0–100.
    pub min_risk: Option<f64>,
}

fn min_risk(value: Option<f64>) -> async_graphql::Result<Option<f64>> {
    match value {
        Some(v) if !(0.0..=100.0).contains(&v) => Err(graphql_error(ApiError::invalid_field(
            "minRisk",
            "must be a number from 0 to 100",
        ))),
        other => Ok(other),
    }
}

/// A free-text filter, as REST's ([`filter_text`]).
fn some_text(field: &str, value: Option<String>) -> async_graphql::Result<Option<String>> {
    filter_text(field, value.as_deref()).map_err(graphql_error)
}

/// A multi-value filter of free text, as REST's ([`filter_values`]).
fn some_texts(field: &str, values: Option<Vec<String>>) -> async_graphql::Result<Vec<String>> {
    filter_values(field, values.iter().flatten().map(String::as_str)).map_err(graphql_error)
}

/// A multi-value filter of enum values, duplicates collapsed (first kept):
/// there are fewer of them than [`MAX_FILTER_VALUES`](crate::rest::query::MAX_FILTER_VALUES).
fn distinct<T: PartialEq, D: Into<T>>(values: Option<Vec<D>>) -> Vec<T> {
    let mut distinct = Vec::new();
    for value in values.into_iter().flatten().map(Into::into) {
        if !distinct.contains(&value) {
            distinct.push(value);
        }
    }
    distinct
}

impl FindingFilter {
    fn parse(self) -> async_graphql::Result<FindingQuery> {
        Ok(FindingQuery {
            product: some_text("product", self.product)?,
            category: some_text("category", self.category)?,
            severities: distinct(self.severity),
            statuses: distinct(self.status),
            asset: some_text("asset", self.asset)?,
            cve: some_text("cve", self.cve)?,
            assignee: some_text("assignee", self.assignee)?,
            tag: some_text("tag", self.tag)?,
            search: some_text("search", self.search)?,
            created_after: self.created_after,
            created_before: self.created_before,
            min_risk: min_risk(self.min_risk)?,
        })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum FindingSortField {
    #[default]
    CreatedAt,
    UpdatedAt,
    Severity,
    Risk,
    Title,
}

#[derive(InputObject, Default)]
pub struct FindingSortInput {
    #[graphql(default)]
    pub field: FindingSortField,
    #[graphql(default)]
    pub order: SortOrder,
}

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

impl AuditFilter {
    pub fn parse(self) -> async_graphql::Result<palisade_infra::readmodel::AuditFilter> {
        let filter = palisade_infra::readmodel::AuditFilter {
            aggregate_type: some_text("aggregateType", self.aggregate_type)?,
            aggregate_id: some_text("aggregateId", self.aggregate_id)?,
            event_types: some_texts("eventType", self.event_type)?,
            actor: some_text("actor", self.actor)?,
            since: self.since,
            until: self.until,
        };
        crate::rest::audit::check_window(&filter).map_err(graphql_error)?;
        Ok(filter)
    }
}

fn internal(error: impl std::fmt::Display + 'static) -> async_graphql::Error {
    graphql_error(ApiError::internal(error))
}

/// What a list field costs in the complexity limit: each of the (at most
/// `first`) items it returns costs what its selection costs.
fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(DEFAULT_FIRST).clamp(1, MAX_FIRST)).unwrap_or(1);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// What re-walking the audit chain costs in the complexity limit: it reads
/// and hashes every record of the partition, so a document holds at most a
/// few of them (`MAX_COMPLEXITY` / this).
pub(crate) const AUDIT_VERIFICATION_COST: usize = 1_000;

fn first_of(first: Option<i32>) -> async_graphql::Result<u32> {
    window(first, None).map(|w| w.limit)
}

#[Object]
impl Query {
    /// The caller's tenant.
    async fn tenant(&self, ctx: &Context<'_>) -> async_graphql::Result<TenantView> {
        let caller = caller(ctx, None)?;
        let row = find_tenant(app(ctx), &caller.tenant_id.to_string())
            .await
            .map_err(graphql_error)?;
        Ok(row.into())
    }

    /// The tenant's API keys, newest first (never their values). Scope
    /// `tenant:admin`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ApiKeyView, Total, EmptyFields>> {
        let caller = caller(ctx, Some(Scope::TenantAdmin))?;
        let window = window(first, after)?;
        let (keys, total) = crate::api_keys::list(app(ctx), caller, window)
            .await
            .map_err(graphql_error)?;
        Ok(offset_connection(window, keys, total))
    }

    /// One of the tenant's API keys; null when unknown. Scope `tenant:admin`.
    async fn api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<ApiKeyView>> {
        let caller = caller(ctx, Some(Scope::TenantAdmin))?;
        let key = crate::api_keys::find(app(ctx), caller, &id)
            .await
            .map_err(graphql_error)?;
        Ok(key.map(ApiKeyView::from))
    }

    /// Findings, filtered and sorted as `GET /v1/findings`. Scope `findings:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn findings(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<FindingFilter>,
        sort: Option<FindingSortInput>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Connection<String, FindingView, Total, EmptyFields>> {
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        let window = window(first, after)?;
        let filter = filter.unwrap_or_default().parse()?;
        let sort = sort.unwrap_or_default();
        let field = match sort.field {
            FindingSortField::CreatedAt => FindingSort::CreatedAt,
            FindingSortField::UpdatedAt => FindingSort::UpdatedAt,
            FindingSortField::Severity => FindingSort::Severity,
            FindingSortField::Risk => FindingSort::Risk,
            FindingSortField::Title => FindingSort::Title,
        };
        consistent(ctx, consistency).await?;
        let page = list_findings(
            app(ctx).store.read_pool(),
            &caller.partition(),
            &filter,
            field,
            sort.order.into(),
            window,
        )
        .await
        .map_err(internal)?;
        Ok(offset_connection(
            window,
            page.items.into_iter().map(FindingView::from).collect(),
            page.total,
        ))
    }

    /// One finding; null when unknown or another tenant's. Scope `findings:read`.
    async fn finding(
        &self,
        ctx: &Context<'_>,
        id: String,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Option<FindingView>> {
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        consistent(ctx, consistency).await?;
        let row = get_finding(app(ctx).store.read_pool(), &caller.partition(), &id)
            .await
            .map_err(internal)?;
        Ok(row.map(FindingView::from))
    }

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
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        let window = window(first, after)?;
        let filter = filter.unwrap_or_default();
        let query = AssetQuery {
            search: some_text("search", filter.search)?,
            min_risk: min_risk(filter.min_risk)?,
        };
        let sort = sort.unwrap_or_default();
        let field = match sort.field {
            AssetSortField::Risk => AssetSort::Risk,
            AssetSortField::OpenFindings => AssetSort::OpenFindings,
            AssetSortField::LastSeen => AssetSort::LastSeen,
        };
        consistent(ctx, consistency).await?;
        let page = list_assets(
            app(ctx).store.read_pool(),
            &caller.partition(),
            &query,
            field,
            sort.order.into(),
            window,
        )
        .await
        .map_err(internal)?;
        Ok(offset_connection(
            window,
            page.items.into_iter().map(AssetView::from).collect(),
            page.total,
        ))
    }

    /// One asset by id (`ast_…`) or identifier; null when unknown.
    async fn asset(
        &self,
        ctx: &Context<'_>,
        id: String,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Option<AssetView>> {
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        consistent(ctx, consistency).await?;
        let row = get_asset(app(ctx).store.read_pool(), &caller.partition(), &id)
            .await
            .map_err(internal)?;
        Ok(row.map(AssetView::from))
    }

    /// Risk, counts and the riskiest assets, as `GET /v1/overview`.
    async fn overview(
        &self,
        ctx: &Context<'_>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Overview> {
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        consistent(ctx, consistency).await?;
        overview_of(app(ctx), &caller.partition())
            .await
            .map_err(graphql_error)
    }

    /// One point a day for the last `days` days (1–365, default 30).
    async fn risk_history(
        &self,
        ctx: &Context<'_>,
        days: Option<i32>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Vec<RiskPoint>> {
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        let days = days.unwrap_or(30);
        if !(1..=365).contains(&days) {
            return Err(graphql_error(ApiError::invalid_field(
                "days",
                "must be from 1 to 365",
            )));
        }
        consistent(ctx, consistency).await?;
        risk_series(app(ctx), &caller.partition(), days as u32)
            .await
            .map_err(graphql_error)
    }

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
        let caller = caller(ctx, Some(Scope::FindingsRead))?;
        let limit = first_of(first)?;
        let filter = filter.unwrap_or_default();
        let days = filter.days.unwrap_or(30);
        if !(1..=365).contains(&days) {
            return Err(graphql_error(ApiError::invalid_field(
                "days",
                "must be from 1 to 365",
            )));
        }
        consistent(ctx, consistency).await?;
        let pool = app(ctx).store.read_pool();
        let partition = caller.partition();
        let finding_id = some_text("finding", filter.finding)?;
        let types = some_texts("types", filter.types)?;
        let asset_id = match some_text("asset", filter.asset)? {
            Some(asset) => match get_asset(pool, &partition, &asset)
                .await
                .map_err(internal)?
            {
                Some(asset) => Some(asset.id),
                None => return Ok(Connection::new(false, false)),
            },
            None => None,
        };
        let query = TimelineQuery {
            since: Some(Utc::now() - chrono::Duration::days(i64::from(days))),
            asset_id,
            finding_id,
            types,
            after: after
                .as_deref()
                .map(decode_cursor)
                .transpose()
                .map_err(graphql_error)?,
        };
        let mut entries = list_timeline(pool, &partition, &query, limit + 1)
            .await
            .map_err(internal)?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            entries
                .into_iter()
                .map(|entry| Edge::new(encode_cursor(&entry), TimelineEntryView::from(entry))),
        );
        Ok(connection)
    }

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
        let caller = caller(ctx, Some(Scope::AuditRead))?;
        let limit = first_of(first)?;
        let after_seq = after
            .as_deref()
            .map(number_cursor)
            .transpose()?
            .unwrap_or(0);
        let filter = filter.unwrap_or_default().parse()?;
        consistent(ctx, consistency).await?;
        let mut records = list_audit(
            app(ctx).store.read_pool(),
            &caller.partition(),
            &filter,
            after_seq,
            limit + 1,
        )
        .await
        .map_err(internal)?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let mut connection = Connection::new(after_seq > 0, more);
        connection.edges.extend(
            records
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
        let caller = caller(ctx, Some(Scope::AuditRead))?;
        let report = verify_audit_chain(app(ctx).store.read_pool(), &caller.partition())
            .await
            .map_err(internal)?;
        Ok(report.into())
    }

    /// Each projection's checkpoint and lag. Scope `tenant:admin`.
    async fn projections(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProjectionStatusView>> {
        caller(ctx, Some(Scope::TenantAdmin))?;
        let statuses = app(ctx).runner.status().await.map_err(internal)?;
        Ok(statuses
            .into_iter()
            .map(ProjectionStatusView::from)
            .collect())
    }
}
