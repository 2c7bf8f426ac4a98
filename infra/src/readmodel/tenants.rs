//! The tenants view's tables (`tenants`, and `api_keys` in `api_keys.rs`):
//! the projection's writes, and the tenant queries of the admin API.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::tenant::{Plan, TenantStatus};
use palisade_projections::{ApiKeyRow, StoreError, TenantRow, TenantsStore, ViewRef};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{parse_timestamp, store_error, timestamp, BatchTransaction, SqlStore};

/// The tenants view's SQL store for one batch: it writes as it goes (a
/// tenant's rows change a few times in a lifetime, not per batch).
pub(super) struct TenantsSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(TenantsSql { tx })
}

#[async_trait]
impl SqlStore for TenantsSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn TenantsStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

#[async_trait]
impl TenantsStore for TenantsSql {
    async fn upsert_tenant(&mut self, tenant: &TenantRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenants (id, name, plan, status, created_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET
                name = excluded.name, plan = excluded.plan, status = excluded.status,
                updated_at = excluded.updated_at",
        )
        .bind(&tenant.id)
        .bind(&tenant.name)
        .bind(tenant.plan.as_str())
        .bind(&tenant.status)
        .bind(timestamp(&tenant.created_at))
        .bind(timestamp(&tenant.updated_at))
        .bind(tenant.version)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn set_tenant_plan(
        &mut self,
        id: &str,
        plan: Plan,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET plan = $1, updated_at = $2 WHERE id = $3")
            .bind(plan.as_str())
            .bind(timestamp(&at))
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_tenant_status(
        &mut self,
        id: &str,
        status: TenantStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(timestamp(&at))
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn set_tenant_version(&mut self, id: &str, version: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tenants SET version = $1 WHERE id = $2")
            .bind(version)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn insert_api_key(&mut self, key: &ApiKeyRow) -> Result<(), StoreError> {
        super::api_keys::insert_api_key_row(&mut self.tx, key).await
    }

    async fn revoke_api_key(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        super::api_keys::revoke_api_key_row(&mut self.tx, id, at).await
    }

    async fn set_secrets_cas_required(
        &mut self,
        id: &str,
        environment: palisade_domain::Environment,
        cas_required: bool,
    ) -> Result<(), StoreError> {
        // The column is named by the environment (a closed set), never by input.
        let column = match environment {
            palisade_domain::Environment::Live => "secrets_cas_required_live",
            palisade_domain::Environment::Test => "secrets_cas_required_test",
        };
        sqlx::query(&format!("UPDATE tenants SET {column} = $1 WHERE id = $2"))
            .bind(i64::from(cas_required))
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// One page of tenants, newest first.
pub struct TenantsPage {
    pub tenants: Vec<TenantRow>,
    pub total: i64,
}

pub async fn list_tenants(
    pool: &AnyPool,
    page: u32,
    per_page: u32,
) -> Result<TenantsPage, sqlx::Error> {
    let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
    // The total comes from the same statement as the rows, so both describe
    // one snapshot even while the projection commits.
    let rows = sqlx::query(
        "SELECT id, name, plan, status, created_at, updated_at, version, COUNT(*) OVER () AS total
           FROM tenants
          ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(per_page))
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => {
            sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
                .fetch_one(pool)
                .await?
        }
    };
    let tenants = rows.iter().map(tenant_row).collect::<Result<_, _>>()?;
    Ok(TenantsPage { tenants, total })
}

/// One tenant by id.
pub async fn get_tenant(pool: &AnyPool, id: &str) -> Result<Option<TenantRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, name, plan, status, created_at, updated_at, version FROM tenants WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(tenant_row).transpose()
}

fn tenant_row(row: &AnyRow) -> Result<TenantRow, sqlx::Error> {
    let plan: String = row.try_get("plan")?;
    Ok(TenantRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        plan: plan
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        status: row.try_get("status")?,
        version: row.try_get("version")?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_timestamp(&row.try_get::<String, _>("updated_at")?)?,
    })
}
