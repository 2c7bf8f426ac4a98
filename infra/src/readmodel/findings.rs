//! The findings, assets and risk tables: the projection's writes, and the
//! queries behind `/v1/findings`, `/v1/assets`, `/v1/overview` and
//! `/v1/risk/history`. Rows keep the read model as JSON in `doc`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use palisade_domain::finding::{Severity, Status};
use palisade_domain::Environment;
use palisade_projections::{
    AssetRow, FindingRow, FindingsStore, RiskSummaryRow, StoreError, ViewRef,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::pending::{insert_rows, optional, shown_score, text, to_json};
use super::sql::{Sql, Value};
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use crate::store::{dialect_named, dialect_of};

pub(crate) fn from_doc<T: serde::de::DeserializeOwned>(row: &AnyRow) -> Result<T, sqlx::Error> {
    let doc: String = row.try_get("doc")?;
    serde_json::from_str(&doc).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The findings view's SQL store for one batch. Findings, assets and risk
/// rows are written behind: the projection's reads see this batch's rows
/// first, and [`FindingsSql::flush`] writes each changed row once.
pub(super) struct FindingsSql {
    tx: BatchTransaction,
    pending: Pending,
    loaded: Loaded,
}

/// Rows changed in this batch and not yet written.
#[derive(Default)]
struct Pending {
    findings: BTreeMap<String, FindingRow>,
    assets: BTreeMap<String, AssetRow>,
    summaries: BTreeMap<(String, Environment), RiskSummaryRow>,
    history: BTreeMap<(String, Environment, NaiveDate), f64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.assets.is_empty()
            && self.summaries.is_empty()
            && self.history.is_empty()
    }
}

/// Rows the projection's `prepare` loaded for the batch, as they were
/// before it (None: known to be absent). Rows it then changes are in
/// [`Pending`], which is read first; a flush drops these, as they may be
/// stale after it.
#[derive(Default)]
struct Loaded {
    findings: HashMap<String, Option<FindingRow>>,
    assets: HashMap<String, Option<AssetRow>>,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(FindingsSql {
        tx,
        pending: Pending::default(),
        loaded: Loaded::default(),
    })
}

#[async_trait]
impl SqlStore for FindingsSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn FindingsStore)
    }

    async fn finish(mut self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        self.flush().await?;
        Ok(self.tx)
    }
}

impl FindingsSql {
    /// Writes every row this batch changed. [`SqlStore::finish`] calls it;
    /// so do the reads that query the tables directly.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.loaded = Loaded::default();
        let pending = std::mem::take(&mut self.pending);
        let findings: Vec<FindingRow> = pending.findings.into_values().collect();
        insert_rows(
            &mut self.tx,
            "findings (id, tenant_id, environment, asset_id, product, category, asset_identifier,
                       title, search_text, severity, severity_rank, status, cve, assignee, tags,
                       risk_score, accepted_until, created_at, updated_at, doc)",
            "ON CONFLICT (id) DO UPDATE SET
                 title = excluded.title, search_text = excluded.search_text,
                 severity = excluded.severity, severity_rank = excluded.severity_rank,
                 status = excluded.status, assignee = excluded.assignee, tags = excluded.tags,
                 risk_score = excluded.risk_score, accepted_until = excluded.accepted_until,
                 updated_at = excluded.updated_at, doc = excluded.doc",
            &findings,
            |f| {
                let d = &f.details;
                Ok(vec![
                    text(&f.id),
                    text(&f.tenant_id),
                    text(f.environment.as_str()),
                    text(&f.asset_id),
                    text(&d.product),
                    text(&d.category),
                    text(&d.asset_identifier),
                    text(&d.title),
                    Value::Text(format!("{}\n{}", d.title, d.description).to_lowercase()),
                    text(d.severity.as_str()),
                    Value::Int(d.severity.rank()),
                    text(f.status.as_str()),
                    optional(d.cve.as_deref()),
                    optional(f.assignee.as_deref()),
                    Value::Text(format!("|{}|", d.tags.join("|"))),
                    shown_score(f.risk_score),
                    f.accepted_until
                        .as_ref()
                        .map_or(Value::Null, |t| Value::Text(timestamp(t))),
                    Value::Text(timestamp(&f.created_at)),
                    Value::Text(timestamp(&f.updated_at)),
                    Value::Text(to_json(f)?),
                ])
            },
        )
        .await?;
        let assets: Vec<AssetRow> = pending.assets.into_values().collect();
        insert_rows(
            &mut self.tx,
            "assets (id, tenant_id, environment, identifier, risk_score, open_findings, last_seen, doc)",
            "ON CONFLICT (id) DO UPDATE SET
                 risk_score = excluded.risk_score, open_findings = excluded.open_findings,
                 last_seen = excluded.last_seen, doc = excluded.doc",
            &assets,
            |a| {
                Ok(vec![
                    text(&a.id),
                    text(&a.tenant_id),
                    text(a.environment.as_str()),
                    text(&a.identifier),
                    shown_score(a.risk_score),
                    Value::Int(a.open_findings),
                    Value::Text(timestamp(&a.last_seen)),
                    Value::Text(to_json(a)?),
                ])
            },
        )
        .await?;
        let summaries: Vec<RiskSummaryRow> = pending.summaries.into_values().collect();
        insert_rows(
            &mut self.tx,
            "risk_summaries (tenant_id, environment, risk_score, doc)",
            "ON CONFLICT (tenant_id, environment) DO UPDATE SET
                 risk_score = excluded.risk_score, doc = excluded.doc",
            &summaries,
            |s| {
                Ok(vec![
                    text(&s.tenant_id),
                    text(s.environment.as_str()),
                    shown_score(s.risk_score),
                    Value::Text(to_json(s)?),
                ])
            },
        )
        .await?;
        let history: Vec<_> = pending.history.into_iter().collect();
        insert_rows(
            &mut self.tx,
            "risk_history (tenant_id, environment, day, risk_score)",
            "ON CONFLICT (tenant_id, environment, day) DO UPDATE SET risk_score = excluded.risk_score",
            &history,
            |((tenant, environment, day), score)| {
                Ok(vec![
                    text(tenant),
                    text(environment.as_str()),
                    Value::Text(day.to_string()),
                    Value::Real(*score),
                ])
            },
        )
        .await?;
        Ok(())
    }

    /// The document of the row `query` selects, in this batch's transaction.
    async fn doc_in_tx<'q, T: serde::de::DeserializeOwned>(
        &mut self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Option<T>, StoreError> {
        let row = query
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(store_error)?;
        row.as_ref().map(from_doc).transpose().map_err(store_error)
    }

    /// The documents of `table`'s rows among `ids` (a primary-key probe
    /// each), in this batch's transaction.
    async fn docs_by_id<T: serde::de::DeserializeOwned>(
        &mut self,
        table: &str,
        ids: &[String],
    ) -> Result<Vec<T>, StoreError> {
        let mut docs = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PREFETCH_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
            let mut sql = Sql::new(&format!("SELECT doc FROM {table} WHERE 1 = 1"));
            sql.and_in("id", &ids);
            let rows = sql
                .query(dialect_named(self.tx.backend_name()))
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
            for row in &rows {
                docs.push(from_doc(row).map_err(store_error)?);
            }
        }
        Ok(docs)
    }
}

/// Ids per prefetch query: well below both backends' bound-parameter limits.
const PREFETCH_CHUNK: usize = 500;

#[async_trait]
impl FindingsStore for FindingsSql {
    async fn get_finding(&mut self, id: &str) -> Result<Option<FindingRow>, StoreError> {
        if let Some(row) = self.pending.findings.get(id) {
            return Ok(Some(row.clone()));
        }
        if let Some(row) = self.loaded.findings.get(id) {
            return Ok(row.clone());
        }
        self.doc_in_tx(sqlx::query("SELECT doc FROM findings WHERE id = $1").bind(id))
            .await
    }

    async fn prefetch(
        &mut self,
        finding_ids: &[String],
        asset_ids: &[String],
    ) -> Result<(), StoreError> {
        let findings: Vec<FindingRow> = self.docs_by_id("findings", finding_ids).await?;
        let mut asset_ids: BTreeSet<&str> = asset_ids.iter().map(String::as_str).collect();
        asset_ids.extend(findings.iter().map(|f| f.asset_id.as_str()));
        let asset_ids: Vec<String> = asset_ids.into_iter().map(str::to_string).collect();
        let assets: Vec<AssetRow> = self.docs_by_id("assets", &asset_ids).await?;
        let loaded = &mut self.loaded;
        loaded
            .findings
            .extend(finding_ids.iter().map(|id| (id.clone(), None)));
        loaded
            .findings
            .extend(findings.into_iter().map(|f| (f.id.clone(), Some(f))));
        loaded
            .assets
            .extend(asset_ids.into_iter().map(|id| (id, None)));
        loaded
            .assets
            .extend(assets.into_iter().map(|a| (a.id.clone(), Some(a))));
        Ok(())
    }

    async fn save_finding(&mut self, finding: &FindingRow) -> Result<(), StoreError> {
        self.pending
            .findings
            .insert(finding.id.clone(), finding.clone());
        Ok(())
    }

    async fn get_asset(&mut self, id: &str) -> Result<Option<AssetRow>, StoreError> {
        if let Some(row) = self.pending.assets.get(id) {
            return Ok(Some(row.clone()));
        }
        if let Some(row) = self.loaded.assets.get(id) {
            return Ok(row.clone());
        }
        self.doc_in_tx(sqlx::query("SELECT doc FROM assets WHERE id = $1").bind(id))
            .await
    }

    async fn save_asset(&mut self, asset: &AssetRow) -> Result<(), StoreError> {
        self.pending.assets.insert(asset.id.clone(), asset.clone());
        Ok(())
    }

    async fn assets_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<AssetRow>, StoreError> {
        self.flush().await?;
        let rows = sqlx::query("SELECT doc FROM assets WHERE tenant_id = $1 AND environment = $2")
            .bind(tenant_id)
            .bind(environment.as_str())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(from_doc)
            .collect::<Result<_, _>>()
            .map_err(store_error)
    }

    async fn counted_findings_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<(String, f64, Severity)>, StoreError> {
        self.flush().await?;
        // The exact scores are in `doc`; the column holds the shown one.
        let rows = sqlx::query(
            "SELECT doc FROM findings
              WHERE tenant_id = $1 AND environment = $2 AND status IN ('open', 'confirmed')",
        )
        .bind(tenant_id)
        .bind(environment.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let finding: FindingRow = from_doc(row)?;
                Ok((
                    finding.asset_id,
                    finding.risk_score,
                    finding.details.severity,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(store_error)
    }

    async fn get_risk_summary(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<RiskSummaryRow>, StoreError> {
        let key = (tenant_id.to_string(), environment);
        if let Some(row) = self.pending.summaries.get(&key) {
            return Ok(Some(row.clone()));
        }
        self.doc_in_tx(
            sqlx::query("SELECT doc FROM risk_summaries WHERE tenant_id = $1 AND environment = $2")
                .bind(tenant_id)
                .bind(environment.as_str()),
        )
        .await
    }

    async fn save_risk_summary(
        &mut self,
        summary: &RiskSummaryRow,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        let key = (summary.tenant_id.clone(), summary.environment);
        self.pending
            .history
            .insert((key.0.clone(), key.1, day), summary.risk_score);
        self.pending.summaries.insert(key, summary.clone());
        Ok(())
    }
}

/// Whose data a query reads: one tenant's live data or its sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Partition {
    pub tenant_id: String,
    pub environment: Environment,
}

impl Partition {
    /// `WHERE tenant_id = … AND environment = …`.
    pub(crate) fn restrict(&self, sql: &mut Sql) {
        sql.push(" WHERE tenant_id = ")
            .bind(Value::Text(self.tenant_id.clone()))
            .push(" AND environment = ")
            .bind(Value::Text(self.environment.as_str().into()));
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    pub(crate) fn sql(&self) -> &'static str {
        match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        }
    }
}

/// What `GET /v1/findings` may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingSort {
    CreatedAt,
    UpdatedAt,
    Severity,
    Risk,
    Title,
}

impl FindingSort {
    fn column(&self) -> &'static str {
        match self {
            FindingSort::CreatedAt => "created_at",
            FindingSort::UpdatedAt => "updated_at",
            FindingSort::Severity => "severity_rank",
            FindingSort::Risk => "risk_score",
            FindingSort::Title => "title",
        }
    }
}

/// The filters of `GET /v1/findings`; empty lists and None mean "any".
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub product: Option<String>,
    pub category: Option<String>,
    pub severities: Vec<Severity>,
    pub statuses: Vec<Status>,
    /// An asset id (`ast_…`) or identifier.
    pub asset: Option<String>,
    pub cve: Option<String>,
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// Matched case-insensitively within title and description.
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub min_risk: Option<f64>,
}

/// How far a list counts its matches: above this, `total` is this and
/// `total_exact` false (a count of every match of a large view costs a
/// scan of it on every page).
pub const COUNT_CAP: i64 = 10_000;

/// One page of results and how many match in all (up to [`COUNT_CAP`]).
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many match, or [`COUNT_CAP`] when more do.
    pub total: i64,
    /// False when more than [`COUNT_CAP`] match.
    pub total_exact: bool,
}

impl<T> Page<T> {
    /// A page whose total was counted in full.
    pub fn exact(items: Vec<T>, total: i64) -> Self {
        Self {
            items,
            total,
            total_exact: true,
        }
    }
}

/// Which page of a list, from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub per_page: u32,
}

/// Rows `offset ..< offset + limit` of a list: what a page is, and what a
/// cursor-paginated (GraphQL) list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub offset: i64,
    pub limit: u32,
}

impl From<PageRequest> for Window {
    fn from(page: PageRequest) -> Self {
        Window {
            // At most (2³² − 2) × (2³² − 1): saturating, as i64 holds less.
            offset: i64::from(page.page.saturating_sub(1)).saturating_mul(i64::from(page.per_page)),
            limit: page.per_page,
        }
    }
}

/// Runs `sql` (a filtered `SELECT doc …`) ordered by `order_by`, one page of
/// it, and counts its rows up to [`COUNT_CAP`] when the page does not tell
/// the total.
pub(crate) async fn paged<T>(
    pool: &AnyPool,
    sql: Sql,
    order_by: &str,
    window: Window,
    decode: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Page<T>, sqlx::Error> {
    // The count needs neither the documents nor the order, and stops
    // one past the cap.
    let mut count = sql.counted_up_to(COUNT_CAP + 1);
    let mut sql = sql;
    sql.push(order_by);
    sql.push(" LIMIT ")
        .bind(Value::Int(i64::from(window.limit)))
        .push(" OFFSET ")
        .bind(Value::Int(window.offset));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    let items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    if window.offset == 0 && (items.len() as u32) < window.limit {
        let total = items.len() as i64;
        return Ok(Page::exact(items, total));
    }
    let counted: i64 = count.query_scalar(dialect_of(pool)).fetch_one(pool).await?;
    Ok(Page {
        items,
        total: counted.min(COUNT_CAP),
        total_exact: counted <= COUNT_CAP,
    })
}

/// One finding of a partition; None when unknown or someone else's.
pub async fn get_finding(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<FindingRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM findings");
    partition.restrict(&mut sql);
    sql.push(" AND id = ").bind(Value::Text(id.into()));
    let row = sql.query(dialect_of(pool)).fetch_optional(pool).await?;
    row.as_ref().map(from_doc).transpose()
}

/// Several findings of a partition by id, in queries of at most 500;
/// unknown ids are left out.
pub async fn get_findings_by_ids(
    pool: &AnyPool,
    partition: &Partition,
    ids: &[&str],
) -> Result<Vec<FindingRow>, sqlx::Error> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = Sql::new("SELECT doc FROM findings");
        partition.restrict(&mut sql);
        sql.and_in("id", chunk);
        let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
        for row in &rows {
            found.push(from_doc(row)?);
        }
    }
    Ok(found)
}

/// A page of a partition's findings.
pub async fn list_findings(
    pool: &AnyPool,
    partition: &Partition,
    filter: &FindingFilter,
    sort: FindingSort,
    order: Order,
    window: impl Into<Window>,
) -> Result<Page<FindingRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM findings");
    partition.restrict(&mut sql);
    let text = |v: &Option<String>| v.clone().map(Value::Text);
    if let Some(product) = text(&filter.product) {
        sql.push(" AND product = ").bind(product);
    }
    if let Some(category) = text(&filter.category) {
        sql.push(" AND category = ").bind(category);
    }
    let severities: Vec<&str> = filter.severities.iter().map(|s| s.as_str()).collect();
    sql.and_in("severity", &severities);
    let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
    sql.and_in("status", &statuses);
    if let Some(asset) = &filter.asset {
        // An identifier may itself look like an id (`ast_build_server`).
        sql.push(" AND (asset_id = ")
            .bind(Value::Text(asset.clone()))
            .push(" OR asset_identifier = ")
            .bind(Value::Text(asset.clone()))
            .push(")");
    }
    if let Some(cve) = &filter.cve {
        sql.push(" AND cve = ")
            .bind(Value::Text(cve.to_uppercase()));
    }
    if let Some(assignee) = text(&filter.assignee) {
        sql.push(" AND assignee = ").bind(assignee);
    }
    if let Some(tag) = &filter.tag {
        sql.and_contains("tags", &format!("|{}|", tag.to_lowercase()));
    }
    if let Some(search) = &filter.search {
        sql.and_contains("search_text", &search.to_lowercase());
    }
    if let Some(after) = &filter.created_after {
        sql.push(" AND created_at > ")
            .bind(Value::Text(timestamp(after)));
    }
    if let Some(before) = &filter.created_before {
        sql.push(" AND created_at < ")
            .bind(Value::Text(timestamp(before)));
    }
    if let Some(min_risk) = filter.min_risk {
        sql.push(" AND risk_score >= ").bind(Value::Real(min_risk));
    }
    let order_by = format!(
        " ORDER BY {} {}, id {}",
        sort.column(),
        order.sql(),
        order.sql()
    );
    paged(pool, sql, &order_by, window.into(), from_doc).await
}

/// What `GET /v1/assets` may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetSort {
    Risk,
    OpenFindings,
    LastSeen,
}

impl AssetSort {
    fn column(&self) -> &'static str {
        match self {
            AssetSort::Risk => "risk_score",
            AssetSort::OpenFindings => "open_findings",
            AssetSort::LastSeen => "last_seen",
        }
    }
}

/// The filters of `GET /v1/assets`.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    /// Matched case-insensitively within the identifier.
    pub search: Option<String>,
    pub min_risk: Option<f64>,
}

/// A page of a partition's assets.
pub async fn list_assets(
    pool: &AnyPool,
    partition: &Partition,
    filter: &AssetFilter,
    sort: AssetSort,
    order: Order,
    window: impl Into<Window>,
) -> Result<Page<AssetRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM assets");
    partition.restrict(&mut sql);
    if let Some(search) = &filter.search {
        sql.and_contains("LOWER(identifier)", &search.to_lowercase());
    }
    if let Some(min_risk) = filter.min_risk {
        sql.push(" AND risk_score >= ").bind(Value::Real(min_risk));
    }
    let order_by = format!(
        " ORDER BY {} {}, id {}",
        sort.column(),
        order.sql(),
        order.sql()
    );
    paged(pool, sql, &order_by, window.into(), from_doc).await
}

/// One asset of a partition, by id (`ast_…`) or identifier.
pub async fn get_asset(
    pool: &AnyPool,
    partition: &Partition,
    id_or_identifier: &str,
) -> Result<Option<AssetRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM assets");
    partition.restrict(&mut sql);
    // An identifier may itself look like an id (`ast_build_server`); an
    // id match wins.
    sql.push(" AND (id = ")
        .bind(Value::Text(id_or_identifier.into()))
        .push(" OR identifier = ")
        .bind(Value::Text(id_or_identifier.into()))
        .push(") ORDER BY CASE WHEN id = ")
        .bind(Value::Text(id_or_identifier.into()))
        .push(" THEN 0 ELSE 1 END LIMIT 1");
    let row = sql.query(dialect_of(pool)).fetch_optional(pool).await?;
    row.as_ref().map(from_doc).transpose()
}

/// Several assets of a partition by id, in one query (GraphQL's loader);
/// unknown ids are left out.
pub async fn get_assets_by_ids(
    pool: &AnyPool,
    partition: &Partition,
    ids: &[&str],
) -> Result<Vec<AssetRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT doc FROM assets");
    partition.restrict(&mut sql);
    sql.and_in("id", ids);
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}

/// The partition's risk score and counts; None before its first finding.
pub async fn get_risk_summary(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Option<RiskSummaryRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM risk_summaries");
    partition.restrict(&mut sql);
    let row = sql.query(dialect_of(pool)).fetch_optional(pool).await?;
    row.as_ref().map(from_doc).transpose()
}

/// The risk-history points from `since` on, oldest first, preceded by the
/// last point before `since` (the score carried into the window), if any.
pub async fn risk_history(
    pool: &AnyPool,
    partition: &Partition,
    since: NaiveDate,
) -> Result<(Option<f64>, Vec<(NaiveDate, f64)>), sqlx::Error> {
    let mut before = Sql::new("SELECT risk_score FROM risk_history");
    partition.restrict(&mut before);
    before
        .push(" AND day < ")
        .bind(Value::Text(since.to_string()))
        .push(" ORDER BY day DESC LIMIT 1");
    let carried: Option<f64> = before
        .query_scalar(dialect_of(pool))
        .fetch_optional(pool)
        .await?;
    let mut window = Sql::new("SELECT day, risk_score FROM risk_history");
    partition.restrict(&mut window);
    window
        .push(" AND day >= ")
        .bind(Value::Text(since.to_string()))
        .push(" ORDER BY day");
    let rows = window.query(dialect_of(pool)).fetch_all(pool).await?;
    let points = rows
        .iter()
        .map(|row| {
            let day: String = row.try_get("day")?;
            let day = day
                .parse::<NaiveDate>()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            Ok((day, row.try_get("risk_score")?))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((carried, points))
}

/// Every finding of a partition that counts for risk (open or confirmed):
/// what a from-scratch recalculation starts from.
pub async fn counted_findings(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Vec<FindingRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM findings");
    partition.restrict(&mut sql);
    sql.push(" AND status IN ('open', 'confirmed')");
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}

/// A finding whose risk acceptance has expired by `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAcceptance {
    pub finding_id: String,
    pub tenant_id: String,
    pub environment: Environment,
}

/// Up to `limit` findings whose risk acceptance ended at or before `now`,
/// the longest overdue first.
pub async fn due_risk_acceptances(
    pool: &AnyPool,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DueAcceptance>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, tenant_id, environment FROM findings
          WHERE accepted_until IS NOT NULL AND accepted_until <= $1 AND status = 'risk_accepted'
          ORDER BY accepted_until, id LIMIT $2",
    )
    .bind(timestamp(&now))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let environment: String = row.try_get("environment")?;
            Ok(DueAcceptance {
                finding_id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                environment: environment
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            })
        })
        .collect()
}
