//! Webhooks over GraphQL (`app::webhooks`), scope `webhooks:manage`:
//! `webhooks`, `webhook`, `webhookDeliveries`, `webhookStats`, and the
//! mutations `enableWebhook`, `disableWebhook`, `sendWebhookTest` and
//! `retryWebhookDelivery`. Creating an endpoint and rotating its secret
//! (the two answers that carry a secret) stay REST, where the idempotency
//! store keeps the secret redacted.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputObject, Object};

use super::error::GraphqlResult as _;
use super::types::{list_cost, page_connection, window, Total};
use super::{app, authorized};
use crate::app::auth::WebhooksManage;
use crate::app::webhooks::{self, DeliveryQuery};
use crate::app::Error;
use crate::views::webhooks::{DeliveryView, TestView, WebhookStatsView, WebhookView};

/// What `webhookDeliveries` filters by.
#[derive(InputObject, Default)]
pub struct WebhookDeliveryFilter {
    /// `success`, `failed` or `pending`.
    pub status: Option<String>,
    /// A message type (`finding.created`, …, `webhook.test`).
    pub event_type: Option<String>,
    /// RFC 3339: messages about events since then.
    pub since: Option<String>,
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The environment's webhook endpoints, oldest first.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, WebhookView, Total, EmptyFields>> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        let window = window(first, after)?;
        let page = webhooks::list(app(ctx), &caller, window).await.graphql()?;
        Ok(page_connection(window, page))
    }

    /// One endpoint; null when there is none in this environment.
    async fn webhook(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<WebhookView>> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        match webhooks::get(app(ctx), &caller, &id).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(error).graphql(),
        }
    }

    /// An endpoint's deliveries, newest event first, with their attempts.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        id: String,
        filter: Option<WebhookDeliveryFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, DeliveryView, Total, EmptyFields>> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        let window = window(first, after)?;
        let filter = filter.unwrap_or_default();
        let query = DeliveryQuery {
            status: filter.status,
            event_type: filter.event_type,
            since: filter.since,
        };
        let page = webhooks::deliveries(app(ctx), &caller, &id, query, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// An endpoint's figures.
    async fn webhook_stats(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<WebhookStatsView> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        Ok(webhooks::stats(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    async fn enable_webhook(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<WebhookView> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        Ok(webhooks::enable(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }

    async fn disable_webhook(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<WebhookView> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        Ok(webhooks::disable(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }

    /// Sends a `webhook.test` message through the real path.
    async fn send_webhook_test(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<TestView> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        let message_id = webhooks::send_test(app(ctx), &caller, &id)
            .await
            .graphql()?;
        Ok(TestView { message_id })
    }

    /// Attempts a delivery again now.
    async fn retry_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        id: String,
        delivery_id: String,
    ) -> async_graphql::Result<DeliveryView> {
        let caller = authorized::<WebhooksManage>(ctx)?;
        Ok(webhooks::retry(app(ctx), &caller, &id, &delivery_id)
            .await
            .graphql()?
            .into())
    }
}
