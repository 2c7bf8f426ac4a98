use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{ErrorEnvelope, Success};
use super::{ApiError, Envelope};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    store: &'static str,
}

/// `GET /v1/health`: no auth; 200 while the store answers, 503 within a
/// second when it does not.
#[utoipa::path(get, path = "/v1/health", tag = "health",
    responses((status = 200, description = "The service and its store answer", body = Success<Health>),
              (status = 503, description = "The store does not answer", body = ErrorEnvelope)))]
pub async fn health(State(state): State<AppState>) -> Result<Envelope<Health>, ApiError> {
    sqlx_ping(&state).await?;
    Ok(Envelope::ok(Health {
        status: "healthy",
        version: env!("CARGO_PKG_VERSION"),
        store: state.app.store.kind().as_str(),
    }))
}

/// 503 within a second when the store does not answer: at once while the
/// circuit is open, else after one probe of at most
/// [`palisade_infra::store::PROBE_TIMEOUT`].
async fn sqlx_ping(state: &AppState) -> Result<(), ApiError> {
    let store = &state.app.store;
    if store.available() && store.probe(palisade_infra::store::PROBE_TIMEOUT).await {
        return Ok(());
    }
    Err(ApiError::store_unavailable())
}
