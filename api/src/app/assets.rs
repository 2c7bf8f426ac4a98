//! Asset reads: the inventory the findings projection derives (assets are
//! not an aggregate; they exist because findings name them).

use palisade_infra::readmodel::{
    get_asset, get_assets_by_ids, list_assets, AssetFilter, AssetSort, FindingFilter, FindingSort,
    Order, Page, Window,
};
use palisade_projections::{AssetRow, FindingRow};

use super::auth::FindingsRead;
use super::input::{filter_text, within};
use super::{App, Authorized, Error, Result};

/// One of the caller's assets by id (`ast_…`) or identifier; None when
/// unknown.
pub async fn find(
    app: &App,
    context: &Authorized<FindingsRead>,
    id_or_identifier: &str,
) -> Result<Option<AssetRow>> {
    let partition = context.principal.partition();
    Ok(get_asset(app.store.read_pool(), &partition, id_or_identifier).await?)
}

/// The caller's assets with these ids (unknown ones left out), in one
/// query: what a page of findings is on.
pub async fn by_ids(
    app: &App,
    context: &Authorized<FindingsRead>,
    ids: &[String],
) -> Result<Vec<AssetRow>> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let partition = context.principal.partition();
    Ok(get_assets_by_ids(app.store.read_pool(), &partition, &ids).await?)
}

/// One of the caller's assets, or not found.
pub async fn get(
    app: &App,
    context: &Authorized<FindingsRead>,
    id_or_identifier: &str,
) -> Result<AssetRow> {
    find(app, context, id_or_identifier)
        .await?
        .ok_or_else(|| Error::not_found("Asset not found"))
}

/// A window of the caller's assets, filtered and sorted, and the total.
pub async fn list(
    app: &App,
    context: &Authorized<FindingsRead>,
    filter: AssetFilter,
    sort: AssetSort,
    order: Order,
    window: impl Into<Window>,
) -> Result<Page<AssetRow>> {
    let filter = AssetFilter {
        search: filter_text("search", filter.search.as_deref())?,
        min_risk: within("min_risk", filter.min_risk, 0.0, 100.0)?,
    };
    let (pool, partition) = (app.store.read_pool(), context.principal.partition());
    Ok(list_assets(pool, &partition, &filter, sort, order, window).await?)
}

/// An asset's findings, riskiest first; not found for an unknown asset.
pub async fn findings(
    app: &App,
    context: &Authorized<FindingsRead>,
    id_or_identifier: &str,
    window: impl Into<Window>,
) -> Result<Page<FindingRow>> {
    let asset = get(app, context, id_or_identifier).await?;
    let filter = FindingFilter {
        asset: Some(asset.id),
        ..FindingFilter::default()
    };
    super::findings::list(app, context, filter, FindingSort::Risk, Order::Desc, window).await
}
