//! API-key authentication, rate limits and quota: `X-API-Key: <key>` or
//! `Authorization: Bearer <key>`. Routes behind [`require_api_key`] only run
//! for a valid key of an active tenant within its limits; their handlers
//! take the [`Principal`], and [`Principal::require`] checks one scope.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use palisade_domain::tenant::{Period, Plan, TenantStatus};
use palisade_domain::{ActorType, ApiKeyId, Environment, EventMetadata, Scope, TenantId};
use palisade_infra::crypto::api_key::parse_environment;
use palisade_infra::readmodel::{find_api_key_by_hash, find_api_key_by_id, ApiKeyOwner};
use palisade_infra::usage::{
    count_request, record_request, reserve_quota, tenant_subject, WindowCount,
};

use crate::app::App;
use crate::rest::{current_request_id, ApiError};
use crate::server::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub environment: Environment,
    pub plan: Plan,
}

impl Principal {
    /// 403 `forbidden`, naming the scope, unless the key has it.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.contains(&scope) {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("This API key lacks the scope '{scope}'"),
        ))
    }

    /// The data this key may read: its tenant's, in its environment.
    pub fn partition(&self) -> palisade_infra::readmodel::Partition {
        palisade_infra::readmodel::Partition {
            tenant_id: self.tenant_id.to_string(),
            environment: self.environment,
        }
    }

    /// Metadata for the events this caller's request causes.
    pub fn metadata(&self) -> EventMetadata {
        EventMetadata {
            tenant_id: self.tenant_id.to_string(),
            environment: self.environment,
            actor: self.name.clone(),
            actor_type: ActorType::ApiKey,
            api_key_id: Some(self.key_id.to_string()),
            request_id: Some(current_request_id()).filter(|id| !id.is_empty()),
            correlation_id: crate::idempotency::current_token(),
            causation_id: None,
            occurred_at: Utc::now(),
        }
    }
}

fn invalid_api_key() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "The API key is not valid (unknown, revoked or expired)",
    )
}

/// The key from `X-API-Key`, or from `Authorization: Bearer`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get("x-api-key") {
        return value.to_str().ok().map(str::trim);
    }
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
}

/// Authenticates the key a request presents.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    authenticate_key(presented_key(parts), state).await
}

/// Authenticates a key however it was presented (a header, or a GraphQL
/// websocket's `connection_init` payload).
pub async fn authenticate_key(
    value: Option<&str>,
    state: &AppState,
) -> Result<Principal, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "Send an API key in X-API-Key or Authorization: Bearer",
        ));
    };
    // Shape and checksum first: a typo never costs a lookup.
    if parse_environment(value).is_none() {
        return Err(invalid_api_key());
    }
    let hash = state.app.hasher.hash(value);
    let found = find_api_key_by_hash(state.app.store.read_pool(), &hash)
        .await
        .map_err(ApiError::internal)?;
    let Some(owner) = found.filter(|o| state.app.hasher.matches(value, &o.key.key_hash)) else {
        return Err(invalid_api_key());
    };
    principal_of(owner)
}

/// The caller an authenticated key stands for, once it is usable.
fn principal_of(owner: ApiKeyOwner) -> Result<Principal, ApiError> {
    usable(&owner)?;
    let key = owner.key;
    let parse_err = |e: palisade_domain::IdError| ApiError::internal(e);
    Ok(Principal {
        tenant_id: TenantId::parse(&key.tenant_id).map_err(parse_err)?,
        key_id: ApiKeyId::parse(&key.id).map_err(parse_err)?,
        name: key.principal,
        scopes: key.scopes,
        environment: key.environment,
        plan: owner.plan,
    })
}

/// Refuses a key that is revoked or expired, or whose tenant is suspended.
fn usable(owner: &ApiKeyOwner) -> Result<(), ApiError> {
    let expired = owner.key.expires_at.is_some_and(|at| at <= Utc::now());
    if owner.key.revoked_at.is_some() || expired {
        return Err(invalid_api_key());
    }
    if owner.tenant_status == TenantStatus::Suspended {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "tenant_suspended",
            "This tenant is suspended",
        ));
    }
    Ok(())
}

/// Authenticates an already authenticated key again, from the database:
/// the caller as it is now (its tenant's plan may have changed), or the
/// refusal an HTTP request with this key would get now (revoked, expired,
/// tenant suspended). Every operation on a GraphQL websocket does this.
pub async fn reauthenticate(app: &App, key_id: &ApiKeyId) -> Result<Principal, ApiError> {
    let found = find_api_key_by_id(app.store.read_pool(), &key_id.to_string())
        .await
        .map_err(ApiError::internal)?;
    principal_of(found.ok_or_else(invalid_api_key)?)
}

/// Checks again that an authenticated key may still be used: what a
/// long-lived stream asks now and then, so that revoking its key,
/// letting it expire or suspending its tenant ends the stream too.
pub async fn still_usable(app: &App, key_id: &ApiKeyId) -> Result<(), ApiError> {
    reauthenticate(app, key_id).await.map(|_| ())
}

/// The rate-limit headers for the tightest window.
fn rate_limit_headers(headers: &mut HeaderMap, counts: &[WindowCount]) {
    let Some(tightest) = counts
        .iter()
        .min_by_key(|c| (c.remaining(), c.period.seconds()))
    else {
        return;
    };
    let pairs = [
        ("x-ratelimit-limit", tightest.limit.to_string()),
        ("x-ratelimit-remaining", tightest.remaining().to_string()),
        ("x-ratelimit-reset", tightest.resets_at.to_string()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

fn capitalised(period: Period) -> &'static str {
    match period {
        Period::Minute => "Minute",
        Period::Hour => "Hour",
        Period::Day => "Day",
    }
}

/// The endpoint group a path belongs to: its first segment after `/v1/`
/// (`graphql` for GraphQL, over HTTP and websocket alike).
pub(crate) fn endpoint_group(path: &str) -> &str {
    let rest = path
        .strip_prefix("/v1/")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or(path);
    rest.split('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("other")
}

/// Middleware for every API-key route: authenticate, count the request
/// against the tenant's rate limits in its environment (429) and reserve it from the tenant's
/// monthly quota (402, live keys only), run the handler, then record the
/// request and set `X-RateLimit-*` for the tightest window.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let principal = match authenticate(&parts, &state).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    let now = Utc::now();
    let (counts, refusal) = match admit(&state, &principal, 1, now).await {
        Ok(Admission { counts, refusal }) => (counts, refusal),
        Err(error) => return error.into_response(),
    };
    let mut response = match refusal {
        Some(error) => error.into_response(),
        None => {
            let group = endpoint_group(parts.uri.path()).to_string();
            parts.extensions.insert(principal.clone());
            let scope = crate::idempotency::key_scope(&principal.key_id);
            let request = Request::from_parts(parts, body);
            let response = crate::idempotency::idempotent(&state.app, &scope, request, next).await;
            record_usage(&state, &principal, &group, 1, now).await;
            response
        }
    };
    rate_limit_headers(response.headers_mut(), &counts);
    response
}

/// A request counted against its tenant's rate limits and quota: the
/// windows' counts, and the refusal if it is over either.
pub(crate) struct Admission {
    pub counts: Vec<WindowCount>,
    pub refusal: Option<ApiError>,
}

/// Counts `weight` requests of `principal` against its tenant's rate
/// limits (429; every key of the tenant in its environment shares them) and reserves them
/// from the tenant's monthly quota (402, live keys only). Every request
/// does this: REST and GraphQL over HTTP in [`require_api_key`], each
/// operation on a GraphQL websocket, and each further mutation root field
/// of a GraphQL document (`weight` > 1).
pub(crate) async fn admit(
    state: &AppState,
    principal: &Principal,
    weight: u64,
    now: chrono::DateTime<Utc>,
) -> Result<Admission, ApiError> {
    let counts = match principal.plan.rate_limits() {
        Some(limits) => count_request(
            &state.app.store,
            &tenant_subject(&principal.tenant_id.to_string(), principal.environment),
            &limits,
            weight,
            now,
        )
        .await
        .map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let refusal = if let Some(over) = counts
        .iter()
        .filter(|c| c.exceeded())
        .max_by_key(|c| c.resets_at)
    {
        let retry_after = u64::try_from(over.resets_at - now.timestamp())
            .unwrap_or(1)
            .max(1);
        Some(
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                format!("{} rate limit exceeded", capitalised(over.period)),
            )
            .with_retry_after(retry_after),
        )
    } else {
        quota_refusal(state, principal, weight, now).await.err()
    };
    Ok(Admission { counts, refusal })
}

/// Records `weight` admitted requests in the tenant's usage, under `group`.
pub(crate) async fn record_usage(
    state: &AppState,
    principal: &Principal,
    group: &str,
    weight: u64,
    now: chrono::DateTime<Utc>,
) {
    let tenant = principal.tenant_id.to_string();
    let store = &state.app.store;
    if let Err(error) =
        record_request(store, &tenant, principal.environment, group, weight, now).await
    {
        tracing::error!(%error, "cannot record usage");
    }
}

/// Reserves `weight` requests of a live key's monthly quota; 402 once it
/// is spent (the reservation and the check are one statement).
async fn quota_refusal(
    state: &AppState,
    principal: &Principal,
    weight: u64,
    now: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(quota) = principal.plan.monthly_quota() else {
        return Ok(());
    };
    if principal.environment == Environment::Test {
        return Ok(());
    }
    let tenant = principal.tenant_id.to_string();
    let reserved = reserve_quota(&state.app.store, &tenant, quota, weight, now)
        .await
        .map_err(ApiError::internal)?;
    if !reserved {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "quota_exceeded",
            format!("This month's quota of {quota} requests is spent; it renews on the 1st (UTC) or with a larger plan"),
        ));
    }
    Ok(())
}

/// Handlers behind [`require_api_key`] take the authenticated caller.
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route is not behind API-key authentication"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_groups_are_the_first_segment() {
        assert_eq!(super::endpoint_group("/v1/api-keys/apk_1"), "api-keys");
        assert_eq!(super::endpoint_group("/v1/usage"), "usage");
        assert_eq!(super::endpoint_group("/v1/"), "other");
        assert_eq!(super::endpoint_group("/graphql"), "graphql");
        assert_eq!(super::endpoint_group("/graphql/ws"), "graphql");
    }
}
