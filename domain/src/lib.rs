//! Palisade's domain: aggregates, their commands, events, errors and invariants.
//!
//! This crate is pure. It performs no I/O, reads no clock and runs no async
//! runtime of its own: time and identifiers come in through commands, so every
//! decision is reproducible in a given/when/then test. Persistence, HTTP and
//! read models live in the crates that depend on this one.
#![forbid(unsafe_code)]

pub mod finding;
pub mod grant;
pub mod ids;
pub mod ingestion;
pub mod key;
pub mod kms;
pub mod metadata;
pub mod risk;
pub mod scope;
pub mod secret;
pub mod tenant;
pub mod text;
pub mod webhook;

pub use ids::{
    AccessRequestId, AlertId, AlertRuleId, ApiKeyId, AssetId, FindingId, IdError, IncidentId,
    IngestionJobId, KeyId, MigrationPlanId, PolicyId, SecretId, TenantId, WebhookId,
};
pub use metadata::{ActorType, Environment, EventMetadata, MetadataError};
pub use scope::Scope;
pub use text::{limits, optional_text, required_text, FieldProblem, TextLimit, MAX_LIST_ITEMS};
