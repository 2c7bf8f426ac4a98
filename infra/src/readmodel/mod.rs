//! The SQL behind the read models: the write half implements the storage
//! traits of `palisade-projections` on the runner's transaction, the read
//! half answers queries. Written once for both backends through sqlx's `Any`
//! driver: `$n` parameters, `ON CONFLICT` upserts, text timestamps (RFC 3339,
//! UTC, fixed width, so they sort as text).

mod api_keys;
mod audit;
mod findings;
mod pending;
pub(crate) mod sql;
mod tenants;
mod timeline;

pub use api_keys::{
    find_api_key_by_hash, find_api_key_by_id, get_api_key, list_api_keys, ApiKeyOwner,
};
pub use audit::{audit_last_seq, list_audit, verify_audit_chain, AuditFilter, ChainReport};
pub use findings::{
    counted_findings, due_risk_acceptances, get_asset, get_assets_by_ids, get_finding,
    get_risk_summary, list_assets, list_findings, risk_history, AssetFilter, AssetSort,
    DueAcceptance, FindingFilter, FindingSort, Order, Page, PageRequest, Partition, Window,
};
pub use tenants::{get_tenant, list_tenants, TenantsPage};
pub use timeline::{list_timeline, timeline_timestamp, TimelineFilter};

use chrono::{DateTime, SecondsFormat, Utc};
use palisade_projections::StoreError;
use sqlx::{Any, Transaction};

/// The runner's open transaction, seen as every read model's store.
/// Findings, assets, risk and timeline rows are written behind (see
/// `pending`): call [`SqlReadModel::flush`] before committing.
pub struct SqlReadModel<'t> {
    tx: &'t mut Transaction<'static, Any>,
    pending: pending::Pending,
    loaded: pending::Loaded,
}

impl<'t> SqlReadModel<'t> {
    pub fn new(tx: &'t mut Transaction<'static, Any>) -> Self {
        Self {
            tx,
            pending: pending::Pending::default(),
            loaded: pending::Loaded::default(),
        }
    }
}

pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    StoreError(Box::new(error))
}

pub(crate) fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
