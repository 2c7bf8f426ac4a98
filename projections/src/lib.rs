//! Read models: what each event does to each view.
//!
//! A projection is a name, a version and a function from one feed event to
//! changes in its tables. Each view owns its store: the projection is
//! written against its own storage trait ([`TenantsStore`], [`FindingsStore`],
//! …, in the view's file), which it asks the batch's [`ReadModelStore`] for
//! (`store.view::<dyn FindingsStore>()`), and which `palisade-infra`
//! implements in SQL (`infra/src/readmodel/<view>.rs`). This crate does no
//! I/O of its own, reads no clock and knows nothing of checkpoints, locks or
//! transactions: the runner in `palisade-infra` applies a batch and its
//! checkpoint atomically.
//!
//! A new read model adds its projection here (`src/<view>.rs`, with its
//! store trait), its SQL store in `palisade-infra`, and one line to
//! [`catalogue`].
#![forbid(unsafe_code)]

mod access;
mod audit;
mod feed;
mod findings;
mod ingestion;
mod keys;
mod kms;
#[cfg(test)]
mod memory;
mod secrets;
mod summary;
mod tenants;
mod timeline;
mod view;
mod webhooks;

pub use access::{AccessProjection, AccessRequestRow, AccessStore, PolicyRow, ReviewRow};
pub use audit::{
    canonical_json, record_id as audit_record_id, AuditHead, AuditProjection, AuditRecord,
    AuditStore, Redactor, GENESIS_HASH, REDACTED,
};
pub use feed::{FeedEvent, FeedPosition};
pub use findings::{
    AssetRow, FindingComment, FindingRow, FindingsProjection, FindingsStore, RiskSummaryRow,
    SeverityCounts, TicketLink,
};
pub use ingestion::{IngestionJobRow, IngestionProjection, IngestionStore};
pub use keys::{KeyRow, KeyUsageRow, KeyVersionRow, KeysProjection, KeysStore};
pub use kms::{AlertRow, AlertRuleRow, MigrationPlanRow};
pub use secrets::{
    IncidentEntry, IncidentRow, SecretActivityRow, SecretRow, SecretVersionRow, SecretsProjection,
    SecretsStore,
};
pub use tenants::{ApiKeyRow, TenantRow, TenantsProjection, TenantsStore};
pub use timeline::{TimelineEntry, TimelineProjection, TimelineStore, TimelineSubject};
pub use view::{no_store_of, ReadModelStore, ViewRef};
pub use webhooks::{
    message_type, Routing, WebhookRow, WebhooksProjection, WebhooksStore, ROUTING_CHANGES_KEPT,
};

use std::sync::Arc;

use async_trait::async_trait;

/// A failure of the storage behind a read model.
#[derive(Debug, thiserror::Error)]
#[error("read-model store: {0}")]
pub struct StoreError(#[from] pub Box<dyn std::error::Error + Send + Sync>);

/// Why a projection could not apply an event. The runner rolls back the
/// whole batch and its checkpoint, so nothing is half-applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event {position} ({event_type}) cannot be decoded: {message}")]
    Decode {
        position: FeedPosition,
        event_type: String,
        message: String,
    },
    #[error("{0}")]
    Failed(String),
}

/// A named, versioned projection. Bumping `version` makes the runner clear
/// `tables` and rebuild the view from the start of the feed. `prepare` and
/// `apply` get the batch's [`ReadModelStore`], from which they take their
/// view's own store (`store.view::<dyn FindingsStore>()`).
#[async_trait]
pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    fn version(&self) -> i64;
    /// The tables this projection owns; they are emptied on a rebuild.
    fn tables(&self) -> &'static [&'static str];
    /// Called with the whole batch before its events are applied one by
    /// one, so that a store can load in one query the rows `apply` will
    /// ask for (a hint: `apply` must not depend on it).
    async fn prepare(
        &self,
        _batch: &[FeedEvent],
        _store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError>;
}

/// The projection catalogue: every read model the product maintains (the
/// one list a new read model is added to). The audit trail redacts with
/// `redactor` (its key derives from the root key).
pub fn catalogue(redactor: Redactor) -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TenantsProjection),
        Arc::new(FindingsProjection),
        Arc::new(TimelineProjection),
        Arc::new(AuditProjection::new(redactor)),
        // Last: the runner deals projections to its groups in this order
        // (docs/projections.md); here the keys view joins tenants and
        // timeline, not findings and audit.
        Arc::new(KeysProjection),
        Arc::new(SecretsProjection),
        Arc::new(AccessProjection),
        Arc::new(IngestionProjection),
        Arc::new(WebhooksProjection),
    ]
}
