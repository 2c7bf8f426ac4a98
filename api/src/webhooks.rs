//! Webhook message bodies (an adapter, like REST and GraphQL): what the
//! dispatcher (`palisade_infra::webhooks`) stores and the senders post,
//! `{"type", "timestamp", "data"}`, with the data as the REST API shows the
//! object and `data.audit_seq` naming the event's audit record.
//!
//! - `finding.*`: the finding (`GET /v1/findings/{id}`);
//!   `ingestion.*`: the job; `key.*`: the key (never material).
//! - `audit.event`: the audit record (`GET /v1/audit/events`).
//! - Any other type: `{"id", "object", "event"}`, the event's fields as
//!   the audit trail shows them (redacted; no secret is ever in an event).
//! - `webhook.test`: `{"webhook_id", "message"}`.
//!
//! The object is read from its view when the batch is dispatched, which
//! may be after later changes to it: a message tells what happened (its
//! type, its timestamp) and shows the object as it then is.

use std::collections::HashMap;

use async_trait::async_trait;
use palisade_infra::readmodel::{
    audit_records_by_id, get_findings_by_ids, get_key, ingestion::get_ingestion_job, Partition,
};
use palisade_infra::webhooks::{message_id, Message, MessageSource, Wanted, TEST_EVENT_TYPE};
use palisade_infra::Store;
use palisade_projections::{audit_record_id, AuditRecord, FeedEvent, FindingRow};
use serde_json::{json, Map, Value};

use crate::views::audit::AuditEventView;
use crate::views::findings::FindingView;
use crate::views::ingestion::IngestionJobView;
use crate::views::keys::KeyView;

/// Renders the dispatcher's messages from the views.
pub struct Renderer {
    store: Store,
}

impl Renderer {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn partition_of(event: &FeedEvent) -> Option<Partition> {
    Some(Partition {
        tenant_id: event.metadata.get("tenant_id")?.clone(),
        environment: event.metadata.get("environment")?.parse().ok()?,
    })
}

fn object(value: impl serde::Serialize) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(value).map_err(|e| e.to_string())? {
        Value::Object(map) => Ok(map),
        other => Ok(Map::from_iter([("value".to_string(), other)])),
    }
}

/// What the audit record says of the event, for types with no view.
fn event_object(event: &FeedEvent, record: Option<&AuditRecord>) -> Map<String, Value> {
    Map::from_iter([
        ("id".to_string(), Value::String(event.aggregate_id.clone())),
        (
            "object".to_string(),
            Value::String(event.aggregate_type.clone()),
        ),
        (
            "event".to_string(),
            record.map(|r| r.data.clone()).unwrap_or(Value::Null),
        ),
    ])
}

#[async_trait]
impl MessageSource for Renderer {
    fn views(&self) -> &'static [&'static str] {
        &["findings", "audit", "ingestion", "keys"]
    }

    async fn render(
        &self,
        events: &[(&FeedEvent, Vec<Wanted>)],
    ) -> Result<Vec<Vec<Message>>, String> {
        let pool = self.store.read_pool();
        let failed = |what: &str, e: sqlx::Error| format!("reading {what}: {e}");
        // Every audit record and every finding the batch needs, at once.
        let record_ids: Vec<String> = events.iter().map(|(e, _)| audit_record_id(e)).collect();
        let records: HashMap<String, AuditRecord> = audit_records_by_id(pool, &record_ids)
            .await
            .map_err(|e| failed("audit records", e))?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut finding_ids: HashMap<Partition, Vec<&str>> = HashMap::new();
        for (event, wanted) in events {
            let needs_finding = event.aggregate_type == "Finding"
                && wanted.iter().any(|w| w.event_type.starts_with("finding."));
            if let (true, Some(partition)) = (needs_finding, partition_of(event)) {
                finding_ids
                    .entry(partition)
                    .or_default()
                    .push(&event.aggregate_id);
            }
        }
        let mut findings: HashMap<String, FindingRow> = HashMap::new();
        for (partition, ids) in &finding_ids {
            for row in get_findings_by_ids(pool, partition, ids)
                .await
                .map_err(|e| failed("findings", e))?
            {
                findings.insert(row.id.clone(), row);
            }
        }
        let mut answer = Vec::with_capacity(events.len());
        for ((event, wanted), record_id) in events.iter().zip(&record_ids) {
            let Some(partition) = partition_of(event) else {
                answer.push(Vec::new());
                continue;
            };
            let record = records.get(record_id);
            let occurred_at = event
                .metadata
                .get("occurred_at")
                .cloned()
                .unwrap_or_default();
            let timestamp = occurred_at
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap_or_else(|_| chrono::Utc::now());
            let mut messages = Vec::with_capacity(wanted.len());
            for want in wanted {
                let mut severity = None;
                let mut product = None;
                let mut data = if want.event_type == TEST_EVENT_TYPE {
                    Map::from_iter([
                        (
                            "webhook_id".to_string(),
                            Value::String(event.aggregate_id.clone()),
                        ),
                        (
                            "message".to_string(),
                            Value::String("A test message from Palisade".to_string()),
                        ),
                    ])
                } else if want.event_type == "audit.event" {
                    match record {
                        Some(record) => object(AuditEventView::from(record.clone()))?,
                        None => event_object(event, None),
                    }
                } else if let Some(finding) = findings.get(&event.aggregate_id) {
                    severity = Some(finding.details.severity);
                    product = Some(finding.details.product.clone());
                    object(FindingView::from(finding.clone()))?
                } else if event.aggregate_type == "IngestionJob" {
                    match get_ingestion_job(pool, &partition, &event.aggregate_id)
                        .await
                        .map_err(|e| failed("an ingestion job", e))?
                    {
                        Some(job) => object(IngestionJobView::from(job))?,
                        None => event_object(event, record),
                    }
                } else if event.aggregate_type == "Key" {
                    match get_key(pool, &partition, &event.aggregate_id)
                        .await
                        .map_err(|e| failed("a key", e))?
                    {
                        Some(key) => object(KeyView::from(key))?,
                        None => event_object(event, record),
                    }
                } else {
                    event_object(event, record)
                };
                data.insert(
                    "audit_seq".to_string(),
                    record.map(|r| json!(r.seq)).unwrap_or(Value::Null),
                );
                let payload = json!({
                    "type": want.event_type,
                    "timestamp": crate::views::format_time(&timestamp),
                    "data": data,
                });
                messages.push(Message {
                    message_id: match (
                        &want.only_webhook,
                        event.payload.pointer("/WebhookTestRequested/message_id"),
                    ) {
                        (Some(_), Some(Value::String(id))) => id.clone(),
                        _ => message_id(event, &want.event_type),
                    },
                    event_type: want.event_type.clone(),
                    partition: partition.clone(),
                    position: event.position,
                    occurred_at: timestamp,
                    payload: payload.to_string(),
                    severity,
                    product,
                    only_webhook: want.only_webhook.clone(),
                });
            }
            answer.push(messages);
        }
        Ok(answer)
    }
}

/// A sample body of a message type (`GET /v1/webhooks/event-types`).
pub fn sample(event_type: &str) -> Value {
    let data = if event_type.starts_with("finding.") {
        json!({
            "id": "fnd_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c",
            "title": "SQL injection in /login",
            "severity": "high",
            "status": "open",
            "product": "ZAP",
            "asset_id": "ast_0190f0e4c3a87d2f9b1c2d3e4f5a6b7d",
            "risk_score": 72.5,
            "first_seen": "2026-12-01T09:30:00.000Z",
            "last_seen": "2026-12-01T09:30:00.000Z",
            "version": 1,
            "audit_seq": 42
        })
    } else if event_type.starts_with("ingestion.") {
        json!({
            "id": "ing_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c",
            "format": "sarif",
            "status": if event_type == "ingestion.failed" { "failed" } else { "completed" },
            "audit_seq": 42
        })
    } else if event_type.starts_with("key.") {
        json!({
            "id": "key_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c",
            "name": "payments",
            "algorithm": "aes-256-gcm",
            "state": "enabled",
            "latest_version": 2,
            "audit_seq": 42
        })
    } else if event_type == "audit.event" {
        json!({
            "seq": 42,
            "id": "aud_3f1c0b7e9a2d4c6b8e0f1a2b3c4d5e6f",
            "occurred_at": "2026-12-01T09:30:00.000Z",
            "actor": "ci-bot",
            "aggregate_type": "Finding",
            "aggregate_id": "fnd_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c",
            "event_type": "FindingIngested",
            "summary": "Finding 'SQL injection in /login' (high) found on app.example.com",
            "hash": "9c1f…",
            "audit_seq": 42
        })
    } else if event_type == TEST_EVENT_TYPE {
        json!({
            "webhook_id": "whk_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c",
            "message": "A test message from Palisade",
            "audit_seq": 42
        })
    } else {
        json!({
            "id": "the aggregate's id",
            "object": "the aggregate type, e.g. AccessRequest",
            "event": {"the event's fields": "as the audit trail shows them"},
            "audit_seq": 42
        })
    };
    json!({
        "type": event_type,
        "timestamp": "2026-12-01T09:30:00.000Z",
        "data": data,
    })
}
