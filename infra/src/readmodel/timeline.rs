//! The timeline tables: the projection's writes and `GET /v1/timeline`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_projections::{StoreError, TimelineEntry, TimelineStore, TimelineSubject, ViewRef};
use sqlx::{AnyPool, Row};

use super::findings::Partition;
use super::pending::{insert_rows, optional, text, to_json};
use super::sql::{Sql, Value};
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use crate::store::dialect_of;

/// The timeline's SQL store for one batch: entries and subjects are
/// written behind, when the batch ends.
pub(super) struct TimelineSql {
    tx: BatchTransaction,
    entries: Vec<TimelineEntry>,
    subjects: BTreeMap<String, TimelineSubject>,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(TimelineSql {
        tx,
        entries: Vec::new(),
        subjects: BTreeMap::new(),
    })
}

#[async_trait]
impl SqlStore for TimelineSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn TimelineStore)
    }

    async fn finish(mut self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        let subjects: Vec<_> = std::mem::take(&mut self.subjects).into_iter().collect();
        let entries = std::mem::take(&mut self.entries);
        insert_rows(
            &mut self.tx,
            "timeline_subjects (finding_id, asset_id, title)",
            "ON CONFLICT (finding_id) DO UPDATE SET asset_id = excluded.asset_id, title = excluded.title",
            &subjects,
            |(finding_id, s)| Ok(vec![text(finding_id), text(&s.asset_id), text(&s.title)]),
        )
        .await?;
        insert_rows(
            &mut self.tx,
            "timeline (id, tenant_id, environment, occurred_at, sequence, event_type, finding_id, asset_id, doc)",
            "ON CONFLICT (id) DO NOTHING",
            &entries,
            |e| {
                Ok(vec![
                    text(&e.id),
                    text(&e.tenant_id),
                    text(e.environment.as_str()),
                    Value::Text(timestamp(&e.occurred_at)),
                    Value::Int(e.sequence),
                    text(&e.event_type),
                    optional(e.finding_id.as_deref()),
                    optional(e.asset_id.as_deref()),
                    Value::Text(to_json(e)?),
                ])
            },
        )
        .await?;
        Ok(self.tx)
    }
}

#[async_trait]
impl TimelineStore for TimelineSql {
    async fn insert_timeline_entry(&mut self, entry: &TimelineEntry) -> Result<(), StoreError> {
        self.entries.push(entry.clone());
        Ok(())
    }

    async fn timeline_subject(
        &mut self,
        finding_id: &str,
    ) -> Result<Option<TimelineSubject>, StoreError> {
        if let Some(subject) = self.subjects.get(finding_id) {
            return Ok(Some(subject.clone()));
        }
        let row =
            sqlx::query("SELECT asset_id, title FROM timeline_subjects WHERE finding_id = $1")
                .bind(finding_id)
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(store_error)?;
        row.map(|row| {
            Ok(TimelineSubject {
                asset_id: row.try_get("asset_id")?,
                title: row.try_get("title")?,
            })
        })
        .transpose()
        .map_err(store_error)
    }

    async fn save_timeline_subject(
        &mut self,
        finding_id: &str,
        subject: &TimelineSubject,
    ) -> Result<(), StoreError> {
        self.subjects
            .insert(finding_id.to_string(), subject.clone());
        Ok(())
    }
}

/// The filters of `GET /v1/timeline`.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    pub since: Option<DateTime<Utc>>,
    pub asset_id: Option<String>,
    pub finding_id: Option<String>,
    /// Event types; empty means all.
    pub types: Vec<String>,
    /// Event types left out (the caller may not see them).
    pub hidden: Vec<&'static str>,
    /// Continue after this entry: `(occurred_at, sequence, id)` of the
    /// last one seen.
    pub after: Option<(String, i64, String)>,
}

/// Up to `limit` entries, newest first.
pub async fn list_timeline(
    pool: &AnyPool,
    partition: &Partition,
    filter: &TimelineFilter,
    limit: u32,
) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM timeline");
    partition.restrict(&mut sql);
    if let Some(since) = &filter.since {
        sql.push(" AND occurred_at >= ")
            .bind(Value::Text(timestamp(since)));
    }
    if let Some(asset_id) = &filter.asset_id {
        sql.push(" AND asset_id = ")
            .bind(Value::Text(asset_id.clone()));
    }
    if let Some(finding_id) = &filter.finding_id {
        sql.push(" AND finding_id = ")
            .bind(Value::Text(finding_id.clone()));
    }
    let types: Vec<&str> = filter.types.iter().map(String::as_str).collect();
    sql.and_in("event_type", &types);
    if !filter.hidden.is_empty() {
        sql.push(" AND event_type NOT IN (");
        for (i, hidden) in filter.hidden.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text((*hidden).to_string()));
        }
        sql.push(")");
    }
    if let Some((occurred_at, sequence, id)) = &filter.after {
        sql.push(" AND (occurred_at < ")
            .bind(Value::Text(occurred_at.clone()))
            .push(" OR (occurred_at = ")
            .bind(Value::Text(occurred_at.clone()))
            .push(" AND (sequence < ")
            .bind(Value::Int(*sequence))
            .push(" OR (sequence = ")
            .bind(Value::Int(*sequence))
            .push(" AND id < ")
            .bind(Value::Text(id.clone()))
            .push("))))");
    }
    sql.push(" ORDER BY occurred_at DESC, sequence DESC, id DESC LIMIT ")
        .bind(Value::Int(i64::from(limit)));
    let rows = sql.query(dialect_of(pool)).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let doc: String = row.try_get("doc")?;
            serde_json::from_str::<TimelineEntry>(&doc)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .collect()
}

/// Timestamp text as the timeline stores it (for cursors).
pub fn timeline_timestamp(at: &DateTime<Utc>) -> String {
    timestamp(at)
}
