//! The `api_keys` table of the tenants view: its writes (through the
//! tenants view's store) and the key lookups of authentication and the API.

use chrono::{DateTime, Utc};
use palisade_domain::tenant::{Plan, TenantStatus};
use palisade_domain::{Environment, Scope};
use palisade_projections::{ApiKeyRow, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{parse_timestamp, store_error, timestamp, BatchTransaction};

const COLUMNS: &str = "k.id, k.tenant_id, k.name, k.principal, k.scopes, k.environment, k.prefix,
                       k.key_hash, k.expires_at, k.created_at, k.revoked_at";

/// Writes a newly issued key (the tenants view's store calls it).
pub(super) async fn insert_api_key_row(
    tx: &mut BatchTransaction,
    key: &ApiKeyRow,
) -> Result<(), StoreError> {
    let scopes: Vec<&str> = key.scopes.iter().map(Scope::as_str).collect();
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, principal, scopes, environment, prefix,
                                   key_hash, expires_at, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)
             ON CONFLICT (id) DO NOTHING",
    )
    .bind(&key.id)
    .bind(&key.tenant_id)
    .bind(&key.name)
    .bind(&key.principal)
    .bind(scopes.join(" "))
    .bind(key.environment.as_str())
    .bind(&key.prefix)
    .bind(&key.key_hash)
    .bind(key.expires_at.as_ref().map(timestamp))
    .bind(timestamp(&key.created_at))
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// Marks a key revoked (the tenants view's store calls it).
pub(super) async fn revoke_api_key_row(
    tx: &mut BatchTransaction,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(timestamp(&at))
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// A key found by its hash, with what authentication needs of its tenant.
#[derive(Debug, Clone)]
pub struct ApiKeyOwner {
    pub key: ApiKeyRow,
    pub tenant_status: TenantStatus,
    pub plan: Plan,
    /// Every secret write in the key's environment needs check-and-set
    /// (the tenant's default, `TenantSecretsConfigured`).
    pub secrets_cas_required: bool,
}

/// The key whose keyed hash is `key_hash`, revoked or not.
pub async fn find_api_key_by_hash(
    pool: &AnyPool,
    key_hash: &str,
) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
    find_owner(pool, "k.key_hash", key_hash).await
}

/// A key by id with its tenant's status and plan: what an open stream
/// checks again to notice that its key was revoked or its tenant suspended.
pub async fn find_api_key_by_id(
    pool: &AnyPool,
    id: &str,
) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
    find_owner(pool, "k.id", id).await
}

async fn find_owner(
    pool: &AnyPool,
    column: &'static str,
    value: &str,
) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS}, t.status AS tenant_status, t.plan AS tenant_plan,
                CASE k.environment WHEN 'live' THEN t.secrets_cas_required_live
                                   ELSE t.secrets_cas_required_test END AS secrets_cas_required
           FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
          WHERE {column} = $1"
    ))
    .bind(value)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let status: String = row.try_get("tenant_status")?;
        let plan: String = row.try_get("tenant_plan")?;
        Ok(ApiKeyOwner {
            key: api_key_row(&row)?,
            tenant_status: match status.as_str() {
                "suspended" => TenantStatus::Suspended,
                _ => TenantStatus::Active,
            },
            plan: plan
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            secrets_cas_required: row.try_get::<i64, _>("secrets_cas_required")? != 0,
        })
    })
    .transpose()
}

/// One of a tenant's keys, of `environment` when given; None for another
/// tenant's, another environment's or an unknown id.
pub async fn get_api_key(
    pool: &AnyPool,
    tenant_id: &str,
    environment: Option<Environment>,
    id: &str,
) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys k
          WHERE k.tenant_id = $1 AND k.id = $2 AND ($3 = '' OR k.environment = $3)"
    ))
    .bind(tenant_id)
    .bind(id)
    .bind(environment.as_ref().map_or("", Environment::as_str))
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(api_key_row).transpose()
}

/// A page of a tenant's keys (of `environment` when given), newest first,
/// and how many there are.
pub async fn list_api_keys(
    pool: &AnyPool,
    tenant_id: &str,
    environment: Option<Environment>,
    window: impl Into<super::Window>,
) -> Result<(Vec<ApiKeyRow>, i64), sqlx::Error> {
    let window: super::Window = window.into();
    let environment = environment.as_ref().map_or("", Environment::as_str);
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, COUNT(*) OVER () AS total FROM api_keys k
          WHERE k.tenant_id = $1 AND ($2 = '' OR k.environment = $2)
          ORDER BY k.created_at DESC, k.id DESC LIMIT $3 OFFSET $4"
    ))
    .bind(tenant_id)
    .bind(environment)
    .bind(i64::from(window.limit))
    .bind(window.offset)
    .fetch_all(pool)
    .await?;
    let total = match rows.first() {
        Some(row) => row.try_get("total")?,
        None => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM api_keys
                  WHERE tenant_id = $1 AND ($2 = '' OR environment = $2)",
            )
            .bind(tenant_id)
            .bind(environment)
            .fetch_one(pool)
            .await?
        }
    };
    let keys = rows.iter().map(api_key_row).collect::<Result<_, _>>()?;
    Ok((keys, total))
}

fn api_key_row(row: &AnyRow) -> Result<ApiKeyRow, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    let optional_time = |column: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        row.try_get::<Option<String>, _>(column)?
            .map(|text| parse_timestamp(&text))
            .transpose()
    };
    let scopes: String = row.try_get("scopes")?;
    let environment: String = row.try_get("environment")?;
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        principal: row.try_get("principal")?,
        scopes: scopes
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(decode)?,
        environment: environment.parse::<Environment>().map_err(decode)?,
        prefix: row.try_get("prefix")?,
        key_hash: row.try_get("key_hash")?,
        expires_at: optional_time("expires_at")?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at")?)?,
        revoked_at: optional_time("revoked_at")?,
    })
}
