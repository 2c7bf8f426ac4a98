//! API-key authentication for REST (and GraphQL over HTTP): `X-API-Key:
//! <key>` or `Authorization: Bearer <key>`. Routes behind
//! [`require_api_key`] only run for a valid key of an active tenant within
//! its limits. Their handlers take the caller as a [`RequestContext`], or,
//! for a route that needs a scope, as an [`Authorized<S>`] (the extractor
//! refuses with 403 `forbidden` naming the scope): a handler cannot reach a
//! scoped use case without the check.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use palisade_infra::usage::WindowCount;

use super::idempotency::IdempotencyToken;
use super::request_id::RequestId;
use super::ApiError;
use crate::app::auth::{admit, authenticate_key, record_usage, Admission, ScopeName};
use crate::app::{Authorized, Origin, Principal, RequestContext};
use crate::state::AppState;

/// The key from `X-API-Key`, or from `Authorization: Bearer`.
fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get("x-api-key") {
        return value.to_str().ok().map(str::trim);
    }
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim)
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
/// against the tenant's rate limits in its environment (429) and reserve it
/// from the tenant's monthly quota (402, live keys only), run the rest
/// (idempotency, then the handler), then record the request and set
/// `X-RateLimit-*` for the tightest window.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let principal = match authenticate_key(&state.app, presented_key(&parts)).await {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let now = Utc::now();
    let Admission { counts, refusal } = match admit(&state.app, &principal, 1, now).await {
        Ok(admission) => admission,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let mut response = match refusal {
        Some(error) => ApiError::from(error).into_response(),
        None => {
            let group = endpoint_group(parts.uri.path()).to_string();
            parts.extensions.insert(principal.clone());
            let response = next.run(Request::from_parts(parts, body)).await;
            record_usage(&state.app, &principal, &group, 1, now);
            response
        }
    };
    rate_limit_headers(response.headers_mut(), &counts);
    response
}

/// Where a request came from: its id and idempotency token, as the
/// middlewares left them in its extensions, and the application it names
/// in `X-Palisade-Application` (KMS usage is counted per application).
pub(crate) fn origin_of(parts: &Parts) -> Origin {
    Origin {
        request_id: parts.extensions.get::<RequestId>().map(|id| id.0.clone()),
        idempotency_token: parts
            .extensions
            .get::<IdempotencyToken>()
            .map(|token| token.0.clone()),
        application: parts
            .headers
            .get("x-palisade-application")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
    }
}

/// Handlers behind [`require_api_key`] take the authenticated caller.
impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal("route is not behind API-key authentication"))?;
        Ok(RequestContext::new(principal, origin_of(parts)))
    }
}

/// The caller, holding scope `S` (403 `forbidden` naming it otherwise).
impl<S: ScopeName> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let context = RequestContext::from_request_parts(parts, state).await?;
        Ok(context.authorize::<S>()?)
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
