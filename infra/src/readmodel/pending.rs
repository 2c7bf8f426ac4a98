//! Write-behind for one batch: the projection's reads see its own writes
//! through this cache, and `flush` writes every changed row once, in
//! multi-row statements, before the runner commits. A batch that touches
//! one asset 500 times writes it once.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use palisade_domain::Environment;
use palisade_projections::{
    AssetRow, AuditHead, AuditRecord, FindingRow, RiskSummaryRow, StoreError, TimelineEntry,
    TimelineSubject,
};

use super::sql::{Sql, Value};
use super::{store_error, timestamp, SqlReadModel};

/// Rows changed in this batch and not yet written.
#[derive(Default)]
pub(crate) struct Pending {
    pub findings: BTreeMap<String, FindingRow>,
    pub assets: BTreeMap<String, AssetRow>,
    pub summaries: BTreeMap<(String, Environment), RiskSummaryRow>,
    pub history: BTreeMap<(String, Environment, NaiveDate), f64>,
    pub timeline: Vec<TimelineEntry>,
    pub subjects: BTreeMap<String, TimelineSubject>,
    pub audit: Vec<AuditRecord>,
    /// Each chain's last record, including this batch's.
    pub audit_heads: BTreeMap<(String, Environment), AuditHead>,
}

/// Rows a projection's `prepare` loaded for the batch, as they were before
/// it (None: known to be absent). Rows it then changes are in [`Pending`],
/// which is read first; a flush drops these, as they may be stale after it.
#[derive(Default)]
pub(crate) struct Loaded {
    pub findings: HashMap<String, Option<FindingRow>>,
    pub assets: HashMap<String, Option<AssetRow>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.findings.is_empty()
            && self.assets.is_empty()
            && self.summaries.is_empty()
            && self.history.is_empty()
            && self.timeline.is_empty()
            && self.subjects.is_empty()
            && self.audit.is_empty()
    }
}

/// Rows per multi-row statement: well below both backends' limits on
/// bound parameters (PostgreSQL 65,535; SQLite 32,766).
const CHUNK: usize = 200;

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError(Box::new(e)))
}

/// Scores as the API shows them (two decimals), so that `min_risk` and
/// sorting agree with what a client sees; `doc` keeps the exact value.
fn shown_score(score: f64) -> Value {
    Value::Real((score * 100.0).round() / 100.0)
}

fn text(value: &str) -> Value {
    Value::Text(value.to_string())
}

fn optional(value: Option<&str>) -> Value {
    value.map_or(Value::Null, text)
}

/// `INSERT INTO {head} VALUES (…), (…) {tail}` for each chunk of `rows`.
async fn insert_rows<T>(
    model: &mut SqlReadModel<'_>,
    head: &str,
    tail: &str,
    rows: &[T],
    values: impl Fn(&T) -> Result<Vec<Value>, StoreError>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new(&format!("INSERT INTO {head} VALUES "));
        for (i, row) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, value) in values(row)?.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.bind(value);
            }
            sql.push(")");
        }
        sql.push(" ").push(tail);
        sql.query(model.tx.backend_name())
            .execute(&mut **model.tx)
            .await
            .map_err(store_error)?;
    }
    Ok(())
}

impl SqlReadModel<'_> {
    /// Writes every row this batch changed. The runner calls it before it
    /// commits; queries that read the tables directly call it first.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.loaded = Loaded::default();
        let pending = std::mem::take(&mut self.pending);
        let findings: Vec<FindingRow> = pending.findings.into_values().collect();
        insert_rows(
            self,
            "findings (id, tenant_id, environment, asset_id, product, category, asset_identifier,
                       title, search_text, severity, severity_rank, status, cve, assignee, tags,
                       risk_score, accepted_until, created_at, updated_at, doc)",
            "ON CONFLICT (id) DO UPDATE SET
                 title = excluded.title, search_text = excluded.search_text,
                 severity = excluded.severity, severity_rank = excluded.severity_rank,
                 status = excluded.status, assignee = excluded.assignee, tags = excluded.tags,
                 risk_score = excluded.risk_score, accepted_until = excluded.accepted_until,
                 updated_at = excluded.updated_at, doc = excluded.doc",
            &findings,
            |f| {
                let d = &f.details;
                Ok(vec![
                    text(&f.id),
                    text(&f.tenant_id),
                    text(f.environment.as_str()),
                    text(&f.asset_id),
                    text(&d.product),
                    text(&d.category),
                    text(&d.asset_identifier),
                    text(&d.title),
                    Value::Text(format!("{}\n{}", d.title, d.description).to_lowercase()),
                    text(d.severity.as_str()),
                    Value::Int(d.severity.rank()),
                    text(f.status.as_str()),
                    optional(d.cve.as_deref()),
                    optional(f.assignee.as_deref()),
                    Value::Text(format!("|{}|", d.tags.join("|"))),
                    shown_score(f.risk_score),
                    f.accepted_until
                        .as_ref()
                        .map_or(Value::Null, |t| Value::Text(timestamp(t))),
                    Value::Text(timestamp(&f.created_at)),
                    Value::Text(timestamp(&f.updated_at)),
                    Value::Text(to_json(f)?),
                ])
            },
        )
        .await?;
        let assets: Vec<AssetRow> = pending.assets.into_values().collect();
        insert_rows(
            self,
            "assets (id, tenant_id, environment, identifier, risk_score, open_findings, last_seen, doc)",
            "ON CONFLICT (id) DO UPDATE SET
                 risk_score = excluded.risk_score, open_findings = excluded.open_findings,
                 last_seen = excluded.last_seen, doc = excluded.doc",
            &assets,
            |a| {
                Ok(vec![
                    text(&a.id),
                    text(&a.tenant_id),
                    text(a.environment.as_str()),
                    text(&a.identifier),
                    shown_score(a.risk_score),
                    Value::Int(a.open_findings),
                    Value::Text(timestamp(&a.last_seen)),
                    Value::Text(to_json(a)?),
                ])
            },
        )
        .await?;
        let summaries: Vec<RiskSummaryRow> = pending.summaries.into_values().collect();
        insert_rows(
            self,
            "risk_summaries (tenant_id, environment, risk_score, doc)",
            "ON CONFLICT (tenant_id, environment) DO UPDATE SET
                 risk_score = excluded.risk_score, doc = excluded.doc",
            &summaries,
            |s| {
                Ok(vec![
                    text(&s.tenant_id),
                    text(s.environment.as_str()),
                    shown_score(s.risk_score),
                    Value::Text(to_json(s)?),
                ])
            },
        )
        .await?;
        let history: Vec<_> = pending.history.into_iter().collect();
        insert_rows(
            self,
            "risk_history (tenant_id, environment, day, risk_score)",
            "ON CONFLICT (tenant_id, environment, day) DO UPDATE SET risk_score = excluded.risk_score",
            &history,
            |((tenant, environment, day), score)| {
                Ok(vec![
                    text(tenant),
                    text(environment.as_str()),
                    Value::Text(day.to_string()),
                    Value::Real(*score),
                ])
            },
        )
        .await?;
        let subjects: Vec<_> = pending.subjects.into_iter().collect();
        insert_rows(
            self,
            "timeline_subjects (finding_id, asset_id, title)",
            "ON CONFLICT (finding_id) DO UPDATE SET asset_id = excluded.asset_id, title = excluded.title",
            &subjects,
            |(finding_id, s)| Ok(vec![text(finding_id), text(&s.asset_id), text(&s.title)]),
        )
        .await?;
        insert_rows(
            self,
            "timeline (id, tenant_id, environment, occurred_at, sequence, event_type, finding_id, asset_id, doc)",
            "ON CONFLICT (id) DO NOTHING",
            &pending.timeline,
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
        insert_rows(self, super::audit::INSERT_HEAD, "", &pending.audit, |r| {
            Ok(super::audit::record_values(r))
        })
        .await?;
        Ok(())
    }
}
