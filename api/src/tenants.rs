//! Tenant use cases shared by the REST admin API and the CLI.

use chrono::{DateTime, SecondsFormat, Utc};
use palisade_domain::tenant::{NewApiKey, Plan, Tenant, TenantCommand, TenantError, TenantName};
use palisade_domain::{ActorType, ApiKeyId, Environment, EventMetadata, Scope, TenantId};
use palisade_infra::crypto::api_key;
use palisade_infra::readmodel::get_tenant;
use palisade_infra::CommandError;
use palisade_projections::{ApiKeyRow, TenantRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::App;
use crate::rest::{current_request_id, ApiError, FieldError};

/// The body of `POST /v1/admin/tenants` and the flags of `tenant create`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub name: String,
    #[serde(default)]
    pub plan: Option<String>,
    /// The first key's principal; `owner` when absent.
    #[serde(default)]
    pub owner_principal: Option<String>,
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

pub fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Metadata for an administrator's command on one tenant.
pub fn admin_metadata(tenant_id: TenantId, actor: &str) -> EventMetadata {
    EventMetadata {
        tenant_id: tenant_id.to_string(),
        environment: Environment::Live,
        actor: actor.to_string(),
        actor_type: ActorType::Admin,
        api_key_id: None,
        request_id: Some(current_request_id()).filter(|id| !id.is_empty()),
        correlation_id: crate::idempotency::current_token(),
        causation_id: None,
        occurred_at: Utc::now(),
    }
}

/// The one mapping of tenant command failures to HTTP errors.
pub fn tenant_error(error: CommandError<TenantError>) -> ApiError {
    use axum::http::StatusCode;
    match error {
        CommandError::Rejected(TenantError::NotFound) => ApiError::not_found("Tenant not found"),
        CommandError::Rejected(TenantError::UnknownApiKey) => {
            ApiError::not_found("API key not found")
        }
        CommandError::Rejected(TenantError::AlreadyExists | TenantError::ApiKeyExists)
        | CommandError::Conflict => {
            ApiError::conflict("The tenant was changed concurrently; retry")
        }
        CommandError::Rejected(TenantError::InvalidName(message)) => {
            ApiError::invalid_field("name", message)
        }
        CommandError::Rejected(TenantError::Invalid { field, message }) => {
            ApiError::invalid_field(field, message)
        }
        CommandError::Rejected(TenantError::Suspended) => ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "This tenant is suspended",
        ),
        CommandError::VersionMismatch { current } => crate::rest::precondition_failed(format!(
            "If-Match does not match; the tenant is at version \"{current}\""
        )),
        CommandError::Store(cause) => ApiError::internal(cause),
        CommandError::Unavailable(cause) => ApiError::unavailable(cause),
    }
}

/// A new key's value, and the command-side description of it.
pub fn new_api_key(
    name: String,
    principal: String,
    scopes: Vec<Scope>,
    environment: Environment,
    expires_at: Option<DateTime<Utc>>,
) -> (String, NewApiKey) {
    let generated = api_key::generate(environment);
    let key = NewApiKey {
        key_id: ApiKeyId::from_uuid(uuid::Uuid::now_v7()),
        name,
        principal,
        scopes,
        environment,
        prefix: generated.prefix,
        key_hash: String::new(),
        expires_at,
    };
    (generated.value, key)
}

/// What a key looks like once issued, from the command that issued it.
pub fn issued_view(value: String, key: &NewApiKey, at: &DateTime<Utc>) -> IssuedApiKey {
    let mut scopes = key.scopes.clone();
    scopes.sort();
    scopes.dedup();
    IssuedApiKey {
        id: key.key_id.to_string(),
        key: value,
        prefix: key.prefix.clone(),
        name: key.name.trim().to_string(),
        principal: key.principal.trim().to_string(),
        scopes,
        environment: key.environment,
        expires_at: key.expires_at.as_ref().map(format_time),
        created_at: format_time(at),
    }
}

/// Validates the request and appends `TenantCreated` with the owner's first
/// live key (every scope). Answers from the command (the view may lag).
pub async fn create_tenant(
    app: &App,
    request: CreateTenantRequest,
    actor: &str,
) -> Result<CreatedTenant, ApiError> {
    let mut invalid = Vec::new();
    let mut field = |field: &str, message: String| {
        invalid.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let name = TenantName::parse(&request.name).map_err(|e| match e {
        TenantError::InvalidName(message) => field("name", message),
        other => field("name", other.to_string()),
    });
    let plan = request
        .plan
        .as_deref()
        .unwrap_or("free")
        .parse::<Plan>()
        .map_err(|message| field("plan", message));
    let (Ok(name), Ok(plan)) = (name, plan) else {
        return Err(ApiError::validation(invalid));
    };
    let principal = request.owner_principal.unwrap_or_else(|| "owner".into());
    let (value, mut owner_key) = new_api_key(
        "Owner key".into(),
        principal,
        Scope::ALL.to_vec(),
        Environment::Live,
        None,
    );
    owner_key.key_hash = app.hasher.hash(&value);
    let tenant_id = TenantId::from_uuid(uuid::Uuid::now_v7());
    let now = Utc::now();
    let api_key = issued_view(value, &owner_key, &now);
    let command = TenantCommand::CreateTenant {
        tenant_id,
        name: name.clone(),
        plan,
        owner_key,
        created_at: now,
    };
    let version = app
        .commands
        .execute::<Tenant>(
            &tenant_id.to_string(),
            command,
            (),
            &admin_metadata(tenant_id, actor),
        )
        .await
        .map_err(tenant_error)?;
    Ok(CreatedTenant {
        tenant: TenantView {
            id: tenant_id.to_string(),
            name: name.into(),
            plan,
            status: "active".into(),
            created_at: format_time(&now),
        },
        api_key,
        version,
    })
}

/// Runs an administrator's command on a tenant (only at `expected_version`
/// when given) and answers with the tenant as the view shows it once the
/// command is in effect (a suspension stops every key before the answer),
/// and its version.
pub async fn administer(
    app: &App,
    id: &str,
    command: TenantCommand,
    expected_version: Option<usize>,
) -> Result<(TenantView, usize), ApiError> {
    let tenant_id = TenantId::parse(id).map_err(|_| ApiError::not_found("Tenant not found"))?;
    let metadata = admin_metadata(tenant_id, "admin");
    let version = app
        .command_tenant_in_effect(id, command, &metadata, expected_version)
        .await?;
    let row = find_tenant(app, id).await?;
    Ok((row.into(), version))
}

/// A tenant from the view, or 404.
pub async fn find_tenant(app: &App, id: &str) -> Result<TenantRow, ApiError> {
    get_tenant(app.store.read_pool(), id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("Tenant not found"))
}
