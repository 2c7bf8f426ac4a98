//! `?consistency=strong` on any GET (`docs/projections.md`): before the handler reads,
//! wait until every projection has applied the feed's head as of the
//! request's start, so the answer reflects every write acknowledged before
//! it. Bounded by `PALISADE_STRONG_READ_TIMEOUT_MS`: 504 when not met.
//! `eventual` (the default) reads at once.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::ApiError;
use crate::state::AppState;

/// Put in a handler's arguments to honour `?consistency=`.
pub struct Consistency;

fn requested(parts: &Parts) -> Result<bool, ApiError> {
    let query = parts.uri.query().unwrap_or_default();
    let mut strong = false;
    for (name, value) in serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|e| ApiError::invalid_field("query", e.to_string()))?
    {
        if name == "consistency" {
            strong = match value.as_str() {
                "strong" => true,
                "eventual" => false,
                _ => {
                    return Err(ApiError::invalid_field(
                        "consistency",
                        "must be strong or eventual",
                    ))
                }
            };
        }
    }
    Ok(strong)
}

impl FromRequestParts<AppState> for Consistency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !requested(parts)? {
            return Ok(Consistency);
        }
        state.app.await_views(&[]).await?;
        Ok(Consistency)
    }
}
