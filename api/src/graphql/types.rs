//! GraphQL's own types: enums, inputs, connections, the fields that
//! resolve further (a finding's asset and history), and the asset loader.
//! Objects are otherwise the views (`crate::views`: `FindingView`,
//! `AssetView`, …), so both interfaces show the same thing under the same
//! names.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{ComplexObject, Context, Enum, OutputType, SimpleObject};
use palisade_domain::finding::{Severity, Status};
use palisade_infra::readmodel::Window;

use super::error::GraphqlResult as _;
use super::{app, authorized, graphql_error};
use crate::app::auth::FindingsRead;
use crate::app::{assets, findings, App, Error, RequestContext};
use crate::views::assets::AssetView;
use crate::views::findings::{FindingView, HistoryEntry};
use crate::views::tenants::{ApiKeyView, IssuedApiKey, TenantView};

/// How bad a finding is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Severity")]
pub enum SeverityLevel {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl From<SeverityLevel> for Severity {
    fn from(s: SeverityLevel) -> Self {
        match s {
            SeverityLevel::Critical => Severity::Critical,
            SeverityLevel::High => Severity::High,
            SeverityLevel::Medium => Severity::Medium,
            SeverityLevel::Low => Severity::Low,
            SeverityLevel::Info => Severity::Info,
        }
    }
}

impl From<Severity> for SeverityLevel {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Critical => SeverityLevel::Critical,
            Severity::High => SeverityLevel::High,
            Severity::Medium => SeverityLevel::Medium,
            Severity::Low => SeverityLevel::Low,
            Severity::Info => SeverityLevel::Info,
        }
    }
}

/// Where a finding is in its lifecycle.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "FindingStatus")]
pub enum FindingStatus {
    Open,
    Confirmed,
    Dismissed,
    RiskAccepted,
    Remediated,
}

impl From<FindingStatus> for Status {
    fn from(s: FindingStatus) -> Self {
        match s {
            FindingStatus::Open => Status::Open,
            FindingStatus::Confirmed => Status::Confirmed,
            FindingStatus::Dismissed => Status::Dismissed,
            FindingStatus::RiskAccepted => Status::RiskAccepted,
            FindingStatus::Remediated => Status::Remediated,
        }
    }
}

impl From<Status> for FindingStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Open => FindingStatus::Open,
            Status::Confirmed => FindingStatus::Confirmed,
            Status::Dismissed => FindingStatus::Dismissed,
            Status::RiskAccepted => FindingStatus::RiskAccepted,
            Status::Remediated => FindingStatus::Remediated,
        }
    }
}

/// Live data or the tenant's sandbox.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Environment {
    Live,
    Test,
}

impl From<palisade_domain::Environment> for Environment {
    fn from(e: palisade_domain::Environment) -> Self {
        match e {
            palisade_domain::Environment::Live => Environment::Live,
            palisade_domain::Environment::Test => Environment::Test,
        }
    }
}

impl From<Environment> for palisade_domain::Environment {
    fn from(e: Environment) -> Self {
        match e {
            Environment::Live => palisade_domain::Environment::Live,
            Environment::Test => palisade_domain::Environment::Test,
        }
    }
}

/// `STRONG` waits (bounded) until the read models reflect every write
/// acknowledged before the query; `EVENTUAL` (default) reads at once.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum Consistency {
    #[default]
    Eventual,
    Strong,
}

/// Applies a read's consistency level.
pub async fn consistent(
    ctx: &Context<'_>,
    level: Option<Consistency>,
) -> async_graphql::Result<()> {
    if level == Some(Consistency::Strong) {
        app(ctx).await_views(&[]).await.graphql()?;
    }
    Ok(())
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum SortOrder {
    Asc,
    #[default]
    Desc,
}

impl From<SortOrder> for palisade_infra::readmodel::Order {
    fn from(o: SortOrder) -> Self {
        match o {
            SortOrder::Asc => palisade_infra::readmodel::Order::Asc,
            SortOrder::Desc => palisade_infra::readmodel::Order::Desc,
        }
    }
}

#[ComplexObject]
impl FindingView {
    async fn severity(&self) -> async_graphql::Result<SeverityLevel> {
        let severity: Severity = self.severity.parse().map_err(async_graphql::Error::new)?;
        Ok(severity.into())
    }

    async fn status(&self) -> async_graphql::Result<FindingStatus> {
        let status: Status = self.status.parse().map_err(async_graphql::Error::new)?;
        Ok(status.into())
    }

    async fn environment(&self) -> async_graphql::Result<Environment> {
        let environment: palisade_domain::Environment = self
            .environment
            .parse()
            .map_err(async_graphql::Error::new)?;
        Ok(environment.into())
    }

    /// The asset's identifier, without loading the asset.
    async fn asset_identifier(&self) -> &str {
        &self.asset.identifier
    }

    /// The asset the finding is on (loaded in one query for a whole list).
    async fn asset(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<AssetView>> {
        let loader = ctx.data_unchecked::<DataLoader<AssetLoader>>();
        loader
            .load_one(self.asset.id.clone())
            .await
            .map_err(|e| graphql_error(Error::internal(e)))
    }

    /// Every event of the finding, oldest first. One query per finding: it
    /// costs [`HISTORY_COST`] in the complexity limit.
    #[graphql(complexity = "HISTORY_COST + child_complexity")]
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEntry>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        let records = findings::history(app(ctx), &caller, &self.id)
            .await
            .graphql()?;
        Ok(records.into_iter().map(HistoryEntry::from).collect())
    }
}

#[ComplexObject]
impl TenantView {
    /// `free`, `starter`, `pro`, `business`, `enterprise` or `unlimited`.
    async fn plan(&self) -> String {
        self.plan.to_string()
    }
}

#[ComplexObject]
impl ApiKeyView {
    /// Scope names, e.g. `findings:read`.
    async fn scopes(&self) -> Vec<String> {
        self.scopes.iter().map(|s| s.to_string()).collect()
    }

    async fn environment(&self) -> Environment {
        self.environment.into()
    }
}

#[ComplexObject]
impl IssuedApiKey {
    async fn scopes(&self) -> Vec<String> {
        self.scopes.iter().map(|s| s.to_string()).collect()
    }

    async fn environment(&self) -> Environment {
        self.environment.into()
    }
}

/// Loads the assets a list of findings is on, in one query per batch.
pub struct AssetLoader {
    pub app: App,
    pub context: RequestContext,
}

impl Loader<String> for AssetLoader {
    type Value = AssetView;
    type Error = Arc<String>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, AssetView>, Self::Error> {
        let fail = |e: Error| Arc::new(e.to_string());
        // Only a finding (scope `findings:read`) leads here; checked again.
        let caller = self.context.authorize::<FindingsRead>().map_err(fail)?;
        let rows = assets::by_ids(&self.app, &caller, keys)
            .await
            .map_err(fail)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id.clone(), AssetView::from(row)))
            .collect())
    }
}

/// What every connection adds to its edges: the total that matches.
#[derive(SimpleObject)]
pub struct Total {
    /// How many match the filter in all, counted up to 10,000 (then
    /// 10,000, with `totalExact` false).
    pub total_count: i64,
    /// False when more than 10,000 match.
    pub total_exact: bool,
}

/// Page sizes: `first` defaults to 50, at most 100.
pub const DEFAULT_FIRST: i32 = 50;
/// What a finding's `history` costs in the complexity limit (its own query).
pub const HISTORY_COST: usize = 20;
pub const MAX_FIRST: i32 = 100;

/// A cursor that is a whole number (an offset or an audit seq).
pub fn number_cursor(cursor: &str) -> async_graphql::Result<i64> {
    cursor
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| graphql_error(Error::invalid("after", "is not a cursor this API issued")))
}

/// The window `first` items after the `after` cursor (an offset). The
/// arithmetic is checked: a cursor whose next offset, or whose window's
/// end, does not fit an i64 (`"9223372036854775807"` wrapped to a negative
/// offset) is a validation error.
pub fn window(first: Option<i32>, after: Option<String>) -> async_graphql::Result<Window> {
    let first = first.unwrap_or(DEFAULT_FIRST);
    if !(1..=MAX_FIRST).contains(&first) {
        return Err(graphql_error(Error::invalid(
            "first",
            format!("must be from 1 to {MAX_FIRST}"),
        )));
    }
    let offset = match after.as_deref() {
        Some(cursor) => number_cursor(cursor)?.checked_add(1),
        None => Some(0),
    }
    .filter(|offset| offset.checked_add(i64::from(first)).is_some())
    .ok_or_else(|| graphql_error(Error::invalid("after", "is not a cursor this API issued")))?;
    Ok(Window {
        offset,
        limit: first as u32,
    })
}

/// A connection over rows `window.offset ..`, cursors being offsets
/// (`window` keeps `offset + limit` within an i64, and `items` holds at
/// most `limit`).
pub fn offset_connection<T: OutputType>(
    window: Window,
    items: Vec<T>,
    total: i64,
) -> Connection<String, T, Total, EmptyFields> {
    let count = items.len() as i64;
    let has_next = window.offset + count < total;
    let mut connection = Connection::with_additional_fields(
        window.offset > 0,
        has_next,
        Total {
            total_count: total,
            total_exact: true,
        },
    );
    connection.edges.extend(
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Edge::new((window.offset + i as i64).to_string(), item)),
    );
    connection
}

/// What a list field costs in the complexity limit: each of the (at most
/// `first`) items it returns costs what its selection costs.
pub fn list_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(DEFAULT_FIRST).clamp(1, MAX_FIRST)).unwrap_or(1);
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// How many items `first` asks for (1 to [`MAX_FIRST`], default
/// [`DEFAULT_FIRST`]).
pub fn first_of(first: Option<i32>) -> async_graphql::Result<u32> {
    window(first, None).map(|w| w.limit)
}

/// A multi-value argument of values parsed from their names (at most
/// `MAX_LIST_ITEMS`), each refused by name when unknown.
pub fn parsed<T: std::str::FromStr<Err = String>>(
    field: &str,
    values: Option<Vec<String>>,
) -> async_graphql::Result<Vec<T>> {
    let values = values.unwrap_or_default();
    if values.len() > palisade_domain::MAX_LIST_ITEMS {
        return Err(graphql_error(crate::app::Error::invalid(
            field,
            format!("at most {} values", palisade_domain::MAX_LIST_ITEMS),
        )));
    }
    values
        .iter()
        .map(|value| {
            value
                .parse::<T>()
                .map_err(|message| graphql_error(crate::app::Error::invalid(field, message)))
        })
        .collect()
}

/// A multi-value filter of enum values, duplicates collapsed (first kept):
/// there are fewer of them than the limit on distinct filter values.
pub fn distinct<T: PartialEq, D: Into<T>>(values: Option<Vec<D>>) -> Vec<T> {
    let mut distinct = Vec::new();
    for value in values.into_iter().flatten().map(Into::into) {
        if !distinct.contains(&value) {
            distinct.push(value);
        }
    }
    distinct
}

/// A page of rows as a connection of views (cursors are offsets).
pub fn page_connection<R, V: OutputType + From<R>>(
    window: Window,
    page: palisade_infra::readmodel::Page<R>,
) -> Connection<String, V, Total, EmptyFields> {
    let items = page.items.into_iter().map(V::from).collect();
    let mut connection = offset_connection(window, items, page.total);
    if !page.total_exact {
        // More match than were counted: a full page has a next one.
        connection.has_next_page |= connection.edges.len() as u32 == window.limit;
        connection.additional_fields.total_exact = false;
    }
    connection
}
