//! The access view's tables (`access_policies`, `access_requests`,
//! `access_grants`): the projection's writes, the queries of `/v1/access`
//! and the scheduler's question. The check ([`check_access`]) reads the
//! rows of one key of `access_grants` (a digest of the question) and
//! compares `expires_at`
//! with the time it is given, so an ended grant is refused from its end
//! on, whether or not its end has been recorded.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::grant::RequestStatus;
use palisade_domain::Environment;
use palisade_projections::{AccessRequestRow, AccessStore, PolicyRow, StoreError, ViewRef};
use sqlx::{AnyPool, Row};

use super::findings::{from_doc, paged};
use super::kms::partition_doc;
use super::sql::{Sql, Value};
use super::{parse_timestamp, store_error, timestamp, BatchTransaction, SqlStore};
use super::{Page, Partition, Window};
use crate::store::dialect_of;

/// The most policies one environment holds.
pub const MAX_POLICIES: u32 = 100;

/// The access view's SQL store for one batch: it writes as it goes.
pub(super) struct AccessSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(AccessSql { tx })
}

#[async_trait]
impl SqlStore for AccessSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn AccessStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

#[async_trait]
impl AccessStore for AccessSql {
    async fn policy(&mut self, id: &str) -> Result<Option<PolicyRow>, StoreError> {
        super::batch_doc(&mut self.tx, "access_policies", id).await
    }

    async fn save_policy(&mut self, policy: &PolicyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO access_policies (id, tenant_id, environment, created_at, doc)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(&policy.id)
        .bind(&policy.tenant_id)
        .bind(policy.environment.as_str())
        .bind(timestamp(&policy.created_at))
        .bind(super::json_doc(policy)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn access_request(&mut self, id: &str) -> Result<Option<AccessRequestRow>, StoreError> {
        super::batch_doc(&mut self.tx, "access_requests", id).await
    }

    async fn save_access_request(&mut self, request: &AccessRequestRow) -> Result<(), StoreError> {
        let approval_seconds = request
            .approved_at
            .map(|at| (at - request.requested_at).num_milliseconds() as f64 / 1000.0);
        sqlx::query(
            "INSERT INTO access_requests (id, tenant_id, environment, status, requester,
                                          resource_type, resource_id, requested_at, due_at,
                                          approved_at, approval_seconds, doc)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO UPDATE SET
                status = excluded.status, due_at = excluded.due_at,
                approved_at = excluded.approved_at,
                approval_seconds = excluded.approval_seconds, doc = excluded.doc",
        )
        .bind(&request.id)
        .bind(&request.tenant_id)
        .bind(request.environment.as_str())
        .bind(request.status.as_str())
        .bind(&request.requester)
        .bind(&request.resource_type)
        .bind(&request.resource_id)
        .bind(timestamp(&request.requested_at))
        .bind(request.due_at().as_ref().map(timestamp))
        .bind(request.approved_at.as_ref().map(timestamp))
        .bind(approval_seconds.unwrap_or(0.0))
        .bind(super::json_doc(request)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn add_grant(&mut self, request: &AccessRequestRow) -> Result<(), StoreError> {
        let Some(expires_at) = request.expires_at else {
            return Ok(());
        };
        for permission in &request.permissions {
            let key = grant_key(
                &request.tenant_id,
                request.environment,
                &AccessQuestion {
                    principal: &request.requester,
                    resource_type: &request.resource_type,
                    resource_id: &request.resource_id,
                    permission,
                },
            );
            sqlx::query(
                "INSERT INTO access_grants (grant_key, request_id, tenant_id, environment, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (grant_key, request_id) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .bind(key)
            .bind(&request.id)
            .bind(&request.tenant_id)
            .bind(request.environment.as_str())
            .bind(timestamp(&expires_at))
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        }
        Ok(())
    }

    async fn remove_grant(&mut self, request_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM access_grants WHERE request_id = $1")
            .bind(request_id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

// ------------------------------------------------------------------ reads

pub async fn get_policy(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    partition_doc(pool, "access_policies", partition, id).await
}

/// A page of a partition's policies, oldest first.
pub async fn list_policies(
    pool: &AnyPool,
    partition: &Partition,
    window: impl Into<Window>,
) -> Result<Page<PolicyRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM access_policies");
    partition.restrict(&mut sql);
    paged(
        pool,
        sql,
        " ORDER BY created_at, id",
        window.into(),
        from_doc,
    )
    .await
}

/// Every policy of a partition (at most [`MAX_POLICIES`]), oldest first.
pub async fn partition_policies(
    pool: &AnyPool,
    partition: &Partition,
) -> Result<Vec<PolicyRow>, sqlx::Error> {
    let window = Window {
        offset: 0,
        limit: MAX_POLICIES * 2,
    };
    Ok(list_policies(pool, partition, window).await?.items)
}

pub async fn get_access_request(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<AccessRequestRow>, sqlx::Error> {
    partition_doc(pool, "access_requests", partition, id).await
}

/// What `GET /v1/access/requests` filters by; empty means any.
#[derive(Debug, Clone, Default)]
pub struct AccessRequestFilter {
    /// Judged at the time given to the query: `approved` is a grant that
    /// has not ended, `ended` one that has (recorded or not).
    pub statuses: Vec<RequestStatus>,
    pub requester: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

/// `AND (…)`: the rows whose status at `now` is one of `statuses`.
fn restrict_status(sql: &mut Sql, statuses: &[RequestStatus], now: DateTime<Utc>) {
    if statuses.is_empty() {
        return;
    }
    let now = || Value::Text(timestamp(&now));
    sql.push(" AND (");
    for (i, status) in statuses.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        match status {
            RequestStatus::Pending | RequestStatus::Approved => {
                sql.push("(status = ")
                    .bind(Value::Text(status.as_str().into()))
                    .push(" AND due_at > ")
                    .bind(now())
                    .push(")");
            }
            RequestStatus::Expired | RequestStatus::Ended => {
                let open = if *status == RequestStatus::Expired {
                    RequestStatus::Pending
                } else {
                    RequestStatus::Approved
                };
                sql.push("status = ")
                    .bind(Value::Text(status.as_str().into()))
                    .push(" OR (status = ")
                    .bind(Value::Text(open.as_str().into()))
                    .push(" AND due_at <= ")
                    .bind(now())
                    .push(")");
            }
            other => {
                sql.push("status = ")
                    .bind(Value::Text(other.as_str().into()));
            }
        }
    }
    sql.push(")");
}

/// A page of a partition's requests, newest first.
pub async fn list_access_requests(
    pool: &AnyPool,
    partition: &Partition,
    filter: &AccessRequestFilter,
    now: DateTime<Utc>,
    window: impl Into<Window>,
) -> Result<Page<AccessRequestRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM access_requests");
    partition.restrict(&mut sql);
    restrict_status(&mut sql, &filter.statuses, now);
    for (column, value) in [
        ("requester", &filter.requester),
        ("resource_type", &filter.resource_type),
        ("resource_id", &filter.resource_id),
    ] {
        if let Some(value) = value {
            sql.push(&format!(" AND {column} = "))
                .bind(Value::Text(value.clone()));
        }
    }
    paged(
        pool,
        sql,
        " ORDER BY requested_at DESC, id DESC",
        window.into(),
        from_doc,
    )
    .await
}

/// What a check asks: may `principal` do `permission` on the resource.
#[derive(Debug, Clone)]
pub struct AccessQuestion<'a> {
    pub principal: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub permission: &'a str,
}

/// The grant that answers a check: the one that lasts longest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveGrant {
    pub request_id: String,
    pub expires_at: DateTime<Utc>,
}

/// The check index's key of one (principal, resource, permission) in a
/// partition: SHA-256 of the fields, each length-prefixed, in hex.
fn grant_key(tenant_id: &str, environment: Environment, question: &AccessQuestion<'_>) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for field in [
        tenant_id,
        environment.as_str(),
        question.principal,
        question.resource_type,
        question.resource_id,
        question.permission,
    ] {
        digest.update((field.len() as u64).to_be_bytes());
        digest.update(field.as_bytes());
    }
    hex::encode(digest.finalize())
}

/// The grant giving the access asked for at `now`, if any: one indexed
/// read of `access_grants`, `expires_at` compared with `now`.
pub async fn check_access(
    pool: &AnyPool,
    partition: &Partition,
    question: &AccessQuestion<'_>,
    now: DateTime<Utc>,
) -> Result<Option<ActiveGrant>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_id, expires_at FROM access_grants
          WHERE grant_key = $1 AND expires_at > $2
          ORDER BY expires_at DESC LIMIT 1",
    )
    .bind(grant_key(
        &partition.tenant_id,
        partition.environment,
        question,
    ))
    .bind(timestamp(&now))
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let expires_at: String = row.try_get("expires_at")?;
        Ok(ActiveGrant {
            request_id: row.try_get("request_id")?,
            expires_at: parse_timestamp(&expires_at)?,
        })
    })
    .transpose()
}

/// The figures of `GET /v1/access/stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessStats {
    pub total_requests: i64,
    pub approved: i64,
    pub denied: i64,
    pub expired: i64,
    pub average_approval_seconds: Option<f64>,
    pub active_grants: i64,
    /// The most requested resource types, with their counts.
    pub top_resources: Vec<(String, i64)>,
}

/// Requests made since `since`, and the grants active at `now`.
pub async fn access_stats(
    pool: &AnyPool,
    partition: &Partition,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<AccessStats, sqlx::Error> {
    let dialect = dialect_of(pool);
    let mut sql = Sql::new(
        "SELECT COUNT(*) AS total,
                COALESCE(SUM(CASE WHEN approved_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS approved,
                COALESCE(SUM(CASE WHEN status = 'denied' THEN 1 ELSE 0 END), 0) AS denied,
                COALESCE(SUM(CASE WHEN status = 'expired' OR (status = 'pending' AND due_at <= ",
    );
    sql.bind(Value::Text(timestamp(&now)))
        .push(
            ") THEN 1 ELSE 0 END), 0) AS expired,
                AVG(CASE WHEN approved_at IS NOT NULL THEN approval_seconds END) AS average FROM access_requests",
        );
    partition.restrict(&mut sql);
    sql.push(" AND requested_at >= ")
        .bind(Value::Text(timestamp(&since)));
    let row = sql.query(dialect).fetch_one(pool).await?;
    let mut active = Sql::new("SELECT COUNT(*) FROM access_requests");
    partition.restrict(&mut active);
    active
        .push(" AND status = 'approved' AND due_at > ")
        .bind(Value::Text(timestamp(&now)));
    let active_grants: i64 = active.query_scalar(dialect).fetch_one(pool).await?;
    let mut top = Sql::new("SELECT resource_type, COUNT(*) AS requests FROM access_requests");
    partition.restrict(&mut top);
    top.push(" AND requested_at >= ")
        .bind(Value::Text(timestamp(&since)))
        .push(" GROUP BY resource_type ORDER BY requests DESC, resource_type LIMIT 10");
    let top_resources = top
        .query(dialect)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("resource_type")?, row.try_get("requests")?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(AccessStats {
        total_requests: row.try_get("total")?,
        approved: row.try_get("approved")?,
        denied: row.try_get("denied")?,
        expired: row.try_get("expired")?,
        average_approval_seconds: row.try_get("average")?,
        active_grants,
        top_resources,
    })
}

/// A request with something due for the scheduler to record.
#[derive(Debug, Clone)]
pub struct DueRequest {
    pub request_id: String,
    pub tenant_id: String,
    pub environment: Environment,
}

/// Requests whose TTL or grant ended at or before `now`, soonest first.
pub async fn access_requests_due(
    pool: &AnyPool,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueRequest>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, tenant_id, environment FROM access_requests
          WHERE due_at IS NOT NULL AND due_at <= $1
          ORDER BY due_at LIMIT $2",
    )
    .bind(timestamp(&now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let environment: String = row.try_get("environment")?;
            Ok(DueRequest {
                request_id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                environment: environment
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            })
        })
        .collect()
}
