//! `GET /v1/whoami`: the caller as its API key stands for it. Any valid
//! key may ask; it reads no read model beyond authentication.

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{KeyErrors, Success};
use super::{ApiError, Envelope};
use crate::app::{auth, RequestContext};
use crate::state::AppState;
use crate::views::tenants::WhoAmI;

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(whoami))
}

#[utoipa::path(get, path = "/v1/whoami", tag = "api-keys", security(("api_key" = []), ("bearer_api_key" = [])), description = "Any valid key: its tenant, id, principal, scopes, environment and the tenant's plan.",
    responses((status = 200, description = "The caller", body = Success<WhoAmI>), KeyErrors))]
pub async fn whoami(context: RequestContext) -> Result<Envelope<WhoAmI>, ApiError> {
    Ok(Envelope::ok(auth::whoami(&context).into()))
}
