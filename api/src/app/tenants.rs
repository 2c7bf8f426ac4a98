//! Tenant use cases, for administrators (the REST admin API and the CLI):
//! create a tenant with its owner's first key, change its plan, suspend or
//! reactivate it, and read tenants.

use chrono::{DateTime, Utc};
use palisade_domain::tenant::{NewApiKey, Plan, Tenant, TenantCommand, TenantError, TenantName};
use palisade_domain::{ApiKeyId, Environment, FieldProblem, Scope, TenantId};
use palisade_infra::crypto::api_key;
use palisade_infra::readmodel::{get_tenant, list_tenants, TenantsPage};
use palisade_projections::{ApiKeyRow, TenantRow};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{App, Error, Origin, RequestContext, Result};

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

/// A key just issued: its value (shown this once) and the key as the view
/// will hold it.
pub struct IssuedKey {
    pub value: String,
    pub key: ApiKeyRow,
}

/// A tenant just created, its owner's first key, and the tenant's version.
pub struct CreatedTenant {
    pub tenant: TenantRow,
    pub owner_key: IssuedKey,
    pub version: usize,
}

/// A new key's value, and the command-side description of it (its hash
/// taken with the app's hasher).
pub(crate) fn new_api_key(
    app: &App,
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
        key_hash: app.hasher.hash(&generated.value),
        expires_at,
    };
    (generated.value, key)
}

/// What a key looks like once issued, from the command that issues it.
pub(crate) fn issued(
    value: String,
    key: &NewApiKey,
    tenant_id: &str,
    at: DateTime<Utc>,
) -> IssuedKey {
    let mut scopes = key.scopes.clone();
    scopes.sort();
    scopes.dedup();
    IssuedKey {
        value,
        key: ApiKeyRow {
            id: key.key_id.to_string(),
            tenant_id: tenant_id.to_string(),
            name: key.name.trim().to_string(),
            principal: key.principal.trim().to_string(),
            scopes,
            environment: key.environment,
            prefix: key.prefix.clone(),
            key_hash: String::new(),
            expires_at: key.expires_at,
            created_at: at,
            revoked_at: None,
        },
    }
}

/// As [`create`], then waits (bounded) until the owner key works, so it
/// does from the first request after the answer (the REST admin API).
pub async fn create_in_effect(
    app: &App,
    origin: &Origin,
    request: CreateTenantRequest,
    actor: &str,
) -> Result<CreatedTenant> {
    let created = create(app, origin, request, actor).await?;
    app.await_tenants_view(&created.tenant.id, created.version)
        .await?;
    Ok(created)
}

/// Validates the request and appends `TenantCreated` with the owner's first
/// live key (every scope). Answers from the command (the view may lag; the
/// CLI runs no projections).
pub async fn create(
    app: &App,
    origin: &Origin,
    request: CreateTenantRequest,
    actor: &str,
) -> Result<CreatedTenant> {
    let mut invalid = Vec::new();
    let name = TenantName::parse(&request.name).map_err(|e| match e {
        TenantError::InvalidName(message) => invalid.push(FieldProblem::new("name", message)),
        other => invalid.push(FieldProblem::new("name", other.to_string())),
    });
    let plan = request
        .plan
        .as_deref()
        .unwrap_or("free")
        .parse::<Plan>()
        .map_err(|message| invalid.push(FieldProblem::new("plan", message)));
    let (Ok(name), Ok(plan)) = (name, plan) else {
        return Err(Error::Validation(invalid));
    };
    let principal = request.owner_principal.unwrap_or_else(|| "owner".into());
    let (value, owner_key) = new_api_key(
        app,
        "Owner key".into(),
        principal,
        Scope::ALL.to_vec(),
        Environment::Live,
        None,
    );
    let tenant_id = TenantId::from_uuid(uuid::Uuid::now_v7());
    let now = Utc::now();
    let owner = issued(value, &owner_key, &tenant_id.to_string(), now);
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
            &origin.admin_metadata(tenant_id, actor),
        )
        .await?;
    Ok(CreatedTenant {
        tenant: TenantRow {
            id: tenant_id.to_string(),
            version: i64::try_from(version).unwrap_or(i64::MAX),
            name: name.into(),
            plan,
            status: "active".into(),
            created_at: now,
            updated_at: now,
        },
        owner_key: owner,
        version,
    })
}

/// Runs an administrator's command on a tenant (only at `expected_version`
/// when given) and answers with the tenant as the view shows it once the
/// command is in effect (a suspension stops every key before the answer),
/// and its version.
pub async fn administer(
    app: &App,
    origin: &Origin,
    id: &str,
    command: TenantCommand,
    expected_version: Option<usize>,
) -> Result<(TenantRow, usize)> {
    let tenant_id = TenantId::parse(id).map_err(|_| Error::from(TenantError::NotFound))?;
    let metadata = origin.admin_metadata(tenant_id, "admin");
    let version = app
        .command_tenant(id, command, &metadata, expected_version)
        .await?
        .in_effect()?;
    Ok((get(app, id).await?, version))
}

/// A tenant from the view, or not found.
pub async fn get(app: &App, id: &str) -> Result<TenantRow> {
    get_tenant(app.store.read_pool(), id)
        .await?
        .ok_or_else(|| TenantError::NotFound.into())
}

/// The caller's own tenant.
pub async fn own(app: &App, context: &RequestContext) -> Result<TenantRow> {
    get(app, &context.principal.tenant_id.to_string()).await
}

/// A page of tenants, newest first.
pub async fn list(app: &App, page: u32, per_page: u32) -> Result<TenantsPage> {
    Ok(list_tenants(app.store.read_pool(), page, per_page).await?)
}
