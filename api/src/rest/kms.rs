//! `/v1/kms`: KMS analytics (`/analytics`: usage, alert rules and their
//! alerts) and crypto agility (`/crypto-agility`: the policy, inventories,
//! migration plans and readiness), over the keys view. Scope `keys:admin`.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::{text, time, ApiQuery};
use super::{ApiError, ApiJson, Envelope};
use crate::app::auth::KeysAdmin;
use crate::app::kms::{self, Bucketing};
use crate::app::kms_alerts::{self, CreateAlertRuleRequest, UpdateAlertRuleRequest};
use crate::app::kms_migrations::{self, CreateMigrationPlanRequest, UpdateMigrationPlanRequest};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::kms::{
    AlertRuleView, AlertView, AlgorithmInventory, ApplicationUsage, KeySummary, MigrationPlanView,
    MigrationReadinessView, PolicyRow, PqcAdoption, RiskAssessment, UsageAnalytics,
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
        .routes(routes!(create_alert_rule, list_alert_rules))
        .routes(routes!(
            get_alert_rule,
            update_alert_rule,
            delete_alert_rule
        ))
        .routes(routes!(list_alerts))
        .routes(routes!(acknowledge_alert))
        .routes(routes!(create_migration_plan, list_migration_plans))
        .routes(routes!(get_migration_plan, update_migration_plan))
        .routes(routes!(migration_readiness))
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

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)";

/// Paging of a KMS list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PagingQuery {
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
}

#[utoipa::path(post, path = "/v1/kms/analytics/alert-rules", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. A rule over key usage: `operation_count`, `bytes_processed` or `error_rate` (0–1) compared `gt` or `lt` with a threshold over the clock hour (`1h`) or the UTC day (`24h`), for some keys or all (`key_ids` empty). `gt` is judged as usage arrives; `lt` on a window that has ended. Each (rule, key, window) raises at most one alert (`KmsAlertTriggered`, in the audit trail).",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = CreateAlertRuleRequest,
    responses((status = 201, description = "The new rule", body = Success<AlertRuleView>), KeyErrors, BodyErrors,
              (status = 409, description = "The environment holds 100 rules", body = ErrorEnvelope)))]
pub async fn create_alert_rule(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateAlertRuleRequest>,
) -> Result<Envelope<AlertRuleView>, ApiError> {
    let rule = kms_alerts::create_rule(&state.app, &caller, request).await?;
    Ok(Envelope::created(rule.into()))
}

#[utoipa::path(get, path = "/v1/kms/analytics/alert-rules", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The environment's alert rules, newest first.",
    params(PagingQuery),
    responses((status = 200, description = "A page of rules", body = Success<Vec<AlertRuleView>>), KeyErrors, ReadErrors))]
pub async fn list_alert_rules(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PagingQuery>,
) -> Result<Envelope<Vec<AlertRuleView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = kms_alerts::list_rules(&state.app, &caller, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/kms/analytics/alert-rules/{id}", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. One alert rule.",
    params(("id" = String, Path, description = "Rule id (kar_…)")),
    responses((status = 200, description = "The rule", body = Success<AlertRuleView>), KeyErrors, ReadErrors))]
pub async fn get_alert_rule(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<AlertRuleView>, ApiError> {
    Ok(Envelope::ok(
        kms_alerts::get_rule(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(patch, path = "/v1/kms/analytics/alert-rules/{id}", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Changes a rule; absent fields are left as they are.",
    params(("id" = String, Path, description = "Rule id (kar_…)"), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdateAlertRuleRequest,
    responses((status = 200, description = "The rule", body = Success<AlertRuleView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such rule", body = ErrorEnvelope)))]
pub async fn update_alert_rule(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateAlertRuleRequest>,
) -> Result<Envelope<AlertRuleView>, ApiError> {
    let rule = kms_alerts::update_rule(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(rule.into()))
}

#[utoipa::path(delete, path = "/v1/kms/analytics/alert-rules/{id}", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Deletes a rule; the alerts it raised stay. Answers the rule as it was.",
    params(("id" = String, Path, description = "Rule id (kar_…)"), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The deleted rule", body = Success<AlertRuleView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such rule", body = ErrorEnvelope)))]
pub async fn delete_alert_rule(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<AlertRuleView>, ApiError> {
    let rule = kms_alerts::delete_rule(&state.app, &caller, &id).await?;
    Ok(Envelope::ok(rule.into()))
}

/// The query of `GET /v1/kms/analytics/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `true` or `false`; both when absent.
    #[param(value_type = Option<bool>)]
    acknowledged: Option<String>,
    /// Comma list of `critical`, `high`, `medium`, `low`, `info`.
    severity: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
}

#[utoipa::path(get, path = "/v1/kms/analytics/alerts", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Alerts the rules raised, newest first. This replica's usage is flushed and judged first.",
    params(AlertsQuery),
    responses((status = 200, description = "A page of alerts", body = Success<Vec<AlertView>>), KeyErrors, ReadErrors))]
pub async fn list_alerts(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Envelope<Vec<AlertView>>, ApiError> {
    let acknowledged = match text(&query.acknowledged).as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "acknowledged",
                "must be true or false",
            ))
        }
    };
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page =
        kms_alerts::alerts(&state.app, &caller, acknowledged, &query.severity, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(post, path = "/v1/kms/analytics/alerts/{id}/acknowledge", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Acknowledges an alert, once (409 `invalid_transition` the second time).",
    params(("id" = String, Path, description = "Alert id (kal_…)"), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The alert", body = Success<AlertView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such alert", body = ErrorEnvelope),
              (status = 409, description = "Acknowledged already", body = ErrorEnvelope)))]
pub async fn acknowledge_alert(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<AlertView>, ApiError> {
    let alert = kms_alerts::acknowledge(&state.app, &caller, &id).await?;
    Ok(Envelope::ok(alert.into()))
}

fn plan(found: kms_migrations::PlanWithProgress, created: bool) -> Envelope<MigrationPlanView> {
    let view = MigrationPlanView::from(found);
    let version = usize::try_from(view.version).unwrap_or(0);
    if created {
        Envelope::created(view).with_etag(version)
    } else {
        Envelope::ok(view).with_etag(version)
    }
}

#[utoipa::path(post, path = "/v1/kms/crypto-agility/migration-plans", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. A draft plan: a target algorithm per category (signing, encryption, key_exchange) and a scope (`key_ids` or `algorithms`). Activate it with PATCH `{\"status\": \"active\"}`; while active, quantum-vulnerable signing and key-exchange keys in scope are `crypto` findings until migrated.",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = CreateMigrationPlanRequest,
    responses((status = 201, description = "The new plan with its progress", body = Success<MigrationPlanView>), KeyErrors, BodyErrors))]
pub async fn create_migration_plan(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateMigrationPlanRequest>,
) -> Result<Envelope<MigrationPlanView>, ApiError> {
    let found = kms_migrations::create_plan(&state.app, &caller, request).await?;
    Ok(plan(found, true))
}

/// The query of `GET /v1/kms/crypto-agility/migration-plans`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlansQuery {
    /// Comma list of `draft`, `active`, `completed`, `cancelled`.
    status: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/migration-plans", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The environment's migration plans with their progress, newest first.",
    params(PlansQuery),
    responses((status = 200, description = "A page of plans", body = Success<Vec<MigrationPlanView>>), KeyErrors, ReadErrors))]
pub async fn list_migration_plans(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PlansQuery>,
) -> Result<Envelope<Vec<MigrationPlanView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = kms_migrations::list_plans(&state.app, &caller, &query.status, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/migration-plans/{id}", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. One plan with its progress: keys in scope, and those destroyed or replaced (`replaced_by`) by a key on the target algorithm.",
    params(("id" = String, Path, description = "Plan id (kmp_…)")),
    responses((status = 200, description = "The plan", body = Success<MigrationPlanView>, headers(("ETag" = String, description = "The plan's version"))), KeyErrors, ReadErrors))]
pub async fn get_migration_plan(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<MigrationPlanView>, ApiError> {
    let found = kms_migrations::get_plan(&state.app, &caller, &id).await?;
    Ok(plan(found, false))
}

#[utoipa::path(patch, path = "/v1/kms/crypto-agility/migration-plans/{id}", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Changes a draft or active plan's name, targets or scope, and/or moves it: `status` draft → active → completed, or draft/active → cancelled (409 `invalid_transition` otherwise).",
    params(("id" = String, Path, description = "Plan id (kmp_…)"), ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdateMigrationPlanRequest,
    responses((status = 200, description = "The plan", body = Success<MigrationPlanView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such plan", body = ErrorEnvelope),
              (status = 409, description = "Not in a state that allows it", body = ErrorEnvelope)))]
pub async fn update_migration_plan(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateMigrationPlanRequest>,
) -> Result<Envelope<MigrationPlanView>, ApiError> {
    let found = kms_migrations::update_plan(&state.app, &caller, &id, request).await?;
    Ok(plan(found, false))
}

#[utoipa::path(get, path = "/v1/kms/crypto-agility/migration-readiness", tag = "kms", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Readiness for a quantum computer, 0–100: 60 % the share of quantum-vulnerable keys destroyed or replaced, 25 % the share of live signing and key-exchange keys that are post-quantum, 15 % the share of live keys not on a deprecated or forbidden algorithm (docs/crypto-policy.md).",
    responses((status = 200, description = "The readiness score", body = Success<MigrationReadinessView>), KeyErrors, ReadErrors))]
pub async fn migration_readiness(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
) -> Result<Envelope<MigrationReadinessView>, ApiError> {
    let readiness = kms_migrations::readiness(&state.app, &caller).await?;
    Ok(Envelope::ok(readiness.into()))
}
