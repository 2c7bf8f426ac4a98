//! The SQL behind the read models: one file per view, whose write half is
//! the view's [`SqlStore`] (its projection's storage trait on the runner's
//! transaction, with its own write-behind) and whose read half answers
//! queries. Written once for both backends through sqlx's `Any` driver:
//! `$n` parameters, `ON CONFLICT` upserts, text timestamps (RFC 3339, UTC,
//! fixed width, so they sort as text).
//!
//! A new read model adds its file here and one line to [`bindings`].

pub mod access;
mod api_keys;
mod audit;
mod findings;
pub mod follow;
pub mod ingestion;
mod key_cache;
mod keys;
pub mod kms;
pub(crate) mod pending;
mod secrets;
pub(crate) mod sql;
mod tenants;
mod timeline;
pub mod webhooks;

pub use api_keys::{
    find_api_key_by_hash, find_api_key_by_id, get_api_key, list_api_keys, ApiKeyOwner,
};
pub use audit::{
    audit_last_seq, audit_records_by_id, list_audit, verify_audit_chain, AuditFilter, ChainReport,
};
pub(crate) use findings::paged;
pub use findings::{
    counted_findings, due_risk_acceptances, get_asset, get_assets_by_ids, get_finding,
    get_findings_by_ids, get_risk_summary, list_assets, list_findings, risk_history, AssetFilter,
    AssetSort, DueAcceptance, FindingFilter, FindingSort, Order, Page, PageRequest, Partition,
    Window,
};
pub use follow::{follow, FollowedCache, FOLLOW_EVERY};
pub use key_cache::ApiKeyCache;
pub use keys::{
    get_key, key_versions, keys_due_destruction, keys_due_rotation, keys_overdue_rotation,
    keys_replaced_by, list_keys, partition_keys, KeyFilter, KeySort, KeyWithVersions,
};
pub use secrets::{
    get_incident, get_secret, get_secret_version, latest_open_incident, list_incidents,
    list_secrets, secret_activity, secret_stats, secrets_due_expiry, unshredded_secrets, DueExpiry,
    IncidentFilter, SecretStats, SecretWithVersions,
};
pub use tenants::{get_tenant, list_tenants, TenantsPage};
pub use timeline::{list_timeline, timeline_timestamp, TimelineFilter};

use std::any::TypeId;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use palisade_projections::{
    AccessStore, AuditStore, FindingsStore, IngestionStore, KeysStore, ReadModelStore,
    SecretsStore, StoreError, TenantsStore, TimelineStore, ViewRef, WebhooksStore,
};
use sqlx::{Any, Transaction};

/// The transaction one batch runs in.
pub type BatchTransaction = Transaction<'static, Any>;

/// One view's SQL store for one batch. It owns the batch's transaction,
/// keeps the rows the batch changed (its write-behind), and writes them
/// when the batch ends.
#[async_trait]
pub(crate) trait SqlStore: Send + 'static {
    /// This store as its projection sees it: its view's storage trait.
    fn view(&mut self) -> ViewRef<'_>;
    /// Writes every row the batch changed, and hands the transaction back
    /// to be committed.
    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError>;
}

/// Which SQL store serves one view's storage trait.
pub(crate) struct Binding {
    store: TypeId,
    open: fn(BatchTransaction) -> Box<dyn SqlStore>,
}

/// `open` serves the storage trait `S` (`dyn FindingsStore`, …).
fn bind<S: ?Sized + 'static>(open: fn(BatchTransaction) -> Box<dyn SqlStore>) -> Binding {
    Binding {
        store: TypeId::of::<S>(),
        open,
    }
}

/// Every view's SQL store: the one list a new read model is added to.
fn bindings() -> [Binding; 9] {
    [
        bind::<dyn WebhooksStore>(webhooks::open),
        bind::<dyn IngestionStore>(ingestion::open),
        bind::<dyn AccessStore>(access::open),
        bind::<dyn TenantsStore>(tenants::open),
        bind::<dyn KeysStore>(keys::open),
        bind::<dyn SecretsStore>(secrets::open),
        bind::<dyn FindingsStore>(findings::open),
        bind::<dyn TimelineStore>(timeline::open),
        bind::<dyn AuditStore>(audit::open),
    ]
}

/// The store the runner hands a projection for one batch: it opens, on
/// the batch's transaction, the SQL store of the view the projection asks
/// for. A batch writes one view's store (a projection owns its view).
/// Call [`SqlBatch::finish`] before committing.
pub struct SqlBatch {
    fresh: Option<BatchTransaction>,
    open: Option<(TypeId, Box<dyn SqlStore>)>,
}

impl SqlBatch {
    pub fn new(tx: BatchTransaction) -> Self {
        Self {
            fresh: Some(tx),
            open: None,
        }
    }

    /// Writes what the batch left pending; the transaction, to commit.
    pub async fn finish(self) -> Result<BatchTransaction, StoreError> {
        match (self.open, self.fresh) {
            (Some((_, store)), _) => store.finish().await,
            (None, Some(tx)) => Ok(tx),
            (None, None) => Err(StoreError("the batch lost its transaction".into())),
        }
    }
}

impl ReadModelStore for SqlBatch {
    fn store_of(&mut self, store: TypeId) -> Result<ViewRef<'_>, StoreError> {
        if self.open.is_none() {
            let binding = bindings()
                .into_iter()
                .find(|binding| binding.store == store)
                .ok_or_else(|| palisade_projections::no_store_of(store))?;
            let tx = self
                .fresh
                .take()
                .ok_or_else(|| StoreError("the batch lost its transaction".into()))?;
            self.open = Some((store, (binding.open)(tx)));
        }
        match &mut self.open {
            Some((opened, sql)) if *opened == store => Ok(sql.view()),
            _ => Err(StoreError(
                "a batch writes one view's store; this one has another open".into(),
            )),
        }
    }
}

/// A view's document by id within a batch's transaction (the SQL stores'
/// read of the row a projection changes).
pub(crate) async fn batch_doc<T: serde::de::DeserializeOwned>(
    tx: &mut BatchTransaction,
    table: &'static str,
    id: &str,
) -> Result<Option<T>, StoreError> {
    let row = sqlx::query(&format!("SELECT doc FROM {table} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_error)?;
    row.as_ref()
        .map(findings::from_doc)
        .transpose()
        .map_err(store_error)
}

/// A row as the JSON document a view's `doc` column holds.
pub(crate) fn json_doc<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError(Box::new(e)))
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
