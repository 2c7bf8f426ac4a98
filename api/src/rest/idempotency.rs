//! `Idempotency-Key` on POST, PUT, PATCH and DELETE: a layer of its own,
//! inside authentication (see `docs/architecture.md`). The same
//! key and the same request within 24 hours get the first response again,
//! with `Idempotent-Replayed: true`. The same key with another request gets
//! 422 `idempotency_key_reused`; while the first request runs, 409
//! `conflict`. 5xx answers and refusals by the limits (402 quota, 429
//! rate limit) are not kept, so a retry may succeed.
//!
//! A record belongs to the credential that made the request: the API key
//! (scope `key:<id>`, and with it the key's tenant and environment), or the
//! admin token (scope `admin`). Another key that sends the same
//! `Idempotency-Key` makes a fresh request, so a replay never answers a
//! caller other than the one first answered. The layer runs after
//! authentication, rate limits and quota, and a key's scopes never change,
//! so whoever gets a replay was authorised for the route exactly as the
//! first request was.
//!
//! A response that carries a secret (a new API key's value) marks it with
//! [`Secrets`]; the stored copy has every such value replaced by
//! [`REDACTED`], and its replay says so with `Idempotent-Redacted: true`.
//! Secrets are shown once and never rest in the idempotency table.
//!
//! The request runs with a token ([`IdempotencyToken`], a request
//! extension the use cases receive in their `RequestContext`) that its
//! events carry as their `correlation_id`. If the process dies after the append but
//! before the response is stored, a retry a minute later learns from the
//! event store that the command committed, and gets 409
//! `idempotency_response_lost` instead of running it twice.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use palisade_infra::idempotency::{claim, complete, release, Claim, StoredResponse};

use super::{body_limit, ApiError};
use crate::app::{App, Principal};
use crate::state::AppState;

const HEADER: &str = "idempotency-key";

/// What a replay shows in place of a secret that only the first response
/// carried.
pub const REDACTED: &str = "[redacted]";

/// The secret values a response carries (a response extension): never
/// stored, replaced by [`REDACTED`] in the kept copy.
#[derive(Debug, Clone, Default)]
pub struct Secrets(pub Vec<String>);

/// The idempotency scope of an API key's requests.
pub fn key_scope(key_id: &palisade_domain::ApiKeyId) -> String {
    format!("key:{key_id}")
}

/// `body` with every JSON string equal to one of `secrets` replaced by
/// [`REDACTED`]; None when the body is not JSON (it is then not kept).
fn redact(body: &[u8], secrets: &[String]) -> Option<String> {
    fn walk(value: &mut serde_json::Value, secrets: &[String]) {
        match value {
            serde_json::Value::String(text) if secrets.iter().any(|s| s == text) => {
                *text = REDACTED.to_string();
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|v| walk(v, secrets)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|v| walk(v, secrets)),
            _ => {}
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    walk(&mut value, secrets);
    serde_json::to_string(&value).ok()
}

/// The token of the idempotent request running (a request extension):
/// what its events carry as `correlation_id`.
#[derive(Debug, Clone)]
pub struct IdempotencyToken(pub String);

/// The idempotency layer, for the routes of an API key (scope
/// `key:<id>`, from the [`Principal`] authentication left) or of the admin
/// token (scope `admin`).
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let scope = match request.extensions().get::<Principal>() {
        Some(principal) => key_scope(&principal.key_id),
        None => "admin".to_string(),
    };
    idempotent(&state.app, &scope, request, next).await
}

/// Questions asked with a POST body that record nothing: answered afresh
/// every time, never replayed (a replayed access check would say "yes"
/// after the grant was revoked or ended).
pub fn is_query(path: &str) -> bool {
    matches!(path, "/v1/access/check" | "/v1/access/simulate")
}

/// Runs `next` under the request's idempotency key, if it has one.
async fn idempotent(app: &App, scope: &str, request: Request, next: Next) -> Response {
    let is_command = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !is_query(request.uri().path());
    let key = match request.headers().get(HEADER) {
        Some(value) if is_command => value.to_str().ok().map(str::to_string).unwrap_or_default(),
        _ => return next.run(request).await,
    };
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
            .into_response();
    }
    let limit = body_limit(request.uri().path());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, limit).await else {
        return ApiError::payload_too_large(limit).into_response();
    };
    // Keyed: the body may hold a plaintext (KMS encrypt, sign), and the
    // record must not let a reader of the database test guesses of it.
    let uri = parts.uri.to_string();
    let fingerprint = app.request_fingerprints.digest(&[
        parts.method.as_str().as_bytes(),
        uri.as_bytes(),
        &bytes,
    ]);
    let now_ms = chrono::Utc::now().timestamp_millis();
    // The record's writes take the store's write turn (SQLite) themselves.
    let token = format!("idem_{}", uuid::Uuid::new_v4().simple());
    let claimed = claim(&app.store, scope, &key, &fingerprint, &token, now_ms).await;
    match claimed {
        Err(error) => ApiError::internal(error).into_response(),
        Ok(Claim::Mismatch) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request",
        )
        .into_response(),
        Ok(Claim::InFlight) => {
            ApiError::conflict("A request with this Idempotency-Key is still in progress")
                .into_response()
        }
        Ok(Claim::Replay(stored)) => replay(stored),
        Ok(Claim::Committed) => {
            let lost = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_response_lost",
                "The first request with this Idempotency-Key was carried out, but the server \
                 stopped before it could keep the response; read the resource to see the result",
            );
            // Later retries get this same answer.
            let stored = StoredResponse {
                status: lost.status.as_u16(),
                content_type: Some("application/json".to_string()),
                etag: None,
                body: lost.envelope(),
                redacted: false,
            };
            if let Err(error) = complete(&app.store, scope, &key, &stored).await {
                tracing::error!(%error, "cannot store the idempotent response");
            }
            lost.into_response()
        }
        Ok(Claim::Acquired) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(IdempotencyToken(token));
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let Ok(body) = to_bytes(body, usize::MAX).await else {
                let _ = release(&app.store, scope, &key).await;
                return ApiError::internal("cannot buffer a response").into_response();
            };
            let text = |name| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_string)
            };
            let secrets = parts
                .extensions
                .get::<Secrets>()
                .map(|s| s.0.as_slice())
                .filter(|s| !s.is_empty());
            let kept_body = match secrets {
                None => Some(String::from_utf8_lossy(&body).into_owned()),
                Some(secrets) => redact(&body, secrets),
            };
            let kept = match kept_body {
                Some(kept_body) if keeps(parts.status) => {
                    let stored = StoredResponse {
                        status: parts.status.as_u16(),
                        content_type: text(header::CONTENT_TYPE),
                        etag: text(header::ETAG),
                        body: kept_body,
                        redacted: secrets.is_some(),
                    };
                    complete(&app.store, scope, &key, &stored).await
                }
                _ => release(&app.store, scope, &key).await,
            };
            if let Err(error) = kept {
                tracing::error!(%error, "cannot store the idempotent response");
            }
            Response::from_parts(parts, Body::from(body))
        }
    }
}

/// Whether a response is kept for retries: not a server error, and not a
/// refusal that passes with time (402 quota, 429 rate limit).
fn keeps(status: StatusCode) -> bool {
    !status.is_server_error()
        && status != StatusCode::PAYMENT_REQUIRED
        && status != StatusCode::TOO_MANY_REQUESTS
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if stored.redacted {
        headers.insert("idempotent-redacted", HeaderValue::from_static("true"));
    }
    for (name, value) in [
        (header::CONTENT_TYPE, stored.content_type),
        (header::ETAG, stored.etag),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_replaced_wherever_they_are() {
        let body =
            br#"{"data":{"key":"pal_live_x","api_key":{"key":"pal_live_x"},"name":"pal_live_y"}}"#;
        let kept = super::redact(body, &["pal_live_x".to_string()]).expect("JSON");
        assert!(!kept.contains("pal_live_x"), "{kept}");
        assert!(kept.contains("pal_live_y") && kept.contains(super::REDACTED));
        assert_eq!(super::redact(b"not json", &["x".to_string()]), None);
    }
}
