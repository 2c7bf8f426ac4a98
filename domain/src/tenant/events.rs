use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::Plan;
use crate::{ApiKeyId, Environment, Scope, TenantId};

/// What happened to a tenant. Past tense, versioned, never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TenantEvent {
    TenantCreated {
        tenant_id: TenantId,
        name: String,
        plan: Plan,
        created_at: DateTime<Utc>,
    },
    TenantPlanChanged {
        tenant_id: TenantId,
        from: Plan,
        to: Plan,
        changed_at: DateTime<Utc>,
    },
    TenantSuspended {
        tenant_id: TenantId,
        reason: Option<String>,
        suspended_at: DateTime<Utc>,
    },
    TenantReactivated {
        tenant_id: TenantId,
        reactivated_at: DateTime<Utc>,
    },
    /// Carries the key's keyed hash and display prefix, never its value.
    ApiKeyIssued {
        tenant_id: TenantId,
        key_id: ApiKeyId,
        name: String,
        principal: String,
        scopes: Vec<Scope>,
        environment: Environment,
        prefix: String,
        key_hash: String,
        expires_at: Option<DateTime<Utc>>,
        issued_at: DateTime<Utc>,
    },
    ApiKeyRevoked {
        tenant_id: TenantId,
        key_id: ApiKeyId,
        revoked_at: DateTime<Utc>,
    },
    /// The secret store's default for one environment: every write needs
    /// check-and-set (Vault's engine-wide `cas_required`).
    TenantSecretsConfigured {
        tenant_id: TenantId,
        environment: Environment,
        cas_required: bool,
        configured_at: DateTime<Utc>,
    },
}

impl DomainEvent for TenantEvent {
    fn event_type(&self) -> String {
        match self {
            TenantEvent::TenantCreated { .. } => "TenantCreated",
            TenantEvent::TenantPlanChanged { .. } => "TenantPlanChanged",
            TenantEvent::TenantSuspended { .. } => "TenantSuspended",
            TenantEvent::TenantReactivated { .. } => "TenantReactivated",
            TenantEvent::ApiKeyIssued { .. } => "ApiKeyIssued",
            TenantEvent::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            TenantEvent::TenantSecretsConfigured { .. } => "TenantSecretsConfigured",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
