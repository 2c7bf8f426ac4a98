//! `/v1/webhooks`: endpoints, their signing secrets, test messages and
//! deliveries (`docs/webhooks.md`). Every route needs `webhooks:manage`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::ApiQuery;
use super::{ApiError, ApiJson, Consistency, Envelope};
use crate::app::auth::WebhooksManage;
use crate::app::webhooks::{
    self, CreateWebhookRequest, CreatedWebhook, DeliveryQuery, ReplayRequest, UpdateWebhookRequest,
};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::webhooks::{
    DeliveryView, EventTypeView, ReplayView, TestView, WebhookStatsView, WebhookView,
    WebhookWithSecretView,
};

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (a new secret shows as [redacted], Idempotent-Redacted: true)";

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(event_types))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(enable_webhook))
        .routes(routes!(disable_webhook))
        .routes(routes!(test_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
        .routes(routes!(replay))
        .routes(routes!(stats))
}

/// The query of the endpoint list: a page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PagingQuery {
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

/// The query of an endpoint's deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `success`, `failed` or `pending`.
    status: Option<String>,
    /// A message type (`finding.created`, …, `webhook.test`).
    event_type: Option<String>,
    /// RFC 3339: messages about events since then.
    since: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
}

fn with_secret(created: CreatedWebhook, status: StatusCode) -> Envelope<WebhookWithSecretView> {
    let secret = created.secret.shown.to_string();
    let view = WebhookWithSecretView {
        webhook: created.webhook.into(),
        secret: secret.clone(),
    };
    Envelope::with_status(status, view).with_secret(&secret)
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Registers an endpoint. The answer holds its signing secret (`whsec_…`), shown this once. The URL's host must resolve to public addresses only: loopback, private, link-local, multicast and unspecified addresses are 422 `unsafe_webhook_url` (unless the server runs with PALISADE_WEBHOOKS_ALLOW_PRIVATE=true). An environment holds at most 100 endpoints.",
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = CreateWebhookRequest,
    responses((status = 201, description = "The endpoint, with its secret", body = Success<WebhookWithSecretView>), KeyErrors, BodyErrors,
              (status = 409, description = "The environment holds 100 endpoints", body = ErrorEnvelope)))]
pub async fn create_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateWebhookRequest>,
) -> Result<Envelope<WebhookWithSecretView>, ApiError> {
    let created = webhooks::create(&state.app, &caller, request).await?;
    Ok(with_secret(created, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. The environment's endpoints, oldest first (never their secrets).",
    params(PagingQuery),
    responses((status = 200, description = "A page of endpoints", body = Success<Vec<WebhookView>>), KeyErrors, ReadErrors))]
pub async fn list_webhooks(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PagingQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<WebhookView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = webhooks::list(&state.app, &caller, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/webhooks/event-types", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Every message type an endpoint can subscribe to, with a sample body each.",
    responses((status = 200, description = "The catalogue", body = Success<Vec<EventTypeView>>), KeyErrors))]
pub async fn event_types(
    _caller: Authorized<WebhooksManage>,
) -> Result<Envelope<Vec<EventTypeView>>, ApiError> {
    Ok(Envelope::ok(
        palisade_domain::webhook::WebhookEventType::ALL
            .iter()
            .map(|t| EventTypeView::from(*t))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. One endpoint.",
    params(("id" = String, Path, description = "Webhook id (whk_…)")),
    responses((status = 200, description = "The endpoint", body = Success<WebhookView>), KeyErrors, ReadErrors))]
pub async fn get_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<WebhookView>, ApiError> {
    Ok(Envelope::ok(
        webhooks::get(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Absent fields stay as they are; `null` clears `description`, `filter` and `rate_limit_per_second`. A new URL is judged as on registration.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = UpdateWebhookRequest,
    responses((status = 200, description = "The endpoint", body = Success<WebhookView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn update_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateWebhookRequest>,
) -> Result<Envelope<WebhookView>, ApiError> {
    let webhook = webhooks::update(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(webhook.into()))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Deletes the endpoint, its signing secrets and its delivery history; its audit stays. Answers the endpoint as it was.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The endpoint as it was", body = Success<WebhookView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn delete_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<WebhookView>, ApiError> {
    let was = webhooks::delete(&state.app, &caller, &id).await?;
    Ok(Envelope::ok(was.into()))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. A new signing secret, shown this once. For 24 hours the previous one signs too: each message carries two `v1,` signatures, space-separated. A second rotation within them retires the oldest.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The endpoint, with its new secret", body = Success<WebhookWithSecretView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn rotate_secret(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<WebhookWithSecretView>, ApiError> {
    let rotated = webhooks::rotate_secret(&state.app, &caller, &id).await?;
    Ok(with_secret(rotated, StatusCode::OK))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/enable", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Enables a disabled endpoint (whatever disabled it); deliveries still pending are sent. Enabling an enabled endpoint changes nothing.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The endpoint", body = Success<WebhookView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn enable_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<WebhookView>, ApiError> {
    Ok(Envelope::ok(
        webhooks::enable(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/disable", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Disables the endpoint: no message is sent to it, and the messages of events meanwhile are not kept for it (replay them after enabling).",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 200, description = "The endpoint", body = Success<WebhookView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn disable_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<WebhookView>, ApiError> {
    Ok(Envelope::ok(
        webhooks::disable(&state.app, &caller, &id).await?.into(),
    ))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Sends a `webhook.test` message to this endpoint, through the same feed, outbox and senders as every message; its delivery appears under `deliveries`. 409 `invalid_transition` when the endpoint is disabled.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 202, description = "The test message's id", body = Success<TestView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope),
              (status = 409, description = "The endpoint is disabled", body = ErrorEnvelope)))]
pub async fn test_webhook(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<TestView>, ApiError> {
    let message_id = webhooks::send_test(&state.app, &caller, &id).await?;
    Ok(Envelope::with_status(
        StatusCode::ACCEPTED,
        TestView { message_id },
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. The endpoint's deliveries, newest event first, each with its attempts (status code, duration, error, the first 1 KiB of the answer).",
    params(("id" = String, Path, description = "Webhook id (whk_…)"), DeliveriesQuery),
    responses((status = 200, description = "A page of deliveries", body = Success<Vec<DeliveryView>>), KeyErrors, ReadErrors))]
pub async fn list_deliveries(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Envelope<Vec<DeliveryView>>, ApiError> {
    let paging = parse_paging(&query.page, &query.per_page)?;
    let asked = DeliveryQuery {
        status: query.status,
        event_type: query.event_type,
        since: query.since,
    };
    let page = webhooks::deliveries(&state.app, &caller, &id, asked, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/retry", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Attempts the delivery again now (a failed one is pending again); its earlier attempts stay.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("delivery_id" = String, Path, description = "Delivery id (dlv_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    responses((status = 202, description = "The delivery", body = Success<DeliveryView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint or delivery", body = ErrorEnvelope)))]
pub async fn retry_delivery(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> Result<Envelope<DeliveryView>, ApiError> {
    let delivery = webhooks::retry(&state.app, &caller, &id, &delivery_id).await?;
    Ok(Envelope::with_status(StatusCode::ACCEPTED, delivery.into()))
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Sends again every message kept for this endpoint about events since `since`, whatever their outcome.",
    params(("id" = String, Path, description = "Webhook id (whk_…)"),
           ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body = ReplayRequest,
    responses((status = 202, description = "How many deliveries are due again", body = Success<ReplayView>), KeyErrors, BodyErrors,
              (status = 404, description = "No such endpoint", body = ErrorEnvelope)))]
pub async fn replay(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<Envelope<ReplayView>, ApiError> {
    let deliveries = webhooks::replay(&state.app, &caller, &id, request).await?;
    Ok(Envelope::with_status(
        StatusCode::ACCEPTED,
        ReplayView { deliveries },
    ))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/stats", tag = "webhooks", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope webhooks:manage. Deliveries by outcome, the last success, and the median latency of the last 1,000 successful attempts.",
    params(("id" = String, Path, description = "Webhook id (whk_…)")),
    responses((status = 200, description = "The endpoint's figures", body = Success<WebhookStatsView>), KeyErrors, ReadErrors))]
pub async fn stats(
    caller: Authorized<WebhooksManage>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<WebhookStatsView>, ApiError> {
    Ok(Envelope::ok(
        webhooks::stats(&state.app, &caller, &id).await?.into(),
    ))
}
