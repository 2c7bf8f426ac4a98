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

/// A stored time, read leniently so that no stored row can break a list:
/// RFC 3339, or any form chrono reads (years past 9999 carry a sign). A
/// time that cannot be read at all is logged and read as the Unix epoch,
/// which fails closed: an unreadable `expires_at` has passed.
pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = text.parse::<DateTime<Utc>>() {
        return Ok(at);
    }
    tracing::warn!(
        stored = %text.chars().take(64).collect::<String>(),
        "a stored time cannot be read; it is read as 1970-01-01T00:00:00Z"
    );
    Ok(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod timestamp_tests {
    #[test]
    fn stored_times_are_read_leniently() {
        let read = |text: &str| {
            super::parse_timestamp(text)
                .expect("never fails")
                .to_rfc3339()
        };
        assert_eq!(
            read("2026-12-01T10:00:00.000000Z"),
            "2026-12-01T10:00:00+00:00"
        );
        assert!(read("+10000-01-01T00:00:00.000000Z").starts_with("+10000-01-01"));
        assert_eq!(read("garbage"), "1970-01-01T00:00:00+00:00");
    }
}
