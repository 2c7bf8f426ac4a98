use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Plan, TenantError};
use crate::text::{limits, required_text};
use crate::{ApiKeyId, Environment, Scope, TenantId};

/// A tenant's display name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantName(String);

impl TenantName {
    pub const MAX_CHARS: usize = limits::TENANT_NAME.max_chars;

    pub fn parse(value: &str) -> Result<Self, TenantError> {
        required_text("name", value, limits::TENANT_NAME)
            .map(Self)
            .map_err(|problem| TenantError::InvalidName(problem.message))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantName {
    type Error = TenantError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantName> for String {
    fn from(name: TenantName) -> Self {
        name.0
    }
}

/// An API key about to be issued. The secret value never reaches the
/// domain: the caller generates it, shows it once, and passes only its
/// display prefix and keyed hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub key_id: ApiKeyId,
    pub name: String,
    pub principal: String,
    pub scopes: Vec<Scope>,
    pub environment: Environment,
    pub prefix: String,
    pub key_hash: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What can be asked of a tenant. Every timestamp comes from the caller's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum TenantCommand {
    /// Creates the tenant together with its first (owner) API key, atomically.
    CreateTenant {
        tenant_id: TenantId,
        name: TenantName,
        plan: Plan,
        owner_key: NewApiKey,
        created_at: DateTime<Utc>,
    },
    /// Changing to the current plan records nothing.
    ChangePlan {
        plan: Plan,
        at: DateTime<Utc>,
    },
    /// Suspending a suspended tenant records nothing.
    Suspend {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// Reactivating an active tenant records nothing.
    Reactivate {
        at: DateTime<Utc>,
    },
    IssueApiKey {
        key: NewApiKey,
        at: DateTime<Utc>,
    },
    /// Revoking a revoked key records nothing.
    RevokeApiKey {
        key_id: ApiKeyId,
        at: DateTime<Utc>,
    },
    /// The secret store's default for one environment; setting the current
    /// value records nothing.
    ConfigureSecrets {
        environment: Environment,
        cas_required: bool,
        at: DateTime<Utc>,
    },
}
