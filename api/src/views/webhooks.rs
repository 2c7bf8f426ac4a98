//! Webhooks as the API shows them (`/v1/webhooks` and the GraphQL fields
//! alike): endpoints (never a secret, except the new one in the answer
//! that made it), deliveries with their attempts, figures, and the
//! catalogue of message types with a sample each.

use async_graphql::SimpleObject;
use palisade_domain::webhook::WebhookEventType;
use palisade_infra::webhooks::outbox::{AttemptRow, DeliveryRow, DeliveryStats};
use palisade_projections::WebhookRow;
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;

/// Which messages of the subscribed types an endpoint receives.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookFilter")]
pub struct WebhookFilterView {
    pub severity: Vec<String>,
    pub product: Vec<String>,
}

/// A webhook endpoint.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "Webhook")]
pub struct WebhookView {
    #[schema(example = "whk_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub filter: WebhookFilterView,
    pub rate_limit_per_second: Option<u32>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// Why it is disabled: `manual`, `gone` (it answered 410) or `failing`
    /// (every attempt failed for 5 days).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<String>,
    /// After a rotation: until when the previous secret also signs.
    pub previous_secret_valid_until: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The endpoint's version, for audit correlation.
    pub version: i64,
}

impl From<WebhookRow> for WebhookView {
    fn from(row: WebhookRow) -> Self {
        let now = chrono::Utc::now();
        Self {
            id: row.id,
            url: row.spec.url,
            description: row.spec.description,
            event_types: row
                .spec
                .event_types
                .iter()
                .map(|t| t.as_str().to_string())
                .collect(),
            filter: WebhookFilterView {
                severity: row
                    .spec
                    .filter
                    .severity
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                product: row.spec.filter.product,
            },
            rate_limit_per_second: row.spec.rate_limit_per_second,
            status: row.status.as_str().to_string(),
            disabled_reason: row.disabled_by.map(|c| c.as_str().to_string()),
            disabled_at: row.disabled_at.as_ref().map(format_time),
            previous_secret_valid_until: row
                .previous_valid_until
                .filter(|until| *until > now)
                .as_ref()
                .map(format_time),
            created_at: format_time(&row.created_at),
            updated_at: format_time(&row.updated_at),
            version: row.version,
        }
    }
}

/// A new endpoint, or one whose secret was rotated, with the secret.
/// Its `Debug` hides the secret (it must not reach a log).
#[derive(Clone, Serialize, ToSchema)]
pub struct WebhookWithSecretView {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// `whsec_` and the base64 of 32 random bytes: shown in this answer
    /// only (an idempotent replay shows `[redacted]`).
    pub secret: String,
}

impl std::fmt::Debug for WebhookWithSecretView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWithSecretView")
            .field("webhook", &self.webhook)
            .field("secret", &"***")
            .finish()
    }
}

/// One attempt to deliver a message.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookAttempt")]
pub struct AttemptView {
    pub at: String,
    /// The answer's status; absent when there was none (refused, timed
    /// out, no connection).
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    pub error: Option<String>,
    /// The answer's body, at most 1 KiB.
    pub response_excerpt: Option<String>,
}

impl From<AttemptRow> for AttemptView {
    fn from(row: AttemptRow) -> Self {
        Self {
            at: format_time(&row.at),
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            error: row.error,
            response_excerpt: row.response_excerpt,
        }
    }
}

/// One message's delivery to an endpoint.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookDelivery")]
pub struct DeliveryView {
    #[schema(example = "dlv_3f1c0b7e9a2d4c6b8e0f1a2b3c4d5e6f")]
    pub id: String,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    pub event_type: String,
    /// When the event the message tells of happened.
    pub occurred_at: String,
    /// `pending`, `success` or `failed`.
    pub status: String,
    pub attempt_count: i64,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub attempts: Vec<AttemptView>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            message_id: row.message_id,
            event_type: row.event_type,
            occurred_at: format_time(&row.occurred_at),
            status: row.status.as_str().to_string(),
            attempt_count: row.attempt_count,
            next_attempt_at: row.next_attempt_at.as_ref().map(format_time),
            last_attempt_at: row.last_attempt_at.as_ref().map(format_time),
            attempts: row.attempts.into_iter().map(AttemptView::from).collect(),
        }
    }
}

/// An endpoint's figures.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookStats")]
pub struct WebhookStatsView {
    pub delivered: i64,
    pub failed: i64,
    pub pending: i64,
    pub last_success_at: Option<String>,
    /// The median duration of the last 1,000 successful attempts.
    pub p50_latency_ms: Option<i64>,
}

impl From<DeliveryStats> for WebhookStatsView {
    fn from(stats: DeliveryStats) -> Self {
        Self {
            delivered: stats.delivered,
            failed: stats.failed,
            pending: stats.pending,
            last_success_at: stats.last_success_at.as_ref().map(format_time),
            p50_latency_ms: stats.p50_latency_ms,
        }
    }
}

/// A test message was requested.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookTest")]
pub struct TestView {
    /// Its `webhook-id`; the delivery appears under `deliveries`.
    pub message_id: String,
}

/// A replay was requested.
#[derive(SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "WebhookReplay")]
pub struct ReplayView {
    /// How many deliveries are due again.
    pub deliveries: u64,
}

/// One message type of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventTypeView {
    #[schema(example = "finding.created")]
    pub name: String,
    pub description: String,
    /// A body of this type as sent.
    #[schema(value_type = Object)]
    pub sample: serde_json::Value,
}

impl From<WebhookEventType> for EventTypeView {
    fn from(event_type: WebhookEventType) -> Self {
        Self {
            name: event_type.as_str().to_string(),
            description: event_type.description().to_string(),
            sample: crate::webhooks::sample(event_type.as_str()),
        }
    }
}
