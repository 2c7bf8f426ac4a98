//! The findings view and the risk kept with it: one row per finding, one per
//! asset, and one summary per tenant environment (its risk score, counts by
//! status and severity, and a daily risk history).
//!
//! Risk is kept incrementally (`docs/findings.md`): each event moves one finding's
//! score, which moves its asset's [`RiskAccumulator`], which moves the
//! tenant's. Only a `RiskScoreRecalculated` event recomputes from the rows.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use palisade_domain::finding::{FindingDetails, FindingEvent, Severity, Status};
use palisade_domain::ingestion::IngestionEvent;
use palisade_domain::risk::{finding_risk, RiskAccumulator, RiskLedgerEvent};
use palisade_domain::{Environment, EventMetadata, FindingId};
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// A ticket linked to a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketLink {
    pub system: String,
    pub ticket_id: String,
    pub linked_at: DateTime<Utc>,
}

/// A comment on a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingComment {
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// A finding as the view holds it: everything ingested plus its triage state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub asset_id: String,
    pub fingerprint: String,
    pub details: FindingDetails,
    pub status: Status,
    /// Why it is dismissed, accepted or reopened, when it is.
    pub status_reason: Option<String>,
    pub accepted_until: Option<DateTime<Utc>>,
    pub risk_score: f64,
    pub occurrences: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub assignee: Option<String>,
    pub tickets: Vec<TicketLink>,
    pub comments: Vec<FindingComment>,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl FindingRow {
    /// The row a `FindingIngested` event creates; None for any other event.
    pub fn ingested(
        event: &FindingEvent,
        metadata: &EventMetadata,
        version: i64,
    ) -> Option<FindingRow> {
        let FindingEvent::FindingIngested {
            finding_id,
            asset_id,
            details,
            fingerprint,
            observed_at,
        } = event
        else {
            return None;
        };
        let mut row = FindingRow {
            id: finding_id.to_string(),
            tenant_id: metadata.tenant_id.clone(),
            environment: metadata.environment,
            asset_id: asset_id.to_string(),
            fingerprint: fingerprint.clone(),
            details: (**details).clone(),
            status: Status::Open,
            status_reason: None,
            accepted_until: None,
            risk_score: 0.0,
            occurrences: 1,
            first_seen: *observed_at,
            last_seen: *observed_at,
            assignee: None,
            tickets: Vec::new(),
            comments: Vec::new(),
            version,
            created_at: metadata.occurred_at,
            updated_at: metadata.occurred_at,
        };
        row.rescore();
        Some(row)
    }

    /// Folds all of a finding's events (oldest first) into its row.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = (&'a FindingEvent, &'a EventMetadata, i64)>,
    ) -> Option<FindingRow> {
        let mut row: Option<FindingRow> = None;
        for (event, metadata, version) in events {
            match row.as_mut() {
                None => row = FindingRow::ingested(event, metadata, version),
                Some(row) => row.apply(event, metadata, version),
            }
        }
        row
    }

    fn rescore(&mut self) {
        self.risk_score = finding_risk(
            self.details.severity,
            self.details.likelihood,
            self.details.impact,
            self.status,
        );
    }

    /// Applies one later event (anything but the ingest).
    pub fn apply(&mut self, event: &FindingEvent, metadata: &EventMetadata, version: i64) {
        use FindingEvent as E;
        match event {
            E::FindingIngested { .. } => return,
            E::FindingReobserved { observed_at, .. } => {
                // One more: the event's own count leaves out the times an
                // ingestion job re-observed it (`seen_again`).
                self.seen_again(*observed_at);
            }
            E::FindingReportUpdated { details, .. } => {
                // Scanner-owned fields only: the product, asset, scope and
                // severity (its own event) stay.
                let d = &mut self.details;
                d.category = details.category.clone();
                d.title = details.title.clone();
                d.description = details.description.clone();
                d.location = details.location.clone();
                d.references = details.references.clone();
                d.cve = details.cve.clone();
                d.cwe = details.cwe.clone();
                d.cvss_score = details.cvss_score;
                d.tags = details.tags.clone();
            }
            E::FindingSeverityChanged { to, .. } => self.details.severity = *to,
            E::FindingConfirmed { .. } => self.set_status(Status::Confirmed, None),
            E::FindingDismissed { reason, .. } => {
                self.set_status(Status::Dismissed, Some(reason.clone()))
            }
            E::FindingRiskAccepted {
                reason, expires_at, ..
            } => {
                self.set_status(Status::RiskAccepted, Some(reason.clone()));
                self.accepted_until = Some(*expires_at);
            }
            E::FindingRiskAcceptanceExpired { .. } => {
                self.set_status(Status::Open, Some("risk acceptance expired".into()))
            }
            E::FindingRemediated { reason, .. } => {
                self.set_status(Status::Remediated, reason.clone())
            }
            E::FindingReopened { reason, .. } => self.set_status(Status::Open, reason.clone()),
            E::FindingAssigned { assignee, .. } => self.assignee = assignee.clone(),
            E::FindingTicketLinked {
                system,
                ticket_id,
                at,
            } => self.tickets.push(TicketLink {
                system: system.clone(),
                ticket_id: ticket_id.clone(),
                linked_at: *at,
            }),
            E::FindingCommented {
                comment_id,
                body,
                at,
            } => self.comments.push(FindingComment {
                id: comment_id.clone(),
                author: metadata.actor.clone(),
                body: body.clone(),
                created_at: *at,
            }),
        }
        self.version = version;
        self.updated_at = metadata.occurred_at;
        self.rescore();
    }

    /// Seen once more at `at`: by its own `FindingReobserved`, or listed
    /// in an ingestion job's `IngestionJobProgressed.reobserved`.
    pub fn seen_again(&mut self, at: DateTime<Utc>) {
        self.occurrences = self.occurrences.saturating_add(1);
        self.last_seen = self.last_seen.max(at);
    }

    fn set_status(&mut self, status: Status, reason: Option<String>) {
        self.status = status;
        self.status_reason = reason;
        if status != Status::RiskAccepted {
            self.accepted_until = None;
        }
    }

    /// The severity this finding adds to its asset's counts, if it counts.
    fn counted_severity(&self) -> Option<Severity> {
        self.status
            .counts_for_risk()
            .then_some(self.details.severity)
    }
}

/// Counts by severity, keyed by name (`critical` … `info`), zeros included.
pub type SeverityCounts = BTreeMap<String, i64>;

fn zero_counts<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, i64> {
    names.into_iter().map(|n| (n.to_string(), 0)).collect()
}

fn bump(counts: &mut BTreeMap<String, i64>, key: &str, by: i64) {
    *counts.entry(key.to_string()).or_insert(0) += by;
}

/// An asset, derived from the findings about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub identifier: String,
    pub risk: RiskAccumulator,
    pub risk_score: f64,
    /// Findings that carry risk: open or confirmed.
    pub open_findings: i64,
    /// Open or confirmed findings by severity.
    pub findings_by_severity: SeverityCounts,
    pub total_findings: i64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AssetRow {
    fn new(finding: &FindingRow) -> Self {
        AssetRow {
            id: finding.asset_id.clone(),
            tenant_id: finding.tenant_id.clone(),
            environment: finding.environment,
            identifier: finding.details.asset_identifier.clone(),
            risk: RiskAccumulator::default(),
            risk_score: 0.0,
            open_findings: 0,
            findings_by_severity: zero_counts(Severity::ALL.iter().map(|s| s.as_str())),
            total_findings: 0,
            first_seen: finding.first_seen,
            last_seen: finding.last_seen,
            updated_at: finding.updated_at,
        }
    }

    /// Adds (`sign` 1) or removes (`sign` -1) one finding's contribution.
    fn count(&mut self, finding: &FindingRow, sign: i64) {
        if sign > 0 {
            self.risk.add(finding.risk_score);
        } else {
            self.risk.remove(finding.risk_score);
        }
        if let Some(severity) = finding.counted_severity() {
            self.open_findings += sign;
            bump(&mut self.findings_by_severity, severity.as_str(), sign);
        }
        self.risk_score = self.risk.score();
    }
}

/// A tenant environment's totals: risk over its assets, and finding counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskSummaryRow {
    pub tenant_id: String,
    pub environment: Environment,
    pub risk: RiskAccumulator,
    pub risk_score: f64,
    pub total_findings: i64,
    /// By status, all statuses present.
    pub by_status: BTreeMap<String, i64>,
    /// Open or confirmed findings by severity.
    pub by_severity: SeverityCounts,
    pub total_assets: i64,
    /// Assets whose risk is above 0.
    pub assets_at_risk: i64,
    pub updated_at: DateTime<Utc>,
}

impl RiskSummaryRow {
    pub fn empty(tenant_id: &str, environment: Environment, at: DateTime<Utc>) -> Self {
        RiskSummaryRow {
            tenant_id: tenant_id.to_string(),
            environment,
            risk: RiskAccumulator::default(),
            risk_score: 0.0,
            total_findings: 0,
            by_status: zero_counts(Status::ALL.iter().map(|s| s.as_str())),
            by_severity: zero_counts(Severity::ALL.iter().map(|s| s.as_str())),
            total_assets: 0,
            assets_at_risk: 0,
            updated_at: at,
        }
    }

    fn count_finding(&mut self, finding: &FindingRow, sign: i64) {
        self.total_findings += sign;
        bump(&mut self.by_status, finding.status.as_str(), sign);
        if let Some(severity) = finding.counted_severity() {
            bump(&mut self.by_severity, severity.as_str(), sign);
        }
    }

    fn count_asset(&mut self, asset: &AssetRow, sign: i64) {
        if sign > 0 {
            self.risk.add(asset.risk_score);
        } else {
            self.risk.remove(asset.risk_score);
        }
        if asset.risk_score > 0.0 {
            self.assets_at_risk += sign;
        }
        self.risk_score = self.risk.score();
    }
}

/// The day a risk-history point belongs to (UTC).
fn history_day(at: DateTime<Utc>) -> NaiveDate {
    at.date_naive()
}

/// Storage of the findings view.
#[async_trait]
pub trait FindingsStore: Send {
    async fn get_finding(&mut self, id: &str) -> Result<Option<FindingRow>, StoreError>;
    /// Loads these findings, and these assets and the findings' assets, so
    /// that the `get_*` calls that follow need no query of their own.
    async fn prefetch(
        &mut self,
        _finding_ids: &[String],
        _asset_ids: &[String],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn save_finding(&mut self, finding: &FindingRow) -> Result<(), StoreError>;
    async fn get_asset(&mut self, id: &str) -> Result<Option<AssetRow>, StoreError>;
    async fn save_asset(&mut self, asset: &AssetRow) -> Result<(), StoreError>;
    /// Every asset of a tenant environment.
    async fn assets_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<AssetRow>, StoreError>;
    /// `(asset_id, risk_score, severity)` of every finding of a tenant
    /// environment that counts for risk.
    async fn counted_findings_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<(String, f64, Severity)>, StoreError>;
    async fn get_risk_summary(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<RiskSummaryRow>, StoreError>;
    /// Saves the summary and its score as the day's risk-history point.
    async fn save_risk_summary(
        &mut self,
        summary: &RiskSummaryRow,
        day: NaiveDate,
    ) -> Result<(), StoreError>;
}

/// Keeps the findings, assets and risk views.
pub struct FindingsProjection;

impl FindingsProjection {
    /// Moves one finding from `before` to `after` (either may be absent) in
    /// its asset and its tenant's summary.
    async fn account(
        store: &mut dyn FindingsStore,
        before: Option<&FindingRow>,
        after: &FindingRow,
    ) -> Result<(), ProjectionError> {
        let at = after.updated_at;
        let mut summary = store
            .get_risk_summary(&after.tenant_id, after.environment)
            .await?
            .unwrap_or_else(|| RiskSummaryRow::empty(&after.tenant_id, after.environment, at));
        let stored_asset = store.get_asset(&after.asset_id).await?;
        let is_new_asset = stored_asset.is_none();
        let mut asset = stored_asset.unwrap_or_else(|| AssetRow::new(after));
        if is_new_asset {
            summary.total_assets += 1;
        } else {
            summary.count_asset(&asset, -1);
        }
        if let Some(before) = before {
            asset.count(before, -1);
            summary.count_finding(before, -1);
        } else {
            asset.total_findings += 1;
        }
        asset.count(after, 1);
        summary.count_finding(after, 1);
        asset.first_seen = asset.first_seen.min(after.first_seen);
        asset.last_seen = asset.last_seen.max(after.last_seen);
        asset.updated_at = at;
        summary.count_asset(&asset, 1);
        summary.updated_at = at;
        store.save_asset(&asset).await?;
        store.save_risk_summary(&summary, history_day(at)).await?;
        Ok(())
    }

    /// Replaces the incremental scores of a tenant environment with ones
    /// computed from its findings (a `RiskScoreRecalculated` event).
    async fn recalculate(
        store: &mut dyn FindingsStore,
        metadata: &EventMetadata,
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        let (tenant_id, environment) = (metadata.tenant_id.as_str(), metadata.environment);
        let mut assets: BTreeMap<String, AssetRow> = store
            .assets_of(tenant_id, environment)
            .await?
            .into_iter()
            .map(|mut a| {
                a.risk = RiskAccumulator::default();
                a.open_findings = 0;
                a.findings_by_severity = zero_counts(Severity::ALL.iter().map(|s| s.as_str()));
                (a.id.clone(), a)
            })
            .collect();
        for (asset_id, risk, severity) in store.counted_findings_of(tenant_id, environment).await? {
            if let Some(asset) = assets.get_mut(&asset_id) {
                asset.risk.add(risk);
                asset.open_findings += 1;
                bump(&mut asset.findings_by_severity, severity.as_str(), 1);
            }
        }
        let mut summary = store
            .get_risk_summary(tenant_id, environment)
            .await?
            .unwrap_or_else(|| RiskSummaryRow::empty(tenant_id, environment, at));
        summary.risk = RiskAccumulator::default();
        summary.assets_at_risk = 0;
        summary.by_severity = zero_counts(Severity::ALL.iter().map(|s| s.as_str()));
        for asset in assets.values_mut() {
            asset.risk_score = asset.risk.score();
            store.save_asset(asset).await?;
            summary.count_asset(asset, 1);
            for (severity, n) in &asset.findings_by_severity {
                bump(&mut summary.by_severity, severity, *n);
            }
        }
        summary.total_assets = assets.len() as i64;
        summary.updated_at = at;
        store.save_risk_summary(&summary, history_day(at)).await?;
        Ok(())
    }
}

#[async_trait]
impl Projection for FindingsProjection {
    fn name(&self) -> &'static str {
        "findings"
    }

    /// 2: score columns hold the shown (two-decimal) score.
    fn version(&self) -> i64 {
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &["findings", "assets", "risk_summaries", "risk_history"]
    }

    /// Every event of a finding reads its asset, and every event after the
    /// first reads the finding: load them for the whole batch at once.
    async fn prepare(
        &self,
        batch: &[FeedEvent],
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        let mut finding_ids = BTreeSet::new();
        let mut asset_ids = BTreeSet::new();
        for event in batch.iter().filter(|e| e.aggregate_type == "IngestionJob") {
            finding_ids.extend(reobserved(event).map(str::to_string));
        }
        for event in batch.iter().filter(|e| e.aggregate_type == "Finding") {
            // A first event names its asset; later ones find it in the row.
            let asset = event
                .payload
                .get("FindingIngested")
                .and_then(|ingested| ingested.get("asset_id"))
                .and_then(serde_json::Value::as_str);
            match asset {
                Some(asset) => asset_ids.insert(asset.to_string()),
                None => finding_ids.insert(event.aggregate_id.clone()),
            };
        }
        let finding_ids: Vec<String> = finding_ids.into_iter().collect();
        let asset_ids: Vec<String> = asset_ids.into_iter().collect();
        if finding_ids.is_empty() && asset_ids.is_empty() {
            return Ok(());
        }
        let store = store.view::<dyn FindingsStore>()?;
        Ok(store.prefetch(&finding_ids, &asset_ids).await?)
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        let store = match event.aggregate_type.as_str() {
            "Finding" | "RiskLedger" => store.view::<dyn FindingsStore>()?,
            "IngestionJob" if reobserved(event).next().is_some() => {
                store.view::<dyn FindingsStore>()?
            }
            _ => return Ok(()),
        };
        match event.aggregate_type.as_str() {
            "Finding" => {
                let metadata = event.typed_metadata()?;
                let finding_event = event.decode::<FindingEvent>()?;
                if let Some(row) = FindingRow::ingested(&finding_event, &metadata, event.sequence) {
                    store.save_finding(&row).await?;
                    return Self::account(store, None, &row).await;
                }
                let Some(before) = store.get_finding(&event.aggregate_id).await? else {
                    return Err(ProjectionError::Failed(format!(
                        "event {} for finding {} that the view does not hold",
                        event.position, event.aggregate_id
                    )));
                };
                let mut after = before.clone();
                after.apply(&finding_event, &metadata, event.sequence);
                store.save_finding(&after).await?;
                Self::account(store, Some(&before), &after).await
            }
            "RiskLedger" => {
                let metadata = event.typed_metadata()?;
                let RiskLedgerEvent::RiskScoreRecalculated { at, .. } = event.decode()?;
                Self::recalculate(store, &metadata, at).await
            }
            "IngestionJob" => {
                let IngestionEvent::IngestionJobProgressed { reobserved, at, .. } =
                    event.decode()?
                else {
                    return Ok(());
                };
                Self::seen_again(store, event, &reobserved, at).await
            }
            _ => Ok(()),
        }
    }
}

impl FindingsProjection {
    /// An ingestion job saw these findings again: each gets one more
    /// occurrence and its `last_seen`, and so does its asset's `last_seen`.
    /// Nothing else moves (no risk, status or version: the finding's own
    /// events are unchanged).
    async fn seen_again(
        store: &mut dyn FindingsStore,
        event: &FeedEvent,
        reobserved: &[FindingId],
        at: DateTime<Utc>,
    ) -> Result<(), ProjectionError> {
        for id in reobserved {
            let id = id.to_string();
            let Some(mut finding) = store.get_finding(&id).await? else {
                return Err(ProjectionError::Failed(format!(
                    "event {} re-observes finding {id} that the view does not hold",
                    event.position
                )));
            };
            finding.seen_again(at);
            if let Some(mut asset) = store.get_asset(&finding.asset_id).await? {
                if asset.last_seen < finding.last_seen {
                    asset.last_seen = finding.last_seen;
                    store.save_asset(&asset).await?;
                }
            }
            store.save_finding(&finding).await?;
        }
        Ok(())
    }
}

/// The finding ids an `IngestionJobProgressed` event re-observes, read
/// from its payload without decoding the rest.
fn reobserved(event: &FeedEvent) -> impl Iterator<Item = &str> {
    event
        .payload
        .get("IngestionJobProgressed")
        .and_then(|p| p.get("reobserved"))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use palisade_domain::finding::FindingDetails;
    use palisade_domain::{ActorType, AssetId, FindingId};
    use uuid::Uuid;

    use super::*;
    use crate::memory::InMemory;
    use crate::FeedPosition;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn feed(id: u128, sequence: i64, event: &FindingEvent) -> FeedEvent {
        let metadata = EventMetadata {
            tenant_id: "ten_1".into(),
            environment: Environment::Live,
            actor: "owner".into(),
            actor_type: ActorType::ApiKey,
            api_key_id: None,
            request_id: None,
            correlation_id: None,
            causation_id: None,
            occurred_at: at(),
        };
        FeedEvent {
            position: FeedPosition {
                tx: 0,
                position: sequence,
            },
            aggregate_type: "Finding".into(),
            aggregate_id: FindingId::from_uuid(Uuid::from_u128(id)).to_string(),
            sequence,
            event_type: event_name(event),
            event_version: "1".into(),
            payload: serde_json::to_value(event).unwrap(),
            metadata: metadata.to_map(),
            recorded_at_ms: 0,
        }
    }

    fn event_name(event: &FindingEvent) -> String {
        serde_json::to_value(event)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone()
    }

    fn ingested(id: u128, title: &str, likelihood: f64, impact: f64) -> FindingEvent {
        FindingEvent::FindingIngested {
            finding_id: FindingId::from_uuid(Uuid::from_u128(id)),
            asset_id: AssetId::from_uuid(Uuid::from_u128(99)),
            details: Box::new(FindingDetails {
                product: "custom".into(),
                category: "vulnerability".into(),
                title: title.into(),
                description: String::new(),
                severity: Severity::High,
                asset_identifier: "app.example.com".into(),
                likelihood: Some(likelihood),
                impact: Some(impact),
                cve: None,
                cvss_score: None,
                cwe: None,
                location: None,
                references: vec![],
                tags: vec![],
                scope: None,
            }),
            fingerprint: title.into(),
            observed_at: at(),
        }
    }

    fn asset_score(store: &InMemory) -> f64 {
        store.assets.values().next().unwrap().risk_score
    }

    fn tenant_score(store: &InMemory) -> f64 {
        store.summaries.values().next().unwrap().risk_score
    }

    #[tokio::test]
    async fn the_seed_numbers_move_finding_asset_and_tenant() {
        let mut store = InMemory::default();
        let p = FindingsProjection;
        p.apply(
            &feed(1, 1, &ingested(1, "SQL Injection", 0.8, 0.9)),
            &mut store,
        )
        .await
        .unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            store.findings.values().next().unwrap().risk_score,
            72.0
        ));
        assert!(close(asset_score(&store), 72.0));
        p.apply(&feed(2, 1, &ingested(2, "XSS", 0.5, 0.5)), &mut store)
            .await
            .unwrap();
        assert!(close(asset_score(&store), 79.0));
        assert!(close(tenant_score(&store), 79.0));
        let dismissed = FindingEvent::FindingDismissed {
            reason: "false positive".into(),
            at: at(),
        };
        p.apply(&feed(1, 2, &dismissed), &mut store).await.unwrap();
        assert!(close(asset_score(&store), 25.0));
        assert!(close(tenant_score(&store), 25.0));
        let summary = store.summaries.values().next().unwrap();
        assert_eq!(
            (
                summary.total_findings,
                summary.by_status["dismissed"],
                summary.by_status["open"]
            ),
            (2, 1, 1)
        );
        let asset = store.assets.values().next().unwrap();
        assert_eq!((asset.open_findings, asset.total_findings), (1, 2));
        assert_eq!(asset.findings_by_severity["high"], 1);
    }

    #[tokio::test]
    async fn a_job_that_sees_a_finding_again_moves_only_its_occurrences_and_last_seen() {
        let mut store = InMemory::default();
        let p = FindingsProjection;
        p.apply(
            &feed(1, 1, &ingested(1, "SQL Injection", 0.8, 0.9)),
            &mut store,
        )
        .await
        .unwrap();
        let before = store.findings.values().next().unwrap().clone();
        let later = at() + chrono::Duration::hours(1);
        let progressed = IngestionEvent::IngestionJobProgressed {
            batch: palisade_domain::ingestion::JobCounts {
                items: 2,
                parsed: 2,
                deduplicated: 2,
                ..Default::default()
            },
            errors: vec![],
            bytes_read: 10,
            reobserved: vec![FindingId::from_uuid(Uuid::from_u128(1)); 2],
            at: later,
        };
        let mut event = feed(1, 3, &ingested(1, "unused", 0.0, 0.0));
        event.aggregate_type = "IngestionJob".into();
        event.aggregate_id = "job_1".into();
        event.event_type = "IngestionJobProgressed".into();
        event.payload = serde_json::to_value(&progressed).unwrap();
        p.apply(&event, &mut store).await.unwrap();
        let after = store.findings.values().next().unwrap();
        assert_eq!((after.occurrences, after.last_seen), (3, later));
        assert_eq!(
            (
                after.version,
                after.updated_at,
                after.risk_score,
                after.status
            ),
            (
                before.version,
                before.updated_at,
                before.risk_score,
                before.status
            )
        );
        assert_eq!(store.assets.values().next().unwrap().last_seen, later);
        // One the view lacks fails the batch, like a finding's own event.
        let mut stray = event.clone();
        stray.payload = serde_json::to_value(IngestionEvent::IngestionJobProgressed {
            batch: palisade_domain::ingestion::JobCounts {
                deduplicated: 1,
                ..Default::default()
            },
            errors: vec![],
            bytes_read: 10,
            reobserved: vec![FindingId::from_uuid(Uuid::from_u128(8))],
            at: later,
        })
        .unwrap();
        assert!(matches!(
            p.apply(&stray, &mut store).await,
            Err(ProjectionError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn an_event_for_a_finding_the_view_lacks_fails_the_batch() {
        let mut store = InMemory::default();
        let remediated = FindingEvent::FindingRemediated {
            reason: None,
            at: at(),
        };
        let error = FindingsProjection
            .apply(&feed(7, 2, &remediated), &mut store)
            .await;
        assert!(matches!(error, Err(ProjectionError::Failed(_))));
        assert!(store.assets.is_empty() && store.summaries.is_empty());
    }
}
