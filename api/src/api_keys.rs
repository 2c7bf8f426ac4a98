//! API-key use cases: issue (the value is shown once), list, read and
//! revoke. A test key sees and touches only the tenant's test keys; a live
//! key, all of them.

use chrono::{DateTime, Utc};
use palisade_domain::tenant::TenantCommand;
use palisade_domain::{ApiKeyId, Environment, Scope};
use palisade_infra::readmodel::{get_api_key, list_api_keys, Window};
use palisade_projections::ApiKeyRow;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::App;
use crate::auth::Principal;
use crate::rest::{ApiError, FieldError};
use crate::tenants::{issued_view, new_api_key, ApiKeyView, IssuedApiKey};

/// The body of `POST /v1/api-keys`.
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
    caller: &Principal,
    request: IssueApiKeyRequest,
    expected_version: Option<usize>,
) -> Result<(IssuedApiKey, usize), ApiError> {
    let mut invalid = Vec::new();
    let mut scopes = Vec::new();
    for (i, scope) in request.scopes.iter().enumerate() {
        match scope.parse::<Scope>() {
            Ok(scope) => scopes.push(scope),
            Err(message) => invalid.push(FieldError {
                field: format!("scopes[{i}]"),
                message,
            }),
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
            invalid.push(FieldError {
                field: "environment".into(),
                message: "must be live or test".into(),
            });
            None
        }
    };
    let Some(environment) = environment.filter(|_| invalid.is_empty()) else {
        return Err(ApiError::validation(invalid));
    };
    if caller.environment == Environment::Test && environment == Environment::Live {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "A test key can only issue test keys",
        ));
    }
    let (value, mut key) = new_api_key(
        request.name,
        request.principal,
        scopes,
        environment,
        request.expires_at,
    );
    key.key_hash = app.hasher.hash(&value);
    let now = Utc::now();
    let view = issued_view(value, &key, &now);
    let tenant_id = caller.tenant_id.to_string();
    let command = TenantCommand::IssueApiKey { key, at: now };
    let version = app
        .command_tenant(&tenant_id, command, &caller.metadata(), expected_version)
        .await?;
    Ok((view, version))
}

/// The environment of the keys `caller` may see: a test key sees only
/// test keys (None: every key).
fn visible(caller: &Principal) -> Option<Environment> {
    (caller.environment == Environment::Test).then_some(Environment::Test)
}

/// A page of the keys the caller may see, newest first, and their count.
pub async fn list(
    app: &App,
    caller: &Principal,
    window: Window,
) -> Result<(Vec<ApiKeyView>, i64), ApiError> {
    let tenant_id = caller.tenant_id.to_string();
    let (keys, total) = list_api_keys(app.store.read_pool(), &tenant_id, visible(caller), window)
        .await
        .map_err(ApiError::internal)?;
    Ok((keys.into_iter().map(ApiKeyView::from).collect(), total))
}

/// One key the caller may see; None for another tenant's, an unknown one,
/// or (for a test key) a live one.
pub async fn find(app: &App, caller: &Principal, id: &str) -> Result<Option<ApiKeyRow>, ApiError> {
    let tenant_id = caller.tenant_id.to_string();
    get_api_key(app.store.read_pool(), &tenant_id, visible(caller), id)
        .await
        .map_err(ApiError::internal)
}

/// Revokes one of the keys the caller may see; it fails from the next
/// request on. Returns the key and the tenant's version.
pub async fn revoke(
    app: &App,
    caller: &Principal,
    id: &str,
    expected_version: Option<usize>,
) -> Result<(ApiKeyView, usize), ApiError> {
    let not_found = || ApiError::not_found("API key not found");
    let key_id = ApiKeyId::parse(id).map_err(|_| not_found())?;
    // A test key cannot reach a live one: 404, as for another tenant's.
    if visible(caller).is_some() && find(app, caller, id).await?.is_none() {
        return Err(not_found());
    }
    let tenant_id = caller.tenant_id.to_string();
    let command = TenantCommand::RevokeApiKey {
        key_id,
        at: Utc::now(),
    };
    // In effect before the answer: the key fails from its next request on.
    let version = app
        .command_tenant_in_effect(&tenant_id, command, &caller.metadata(), expected_version)
        .await?;
    let row = get_api_key(app.store.read_pool(), &tenant_id, None, id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    Ok((row.into(), version))
}
