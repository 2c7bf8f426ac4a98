//! `/v1/assets`: the inventory derived from findings. Scope `findings:read`.

use axum::extract::{Path, State};
use palisade_infra::readmodel::{AssetFilter, AssetSort};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::{parse_order, parse_paging};
use super::openapi::{KeyErrors, ReadErrors, Success};
use super::pagination::PageQuery;
use super::query::{number, text, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::app::assets;
use crate::app::auth::FindingsRead;
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::assets::AssetView;
use crate::views::findings::FindingView;

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(findings))
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
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AssetsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<AssetView>>, ApiError> {
    let filter = AssetFilter {
        search: query.search.clone(),
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
    let page = assets::list(&state.app, &caller, filter, sort, order, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/assets/{id}", tag = "assets", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Asset id (ast_…) or identifier, URL-encoded"), ("consistency" = Option<String>, Query, description = "`strong` waits until the views reflect every earlier write")),
    responses((status = 200, description = "The asset", body = Success<AssetView>), KeyErrors, ReadErrors))]
pub async fn get(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<AssetView>, ApiError> {
    Ok(Envelope::ok(
        assets::get(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(get, path = "/v1/assets/{id}/findings", tag = "assets", security(("api_key" = []), ("bearer_api_key" = [])),
    params(("id" = String, Path, description = "Asset id (ast_…) or identifier, URL-encoded"), PageQuery),
    responses((status = 200, description = "The asset's findings, riskiest first", body = Success<Vec<FindingView>>), KeyErrors, ReadErrors))]
pub async fn findings(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<FindingView>>, ApiError> {
    let paging = query.paging()?;
    let page = assets::findings(&state.app, &caller, &id, paging).await?;
    Ok(Envelope::of_page(page, paging))
}
