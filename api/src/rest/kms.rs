//! `/v1/kms`: KMS analytics (`/analytics`) and crypto agility
//! (`/crypto-agility`), read models over the keys view. Scope `keys:admin`.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi::{KeyErrors, ReadErrors, Success};
use super::query::{text, time, ApiQuery};
use super::{ApiError, Envelope};
use crate::app::auth::KeysAdmin;
use crate::app::kms::{self, Bucketing};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::kms::{
    AlgorithmInventory, ApplicationUsage, KeySummary, PolicyRow, PqcAdoption, RiskAssessment,
    UsageAnalytics,
};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(usage))
        .routes(routes!(applications))
        .routes(routes!(key_summary))
        .routes(routes!(policy))
        .routes(routes!(algorithm_usage))
        .routes(routes!(pqc_adoption))
        .routes(routes!(risk_assessment))
}

/// The query of `GET /v1/kms/analytics/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// One key (id or name); all the caller's keys when absent.
    key_id: Option<String>,
    /// One operation (`encrypt`, `decrypt`, `sign`, …).
    operation: Option<String>,
    /// `hour` (default), `day` or `week` (ISO weeks, from Monday).
    granularity: Option<String>,
    /// RFC 3339; 7 days before `until` by default.
    since: Option<String>,
    /// RFC 3339; now by default; at most 366 days after `since`.
    until: Option<String>,
}

#[utoipa::path(get, path = "/v1/kms/analytics/usage", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Operations per bucket, key and operation, with a summary. Counts are flushed from every replica's memory once a minute (this replica's first).",
    params(UsageQuery),
    responses((status = 200, description = "Usage buckets and their summary", body = Success<UsageAnalytics>), KeyErrors, ReadErrors))]
pub async fn usage(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Envelope<UsageAnalytics>, ApiError> {
    let bucketing = Bucketing::parse(text(&query.granularity).as_deref())?;
    let analytics = kms::usage(
        &state.app,
        &caller,
        text(&query.key_id),
        text(&query.operation),
        bucketing,
        time("since", &query.since)?,
        time("until", &query.until)?,
    )
    .await?;
    Ok(Envelope::ok(analytics.into()))
}

/// A time range: `since` and `until` (RFC 3339).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// RFC 3339; 30 days before `until` by default.
    since: Option<String>,
    /// RFC 3339; now by default; at most 366 days after `since`.
    until: Option<String>,
}

#[utoipa::path(get, path = "/v1/kms/analytics/applications", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Per application (X-Palisade-Application, else the API key's principal): the keys it used, its last access and its operations, most active first.",
    params(RangeQuery),
    responses((status = 200, description = "Applications", body = Success<Vec<ApplicationUsage>>), KeyErrors, ReadErrors))]
pub async fn applications(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Envelope<Vec<ApplicationUsage>>, ApiError> {
    let since = time("since", &query.since)?;
    let until = time("until", &query.until)?;
    let applications = kms::applications(&state.app, &caller, since, until).await?;
    Ok(Envelope::ok(
        applications.into_iter().map(Into::into).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/kms/analytics/keys/{id}/summary", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. One key's operations by operation and its top five applications.",
    params(("id" = String, Path, description = "Key id (key_…) or name"), RangeQuery),
    responses((status = 200, description = "The key's usage summary", body = Success<KeySummary>), KeyErrors, ReadErrors))]
pub async fn key_summary(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Envelope<KeySummary>, ApiError> {
    let since = time("since", &query.since)?;
    let until = time("until", &query.until)?;
    let summary = kms::key_summary(&state.app, &caller, &id, since, until).await?;
    Ok(Envelope::ok(summary.into()))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/policy", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The crypto policy: each algorithm's category, status, quantum risk, replacement and rationale (docs/crypto-policy.md).",
    responses((status = 200, description = "The policy", body = Success<Vec<PolicyRow>>), KeyErrors))]
pub async fn policy(caller: Authorized<KeysAdmin>) -> Result<Envelope<Vec<PolicyRow>>, ApiError> {
    Ok(Envelope::ok(
        kms::crypto_policy(&caller)
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/algorithm-usage", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Every algorithm of the policy with the caller's keys and operations on it; the post-quantum adoption rate (PQ keys / keys not destroyed) and the share of operations on quantum-vulnerable algorithms.",
    params(RangeQuery),
    responses((status = 200, description = "The algorithm inventory", body = Success<AlgorithmInventory>), KeyErrors, ReadErrors))]
pub async fn algorithm_usage(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Envelope<AlgorithmInventory>, ApiError> {
    let since = time("since", &query.since)?;
    let until = time("until", &query.until)?;
    let inventory = kms::algorithm_usage(&state.app, &caller, since, until).await?;
    Ok(Envelope::ok(inventory.into()))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/pqc-adoption", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Post-quantum keys now, post-quantum and classical operations per day, keys per algorithm.",
    params(RangeQuery),
    responses((status = 200, description = "Post-quantum adoption", body = Success<PqcAdoption>), KeyErrors, ReadErrors))]
pub async fn pqc_adoption(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RangeQuery>,
) -> Result<Envelope<PqcAdoption>, ApiError> {
    let since = time("since", &query.since)?;
    let until = time("until", &query.until)?;
    let adoption = kms::pqc_adoption(&state.app, &caller, since, until).await?;
    Ok(Envelope::ok(adoption.into()))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/risk-assessment", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Per algorithm: its quantum risk, the policy's recommendation and the caller's keys on it; overall high when any key is on a quantum-vulnerable algorithm.",
    responses((status = 200, description = "The quantum-risk assessment", body = Success<RiskAssessment>), KeyErrors, ReadErrors))]
pub async fn risk_assessment(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
) -> Result<Envelope<RiskAssessment>, ApiError> {
    let assessment = kms::risk_assessment(&state.app, &caller).await?;
    Ok(Envelope::ok(assessment.into()))
}
