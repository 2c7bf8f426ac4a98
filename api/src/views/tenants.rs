//! Tenants, API keys and projection statuses as the API shows them: never
//! a key's value, except in [`IssuedApiKey`], the answer that issues it.

use palisade_domain::tenant::Plan;
use palisade_domain::{Environment, Scope};
use palisade_infra::ProjectionStatus;
use palisade_projections::{ApiKeyRow, TenantRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;
use crate::app::tenants::{CreatedTenant as Created, IssuedKey};
use crate::app::Principal;

/// The caller, as its API key stands for it (`GET /v1/whoami`).
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    pub tenant_id: String,
    pub key_id: String,
    pub principal: String,
    #[schema(value_type = Vec<String>, example = json!(["findings:read"]))]
    pub scopes: Vec<Scope>,
    #[schema(value_type = String, example = "live")]
    pub environment: Environment,
    #[schema(value_type = String, example = "pro")]
    pub plan: Plan,
}

impl From<Principal> for WhoAmI {
    fn from(caller: Principal) -> Self {
        Self {
            tenant_id: caller.tenant_id.to_string(),
            key_id: caller.key_id.to_string(),
            principal: caller.name,
            scopes: caller.scopes,
            environment: caller.environment,
            plan: caller.plan,
        }
    }
}

/// A tenant as the API shows it.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Tenant", complex)]
pub struct TenantView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, example = "pro")]
    #[graphql(skip)]
    pub plan: Plan,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at: String,
}

impl From<TenantRow> for TenantView {
    fn from(row: TenantRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            plan: row.plan,
            status: row.status,
            created_at: format_time(&row.created_at),
        }
    }
}

/// An API key as the API shows it: never its value.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "ApiKey", complex)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub principal: String,
    #[schema(value_type = Vec<String>, example = json!(["findings:read"]))]
    #[graphql(skip)]
    pub scopes: Vec<Scope>,
    #[schema(value_type = String, example = "live")]
    #[graphql(skip)]
    pub environment: Environment,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            principal: row.principal,
            scopes: row.scopes,
            environment: row.environment,
            expires_at: row.expires_at.as_ref().map(format_time),
            created_at: format_time(&row.created_at),
            revoked_at: row.revoked_at.as_ref().map(format_time),
        }
    }
}

/// A key just issued: the only time its value is shown.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "IssuedApiKey", complex)]
pub struct IssuedApiKey {
    pub id: String,
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub principal: String,
    #[schema(value_type = Vec<String>, example = json!(["findings:read"]))]
    #[graphql(skip)]
    pub scopes: Vec<Scope>,
    #[schema(value_type = String, example = "live")]
    #[graphql(skip)]
    pub environment: Environment,
    pub expires_at: Option<String>,
    pub created_at: String,
}

/// `{"tenant": …, "api_key": …}`, the answer to creating a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: TenantView,
    pub api_key: IssuedApiKey,
    #[serde(skip)]
    pub version: usize,
}

/// One projection's progress.
#[derive(Serialize, ToSchema, async_graphql::SimpleObject)]
#[graphql(name = "ProjectionStatus")]
pub struct ProjectionStatusView {
    name: &'static str,
    version: i64,
    /// Position of the last event applied.
    checkpoint: i64,
    /// Highest position allocated in the feed.
    head: i64,
    /// Committed events not applied yet.
    lag_events: i64,
    /// Age of the oldest of those, in milliseconds (0 when caught up).
    lag_ms: i64,
    /// Whether this process runs the projection now.
    running_here: bool,
}

impl From<ProjectionStatus> for ProjectionStatusView {
    fn from(s: ProjectionStatus) -> Self {
        Self {
            name: s.name,
            version: s.version,
            checkpoint: s.checkpoint,
            head: s.head,
            lag_events: s.lag_events,
            lag_ms: s.lag_ms,
            running_here: s.running_here,
        }
    }
}

impl From<IssuedKey> for IssuedApiKey {
    fn from(issued: IssuedKey) -> Self {
        let key = issued.key;
        Self {
            id: key.id,
            key: issued.value,
            prefix: key.prefix,
            name: key.name,
            principal: key.principal,
            scopes: key.scopes,
            environment: key.environment,
            expires_at: key.expires_at.as_ref().map(format_time),
            created_at: format_time(&key.created_at),
        }
    }
}

impl From<Created> for CreatedTenant {
    fn from(created: Created) -> Self {
        Self {
            tenant: created.tenant.into(),
            api_key: created.owner_key.into(),
            version: created.version,
        }
    }
}
