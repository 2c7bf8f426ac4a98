//! API-key use cases: issue (the value is shown once), list, read and
//! revoke. Scope `tenant:admin`. A test key sees and touches only the
//! tenant's test keys; a live key, all of them.
//!
//! Keys live in the Tenant aggregate; issuing and revoking commute with
//! every other tenant command, so a lost race is decided again rather than
//! answered as a conflict ([`App::command_tenant`](super::App::command_tenant)).

use chrono::{DateTime, Utc};
use palisade_domain::tenant::{TenantCommand, TenantError};
use palisade_domain::{ApiKeyId, Environment, FieldProblem, Scope};
use palisade_infra::readmodel::{get_api_key, list_api_keys, Page, Window};
use palisade_projections::ApiKeyRow;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::TenantAdmin;
use super::tenants::{issued, new_api_key, IssuedKey};
use super::{App, Authorized, Error, Result};

/// The body of `POST /v1/api-keys` (and GraphQL's `issueApiKey` input).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueApiKeyRequest {
    pub name: String,
    pub principal: String,
    /// Scope names, e.g. `findings:read`, `tenant:admin`.
    pub scopes: Vec<String>,
    /// `live` (default) or `test`.
    #[serde(default)]
    pub environment: Option<String>,
    /// When the key stops working: in the future, at most 10 years ahead.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Issues a key (only at the tenant's `expected_version`, when given);
/// returns it and the tenant's version.
pub async fn issue(
    app: &App,
    context: &Authorized<TenantAdmin>,
    request: IssueApiKeyRequest,
    expected_version: Option<usize>,
) -> Result<(IssuedKey, usize)> {
    let mut invalid = Vec::new();
    let mut scopes = Vec::new();
    for (i, scope) in request.scopes.iter().enumerate() {
        match scope.parse::<Scope>() {
            Ok(scope) => scopes.push(scope),
            Err(message) => invalid.push(FieldProblem::new(&format!("scopes[{i}]"), message)),
        }
    }
    let environment = match request
        .environment
        .as_deref()
        .unwrap_or("live")
        .parse::<Environment>()
    {
        Ok(environment) => Some(environment),
        Err(_) => {
            invalid.push(FieldProblem::new("environment", "must be live or test"));
            None
        }
    };
    let Some(environment) = environment.filter(|_| invalid.is_empty()) else {
        return Err(Error::Validation(invalid));
    };
    let caller = &context.principal;
    if caller.environment == Environment::Test && environment == Environment::Live {
        return Err(Error::Forbidden(
            "A test key can only issue test keys".into(),
        ));
    }
    let (value, key) = new_api_key(
        app,
        request.name,
        request.principal,
        scopes,
        environment,
        request.expires_at,
    );
    let now = Utc::now();
    let tenant_id = caller.tenant_id.to_string();
    let issued = issued(value, &key, &tenant_id, now);
    let command = TenantCommand::IssueApiKey { key, at: now };
    let done = app
        .command_tenant(&tenant_id, command, &context.metadata(), expected_version)
        .await?;
    Ok((issued, done.version))
}

/// The environment of the keys the caller may see: a test key sees only
/// test keys (None: every key).
fn visible(context: &Authorized<TenantAdmin>) -> Option<Environment> {
    (context.principal.environment == Environment::Test).then_some(Environment::Test)
}

/// A window of the keys the caller may see, newest first, and their count.
pub async fn list(
    app: &App,
    context: &Authorized<TenantAdmin>,
    window: impl Into<Window>,
) -> Result<Page<ApiKeyRow>> {
    let tenant_id = context.principal.tenant_id.to_string();
    let pool = app.store.read_pool();
    let (items, total) = list_api_keys(pool, &tenant_id, visible(context), window.into()).await?;
    Ok(Page::exact(items, total))
}

/// One key the caller may see; None for another tenant's, an unknown one,
/// or (for a test key) a live one.
pub async fn find(
    app: &App,
    context: &Authorized<TenantAdmin>,
    id: &str,
) -> Result<Option<ApiKeyRow>> {
    let tenant_id = context.principal.tenant_id.to_string();
    Ok(get_api_key(app.store.read_pool(), &tenant_id, visible(context), id).await?)
}

/// One key the caller may see and the tenant's version, or not found.
pub async fn get(
    app: &App,
    context: &Authorized<TenantAdmin>,
    id: &str,
) -> Result<(ApiKeyRow, usize)> {
    let key = find(app, context, id)
        .await?
        .ok_or_else(|| Error::from(TenantError::UnknownApiKey))?;
    let tenant = super::tenants::own(app, context).await?;
    Ok((key, usize::try_from(tenant.version).unwrap_or(0)))
}

/// Revokes one of the keys the caller may see; it fails from the next
/// request on. Returns the key and the tenant's version.
pub async fn revoke(
    app: &App,
    context: &Authorized<TenantAdmin>,
    id: &str,
    expected_version: Option<usize>,
) -> Result<(ApiKeyRow, usize)> {
    let not_found = || Error::from(TenantError::UnknownApiKey);
    let key_id = ApiKeyId::parse(id).map_err(|_| not_found())?;
    // A test key cannot reach a live one: not found, as another tenant's.
    if visible(context).is_some() && find(app, context, id).await?.is_none() {
        return Err(not_found());
    }
    let tenant_id = context.principal.tenant_id.to_string();
    let command = TenantCommand::RevokeApiKey {
        key_id,
        at: Utc::now(),
    };
    // In effect before the answer: the key fails from its next request on.
    let version = app
        .command_tenant(&tenant_id, command, &context.metadata(), expected_version)
        .await?
        .in_effect()?;
    let row = get_api_key(app.store.read_pool(), &tenant_id, None, id)
        .await?
        .ok_or_else(not_found)?;
    Ok((row, version))
}
