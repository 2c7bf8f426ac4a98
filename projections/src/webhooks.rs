//! The webhooks view (`docs/webhooks.md`): one row per endpoint, with its
//! spec, status, the ids (never the values) of its signing secrets, and
//! the feed position of its creation — the dispatcher gives an endpoint
//! the messages of later events only, however far the view is ahead of it
//! — and its last few routing changes ([`Routing`]: enabled or not, what
//! it subscribes to, from which feed position on), so that an event is
//! routed as the endpoint was when the event happened, not as it is when
//! a lagging dispatcher gets to it.
//!
//! Also here, beside the audit trail's summaries: which webhook message
//! type a domain event makes ([`message_type`]), the one mapping from the
//! event log to the catalogue.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::webhook::{
    DisableCause, WebhookEvent, WebhookEventType, WebhookSpec, WebhookStatus,
};
use palisade_domain::Environment;
use serde::{Deserialize, Serialize};

use crate::{FeedEvent, FeedPosition, Projection, ProjectionError, ReadModelStore, StoreError};

/// An endpoint as the view holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRow {
    pub id: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub spec: WebhookSpec,
    pub status: WebhookStatus,
    pub disabled_by: Option<DisableCause>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// The row of `webhook_secrets` that signs every message.
    pub secret_id: String,
    /// After a rotation: the previous secret, which also signs until
    /// `previous_valid_until`.
    pub previous_secret_id: Option<String>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where `WebhookCreated` is in the feed.
    pub created_in_feed: FeedPosition,
    /// The last [`ROUTING_CHANGES_KEPT`] routing states, oldest first (the
    /// first from its creation until more changes push it out).
    #[serde(default)]
    pub routing: Vec<Routing>,
    /// Whether older routing changes were dropped: an event before the
    /// oldest one kept is then routed nowhere (its state is not known).
    #[serde(default)]
    pub routing_truncated: bool,
    /// The aggregate's version: its last event's sequence.
    pub version: i64,
}

/// How many routing changes an endpoint keeps. A dispatcher that lags
/// behind more changes than this routes the events before the oldest kept
/// one nowhere.
pub const ROUTING_CHANGES_KEPT: usize = 16;

/// How an endpoint routes the events after a feed position: whether it
/// is enabled, and its spec (types and filter) then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The event that made this state (exclusive: it applies to later
    /// events).
    pub since: FeedPosition,
    pub enabled: bool,
    pub spec: WebhookSpec,
}

impl WebhookRow {
    /// How the endpoint routed an event at `position`: None before it
    /// existed.
    pub fn routing_at(&self, position: FeedPosition) -> Option<(bool, &WebhookSpec)> {
        if position <= self.created_in_feed {
            return None;
        }
        match self
            .routing
            .iter()
            .rev()
            .find(|state| state.since < position)
        {
            Some(state) => Some((state.enabled, &state.spec)),
            None if self.routing_truncated => None,
            // A row from before routing changes were kept.
            None => Some((self.status == WebhookStatus::Enabled, &self.spec)),
        }
    }

    /// Records the routing state from `since` on (after a change).
    fn routes_from(&mut self, since: FeedPosition) {
        self.routing.push(Routing {
            since,
            enabled: self.status == WebhookStatus::Enabled,
            spec: self.spec.clone(),
        });
        let extra = self.routing.len().saturating_sub(ROUTING_CHANGES_KEPT);
        if extra > 0 {
            self.routing.drain(..extra);
            self.routing_truncated = true;
        }
    }

    /// The secrets that sign a message sent at `at`: the current one, then
    /// the previous one while its grace lasts.
    pub fn signing_secret_ids(&self, at: DateTime<Utc>) -> Vec<&str> {
        let mut ids = vec![self.secret_id.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret_id, self.previous_valid_until)
        {
            if at < until {
                ids.push(previous.as_str());
            }
        }
        ids
    }
}

/// Storage of the webhooks view.
#[async_trait]
pub trait WebhooksStore: Send {
    async fn webhook(&mut self, id: &str) -> Result<Option<WebhookRow>, StoreError>;
    async fn save_webhook(&mut self, webhook: &WebhookRow) -> Result<(), StoreError>;
    async fn delete_webhook(&mut self, id: &str) -> Result<(), StoreError>;
}

/// Keeps the webhooks view.
pub struct WebhooksProjection;

impl WebhooksProjection {
    pub const NAME: &'static str = "webhooks";
}

#[async_trait]
impl Projection for WebhooksProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        // Rows from before the routing changes have none, and route as
        // their status and spec say (what they did then). A bump would
        // rebuild the view in place, which the senders would read half
        // built.
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["webhooks"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Webhook" {
            return Ok(());
        }
        let store = store.view::<dyn WebhooksStore>()?;
        let webhook_event = event.decode::<WebhookEvent>()?;
        if let WebhookEvent::WebhookCreated {
            webhook_id,
            spec,
            secret_id,
            at,
        } = webhook_event
        {
            let metadata = event.typed_metadata()?;
            let mut row = WebhookRow {
                id: webhook_id.to_string(),
                tenant_id: metadata.tenant_id,
                environment: metadata.environment,
                spec,
                status: WebhookStatus::Enabled,
                disabled_by: None,
                disabled_at: None,
                secret_id,
                previous_secret_id: None,
                previous_valid_until: None,
                created_at: at,
                updated_at: at,
                created_in_feed: event.position,
                routing: Vec::new(),
                routing_truncated: false,
                version: event.sequence,
            };
            row.routes_from(event.position);
            store.save_webhook(&row).await?;
            return Ok(());
        }
        let Some(mut row) = store.webhook(&event.aggregate_id).await? else {
            return Ok(());
        };
        row.version = event.sequence;
        match webhook_event {
            WebhookEvent::WebhookCreated { .. } => unreachable!("handled above"),
            WebhookEvent::WebhookUpdated { spec, at, .. } => {
                row.spec = spec;
                row.updated_at = at;
                row.routes_from(event.position);
            }
            WebhookEvent::WebhookSecretRotated {
                secret_id,
                previous_secret_id,
                previous_valid_until,
                at,
                ..
            } => {
                row.secret_id = secret_id;
                row.previous_secret_id = Some(previous_secret_id);
                row.previous_valid_until = Some(previous_valid_until);
                row.updated_at = at;
            }
            WebhookEvent::WebhookDisabled { cause, at } => {
                row.status = WebhookStatus::Disabled;
                row.disabled_by = Some(cause);
                row.disabled_at = Some(at);
                row.updated_at = at;
                row.routes_from(event.position);
            }
            WebhookEvent::WebhookEnabled { at } => {
                row.status = WebhookStatus::Enabled;
                row.disabled_by = None;
                row.disabled_at = None;
                row.updated_at = at;
                row.routes_from(event.position);
            }
            WebhookEvent::WebhookTestRequested { .. } => {}
            WebhookEvent::WebhookDeleted { .. } => {
                return Ok(store.delete_webhook(&row.id).await?);
            }
        }
        store.save_webhook(&row).await?;
        Ok(())
    }
}

/// The webhook message type that `event` makes, besides `audit.event`
/// (which every event makes): None for events no type tells of.
pub fn message_type(event: &FeedEvent) -> Option<WebhookEventType> {
    use WebhookEventType as T;
    Some(
        match (event.aggregate_type.as_str(), event.event_type.as_str()) {
            ("Finding", "FindingIngested") => T::FindingCreated,
            (
                "Finding",
                "FindingReportUpdated"
                | "FindingAssigned"
                | "FindingTicketLinked"
                | "FindingCommented",
            ) => T::FindingUpdated,
            ("Finding", "FindingSeverityChanged") => T::FindingSeverityChanged,
            (
                "Finding",
                "FindingConfirmed"
                | "FindingDismissed"
                | "FindingRiskAccepted"
                | "FindingRiskAcceptanceExpired",
            ) => T::FindingStatusChanged,
            ("Finding", "FindingReopened") => {
                let regression = event
                    .payload
                    .pointer("/FindingReopened/regression")
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                if regression {
                    T::FindingRegressed
                } else {
                    T::FindingStatusChanged
                }
            }
            ("Finding", "FindingRemediated") => T::FindingResolved,
            ("IngestionJob", "IngestionJobCompleted") => T::IngestionCompleted,
            ("IngestionJob", "IngestionJobFailed") => T::IngestionFailed,
            ("Key", "KeyCreated") => T::KeyCreated,
            ("Key", "KeyRotated") => T::KeyRotated,
            ("Key", "KeyDisabled") => T::KeyDisabled,
            ("Key", "KeyDeletionScheduled") => T::KeyDeletionScheduled,
            ("Key", "KeyDestroyed") => T::KeyDestroyed,
            (_, "KmsAlertTriggered") => T::KmsAlert,
            (_, "SecretVersionCreated") => T::SecretVersionCreated,
            (_, "SecretVersionsDestroyed") => T::SecretVersionDestroyed,
            (_, "LeakageIncidentReported") => T::SecretLeakDetected,
            (_, "AccessRequested") => T::AccessRequested,
            (_, "AccessApproved") => T::AccessApproved,
            (_, "AccessDenied") => T::AccessDenied,
            (_, "AccessRevoked") => T::AccessRevoked,
            (_, "AccessRequestExpired" | "AccessEnded") => T::AccessExpired,
            ("Tenant", "ApiKeyRevoked") => T::TenantApiKeyRevoked,
            _ => return None,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;

    fn event(aggregate_type: &str, event_type: &str, payload: serde_json::Value) -> FeedEvent {
        FeedEvent {
            position: FeedPosition { tx: 0, position: 1 },
            aggregate_type: aggregate_type.into(),
            aggregate_id: "x".into(),
            sequence: 1,
            event_type: event_type.into(),
            event_version: "1".into(),
            payload,
            metadata: HashMap::new(),
            recorded_at_ms: 0,
        }
    }

    #[test]
    fn given_domain_events_when_mapped_then_each_has_its_catalogue_type() {
        let cases = [
            (
                "Finding",
                "FindingIngested",
                json!({}),
                Some("finding.created"),
            ),
            ("Finding", "FindingReobserved", json!({}), None),
            (
                "Finding",
                "FindingCommented",
                json!({}),
                Some("finding.updated"),
            ),
            (
                "Finding",
                "FindingReopened",
                json!({"FindingReopened": {"regression": true}}),
                Some("finding.regressed"),
            ),
            (
                "Finding",
                "FindingReopened",
                json!({"FindingReopened": {"regression": false}}),
                Some("finding.status_changed"),
            ),
            (
                "Finding",
                "FindingRemediated",
                json!({}),
                Some("finding.resolved"),
            ),
            ("Key", "KeyUpdated", json!({}), None),
            (
                "Tenant",
                "ApiKeyRevoked",
                json!({}),
                Some("tenant.api_key_revoked"),
            ),
            ("Tenant", "ApiKeyIssued", json!({}), None),
            ("Webhook", "WebhookCreated", json!({}), None),
        ];
        for (aggregate_type, event_type, payload, expected) in cases {
            let got = message_type(&event(aggregate_type, event_type, payload));
            assert_eq!(
                got.map(|t| t.as_str()),
                expected,
                "{aggregate_type}/{event_type}"
            );
        }
    }

    #[test]
    fn given_every_catalogue_type_but_audit_then_some_event_makes_it() {
        let events = [
            ("Finding", "FindingIngested"),
            ("Finding", "FindingAssigned"),
            ("Finding", "FindingSeverityChanged"),
            ("Finding", "FindingConfirmed"),
            ("Finding", "FindingRemediated"),
            ("IngestionJob", "IngestionJobCompleted"),
            ("IngestionJob", "IngestionJobFailed"),
            ("Key", "KeyCreated"),
            ("Key", "KeyRotated"),
            ("Key", "KeyDisabled"),
            ("Key", "KeyDeletionScheduled"),
            ("Key", "KeyDestroyed"),
            ("KmsAlert", "KmsAlertTriggered"),
            ("Secret", "SecretVersionCreated"),
            ("Secret", "SecretVersionsDestroyed"),
            ("Secret", "LeakageIncidentReported"),
            ("AccessRequest", "AccessRequested"),
            ("AccessRequest", "AccessApproved"),
            ("AccessRequest", "AccessDenied"),
            ("AccessRequest", "AccessRevoked"),
            ("AccessRequest", "AccessEnded"),
            ("Tenant", "ApiKeyRevoked"),
        ];
        let mut made: Vec<WebhookEventType> = events
            .iter()
            .filter_map(|(a, e)| message_type(&event(a, e, json!({}))))
            .collect();
        made.push(WebhookEventType::FindingRegressed);
        made.push(WebhookEventType::AuditEvent);
        for t in WebhookEventType::ALL {
            assert!(made.contains(t), "no event makes {t}");
        }
    }

    fn at(position: i64) -> FeedPosition {
        FeedPosition { tx: 0, position }
    }

    fn created_at(position: i64) -> WebhookRow {
        let now = Utc::now();
        let mut row = WebhookRow {
            id: "wh".into(),
            tenant_id: "t".into(),
            environment: Environment::Live,
            spec: WebhookSpec {
                url: "http://example.com/hook".into(),
                description: None,
                event_types: Vec::new(),
                filter: Default::default(),
                rate_limit_per_second: None,
            },
            status: WebhookStatus::Enabled,
            disabled_by: None,
            disabled_at: None,
            secret_id: "whs_1".into(),
            previous_secret_id: None,
            previous_valid_until: None,
            created_at: now,
            updated_at: now,
            created_in_feed: at(position),
            routing: Vec::new(),
            routing_truncated: false,
            version: 1,
        };
        row.routes_from(at(position));
        row
    }

    #[test]
    fn given_an_endpoint_disabled_then_enabled_when_routing_earlier_events_then_each_sees_its_time()
    {
        let mut row = created_at(10);
        row.status = WebhookStatus::Disabled;
        row.routes_from(at(20));
        row.status = WebhookStatus::Enabled;
        row.spec.event_types = vec![WebhookEventType::FindingCreated];
        row.routes_from(at(30));

        let enabled_at = |p| row.routing_at(at(p)).map(|(enabled, _)| enabled);
        assert_eq!(enabled_at(5), None, "before it existed");
        assert_eq!(enabled_at(10), None, "its own creation");
        assert_eq!(enabled_at(15), Some(true));
        assert_eq!(enabled_at(20), Some(true), "the disabling event itself");
        assert_eq!(enabled_at(25), Some(false));
        assert_eq!(enabled_at(35), Some(true));
        let (_, spec) = row.routing_at(at(15)).unwrap();
        assert!(spec.event_types.is_empty(), "the spec of its time");
        let (_, spec) = row.routing_at(at(35)).unwrap();
        assert_eq!(spec.event_types, vec![WebhookEventType::FindingCreated]);
    }

    #[test]
    fn given_more_changes_than_kept_when_routing_an_older_event_then_it_goes_nowhere() {
        let mut row = created_at(1);
        for n in 0..(ROUTING_CHANGES_KEPT as i64 + 4) {
            row.status = if n % 2 == 0 {
                WebhookStatus::Disabled
            } else {
                WebhookStatus::Enabled
            };
            row.routes_from(at(100 + n));
        }
        assert_eq!(row.routing.len(), ROUTING_CHANGES_KEPT);
        assert_eq!(row.routing_at(at(2)), None, "its state then is not known");
        let oldest = row.routing[0].clone();
        assert_eq!(
            row.routing_at(at(oldest.since.position + 1))
                .map(|(enabled, _)| enabled),
            Some(oldest.enabled)
        );
    }

    #[test]
    fn given_a_row_without_routing_changes_when_routing_then_its_status_answers() {
        let mut row = created_at(1);
        row.routing.clear();
        row.status = WebhookStatus::Disabled;
        assert_eq!(row.routing_at(at(2)).map(|(e, _)| e), Some(false));
    }
}
