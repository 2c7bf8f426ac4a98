//! The keys view's tables (`keys`, `key_versions`, `key_usage`): the
//! projection's writes, and the queries of `/v1/keys` and the scheduler.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::key::{Algorithm, KeyState};
use palisade_projections::{
    AlertRow, AlertRuleRow, KeyRow, KeyUsageRow, KeyVersionRow, KeysStore, MigrationPlanRow,
    StoreError, ViewRef,
};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::findings::{from_doc, paged};
use super::sql::{Sql, Value};
use super::{parse_timestamp, store_error, timestamp, BatchTransaction, SqlStore};
use super::{Order, Page, Partition, Window};
use crate::store::dialect_of;

/// The keys view's SQL store for one batch: it writes as it goes (a key
/// changes a few times in its life, and its usage once a minute).
pub(super) struct KeysSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(KeysSql { tx })
}

#[async_trait]
impl SqlStore for KeysSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn KeysStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

fn json_error(error: serde_json::Error) -> StoreError {
    StoreError(Box::new(error))
}

#[async_trait]
impl KeysStore for KeysSql {
    async fn key(&mut self, id: &str) -> Result<Option<KeyRow>, StoreError> {
        super::batch_doc(&mut self.tx, "keys", id).await
    }

    async fn save_key(&mut self, key: &KeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO keys (id, tenant_id, environment, name, algorithm, state, tags,
                               created_at, last_used_at, next_rotation_at, deletion_date,
                               rotation_due_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE SET
                state = excluded.state, tags = excluded.tags,
                last_used_at = excluded.last_used_at,
                next_rotation_at = excluded.next_rotation_at,
                deletion_date = excluded.deletion_date,
                rotation_due_at = excluded.rotation_due_at, doc = excluded.doc",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(key.environment.as_str())
        .bind(&key.name)
        .bind(key.algorithm.as_str())
        .bind(key.state.as_str())
        .bind(serde_json::to_string(&key.tags).map_err(json_error)?)
        .bind(timestamp(&key.created_at))
        .bind(key.last_used_at.as_ref().map(timestamp))
        .bind(key.next_rotation_at.as_ref().map(timestamp))
        .bind(key.deletion_date.as_ref().map(timestamp))
        .bind(key.rotation_due_at.as_ref().map(timestamp))
        .bind(serde_json::to_string(key).map_err(json_error)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn insert_key_version(&mut self, version: &KeyVersionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO key_versions (key_id, version, material_id, public_key, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key_id, version) DO NOTHING",
        )
        .bind(&version.key_id)
        .bind(i64::from(version.version))
        .bind(&version.material_id)
        .bind(version.public_key.as_deref())
        .bind(timestamp(&version.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn add_key_usage(&mut self, usage: &[KeyUsageRow]) -> Result<(), StoreError> {
        for row in usage {
            sqlx::query(
                "INSERT INTO key_usage (key_id, tenant_id, environment, minute, version,
                                        operation, application, count, errors, bytes)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (key_id, minute, version, operation, application) DO UPDATE SET
                    count = key_usage.count + excluded.count,
                    errors = key_usage.errors + excluded.errors,
                    bytes = key_usage.bytes + excluded.bytes",
            )
            .bind(&row.key_id)
            .bind(&row.tenant_id)
            .bind(row.environment.as_str())
            .bind(timestamp(&row.minute))
            .bind(i64::from(row.version))
            .bind(row.operation.as_str())
            .bind(&row.application)
            .bind(saturating(row.count))
            .bind(saturating(row.errors))
            .bind(saturating(row.bytes))
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        }
        Ok(())
    }

    async fn alert_rule(&mut self, id: &str) -> Result<Option<AlertRuleRow>, StoreError> {
        super::batch_doc(&mut self.tx, "kms_alert_rules", id).await
    }

    async fn save_alert_rule(&mut self, rule: &AlertRuleRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kms_alert_rules (id, tenant_id, environment, created_at, doc)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(&rule.id)
        .bind(&rule.tenant_id)
        .bind(rule.environment.as_str())
        .bind(timestamp(&rule.created_at))
        .bind(serde_json::to_string(rule).map_err(json_error)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn delete_alert_rule(&mut self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kms_alert_rules WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        super::batch_doc(&mut self.tx, "kms_alerts", id).await
    }

    async fn save_alert(&mut self, alert: &AlertRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kms_alerts (id, tenant_id, environment, severity, acknowledged,
                                     triggered_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET acknowledged = excluded.acknowledged,
                                            doc = excluded.doc",
        )
        .bind(&alert.id)
        .bind(&alert.tenant_id)
        .bind(alert.environment.as_str())
        .bind(alert.severity.as_str())
        .bind(i64::from(alert.acknowledged))
        .bind(timestamp(&alert.triggered_at))
        .bind(serde_json::to_string(alert).map_err(json_error)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn migration_plan(&mut self, id: &str) -> Result<Option<MigrationPlanRow>, StoreError> {
        super::batch_doc(&mut self.tx, "kms_migration_plans", id).await
    }

    async fn save_migration_plan(&mut self, plan: &MigrationPlanRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kms_migration_plans (id, tenant_id, environment, status, created_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        )
        .bind(&plan.id)
        .bind(&plan.tenant_id)
        .bind(plan.environment.as_str())
        .bind(plan.status.as_str())
        .bind(timestamp(&plan.created_at))
        .bind(serde_json::to_string(plan).map_err(json_error)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

fn saturating(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A key with its versions, oldest first.
#[derive(Debug, Clone)]
pub struct KeyWithVersions {
    pub key: KeyRow,
    pub versions: Vec<KeyVersionRow>,
}

/// One key of a partition by id (`key_…`), with its versions.
pub async fn get_key(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<KeyWithVersions>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM keys");
    partition.restrict(&mut sql);
    sql.push(" AND id = ").bind(Value::Text(id.into()));
    let Some(row) = sql.query(dialect_of(pool)).fetch_optional(pool).await? else {
        return Ok(None);
    };
    let key: KeyRow = from_doc(&row)?;
    let versions = key_versions(pool, &key.id).await?;
    Ok(Some(KeyWithVersions { key, versions }))
}

/// A key's versions, oldest first.
pub async fn key_versions(pool: &AnyPool, key_id: &str) -> Result<Vec<KeyVersionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT key_id, version, material_id, public_key, created_at
           FROM key_versions WHERE key_id = $1 ORDER BY version",
    )
    .bind(key_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(version_row).collect()
}

fn version_row(row: &AnyRow) -> Result<KeyVersionRow, sqlx::Error> {
    let version: i64 = row.try_get("version")?;
    Ok(KeyVersionRow {
        key_id: row.try_get("key_id")?,
        version: u32::try_from(version).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        material_id: row.try_get("material_id")?,
        public_key: row.try_get("public_key")?,
        created_at: parse_timestamp(&row.try_get::<String, _>("created_at")?)?,
    })
}

/// What `GET /v1/keys` filters by.
#[derive(Debug, Clone, Default)]
pub struct KeyFilter {
    pub state: Vec<KeyState>,
    pub algorithm: Vec<Algorithm>,
    pub tag: Option<String>,
    /// A part of the name (case-insensitive).
    pub search: Option<String>,
}

/// What `GET /v1/keys` may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeySort {
    #[default]
    CreatedAt,
    Name,
    LastUsedAt,
}

impl KeySort {
    fn column(&self) -> &'static str {
        match self {
            KeySort::CreatedAt => "created_at",
            KeySort::Name => "name",
            // Never-used keys sort as the oldest use.
            KeySort::LastUsedAt => "COALESCE(last_used_at, '')",
        }
    }
}

/// A page of a partition's keys.
pub async fn list_keys(
    pool: &AnyPool,
    partition: &Partition,
    filter: &KeyFilter,
    sort: KeySort,
    order: Order,
    window: impl Into<Window>,
) -> Result<Page<KeyRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM keys");
    partition.restrict(&mut sql);
    let states: Vec<&str> = filter.state.iter().map(KeyState::as_str).collect();
    sql.and_in("state", &states);
    let algorithms: Vec<&str> = filter.algorithm.iter().map(Algorithm::as_str).collect();
    sql.and_in("algorithm", &algorithms);
    if let Some(tag) = &filter.tag {
        let element = serde_json::to_string(&tag.to_lowercase())
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sql.and_contains("tags", &element);
    }
    if let Some(search) = &filter.search {
        sql.and_contains("LOWER(name)", &search.to_lowercase());
    }
    let order_by = format!(
        " ORDER BY {} {}, id {}",
        sort.column(),
        order.sql(),
        order.sql()
    );
    paged(pool, sql, &order_by, window.into(), from_doc).await
}

/// Keys whose automatic rotation is due at `now` (any tenant), oldest due first.
pub async fn keys_due_rotation(
    pool: &AnyPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT doc FROM keys WHERE next_rotation_at <= $1 AND state = 'enabled'
          ORDER BY next_rotation_at LIMIT $2",
    )
    .bind(timestamp(&now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_doc).collect()
}

/// Keys pending deletion whose window has ended at `now`.
pub async fn keys_due_destruction(
    pool: &AnyPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT doc FROM keys WHERE deletion_date <= $1 AND state = 'pending_deletion'
          ORDER BY deletion_date LIMIT $2",
    )
    .bind(timestamp(&now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_doc).collect()
}

/// Enabled keys whose latest version was due a rotation before `before`
/// (the overdue check passes `now` − the grace) and not yet recorded as
/// overdue, oldest due first.
pub async fn keys_overdue_rotation(
    pool: &AnyPool,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT doc FROM keys WHERE rotation_due_at <= $1 AND state = 'enabled'
          ORDER BY rotation_due_at LIMIT $2",
    )
    .bind(timestamp(&before))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_doc).collect()
}

/// Every key of a partition, any state, up to `limit` (the migration
/// views count over them).
pub async fn partition_keys(
    pool: &AnyPool,
    partition: &Partition,
    limit: u32,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM keys");
    partition.restrict(&mut sql);
    sql.push(" ORDER BY created_at, id LIMIT ")
        .bind(Value::Int(i64::from(limit)));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}

/// The keys of a partition that name `key_id` as their replacement.
pub async fn keys_replaced_by(
    pool: &AnyPool,
    partition: &Partition,
    key_id: &str,
) -> Result<Vec<KeyRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM keys");
    partition.restrict(&mut sql);
    let needle = format!("\"replaced_by\":{}", serde_json::Value::from(key_id));
    sql.and_contains("doc", &needle);
    sql.push(" ORDER BY created_at, id LIMIT 1000");
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter().map(from_doc).collect()
}
