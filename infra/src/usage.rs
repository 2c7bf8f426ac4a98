//! Request accounting: fixed-window rate-limit counters per tenant and
//! environment (a plan's limits apply to the tenant's live keys as a
//! whole, and to its test keys as a whole, so a sandbox key can never use
//! up production's limits), the monthly quota reserved atomically per tenant, and daily usage
//! per tenant, environment and endpoint group (`GET /v1/usage`). Rate-limit
//! windows and the quota are counted in the database, per request, so that
//! every replica enforces the same limits; usage is counted in memory and
//! written in batches ([`UsageBuffer`]).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use palisade_domain::tenant::Period;
use palisade_domain::Environment;
use sqlx::{AnyPool, Row};

use crate::store::Store;

/// One window's count after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub period: Period,
    pub limit: u64,
    pub requests: u64,
    /// When the window ends (Unix seconds).
    pub resets_at: i64,
}

impl WindowCount {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.requests)
    }

    pub fn exceeded(&self) -> bool {
        self.requests > self.limit
    }
}

fn window_start(period: Period, now: i64) -> i64 {
    now - now.rem_euclid(period.seconds())
}

/// The rate-limit subject of a tenant's requests in one environment: every
/// key of the tenant in that environment counts against the same windows.
pub fn tenant_subject(tenant_id: &str, environment: Environment) -> String {
    format!("tenant:{tenant_id}:{}", environment.as_str())
}

/// Counts `weight` requests (a GraphQL document with several mutations
/// counts each) against each of the subject's windows (one statement) and
/// returns every window's count, including these. The column is named
/// `key_id` for history; it holds [`tenant_subject`].
/// Takes the store's write turn (SQLite) for its statement.
pub async fn count_request(
    store: &Store,
    subject: &str,
    limits: &[(Period, u64)],
    weight: u64,
    now: DateTime<Utc>,
) -> Result<Vec<WindowCount>, sqlx::Error> {
    if limits.is_empty() {
        return Ok(Vec::new());
    }
    let now = now.timestamp();
    let weight = i64::try_from(weight).unwrap_or(i64::MAX);
    let values: Vec<String> = (0..limits.len())
        .map(|i| format!("($1, ${}, ${}, $2)", 2 * i + 3, 2 * i + 4))
        .collect();
    let sql = format!(
        "INSERT INTO rate_limit_counters (key_id, period, window_start, requests) VALUES {}
         ON CONFLICT (key_id, period, window_start)
         DO UPDATE SET requests = rate_limit_counters.requests + excluded.requests
         RETURNING period, requests",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(subject).bind(weight);
    for (period, _) in limits {
        query = query.bind(period.as_str()).bind(window_start(*period, now));
    }
    let turn = store.write_turn().await;
    let rows = query.fetch_all(store.read_pool()).await?;
    drop(turn);
    let mut counts = Vec::with_capacity(limits.len());
    for row in rows {
        let name: String = row.try_get("period")?;
        let requests: i64 = row.try_get("requests")?;
        if let Some((period, limit)) = limits.iter().find(|(p, _)| p.as_str() == name) {
            counts.push(WindowCount {
                period: *period,
                limit: *limit,
                requests: u64::try_from(requests).unwrap_or(0),
                resets_at: window_start(*period, now) + period.seconds(),
            });
        }
    }
    Ok(counts)
}

/// The calendar month (UTC) that holds `now`: its first day and the next
/// month's first day.
pub fn month_of(now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).unwrap_or_default();
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    (first, next)
}

pub fn month_end(now: DateTime<Utc>) -> DateTime<Utc> {
    let (_, next) = month_of(now);
    Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Reserves `weight` live requests of the tenant's monthly `quota`, in one
/// conditional statement: true when they fit (and are now counted), false
/// when they would exceed it (and nothing is counted). Concurrent requests
/// can never together pass the quota. Takes the store's write turn (SQLite).
pub async fn reserve_quota(
    store: &Store,
    tenant_id: &str,
    quota: u64,
    weight: u64,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let (first, _) = month_of(now);
    let month = first.format("%Y-%m").to_string();
    let quota = i64::try_from(quota).unwrap_or(i64::MAX);
    let weight = i64::try_from(weight).unwrap_or(i64::MAX);
    let _turn = store.write_turn().await;
    let reserved: Option<i64> = sqlx::query_scalar(
        "INSERT INTO quota_usage (tenant_id, month, requests)
         SELECT $1, $2, $3 WHERE $3 <= $4
         ON CONFLICT (tenant_id, month)
         DO UPDATE SET requests = quota_usage.requests + excluded.requests
          WHERE quota_usage.requests + excluded.requests <= $4
         RETURNING requests",
    )
    .bind(tenant_id)
    .bind(month)
    .bind(weight)
    .bind(quota)
    .fetch_optional(store.read_pool())
    .await?;
    Ok(reserved.is_some())
}

/// Live requests the tenant made this month, as `GET /v1/usage` reports them.
pub async fn quota_used(
    pool: &AnyPool,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let (first, next) = month_of(now);
    let used: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(requests) AS BIGINT) FROM usage_daily
          WHERE tenant_id = $1 AND environment = 'live' AND day >= $2 AND day < $3",
    )
    .bind(tenant_id)
    .bind(first.to_string())
    .bind(next.to_string())
    .fetch_one(pool)
    .await?;
    Ok(u64::try_from(used.unwrap_or(0)).unwrap_or(0))
}

/// How often [`UsageBuffer::flush_every`] writes the counted usage.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One row of `usage_daily`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct UsageKey {
    tenant_id: String,
    environment: Environment,
    day: String,
    endpoint_group: String,
}

/// Requests counted in memory and written to `usage_daily` in batches:
/// one statement per [`FLUSH_EVERY`] for all tenants instead of one per
/// request (the hot row of a busy tenant was a lock every request queued
/// on). A usage read flushes first, so this replica's own requests are
/// always in it; another replica's appear within [`FLUSH_EVERY`]. A crash
/// loses at most the last [`FLUSH_EVERY`] of counts. The monthly quota is
/// not counted here: it is reserved in the database, per request, so that
/// it is exact across replicas ([`reserve_quota`]).
#[derive(Default)]
pub struct UsageBuffer {
    pending: std::sync::Mutex<std::collections::HashMap<UsageKey, u64>>,
    /// One flush at a time, so that a flush that fails puts its counts back
    /// before the next one takes them.
    flushing: tokio::sync::Mutex<()>,
}

impl UsageBuffer {
    fn pending(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<UsageKey, u64>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `weight` requests in the tenant's daily usage (written at the
    /// next flush).
    pub fn record(
        &self,
        tenant_id: &str,
        environment: Environment,
        endpoint_group: &str,
        weight: u64,
        now: DateTime<Utc>,
    ) {
        let key = UsageKey {
            tenant_id: tenant_id.to_string(),
            environment,
            day: now.date_naive().to_string(),
            endpoint_group: endpoint_group.to_string(),
        };
        let mut pending = self.pending();
        let count = pending.entry(key).or_insert(0);
        *count = count.saturating_add(weight);
    }

    /// Writes every count recorded so far, in one transaction. On failure
    /// the counts stay for the next flush.
    pub async fn flush(&self, store: &Store) -> Result<(), palisade_projections::StoreError> {
        let _one = self.flushing.lock().await;
        let mut rows: Vec<(UsageKey, u64)> =
            std::mem::take(&mut *self.pending()).into_iter().collect();
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort();
        let written = write_usage(store, &rows).await;
        if written.is_err() {
            let mut pending = self.pending();
            for (key, weight) in rows {
                let count = pending.entry(key).or_insert(0);
                *count = count.saturating_add(weight);
            }
        }
        written
    }

    /// Flushes every [`FLUSH_EVERY`] until shutdown, then once more.
    pub fn flush_every(
        self: std::sync::Arc<Self>,
        store: Store,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(FLUSH_EVERY) => false,
                    _ = shutdown.changed() => true,
                };
                let stopping = stopping || *shutdown.borrow();
                if let Err(error) = self.flush(&store).await {
                    tracing::warn!(%error, "cannot write usage; kept for the next flush");
                }
                if stopping {
                    return;
                }
            }
        })
    }
}

/// Adds the rows' counts to `usage_daily` in one transaction (rows sorted,
/// so that two replicas flushing at once lock rows in the same order).
async fn write_usage(
    store: &Store,
    rows: &[(UsageKey, u64)],
) -> Result<(), palisade_projections::StoreError> {
    use crate::readmodel::pending::{insert_rows, text};
    use crate::readmodel::store_error;
    let _turn = store.write_turn().await;
    let mut tx = store.read_pool().begin().await.map_err(store_error)?;
    insert_rows(
        &mut tx,
        "usage_daily (tenant_id, environment, day, endpoint_group, requests)",
        "ON CONFLICT (tenant_id, environment, day, endpoint_group)
         DO UPDATE SET requests = usage_daily.requests + excluded.requests",
        rows,
        |(key, weight)| {
            Ok(vec![
                text(&key.tenant_id),
                text(key.environment.as_str()),
                text(&key.day),
                text(&key.endpoint_group),
                crate::readmodel::sql::Value::Int(i64::try_from(*weight).unwrap_or(i64::MAX)),
            ])
        },
    )
    .await?;
    tx.commit().await.map_err(store_error)
}

/// This month's requests in one environment, by day and by endpoint group.
#[derive(Debug, Clone, Default)]
pub struct UsageReport {
    pub by_day: Vec<(String, u64)>,
    pub by_endpoint_group: Vec<(String, u64)>,
}

pub async fn usage_report(
    pool: &AnyPool,
    tenant_id: &str,
    environment: Environment,
    now: DateTime<Utc>,
) -> Result<UsageReport, sqlx::Error> {
    let (first, next) = month_of(now);
    let rows = sqlx::query(
        "SELECT day, endpoint_group, requests FROM usage_daily
          WHERE tenant_id = $1 AND environment = $2 AND day >= $3 AND day < $4
          ORDER BY day, endpoint_group",
    )
    .bind(tenant_id)
    .bind(environment.as_str())
    .bind(first.to_string())
    .bind(next.to_string())
    .fetch_all(pool)
    .await?;
    let mut report = UsageReport::default();
    for row in rows {
        let day: String = row.try_get("day")?;
        let group: String = row.try_get("endpoint_group")?;
        let requests = u64::try_from(row.try_get::<i64, _>("requests")?).unwrap_or(0);
        match report.by_day.last_mut() {
            Some((last, total)) if *last == day => *total += requests,
            _ => report.by_day.push((day, requests)),
        }
        match report
            .by_endpoint_group
            .iter_mut()
            .find(|(g, _)| *g == group)
        {
            Some((_, total)) => *total += requests,
            None => report.by_endpoint_group.push((group, requests)),
        }
    }
    report.by_endpoint_group.sort();
    Ok(report)
}

/// Deletes rate-limit windows that ended before `before`.
pub async fn prune_counters(pool: &AnyPool, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    // The longest window is a day; anything that started a day before `before` has ended.
    let cutoff = before.timestamp() - Period::Day.seconds();
    let done = sqlx::query("DELETE FROM rate_limit_counters WHERE window_start < $1")
        .bind(cutoff)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_start_on_their_boundaries() {
        let t = Utc
            .with_ymd_and_hms(2026, 11, 23, 10, 17, 42)
            .unwrap()
            .timestamp();
        assert_eq!(window_start(Period::Minute, t), t - 42);
        assert_eq!(window_start(Period::Hour, t), t - 17 * 60 - 42);
        assert_eq!(window_start(Period::Day, t), t - (10 * 3600 + 17 * 60 + 42));
    }

    #[test]
    fn months_run_from_the_first_to_the_first() {
        let (first, next) = month_of(Utc.with_ymd_and_hms(2026, 12, 31, 23, 0, 0).unwrap());
        assert_eq!(
            (first.to_string(), next.to_string()),
            ("2026-12-01".into(), "2027-01-01".into())
        );
    }
}
