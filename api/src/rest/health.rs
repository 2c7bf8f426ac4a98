use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::openapi::{ErrorEnvelope, Success};
use super::{ApiError, Envelope};
use crate::server::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
    version: &'static str,
    store: &'static str,
}

/// `GET /v1/health`: no auth; 200 while the store answers.
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

async fn sqlx_ping(state: &AppState) -> Result<(), ApiError> {
    state.app.store.feed_head().await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "health check: store unreachable");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The store is unreachable",
        )
    })
}
