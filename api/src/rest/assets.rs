//! `/v1/assets`: the inventory derived from findings. Scope `findings:read`.

use axum::extract::{Path, State};
use palisade_domain::Scope;
use palisade_infra::readmodel::{
    get_asset, list_assets, list_findings, AssetFilter, AssetSort, FindingFilter, FindingSort,
};
use palisade_projections::AssetRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::findings::{parse_order, parse_paging};
use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{filter_text, number, text, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::auth::Principal;
use crate::findings::{round_score, FindingView};
use crate::server::AppState;
use crate::tenants::format_time;

/// An asset as the API shows it.
#[derive(async_graphql::SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "Asset")]
pub struct AssetView {
    /// `ast_…`
    pub id: String,
    pub identifier: String,
    /// 0–100: `100 × (1 − Π(1 − rᵢ/100))` over its open and confirmed findings.
    pub risk_score: f64,
    /// Findings still to deal with: open or confirmed.
    pub open_findings: i64,
    /// Open and confirmed findings by severity.
    #[schema(value_type = Object, example = json!({"critical": 0, "high": 1, "medium": 0, "low": 0, "info": 0}))]
    pub findings_by_severity: std::collections::BTreeMap<String, i64>,
    /// Every finding ever seen on it, whatever its status.
    pub total_findings: i64,
    pub first_seen: String,
    pub last_seen: String,
}

impl From<AssetRow> for AssetView {
    fn from(row: AssetRow) -> Self {
        Self {
            id: row.id,
            identifier: row.identifier,
            risk_score: round_score(row.risk_score),
            open_findings: row.open_findings,
            findings_by_severity: row.findings_by_severity,
            total_findings: row.total_findings,
            first_seen: format_time(&row.first_seen),
            last_seen: format_time(&row.last_seen),
        }
    }
}

fn asset_sorts() -> utoipa::openapi::Object {
    super::openapi::one_of(&["risk", "open_findings", "last_seen"])
}

/// The query of `GET /v1/assets`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetsQuery {
    /// Case-insensitive substring of the identifier; at most 200 characters.
    search: Option<String>,
    /// 0–100.
    #[param(value_type = Option<f64>)]
    min_risk: Option<String>,
    /// `risk` (default), `open_findings` or `last_seen`.
    #[param(schema_with = asset_sorts)]
    sort: Option<String>,
    /// `asc` or `desc` (default).
    order: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/assets", tag = "assets", security(("api_key" = []), ("bearer_api_key" = [])),
    params(AssetsQuery),
    responses((status = 200, description = "A page of assets", body = Success<Vec<AssetView>>), KeyErrors, ReadErrors))]
pub async fn list(
    caller: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AssetsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<AssetView>>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    let filter = AssetFilter {
        search: filter_text("search", query.search.as_deref())?,
        min_risk: number("min_risk", &query.min_risk, 0.0, 100.0)?,
    };
    let sort = match text(&query.sort).as_deref() {
        None | Some("risk") => AssetSort::Risk,
        Some("open_findings") => AssetSort::OpenFindings,
        Some("last_seen") => AssetSort::LastSeen,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "sort",
                "must be one of risk, open_findings, last_seen",
            ))
        }
    };
    let order = parse_order(&query.order)?;
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = list_assets(
        state.app.store.read_pool(),
        &caller.partition(),
        &filter,
        sort,
        order,
        paging,
    )
    .await
    .map_err(ApiError::internal)?;
    let items = page.items.into_iter().map(AssetView::from).collect();
    Ok(Envelope::page(
        items,
        paging.page,
        paging.per_page,
        page.total,
    ))
}

async fn find(state: &AppState, caller: &Principal, id: &str) -> Result<AssetRow, ApiError> {
    get_asset(state.app.store.read_pool(), &caller.partition(), id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Asset not found"))
}

#[utoipa::path(get, path = "/v1/assets/{id}", tag = "assets", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Asset id (ast_…) or identifier, URL-encoded"), ("consistency" = Option<String>, Query, description = "`strong` waits until the views reflect every earlier write")),
    responses((status = 200, description = "The asset", body = Success<AssetView>), KeyErrors, ReadErrors))]
pub async fn get(
    caller: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<AssetView>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    Ok(Envelope::ok(find(&state, &caller, &id).await?.into()))
}

/// The query of `GET /v1/assets/{id}/findings`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetFindingsQuery {
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/assets/{id}/findings", tag = "assets", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Asset id (ast_…) or identifier, URL-encoded"), AssetFindingsQuery),
    responses((status = 200, description = "The asset's findings, riskiest first", body = Success<Vec<FindingView>>), KeyErrors, ReadErrors))]
pub async fn findings(
    caller: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<AssetFindingsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<FindingView>>, ApiError> {
    caller.require(Scope::FindingsRead)?;
    let paging = parse_paging(&query.page, &query.per_page)?;
    let asset = find(&state, &caller, &id).await?;
    let filter = FindingFilter {
        asset: Some(asset.id),
        ..FindingFilter::default()
    };
    let page = list_findings(
        state.app.store.read_pool(),
        &caller.partition(),
        &filter,
        FindingSort::Risk,
        palisade_infra::readmodel::Order::Desc,
        paging,
    )
    .await
    .map_err(ApiError::internal)?;
    let items = page.items.into_iter().map(FindingView::from).collect();
    Ok(Envelope::page(
        items,
        paging.page,
        paging.per_page,
        page.total,
    ))
}
