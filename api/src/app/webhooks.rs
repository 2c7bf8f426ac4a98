//! Webhook use cases (`docs/webhooks.md`), all with `webhooks:manage`:
//! endpoints, their signing secrets, test messages, and the deliveries
//! with their attempts.
//!
//! A signing secret is made here (`whsec_…`), sealed in its own table
//! before the event that names it is recorded, and answered once: the
//! REST adapter marks it so the idempotency store keeps `[redacted]`.
//! Events, logs and errors never hold it.
//!
//! A URL is judged twice: by the domain (shape, address literals) and
//! here, by resolving its host; an address that webhooks may not reach is
//! 422 `unsafe_webhook_url` (unless `PALISADE_WEBHOOKS_ALLOW_PRIVATE`).
//! The senders judge it again at every attempt.

use chrono::{DateTime, SubsecRound, Utc};
use palisade_domain::finding::Severity;
use palisade_domain::webhook::{
    check_url, DisableCause, UrlProblem, Webhook, WebhookCommand, WebhookError, WebhookEventType,
    WebhookFilter, WebhookSpec, WebhookUpdate,
};
use palisade_domain::{FieldProblem, WebhookId};
use palisade_infra::readmodel::webhooks::{get_webhook, list_webhooks, MAX_WEBHOOKS};
use palisade_infra::readmodel::{Page, Window};
use palisade_infra::webhooks::outbox::{
    self, DeliveryFilter, DeliveryRow, DeliveryStats, DeliveryStatus,
};
use palisade_infra::webhooks::secrets::NewSigningSecret;
use palisade_infra::CommandError;
use palisade_projections::{WebhookRow, WebhooksProjection};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::WebhooksManage;
use super::input::{json_optional_whole, parse_time};
use super::{App, Authorized, Error, Result};

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

// ---------------------------------------------------------------- requests

/// Which messages of the subscribed types an endpoint wants.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterRequest {
    /// Findings of these severities only (`critical`, `high`, …).
    #[serde(default)]
    pub severity: Vec<String>,
    /// Findings of these products only.
    #[serde(default)]
    pub product: Vec<String>,
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `https://…` or `http://…`, at most 2,048 characters, no user name
    /// or password, no fragment; its host must resolve to public addresses.
    pub url: String,
    pub description: Option<String>,
    /// The message types to receive (`GET /v1/webhooks/event-types`);
    /// empty or absent: every type, including types added later.
    #[serde(default)]
    pub event_types: Vec<String>,
    pub filter: Option<FilterRequest>,
    /// 1 to 1,000 messages a second at most (absent: no limit).
    #[serde(default, deserialize_with = "json_optional_whole")]
    pub rate_limit_per_second: Option<u32>,
}

/// `PATCH /v1/webhooks/{id}`: absent fields stay as they are; `null`
/// clears `description`, `filter` and `rate_limit_per_second`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    pub url: Option<String>,
    #[serde(default, deserialize_with = "super::keys::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "super::keys::double_option")]
    #[schema(value_type = Option<FilterRequest>)]
    pub filter: Option<Option<FilterRequest>>,
    #[serde(default, deserialize_with = "super::keys::double_option_whole")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit_per_second: Option<Option<u32>>,
}

/// `POST /v1/webhooks/{id}/replay`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// RFC 3339: every message since then is sent again.
    pub since: String,
}

// ---------------------------------------------------------------- errors

impl From<WebhookError> for Error {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::NotFound => Error::not_found("Webhook not found"),
            WebhookError::AlreadyExists => {
                Error::conflict("The webhook was changed concurrently; retry")
            }
            WebhookError::InvalidState(state) => {
                Error::InvalidTransition(format!("The webhook is {state}"))
            }
            WebhookError::Invalid(problems) => Error::Validation(problems),
            WebhookError::UnsafeUrl(reason) => Error::UnsafeWebhookUrl(capitalized(&reason)),
        }
    }
}

impl From<CommandError<WebhookError>> for Error {
    fn from(error: CommandError<WebhookError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "webhook"),
        }
    }
}

fn capitalized(text: &str) -> String {
    super::keys::capitalized(text)
}

// ---------------------------------------------------------------- parsing

fn event_types_of(names: &[String]) -> Result<Vec<WebhookEventType>> {
    let mut problems = Vec::new();
    let mut types = Vec::with_capacity(names.len());
    if names.len() > WebhookEventType::ALL.len() * 2 {
        return Err(Error::invalid(
            "event_types",
            format!("at most {} types", WebhookEventType::ALL.len()),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        match name.parse::<WebhookEventType>() {
            Ok(t) => types.push(t),
            Err(message) => problems.push(FieldProblem::new(&format!("event_types[{i}]"), message)),
        }
    }
    if problems.is_empty() {
        Ok(types)
    } else {
        Err(Error::Validation(problems))
    }
}

fn filter_of(request: Option<FilterRequest>) -> Result<WebhookFilter> {
    let Some(request) = request else {
        return Ok(WebhookFilter::default());
    };
    let mut problems = Vec::new();
    let mut severity = Vec::new();
    if request.severity.len() > 10 {
        problems.push(FieldProblem::new(
            "filter.severity",
            "at most 10 severities",
        ));
    } else {
        for (i, name) in request.severity.iter().enumerate() {
            match name.parse::<Severity>() {
                Ok(s) => severity.push(s),
                Err(message) => problems.push(FieldProblem::new(
                    &format!("filter.severity[{i}]"),
                    message.to_string(),
                )),
            }
        }
    }
    if problems.is_empty() {
        Ok(WebhookFilter {
            severity,
            product: request.product,
        })
    } else {
        Err(Error::Validation(problems))
    }
}

/// The URL as the domain would keep it, after its host is resolved and
/// every address it resolves to is judged (unless private addresses are
/// allowed, when no lookup is made).
async fn checked_url(app: &App, url: &str) -> Result<()> {
    let parsed = match check_url(url, app.webhooks_allow_private) {
        Ok(parsed) => parsed,
        // The command reports it, with every other problem.
        Err(UrlProblem::Invalid(_)) => return Ok(()),
        Err(UrlProblem::Unsafe(reason)) => {
            return Err(Error::UnsafeWebhookUrl(capitalized(&reason)))
        }
    };
    if app.webhooks_allow_private {
        return Ok(());
    }
    let Some(url::Host::Domain(host)) = parsed.host() else {
        return Ok(());
    };
    let port = parsed.port_or_known_default().unwrap_or(443);
    use palisade_infra::webhooks::guard::{resolve_checked, Refused};
    match resolve_checked(host, port, false).await {
        Ok(_) => Ok(()),
        Err(Refused::Unsafe(reason)) => Err(Error::UnsafeWebhookUrl(capitalized(&reason))),
        Err(Refused::Unresolvable(reason)) => Err(Error::invalid("url", reason)),
    }
}

// ---------------------------------------------------------------- scopes

/// Every type an endpoint may have received under the specs it kept,
/// its current one included; empty (every type) when one of them took
/// every type or older specs were dropped.
fn types_ever_received(row: &WebhookRow) -> Vec<WebhookEventType> {
    let mut types = row.spec.event_types.clone();
    for state in &row.routing {
        if state.spec.event_types.is_empty() {
            return Vec::new();
        }
        types.extend(state.spec.event_types.iter().copied());
    }
    if row.routing_truncated || row.spec.event_types.is_empty() {
        return Vec::new();
    }
    types.sort_by_key(|t| t.as_str());
    types.dedup();
    types
}

/// The scope a key needs to read what messages of `event_type` carry.
fn read_scope(event_type: WebhookEventType) -> palisade_domain::Scope {
    use palisade_domain::Scope;
    use WebhookEventType as T;
    match event_type {
        T::FindingCreated
        | T::FindingUpdated
        | T::FindingSeverityChanged
        | T::FindingStatusChanged
        | T::FindingResolved
        | T::FindingRegressed
        | T::IngestionCompleted
        | T::IngestionFailed => Scope::FindingsRead,
        T::KeyCreated
        | T::KeyRotated
        | T::KeyDisabled
        | T::KeyDeletionScheduled
        | T::KeyDestroyed
        | T::KmsAlert => Scope::KeysAdmin,
        T::SecretVersionCreated | T::SecretVersionDestroyed | T::SecretLeakDetected => {
            Scope::SecretsRead
        }
        T::AccessRequested
        | T::AccessApproved
        | T::AccessDenied
        | T::AccessRevoked
        | T::AccessExpired => Scope::AccessApprove,
        T::TenantApiKeyRevoked => Scope::TenantAdmin,
        T::AuditEvent => Scope::AuditRead,
    }
}

/// A subscription may carry only what its key may read: each type needs
/// its read scope (no types: every type, so every scope). Otherwise a key
/// with `webhooks:manage` alone could read the tenant through an endpoint.
fn require_read_scopes(
    context: &Authorized<WebhooksManage>,
    types: &[WebhookEventType],
) -> Result<()> {
    let all = WebhookEventType::ALL;
    let types = if types.is_empty() { all } else { types };
    for event_type in types {
        let scope = read_scope(*event_type);
        if context.principal.require(scope).is_err() {
            return Err(Error::Forbidden(format!(
                "Subscribing to {} needs the scope {scope} (an empty event_types list subscribes to every type)",
                event_type.as_str()
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- commands

/// A new endpoint and its signing secret (shown this once).
pub struct CreatedWebhook {
    pub webhook: WebhookRow,
    pub secret: NewSigningSecret,
}

async fn settle(app: &App, id: &str, version: usize) -> Result<()> {
    app.await_in_effect(WebhooksProjection::NAME, "Webhook", id, version)
        .await
}

async fn view(app: &App, context: &Authorized<WebhooksManage>, id: &str) -> Result<WebhookRow> {
    get_webhook(app.store.read_pool(), &context.principal.partition(), id)
        .await?
        .ok_or_else(|| Error::not_found("Webhook not found"))
}

pub async fn create(
    app: &App,
    context: &Authorized<WebhooksManage>,
    request: CreateWebhookRequest,
) -> Result<CreatedWebhook> {
    let partition = context.principal.partition();
    let spec = WebhookSpec {
        url: request.url,
        description: request.description,
        event_types: event_types_of(&request.event_types)?,
        filter: filter_of(request.filter)?,
        rate_limit_per_second: request.rate_limit_per_second,
    };
    require_read_scopes(context, &spec.event_types)?;
    checked_url(app, &spec.url).await?;
    let existing = list_webhooks(
        app.store.read_pool(),
        &partition,
        Window {
            offset: 0,
            limit: 1,
        },
    )
    .await?;
    if existing.total >= i64::from(MAX_WEBHOOKS) {
        return Err(Error::conflict(format!(
            "An environment holds at most {MAX_WEBHOOKS} webhooks; delete one"
        )));
    }
    let webhook_id = WebhookId::from_uuid(uuid::Uuid::now_v7());
    let id = webhook_id.to_string();
    let tenant_id = context.principal.tenant_id.to_string();
    let secret = app
        .webhook_secrets
        .create(&app.store, &tenant_id, &id)
        .await
        .map_err(Error::internal)?;
    let command = WebhookCommand::Create {
        webhook_id,
        spec,
        secret_id: secret.secret_id.clone(),
        allow_private: app.webhooks_allow_private,
        at: now(),
    };
    let run = app
        .commands
        .execute::<Webhook>(&id, command, (), &context.metadata())
        .await;
    let version = match run {
        Ok(version) => version,
        Err(error) => {
            // Nothing names the row: it goes.
            if let Err(cleanup) = app.webhook_secrets.delete(&app.store, &id, &[]).await {
                tracing::warn!(error = %cleanup, "cannot delete an unused webhook secret");
            }
            return Err(error.into());
        }
    };
    settle(app, &id, version).await?;
    Ok(CreatedWebhook {
        webhook: view(app, context, &id).await?,
        secret,
    })
}

pub async fn list(
    app: &App,
    context: &Authorized<WebhooksManage>,
    window: impl Into<Window>,
) -> Result<Page<WebhookRow>> {
    Ok(list_webhooks(
        app.store.read_pool(),
        &context.principal.partition(),
        window,
    )
    .await?)
}

pub async fn get(app: &App, context: &Authorized<WebhooksManage>, id: &str) -> Result<WebhookRow> {
    view(app, context, id).await
}

/// Runs a command on an endpoint of the caller's environment and answers
/// the endpoint as the view then shows it.
async fn command(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
    command: WebhookCommand,
) -> Result<WebhookRow> {
    // Another environment's endpoint is not found, like an unknown one.
    view(app, context, id).await?;
    let version = app
        .commands
        .execute::<Webhook>(id, command, (), &context.metadata())
        .await?;
    settle(app, id, version).await?;
    view(app, context, id).await
}

pub async fn update(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
    request: UpdateWebhookRequest,
) -> Result<WebhookRow> {
    // Whoever changes an endpoint (even only its URL) must be able to read
    // what it will receive. A new URL also receives what is pending and
    // what a replay sends again, made under the endpoint's earlier specs:
    // it needs the scopes of those types too.
    let current = view(app, context, id).await?;
    let mut types = match &request.event_types {
        Some(names) => event_types_of(names)?,
        None => current.spec.event_types.clone(),
    };
    let moves = request
        .url
        .as_deref()
        .is_some_and(|url| url.trim() != current.spec.url);
    if moves && !types.is_empty() {
        let ever = types_ever_received(&current);
        if ever.is_empty() {
            types.clear();
        } else {
            types.extend(ever);
        }
    }
    require_read_scopes(context, &types)?;
    if let Some(url) = &request.url {
        checked_url(app, url).await?;
    }
    let update = WebhookUpdate {
        url: request.url,
        description: request.description,
        event_types: request
            .event_types
            .as_deref()
            .map(event_types_of)
            .transpose()?,
        filter: request.filter.map(filter_of).transpose()?,
        rate_limit_per_second: request.rate_limit_per_second,
    };
    let at = now();
    command(
        app,
        context,
        id,
        WebhookCommand::Update {
            update,
            allow_private: app.webhooks_allow_private,
            at,
        },
    )
    .await
}

/// A new signing secret; the previous one keeps signing for 24 hours.
pub async fn rotate_secret(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<CreatedWebhook> {
    let before = view(app, context, id).await?;
    let secret = app
        .webhook_secrets
        .create(&app.store, &before.tenant_id, id)
        .await
        .map_err(Error::internal)?;
    let run = app
        .commands
        .execute::<Webhook>(
            id,
            WebhookCommand::RotateSecret {
                secret_id: secret.secret_id.clone(),
                at: now(),
            },
            (),
            &context.metadata(),
        )
        .await;
    let version = match run {
        Ok(version) => version,
        Err(error) => {
            let unused = [secret.secret_id.clone()];
            if let Err(cleanup) = app.webhook_secrets.delete(&app.store, id, &unused).await {
                tracing::warn!(error = %cleanup, "cannot delete an unused webhook secret");
            }
            return Err(error.into());
        }
    };
    settle(app, id, version).await?;
    // The secret before the previous one signs nothing any more.
    if let Some(retired) = before.previous_secret_id {
        if let Err(error) = app.webhook_secrets.delete(&app.store, id, &[retired]).await {
            tracing::warn!(%error, "cannot delete a retired webhook secret");
        }
    }
    Ok(CreatedWebhook {
        webhook: view(app, context, id).await?,
        secret,
    })
}

pub async fn enable(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<WebhookRow> {
    command(app, context, id, WebhookCommand::Enable { at: now() }).await
}

pub async fn disable(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<WebhookRow> {
    let at = now();
    let cause = DisableCause::Manual;
    command(app, context, id, WebhookCommand::Disable { cause, at }).await
}

/// Deletes the endpoint, its signing secrets and its deliveries: the
/// endpoint as it was.
pub async fn delete(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<WebhookRow> {
    let was = view(app, context, id).await?;
    let version = app
        .commands
        .execute::<Webhook>(
            id,
            WebhookCommand::Delete { at: now() },
            (),
            &context.metadata(),
        )
        .await?;
    settle(app, id, version).await?;
    app.webhook_secrets
        .delete(&app.store, id, &[])
        .await
        .map_err(Error::internal)?;
    outbox::forget_webhook(&app.store, id).await?;
    Ok(was)
}

/// Sends a `webhook.test` message through the feed, the outbox and the
/// senders: its message id.
pub async fn send_test(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<String> {
    let message_id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    command(
        app,
        context,
        id,
        WebhookCommand::SendTest {
            message_id: message_id.clone(),
            at: now(),
        },
    )
    .await?;
    Ok(message_id)
}

// ---------------------------------------------------------------- deliveries

/// What `GET /v1/webhooks/{id}/deliveries` was asked for, as text.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub status: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<String>,
}

pub async fn deliveries(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
    query: DeliveryQuery,
    window: impl Into<Window>,
) -> Result<Page<DeliveryRow>> {
    view(app, context, id).await?;
    let status = query
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| Error::invalid("status", "must be one of success, failed, pending"))
        })
        .transpose()?;
    let event_type = match query.event_type {
        Some(name) if name == palisade_domain::webhook::TEST_EVENT_TYPE => Some(name),
        Some(name) => Some(
            name.parse::<WebhookEventType>()
                .map_err(|message| Error::invalid("event_type", message))?
                .as_str()
                .to_string(),
        ),
        None => None,
    };
    let since = query
        .since
        .as_deref()
        .map(|text| parse_time("since", text))
        .transpose()?;
    let filter = DeliveryFilter {
        status,
        event_type,
        since,
    };
    Ok(outbox::list_deliveries(app.store.read_pool(), id, &filter, window).await?)
}

/// Makes a delivery due now (it keeps its attempts): the delivery.
pub async fn retry(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
    delivery_id: &str,
) -> Result<DeliveryRow> {
    view(app, context, id).await?;
    if !outbox::retry_delivery(&app.store, id, delivery_id, Utc::now()).await? {
        return Err(Error::not_found("Delivery not found"));
    }
    outbox::get_delivery(app.store.read_pool(), id, delivery_id)
        .await?
        .ok_or_else(|| Error::not_found("Delivery not found"))
}

/// Sends every message since `since` again: how many.
pub async fn replay(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
    request: ReplayRequest,
) -> Result<u64> {
    view(app, context, id).await?;
    let since = parse_time("since", &request.since)?;
    Ok(outbox::replay_since(&app.store, id, since, Utc::now()).await?)
}

pub async fn stats(
    app: &App,
    context: &Authorized<WebhooksManage>,
    id: &str,
) -> Result<DeliveryStats> {
    view(app, context, id).await?;
    Ok(outbox::delivery_stats(app.store.read_pool(), id).await?)
}
