//! The tenants view: one row per tenant and one per API key. Both tables
//! belong to this one projection, so authentication (a key joined to its
//! tenant) never sees a key whose tenant has not landed yet.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::tenant::{Plan, TenantEvent, TenantStatus};
use palisade_domain::{Environment, Scope};
use serde::Serialize;

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// A tenant as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantRow {
    pub id: String,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
    pub name: String,
    pub plan: Plan,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API key as the view holds it: its keyed hash, never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub principal: String,
    pub scopes: Vec<Scope>,
    pub environment: Environment,
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Storage of the tenants view.
#[async_trait]
pub trait TenantsStore: Send {
    async fn upsert_tenant(&mut self, tenant: &TenantRow) -> Result<(), StoreError>;
    async fn set_tenant_plan(
        &mut self,
        id: &str,
        plan: Plan,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn set_tenant_status(
        &mut self,
        id: &str,
        status: TenantStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn set_tenant_version(&mut self, id: &str, version: i64) -> Result<(), StoreError>;
    async fn insert_api_key(&mut self, key: &ApiKeyRow) -> Result<(), StoreError>;
    async fn revoke_api_key(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Whether every secret write in `environment` needs check-and-set.
    async fn set_secrets_cas_required(
        &mut self,
        id: &str,
        environment: Environment,
        cas_required: bool,
    ) -> Result<(), StoreError>;
}

impl dyn ReadModelStore + '_ {
    /// [`TenantsStore::upsert_tenant`] on the batch's tenants store, for
    /// projections written before each view had its own store trait.
    pub async fn upsert_tenant(&mut self, tenant: &TenantRow) -> Result<(), StoreError> {
        self.view::<dyn TenantsStore>()?.upsert_tenant(tenant).await
    }
}

/// Keeps the tenants view.
pub struct TenantsProjection;

#[async_trait]
impl Projection for TenantsProjection {
    fn name(&self) -> &'static str {
        "tenants"
    }

    fn version(&self) -> i64 {
        3
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tenants", "api_keys"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Tenant" {
            return Ok(());
        }
        let store = store.view::<dyn TenantsStore>()?;
        let tenant_id = event.aggregate_id.clone();
        match event.decode::<TenantEvent>()? {
            TenantEvent::TenantCreated {
                tenant_id,
                name,
                plan,
                created_at,
            } => {
                let row = TenantRow {
                    id: tenant_id.to_string(),
                    name,
                    plan,
                    status: TenantStatus::Active.as_str().to_string(),
                    version: event.sequence,
                    created_at,
                    updated_at: created_at,
                };
                store.upsert_tenant(&row).await?;
            }
            TenantEvent::TenantPlanChanged {
                tenant_id,
                to,
                changed_at,
                ..
            } => {
                store
                    .set_tenant_plan(&tenant_id.to_string(), to, changed_at)
                    .await?
            }
            TenantEvent::TenantSuspended {
                tenant_id,
                suspended_at,
                ..
            } => {
                store
                    .set_tenant_status(
                        &tenant_id.to_string(),
                        TenantStatus::Suspended,
                        suspended_at,
                    )
                    .await?
            }
            TenantEvent::TenantReactivated {
                tenant_id,
                reactivated_at,
            } => {
                store
                    .set_tenant_status(&tenant_id.to_string(), TenantStatus::Active, reactivated_at)
                    .await?
            }
            TenantEvent::ApiKeyIssued {
                tenant_id,
                key_id,
                name,
                principal,
                scopes,
                environment,
                prefix,
                key_hash,
                expires_at,
                issued_at,
            } => {
                let row = ApiKeyRow {
                    id: key_id.to_string(),
                    tenant_id: tenant_id.to_string(),
                    name,
                    principal,
                    scopes,
                    environment,
                    prefix,
                    key_hash,
                    expires_at,
                    created_at: issued_at,
                    revoked_at: None,
                };
                store.insert_api_key(&row).await?
            }
            TenantEvent::ApiKeyRevoked {
                key_id, revoked_at, ..
            } => {
                store
                    .revoke_api_key(&key_id.to_string(), revoked_at)
                    .await?
            }
            TenantEvent::TenantSecretsConfigured {
                environment,
                cas_required,
                ..
            } => {
                store
                    .set_secrets_cas_required(&tenant_id, environment, cas_required)
                    .await?
            }
        }
        store.set_tenant_version(&tenant_id, event.sequence).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use chrono::TimeZone;
    use palisade_domain::TenantId;

    use super::*;
    use crate::memory::InMemory;
    use crate::FeedPosition;

    fn feed_event(aggregate_type: &str, payload: serde_json::Value) -> FeedEvent {
        FeedEvent {
            position: FeedPosition { tx: 0, position: 1 },
            aggregate_type: aggregate_type.into(),
            aggregate_id: "a".into(),
            sequence: 1,
            event_type: "TenantCreated".into(),
            event_version: "1".into(),
            payload,
            metadata: HashMap::new(),
            recorded_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn tenant_created_adds_an_active_tenant() {
        let id = TenantId::from_uuid(uuid_from(9));
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        let event = TenantEvent::TenantCreated {
            tenant_id: id,
            name: "Acme".into(),
            plan: Plan::Pro,
            created_at: at,
        };
        let mut store = InMemory::default();
        let feed = feed_event("Tenant", serde_json::to_value(&event).unwrap());
        TenantsProjection.apply(&feed, &mut store).await.unwrap();
        let row = &store.tenants[&id.to_string()];
        assert_eq!(
            (row.name.as_str(), row.plan, row.status.as_str()),
            ("Acme", Plan::Pro, "active")
        );
        assert_eq!(row.created_at, at);
    }

    #[tokio::test]
    async fn plan_and_status_changes_update_the_row() {
        let id = TenantId::from_uuid(uuid_from(9));
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        let later = at + chrono::Duration::hours(1);
        let events = [
            TenantEvent::TenantCreated {
                tenant_id: id,
                name: "Acme".into(),
                plan: Plan::Pro,
                created_at: at,
            },
            TenantEvent::TenantPlanChanged {
                tenant_id: id,
                from: Plan::Pro,
                to: Plan::Business,
                changed_at: later,
            },
            TenantEvent::TenantSuspended {
                tenant_id: id,
                reason: None,
                suspended_at: later,
            },
        ];
        let mut store = InMemory::default();
        for event in events {
            let feed = feed_event("Tenant", serde_json::to_value(&event).unwrap());
            TenantsProjection.apply(&feed, &mut store).await.unwrap();
        }
        let row = &store.tenants[&id.to_string()];
        assert_eq!(
            (row.plan, row.status.as_str(), row.updated_at),
            (Plan::Business, "suspended", later)
        );
    }

    #[tokio::test]
    async fn other_aggregates_are_ignored_and_garbage_is_an_error() {
        let mut store = InMemory::default();
        let other = feed_event("Finding", serde_json::json!({"Whatever": {}}));
        TenantsProjection.apply(&other, &mut store).await.unwrap();
        assert!(store.tenants.is_empty());
        let garbage = feed_event("Tenant", serde_json::json!({"Nope": 1}));
        let error = TenantsProjection
            .apply(&garbage, &mut store)
            .await
            .unwrap_err();
        assert!(matches!(error, ProjectionError::Decode { .. }), "{error}");
    }

    fn uuid_from(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }
}
