//! The timeline: one entry per event, newest first when read, for a tenant
//! environment, an asset or a finding. Later aggregates add their events
//! here by teaching [`TimelineProjection`] to summarise them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::finding::FindingEvent;
use palisade_domain::key::KeyEvent;
use palisade_domain::risk::RiskLedgerEvent;
use palisade_domain::{ActorType, Environment};
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// `<aggregate_id>:<sequence>`: unique, stable across rebuilds.
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub actor_type: ActorType,
    pub summary: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// The event's sequence within its aggregate: orders one command's events.
    #[serde(default)]
    pub sequence: i64,
    pub finding_id: Option<String>,
    pub asset_id: Option<String>,
}

/// What the timeline remembers about a finding to describe its later events.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineSubject {
    pub asset_id: String,
    pub title: String,
}

/// Storage of the timeline.
#[async_trait]
pub trait TimelineStore: Send {
    async fn insert_timeline_entry(&mut self, entry: &TimelineEntry) -> Result<(), StoreError>;
    /// The asset and title of a finding the timeline has seen ingested.
    async fn timeline_subject(
        &mut self,
        finding_id: &str,
    ) -> Result<Option<TimelineSubject>, StoreError>;
    async fn save_timeline_subject(
        &mut self,
        finding_id: &str,
        subject: &TimelineSubject,
    ) -> Result<(), StoreError>;
}

/// Keeps the timeline.
pub struct TimelineProjection;

#[async_trait]
impl Projection for TimelineProjection {
    fn name(&self) -> &'static str {
        "timeline"
    }

    /// 2: entries carry their sequence (ordering within one command).
    fn version(&self) -> i64 {
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        &["timeline", "timeline_subjects"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        let store = match event.aggregate_type.as_str() {
            // Value reads are in the audit trail, not on the timeline (one
            // entry per read would bury everything else).
            "Finding" | "RiskLedger" | "Key" | "Secret" | "LeakageIncident" | "AccessPolicy"
            | "AccessRequest" => store.view::<dyn TimelineStore>()?,
            _ => return Ok(()),
        };
        let (summary, finding_id, asset_id) = match event.aggregate_type.as_str() {
            "Finding" => {
                let finding_event = event.decode::<FindingEvent>()?;
                let subject = match &finding_event {
                    FindingEvent::FindingIngested {
                        asset_id, details, ..
                    } => {
                        let subject = TimelineSubject {
                            asset_id: asset_id.to_string(),
                            title: details.title.clone(),
                        };
                        store
                            .save_timeline_subject(&event.aggregate_id, &subject)
                            .await?;
                        subject
                    }
                    _ => store
                        .timeline_subject(&event.aggregate_id)
                        .await?
                        .unwrap_or_else(|| TimelineSubject {
                            asset_id: String::new(),
                            title: event.aggregate_id.clone(),
                        }),
                };
                (
                    crate::summary::finding(&finding_event, &format!("'{}'", subject.title)),
                    Some(event.aggregate_id.clone()),
                    Some(subject.asset_id).filter(|a| !a.is_empty()),
                )
            }
            "RiskLedger" => {
                let ledger_event: RiskLedgerEvent = event.decode()?;
                (crate::summary::risk_ledger(&ledger_event), None, None)
            }
            "Key" => {
                let key_event: KeyEvent = event.decode()?;
                (
                    crate::summary::key(&key_event, &event.aggregate_id),
                    None,
                    None,
                )
            }
            "Secret" => (
                crate::summary::secret(&event.decode()?, &event.aggregate_id),
                None,
                None,
            ),
            "LeakageIncident" => (crate::summary::incident(&event.decode()?), None, None),
            "AccessPolicy" => (crate::summary::access_policy(&event.decode()?), None, None),
            "AccessRequest" => (crate::summary::access_request(&event.decode()?), None, None),
            _ => return Ok(()),
        };
        let metadata = event.typed_metadata()?;
        let entry = TimelineEntry {
            id: format!("{}:{}", event.aggregate_id, event.sequence),
            tenant_id: metadata.tenant_id,
            environment: metadata.environment,
            event_type: event.event_type.clone(),
            occurred_at: metadata.occurred_at,
            actor: metadata.actor,
            actor_type: metadata.actor_type,
            summary,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            finding_id,
            asset_id,
        };
        store.insert_timeline_entry(&entry).await?;
        Ok(())
    }
}
