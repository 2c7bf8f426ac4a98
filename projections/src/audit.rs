//! The audit trail: every event of every aggregate as an [`AuditRecord`],
//! redacted and hash-chained per tenant environment.
//!
//! - `seq` is dense per `(tenant_id, environment)`: 1, 2, 3 … in feed order.
//! - `data` is the event's payload after [`Redactor::redact`]: values that
//!   must never be stored (API-key values, key material, secret values) are
//!   replaced by `"[redacted]"`; values that identify but must not be
//!   readable become `"hmac-sha256:<hex>"` under a server key, as Vault's
//!   audit devices do, so an operator holding a value can still find it.
//! - `hash = SHA-256(prev_hash ‖ canonical JSON of the record without
//!   hash)`, hex; the first record's `prev_hash` is [`GENESIS_HASH`].
//!   [`AuditRecord::compute_hash`] is the one definition, used both to write
//!   the chain and to verify it.

use async_trait::async_trait;
use chrono::SecondsFormat;
use hmac::{Hmac, KeyInit, Mac};
use palisade_domain::finding::FindingEvent;
use palisade_domain::key::{KeyEvent, KeyUsageEvent};
use palisade_domain::risk::RiskLedgerEvent;
use palisade_domain::tenant::TenantEvent;
use palisade_domain::{ActorType, Environment};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{FeedEvent, Projection, ProjectionError, ReadModelStore, StoreError};

/// The `prev_hash` of each chain's first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What replaces a value that must never be stored.
pub const REDACTED: &str = "[redacted]";

/// Fields whose values never reach the audit trail, at any depth.
const REMOVED_FIELDS: &[&str] = &[
    "api_key",
    "ciphertext",
    "key_material",
    "material",
    "password",
    "plaintext",
    "private_key",
    "secret",
    "secret_value",
    "token",
    "value",
];

/// Fields that identify but must not be readable: HMAC'd, at any depth.
const HASHED_FIELDS: &[&str] = &["email", "key_hash"];

/// One audit record, as stored, served over REST and SSE, and hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub id: String,
    /// RFC 3339, UTC, microseconds: fixed width, so it sorts as text and
    /// hashes the same after a round trip through any store.
    pub occurred_at: String,
    pub tenant_id: String,
    pub environment: Environment,
    pub actor: String,
    pub actor_type: ActorType,
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub summary: String,
    pub data: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    /// `SHA-256(prev_hash ‖ canonical JSON of every field but hash)`, hex.
    pub fn compute_hash(&self) -> String {
        let mut fields = match serde_json::to_value(self) {
            Ok(Value::Object(fields)) => fields,
            // A struct of strings, numbers and JSON always serialises to an object.
            _ => serde_json::Map::new(),
        };
        fields.remove("hash");
        let mut canonical = String::new();
        write_canonical(&Value::Object(fields), &mut canonical);
        let mut digest = Sha256::new();
        digest.update(self.prev_hash.as_bytes());
        digest.update(canonical.as_bytes());
        hex::encode(digest.finalize())
    }
}

/// Canonical JSON: object keys sorted by their bytes, no whitespace,
/// strings and numbers as serde_json writes them. Deterministic for any
/// value, and stable across a parse and re-serialisation.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&fields[key], out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Redacts event data with a server key (derive it from the root key).
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(***)")
    }
}

impl Redactor {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// `hmac-sha256:<hex>` of a value: what the audit trail shows instead.
    pub fn hmac(&self, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        format!("hmac-sha256:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// The value with every removed field replaced and every identifying
    /// field HMAC'd, at any depth.
    pub fn redact(&self, value: Value) -> Value {
        match value {
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(name, value)| {
                        let value = if REMOVED_FIELDS.contains(&name.as_str()) {
                            Value::String(REDACTED.to_string())
                        } else if HASHED_FIELDS.contains(&name.as_str()) {
                            self.hash_value(&value)
                        } else {
                            self.redact(value)
                        };
                        (name, value)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|v| self.redact(v)).collect())
            }
            scalar => scalar,
        }
    }

    fn hash_value(&self, value: &Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::String(text) => Value::String(self.hmac(text)),
            other => Value::String(self.hmac(&canonical_json(other))),
        }
    }
}

/// The last record of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub hash: String,
}

/// Storage of the audit trail.
#[async_trait]
pub trait AuditStore: Send {
    /// The last record of a tenant environment's chain, if any.
    async fn audit_head(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<AuditHead>, StoreError>;
    async fn append_audit_record(&mut self, record: &AuditRecord) -> Result<(), StoreError>;
}

/// Keeps the audit trail.
pub struct AuditProjection {
    redactor: Redactor,
}

impl AuditProjection {
    pub const NAME: &'static str = "audit";

    pub fn new(redactor: Redactor) -> Self {
        Self { redactor }
    }
}

/// A stable id for the event at `sequence` of an aggregate.
/// The id of the audit record of `event` (`aud_…`): the same whenever the
/// event is projected.
pub fn record_id(event: &FeedEvent) -> String {
    let mut digest = Sha256::new();
    for part in [
        "audit",
        &event.aggregate_type,
        &event.aggregate_id,
        &event.sequence.to_string(),
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    format!("aud_{}", hex::encode(&digest.finalize()[..16]))
}

/// The event's fields: its payload without the enum's variant wrapper.
fn event_data(event: &FeedEvent) -> Value {
    match &event.payload {
        Value::Object(wrapper) if wrapper.len() == 1 => match wrapper.get(&event.event_type) {
            Some(inner) => inner.clone(),
            None => event.payload.clone(),
        },
        other => other.clone(),
    }
}

fn describe(event: &FeedEvent) -> Result<String, ProjectionError> {
    Ok(match event.aggregate_type.as_str() {
        "Tenant" => crate::summary::tenant(&event.decode::<TenantEvent>()?),
        "Finding" => crate::summary::finding(&event.decode::<FindingEvent>()?, &event.aggregate_id),
        "RiskLedger" => crate::summary::risk_ledger(&event.decode::<RiskLedgerEvent>()?),
        "Key" => crate::summary::key(&event.decode::<KeyEvent>()?, &event.aggregate_id),
        "KeyUsage" => crate::summary::key_usage(&event.decode::<KeyUsageEvent>()?),
        "KmsAlertRule" => crate::summary::kms_alert_rule(&event.decode()?),
        "KmsAlert" => crate::summary::kms_alert(&event.decode()?),
        "KmsMigrationPlan" => crate::summary::kms_migration_plan(&event.decode()?),
        "Secret" => crate::summary::secret(&event.decode()?, &event.aggregate_id),
        "SecretRead" => crate::summary::secret_read(&event.decode()?),
        "LeakageIncident" => crate::summary::incident(&event.decode()?),
        "AccessPolicy" => crate::summary::access_policy(&event.decode()?),
        "AccessRequest" => crate::summary::access_request(&event.decode()?),
        "Webhook" => crate::summary::webhook(&event.decode()?, &event.aggregate_id),
        other => format!("{} on {other} {}", event.event_type, event.aggregate_id),
    })
}

#[async_trait]
impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["audit_events"]
    }

    async fn apply(
        &self,
        event: &FeedEvent,
        store: &mut dyn ReadModelStore,
    ) -> Result<(), ProjectionError> {
        let store = store.view::<dyn AuditStore>()?;
        let metadata = event.typed_metadata()?;
        let head = store
            .audit_head(&metadata.tenant_id, metadata.environment)
            .await?;
        let (seq, prev_hash) = match head {
            Some(head) => (head.seq + 1, head.hash),
            None => (1, GENESIS_HASH.to_string()),
        };
        let mut record = AuditRecord {
            seq,
            id: record_id(event),
            occurred_at: metadata
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            tenant_id: metadata.tenant_id,
            environment: metadata.environment,
            actor: metadata.actor,
            actor_type: metadata.actor_type,
            api_key_id: metadata.api_key_id,
            request_id: metadata.request_id,
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            event_type: event.event_type.clone(),
            summary: describe(event)?,
            data: self.redactor.redact(event_data(event)),
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        store.append_audit_record(&record).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use palisade_domain::TenantId;
    use serde_json::json;

    use super::*;

    fn redactor() -> Redactor {
        Redactor::new([7; 32])
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_without_whitespace() {
        let value = json!({"b": 1, "a": {"d": [true, null, "x"], "c": 2.5}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":2.5,"d":[true,null,"x"]},"b":1}"#
        );
        let reparsed: Value = serde_json::from_str(&canonical_json(&value)).unwrap();
        assert_eq!(canonical_json(&reparsed), canonical_json(&value));
    }

    #[test]
    fn secrets_are_removed_and_identifiers_hmacd_at_any_depth() {
        let data = json!({
            "key_hash": "abc",
            "name": "ci",
            "nested": [{"value": "s3cret", "email": "a@b.c", "keep": 1}],
        });
        let redacted = redactor().redact(data);
        assert_eq!(redacted["key_hash"], json!(redactor().hmac("abc")));
        assert_eq!(redacted["name"], json!("ci"));
        assert_eq!(redacted["nested"][0]["value"], json!(REDACTED));
        assert_eq!(
            redacted["nested"][0]["email"],
            json!(redactor().hmac("a@b.c"))
        );
        assert_eq!(redacted["nested"][0]["keep"], json!(1));
        assert!(!redacted.to_string().contains("s3cret"));
        assert_ne!(Redactor::new([8; 32]).hmac("abc"), redactor().hmac("abc"));
    }

    fn record(seq: i64, prev_hash: &str) -> AuditRecord {
        let mut record = AuditRecord {
            seq,
            id: format!("aud_{seq}"),
            occurred_at: "2026-11-23T10:00:00.000000Z".to_string(),
            tenant_id: "ten_1".to_string(),
            environment: Environment::Live,
            actor: "ci".to_string(),
            actor_type: ActorType::ApiKey,
            api_key_id: Some("apk_1".to_string()),
            request_id: None,
            aggregate_type: "Finding".to_string(),
            aggregate_id: "fnd_1".to_string(),
            event_type: "FindingConfirmed".to_string(),
            summary: "Finding fnd_1 confirmed".to_string(),
            data: json!({"confirmed_at": "2026-11-23T10:00:00Z"}),
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let first = record(1, GENESIS_HASH);
        let second = record(2, &first.hash);
        assert_eq!(first.hash.len(), 64);
        assert_ne!(first.hash, second.hash);
        let mut tampered = second.clone();
        tampered.actor = "someone else".to_string();
        assert_ne!(tampered.compute_hash(), second.hash);
        let mut relinked = second.clone();
        relinked.prev_hash = GENESIS_HASH.to_string();
        assert_ne!(relinked.compute_hash(), second.hash);
        // The stored hash itself is not part of what is hashed.
        let mut rehashed = second.clone();
        rehashed.hash = "x".to_string();
        assert_eq!(rehashed.compute_hash(), second.hash);
    }

    fn issued(tenant: TenantId, key: u128) -> TenantEvent {
        TenantEvent::ApiKeyIssued {
            tenant_id: tenant,
            key_id: palisade_domain::ApiKeyId::from_uuid(uuid::Uuid::from_u128(key)),
            name: "ci".into(),
            principal: "ci-bot".into(),
            scopes: vec![palisade_domain::Scope::AuditRead],
            environment: Environment::Live,
            prefix: "pal_live_ab".into(),
            key_hash: "the-keyed-hash".into(),
            expires_at: None,
            issued_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn feed_event(tenant: TenantId, sequence: i64, event: &TenantEvent) -> FeedEvent {
        let metadata = palisade_domain::EventMetadata {
            tenant_id: tenant.to_string(),
            environment: Environment::Live,
            actor: "admin".into(),
            actor_type: ActorType::Admin,
            api_key_id: None,
            request_id: Some("req_1".into()),
            correlation_id: None,
            causation_id: None,
            occurred_at: chrono::DateTime::UNIX_EPOCH,
        };
        FeedEvent {
            position: crate::FeedPosition {
                tx: 0,
                position: sequence,
            },
            aggregate_type: "Tenant".into(),
            aggregate_id: tenant.to_string(),
            sequence,
            event_type: "ApiKeyIssued".into(),
            event_version: "1".into(),
            payload: serde_json::to_value(event).unwrap(),
            metadata: metadata.to_map(),
            recorded_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn each_tenant_environment_gets_its_own_dense_verifiable_chain() {
        let (a, b) = (
            TenantId::from_uuid(uuid::Uuid::from_u128(1)),
            TenantId::from_uuid(uuid::Uuid::from_u128(2)),
        );
        let projection = AuditProjection::new(redactor());
        let mut store = crate::memory::InMemory::default();
        let events = [
            feed_event(a, 1, &issued(a, 10)),
            feed_event(b, 1, &issued(b, 20)),
            feed_event(a, 2, &issued(a, 11)),
        ];
        for event in &events {
            projection.apply(event, &mut store).await.unwrap();
        }
        let chain = |tenant: TenantId| -> Vec<AuditRecord> {
            let mut records: Vec<_> = store
                .audit
                .iter()
                .filter(|r| r.tenant_id == tenant.to_string())
                .cloned()
                .collect();
            records.sort_by_key(|r| r.seq);
            records
        };
        let (chain_a, chain_b) = (chain(a), chain(b));
        assert_eq!(chain_a.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(chain_b.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(chain_a[0].prev_hash, GENESIS_HASH);
        assert_eq!(chain_a[1].prev_hash, chain_a[0].hash);
        for record in chain_a.iter().chain(&chain_b) {
            assert_eq!(record.compute_hash(), record.hash);
        }
        let first = &chain_a[0];
        assert_eq!(first.event_type, "ApiKeyIssued");
        assert_eq!(
            first.data["key_hash"],
            json!(redactor().hmac("the-keyed-hash"))
        );
        assert_eq!(first.data["name"], json!("ci"));
        assert_eq!(first.request_id.as_deref(), Some("req_1"));
        assert!(
            first.summary.contains("issued to ci-bot"),
            "{}",
            first.summary
        );
        // Replaying the same events gives the same records (rebuilds are stable).
        let mut again = crate::memory::InMemory::default();
        for event in &events {
            projection.apply(event, &mut again).await.unwrap();
        }
        assert_eq!(again.audit, store.audit);
    }
}
