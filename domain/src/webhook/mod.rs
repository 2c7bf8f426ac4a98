//! The Webhook aggregate: one endpoint that a tenant subscribes to events,
//! with its URL, event types, filter, rate limit, signing secrets (by
//! reference only) and whether it is enabled (`docs/webhooks.md`).
//!
//! Events never carry a signing secret: the application layer seals it in
//! its own table and the events name the row (`secret_id`). What an
//! endpoint may point at is [`address`]'s to judge.

pub mod address;
mod aggregate;

pub use address::{check_url, refusal, UrlProblem, MAX_URL_CHARS};
pub use aggregate::{
    DisableCause, Webhook, WebhookCommand, WebhookError, WebhookEvent, WebhookFilter, WebhookSpec,
    WebhookStatus, WebhookUpdate, EVENT_TYPES, MAX_RATE_LIMIT_PER_SECOND, SECRET_GRACE_HOURS,
};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! catalogue {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// What a webhook subscribes to: the catalogue of message types
        /// (the README lists them; `GET /v1/webhooks/event-types` shows a
        /// sample of each).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum WebhookEventType {
            $(#[doc = $doc] $variant,)*
        }

        impl WebhookEventType {
            /// Every type, in the catalogue's order.
            pub const ALL: &'static [WebhookEventType] = &[$(WebhookEventType::$variant,)*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(WebhookEventType::$variant => $name,)*
                }
            }

            /// What the type means, one line.
            pub fn description(&self) -> &'static str {
                match self {
                    $(WebhookEventType::$variant => $doc,)*
                }
            }
        }
    };
}

catalogue! {
    FindingCreated => "finding.created", "A finding was ingested for the first time.";
    FindingUpdated => "finding.updated", "A finding's report fields, assignee, ticket or comments changed.";
    FindingSeverityChanged => "finding.severity_changed", "A finding's severity changed.";
    FindingStatusChanged => "finding.status_changed", "A finding was confirmed, dismissed, risk-accepted or reopened.";
    FindingResolved => "finding.resolved", "A finding was remediated.";
    FindingRegressed => "finding.regressed", "A remediated finding was seen again.";
    IngestionCompleted => "ingestion.completed", "A scanner report's ingestion job completed.";
    IngestionFailed => "ingestion.failed", "A scanner report's ingestion job failed.";
    KeyCreated => "key.created", "A KMS key was created.";
    KeyRotated => "key.rotated", "A KMS key got a new version.";
    KeyDisabled => "key.disabled", "A KMS key was disabled.";
    KeyDeletionScheduled => "key.deletion_scheduled", "A KMS key was scheduled for deletion.";
    KeyDestroyed => "key.destroyed", "A KMS key's material was destroyed.";
    KmsAlert => "kms.alert", "A KMS alert rule raised an alert.";
    SecretVersionCreated => "secret.version_created", "A secret got a new version (never its value).";
    SecretVersionDestroyed => "secret.version_destroyed", "A secret version's value was destroyed.";
    SecretLeakDetected => "secret.leak_detected", "A leak of a secret was reported.";
    AccessRequested => "access.requested", "Just-in-time access was requested.";
    AccessApproved => "access.approved", "An access request was approved (a grant began).";
    AccessDenied => "access.denied", "An access request was denied.";
    AccessRevoked => "access.revoked", "A grant was revoked.";
    AccessExpired => "access.expired", "A request or grant expired.";
    TenantApiKeyRevoked => "tenant.api_key_revoked", "An API key of the tenant was revoked.";
    AuditEvent => "audit.event", "Any audit record (audit streaming): every event, as the audit trail shows it.";
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WebhookEventType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!("unknown event type '{s}'; GET /v1/webhooks/event-types lists them")
            })
    }
}

impl Serialize for WebhookEventType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for WebhookEventType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// The type of the message that `POST /v1/webhooks/{id}/test` sends; not
/// subscribable, sent to its endpoint whatever it subscribes to.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_the_issues_types_each_once_and_round_trips() {
        assert_eq!(WebhookEventType::ALL.len(), 24);
        let mut names: Vec<_> = WebhookEventType::ALL.iter().map(|t| t.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 24);
        for t in WebhookEventType::ALL {
            assert_eq!(t.as_str().parse::<WebhookEventType>().unwrap(), *t);
            let json = serde_json::to_string(t).unwrap();
            assert_eq!(serde_json::from_str::<WebhookEventType>(&json).unwrap(), *t);
        }
        assert!("webhook.test".parse::<WebhookEventType>().is_err());
    }
}
