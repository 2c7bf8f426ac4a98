//! The secrets view's tables (`secrets`, `secret_versions`,
//! `secret_activity`, `leakage_incidents`): the projection's writes, and
//! the queries of `/v1/secrets`, `/v1/leakage` and the scheduler.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::secret::{IncidentStatus, Severity, VersionState};
use palisade_projections::{
    IncidentRow, SecretActivityRow, SecretRow, SecretVersionRow, SecretsStore, StoreError, ViewRef,
};
use sqlx::{AnyPool, Row};

use super::findings::{from_doc, paged};
use super::kms::partition_doc;
use super::sql::{Sql, Value};
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use super::{Page, Partition, Window};
use crate::store::dialect_of;

/// The secrets view's SQL store for one batch: it writes as it goes.
pub(super) struct SecretsSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(SecretsSql { tx })
}

#[async_trait]
impl SqlStore for SecretsSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn SecretsStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

#[async_trait]
impl SecretsStore for SecretsSql {
    async fn secret(&mut self, id: &str) -> Result<Option<SecretRow>, StoreError> {
        super::batch_doc(&mut self.tx, "secrets", id).await
    }

    async fn save_secret(&mut self, secret: &SecretRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secrets (id, tenant_id, environment, path, created_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, doc = excluded.doc",
        )
        .bind(&secret.id)
        .bind(&secret.tenant_id)
        .bind(secret.environment.as_str())
        .bind(&secret.path)
        .bind(timestamp(&secret.created_at))
        .bind(super::json_doc(secret)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn delete_secret(&mut self, id: &str) -> Result<(), StoreError> {
        for table in [
            "DELETE FROM secrets WHERE id = $1",
            "DELETE FROM secret_versions WHERE secret_id = $1",
        ] {
            sqlx::query(table)
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    async fn secret_versions(&mut self, id: &str) -> Result<Vec<SecretVersionRow>, StoreError> {
        let rows =
            sqlx::query("SELECT doc FROM secret_versions WHERE secret_id = $1 ORDER BY version")
                .bind(id)
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
        rows.iter()
            .map(from_doc)
            .collect::<Result<_, _>>()
            .map_err(store_error)
    }

    async fn save_secret_version(&mut self, version: &SecretVersionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secret_versions (secret_id, tenant_id, environment, version, state,
                                          deletion_time, doc, data_key_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (secret_id, version) DO UPDATE SET
                state = excluded.state, deletion_time = excluded.deletion_time,
                doc = excluded.doc",
        )
        .bind(&version.secret_id)
        .bind(&version.tenant_id)
        .bind(version.environment.as_str())
        .bind(i64::from(version.version))
        .bind(version.state.as_str())
        .bind(version.deletion_time.as_ref().map(timestamp))
        .bind(super::json_doc(version)?)
        .bind(&version.data_key_id)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn add_secret_activity(&mut self, entry: &SecretActivityRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secret_activity (secret_id, feed_tx, feed_position, tenant_id,
                                          environment, action, at, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (secret_id, feed_tx, feed_position) DO NOTHING",
        )
        .bind(&entry.secret_id)
        .bind(entry.position.tx)
        .bind(entry.position.position)
        .bind(&entry.tenant_id)
        .bind(entry.environment.as_str())
        .bind(&entry.action)
        .bind(timestamp(&entry.at))
        .bind(super::json_doc(entry)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn add_secret_tombstone(
        &mut self,
        secret_id: &str,
        data_key_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO secret_tombstones (data_key_id, secret_id, deleted_at)
             VALUES ($1, $2, $3) ON CONFLICT (data_key_id) DO NOTHING",
        )
        .bind(data_key_id)
        .bind(secret_id)
        .bind(timestamp(&at))
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        super::batch_doc(&mut self.tx, "leakage_incidents", id).await
    }

    async fn save_incident(&mut self, incident: &IncidentRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO leakage_incidents (id, tenant_id, environment, secret_id, status,
                                            severity, reported_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        )
        .bind(&incident.id)
        .bind(&incident.tenant_id)
        .bind(incident.environment.as_str())
        .bind(&incident.secret_id)
        .bind(incident.status.as_str())
        .bind(incident.severity.as_str())
        .bind(timestamp(&incident.reported_at))
        .bind(super::json_doc(incident)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

// ---------------------------------------------------------------- queries

/// A secret's metadata with its versions, oldest first.
#[derive(Debug, Clone)]
pub struct SecretWithVersions {
    pub secret: SecretRow,
    pub versions: Vec<SecretVersionRow>,
}

/// One secret of a partition by id, with its versions.
pub async fn get_secret(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<SecretWithVersions>, sqlx::Error> {
    let Some(secret) = partition_doc::<SecretRow>(pool, "secrets", partition, id).await? else {
        return Ok(None);
    };
    let rows = sqlx::query("SELECT doc FROM secret_versions WHERE secret_id = $1 ORDER BY version")
        .bind(id)
        .fetch_all(pool)
        .await?;
    let versions = rows.iter().map(from_doc).collect::<Result<_, _>>()?;
    Ok(Some(SecretWithVersions { secret, versions }))
}

/// One version of a partition's secret (the latest when `version` is
/// None), with the secret's path; the value read's one query.
pub async fn get_secret_version(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
    version: Option<u32>,
) -> Result<Option<SecretVersionRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM secret_versions");
    partition.restrict(&mut sql);
    sql.push(" AND secret_id = ").bind(Value::Text(id.into()));
    match version {
        Some(version) => {
            sql.push(" AND version = ")
                .bind(Value::Int(i64::from(version)));
        }
        None => {
            sql.push(" ORDER BY version DESC LIMIT 1");
        }
    }
    let row = sql.query(dialect_of(pool)).fetch_optional(pool).await?;
    row.as_ref().map(from_doc).transpose()
}

/// A page of a partition's secrets whose path starts with `prefix`, by path.
pub async fn list_secrets(
    pool: &AnyPool,
    partition: &Partition,
    prefix: Option<&str>,
    window: Window,
) -> Result<Page<SecretRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM secrets");
    partition.restrict(&mut sql);
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        // Exact and case-sensitive on both stores (LIKE is neither on
        // SQLite); the length is a number this code computed.
        sql.push(&format!(
            " AND substr(path, 1, {}) = ",
            prefix.chars().count()
        ))
        .bind(Value::Text(prefix.into()));
    }
    paged(pool, sql, " ORDER BY path", window, from_doc).await
}

/// A page of one secret's activity, oldest first.
pub async fn secret_activity(
    pool: &AnyPool,
    partition: &Partition,
    secret_id: &str,
    window: Window,
) -> Result<Page<SecretActivityRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM secret_activity");
    partition.restrict(&mut sql);
    sql.push(" AND secret_id = ")
        .bind(Value::Text(secret_id.into()));
    paged(
        pool,
        sql,
        " ORDER BY feed_tx, feed_position",
        window,
        from_doc,
    )
    .await
}

/// Counts over a partition's secrets (`GET /v1/secrets/stats`).
#[derive(Debug, Clone, Default)]
pub struct SecretStats {
    pub total_secrets: i64,
    pub total_versions: i64,
    pub by_state: Vec<(VersionState, i64)>,
}

pub async fn secret_stats(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<SecretStats, sqlx::Error> {
    let mut secrets = Sql::new("SELECT COUNT(*) FROM secrets");
    partition.restrict(&mut secrets);
    let total_secrets: i64 = secrets
        .query_scalar(dialect_of(pool))
        .fetch_one(pool)
        .await?;
    let mut states = Sql::new("SELECT state, COUNT(*) AS n FROM secret_versions");
    partition.restrict(&mut states);
    states.push(" GROUP BY state");
    let rows = states.query(dialect_of(pool)).fetch_all(pool).await?;
    let mut by_state: Vec<(VersionState, i64)> =
        VersionState::ALL.iter().map(|state| (*state, 0)).collect();
    for row in rows {
        let state: String = row.try_get("state")?;
        let n: i64 = row.try_get("n")?;
        if let Some(entry) = by_state.iter_mut().find(|(s, _)| s.as_str() == state) {
            entry.1 = n;
        }
    }
    Ok(SecretStats {
        total_secrets,
        total_versions: by_state.iter().map(|(_, n)| n).sum(),
        by_state,
    })
}

/// A secret with a readable version due a soft delete.
#[derive(Debug, Clone)]
pub struct DueExpiry {
    pub secret_id: String,
    pub tenant_id: String,
    pub environment: palisade_domain::Environment,
}

/// Secrets with a readable version due a soft delete at `now`
/// (`delete_version_after`), each once, soonest first.
pub async fn secrets_due_expiry(
    pool: &AnyPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueExpiry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT secret_id, tenant_id, environment FROM secret_versions
          WHERE deletion_time <= $1 AND state IN ('active', 'deprecated')
          GROUP BY secret_id, tenant_id, environment
          ORDER BY MIN(deletion_time) LIMIT $2",
    )
    .bind(timestamp(&now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let environment: String = row.try_get("environment")?;
            Ok(DueExpiry {
                secret_id: row.try_get("secret_id")?,
                tenant_id: row.try_get("tenant_id")?,
                environment: environment
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            })
        })
        .collect()
}

/// What `GET /v1/leakage/incidents` filters by.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Vec<IncidentStatus>,
    pub severity: Vec<Severity>,
    pub since: Option<DateTime<Utc>>,
    pub secret_id: Option<String>,
}

/// A page of a partition's incidents, newest first.
pub async fn list_incidents(
    pool: &AnyPool,
    partition: &Partition,
    filter: &IncidentFilter,
    window: Window,
) -> Result<Page<IncidentRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM leakage_incidents");
    partition.restrict(&mut sql);
    let statuses: Vec<&str> = filter.status.iter().map(IncidentStatus::as_str).collect();
    sql.and_in("status", &statuses);
    let severities: Vec<&str> = filter.severity.iter().map(Severity::as_str).collect();
    sql.and_in("severity", &severities);
    if let Some(since) = &filter.since {
        sql.push(" AND reported_at >= ")
            .bind(Value::Text(timestamp(since)));
    }
    if let Some(secret_id) = &filter.secret_id {
        sql.push(" AND secret_id = ")
            .bind(Value::Text(secret_id.clone()));
    }
    paged(
        pool,
        sql,
        " ORDER BY reported_at DESC, id DESC",
        window,
        from_doc,
    )
    .await
}

/// One incident of a partition.
pub async fn get_incident(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<IncidentRow>, sqlx::Error> {
    partition_doc(pool, "leakage_incidents", partition, id).await
}

/// The reported time of the latest open incident on a secret, if any.
pub async fn latest_open_incident(
    pool: &AnyPool,
    secret_id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let at: Option<String> = sqlx::query_scalar(
        "SELECT MAX(reported_at) FROM leakage_incidents
          WHERE secret_id = $1 AND status IN ('open', 'investigating')",
    )
    .bind(secret_id)
    .fetch_one(pool)
    .await?;
    at.map(|text| super::parse_timestamp(&text)).transpose()
}

/// Sealed rows the view says must be gone but that are still there (a
/// destroy or delete whose shredding did not happen: a crash between the
/// event and the delete): values of destroyed versions of the same
/// generation, and the data keys and values of deleted secrets.
#[derive(Debug, Clone, Default)]
pub struct Unshredded {
    /// (secret, data key, version) of values to delete.
    pub values: Vec<(String, String, u32)>,
    /// (secret, data key) of deleted secrets' rows.
    pub deleted: Vec<(String, String)>,
}

pub async fn unshredded_secrets(pool: &AnyPool, limit: u32) -> Result<Unshredded, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT v.secret_id, v.data_key_id, v.version FROM secret_values v
           JOIN secret_versions sv ON sv.secret_id = v.secret_id AND sv.version = v.version
                                  AND sv.data_key_id = v.data_key_id
          WHERE sv.state = 'destroyed' LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    let mut found = Unshredded::default();
    for row in rows {
        let version: i64 = row.try_get("version")?;
        found.values.push((
            row.try_get("secret_id")?,
            row.try_get("data_key_id")?,
            u32::try_from(version).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        ));
    }
    let rows = sqlx::query(
        "SELECT t.secret_id, t.data_key_id FROM secret_tombstones t
          WHERE EXISTS (SELECT 1 FROM secret_data_keys d WHERE d.data_key_id = t.data_key_id)
             OR EXISTS (SELECT 1 FROM secret_values v WHERE v.data_key_id = t.data_key_id)
          LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    for row in rows {
        found
            .deleted
            .push((row.try_get("secret_id")?, row.try_get("data_key_id")?));
    }
    Ok(found)
}
