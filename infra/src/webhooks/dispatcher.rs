//! The dispatcher: the feed consumer that writes the outbox.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use palisade_domain::webhook::WebhookEventType;
use palisade_projections::{
    message_type, FeedEvent, FeedPosition, ProjectionError, WebhookRow, WebhooksProjection,
};

use super::{delivery_id, Message, MessageSource, Wanted, TEST_EVENT_TYPE};
use crate::projection::{FeedConsumer, RunnerError};
use crate::readmodel::webhooks::enabled_webhooks;
use crate::readmodel::{timestamp, BatchTransaction};
use crate::scheduler::Clock;
use crate::Store;

/// How long the dispatcher waits for the views it reads before it gives
/// the batch up (the runner retries it with backoff).
const VIEW_PATIENCE: Duration = Duration::from_secs(30);

/// A batch's messages, each with the endpoints it goes to.
type Routed = Vec<(Message, Vec<String>)>;

/// Writes one delivery per (message, subscribed endpoint), in the
/// transaction that moves its checkpoint.
pub struct WebhookDispatcher {
    store: Store,
    source: Arc<dyn MessageSource>,
    clock: Arc<dyn Clock>,
    /// What `react` worked out for the batch that `handle` writes next.
    prepared: Mutex<Option<(FeedPosition, Routed)>>,
}

impl WebhookDispatcher {
    pub const NAME: &'static str = "webhook-dispatcher";

    pub fn new(store: Store, source: Arc<dyn MessageSource>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            source,
            clock,
            prepared: Mutex::new(None),
        }
    }

    fn failed(position: FeedPosition, message: String) -> RunnerError {
        RunnerError::Projection {
            name: Self::NAME,
            position,
            source: ProjectionError::Failed(message),
        }
    }

    async fn wait_for(&self, views: &[&str], position: FeedPosition) -> Result<(), RunnerError> {
        if crate::projection::wait_until_applied(&self.store, views, position, VIEW_PATIENCE)
            .await?
        {
            return Ok(());
        }
        Err(Self::failed(
            position,
            format!("the views {views:?} did not apply the batch within {VIEW_PATIENCE:?}"),
        ))
    }

    /// The batch's messages and where each goes. With `wait`, first waits
    /// until the views it reads have applied the batch.
    async fn route(&self, batch: &[FeedEvent], wait: bool) -> Result<Routed, RunnerError> {
        let Some(last) = batch.last() else {
            return Ok(Vec::new());
        };
        if wait {
            self.wait_for(&[WebhooksProjection::NAME], last.position)
                .await?;
        }
        let endpoints = enabled_webhooks(self.store.read_pool())
            .await
            .map_err(|e| Self::failed(last.position, format!("reading the endpoints: {e}")))?;
        let tests = batch
            .iter()
            .any(|e| e.aggregate_type == "Webhook" && e.event_type == "WebhookTestRequested");
        if endpoints.is_empty() && !tests {
            return Ok(Vec::new());
        }
        if wait {
            self.wait_for(self.source.views(), last.position).await?;
        }
        let mut asked = Vec::new();
        let mut candidates = Vec::new();
        for event in batch {
            if let Some((wanted, to)) = wanted_by(event, &endpoints) {
                asked.push((event, wanted));
                candidates.push(to);
            }
        }
        if asked.is_empty() {
            return Ok(Vec::new());
        }
        let rendered = self
            .source
            .render(&asked)
            .await
            .map_err(|e| Self::failed(last.position, e))?;
        let mut routed = Vec::new();
        for (messages, to) in rendered.into_iter().zip(candidates) {
            for message in messages {
                let to: Vec<String> = to
                    .iter()
                    .filter(|endpoint| receives(endpoint, &message))
                    .map(|endpoint| endpoint.id.clone())
                    .collect();
                if !to.is_empty() {
                    routed.push((message, to));
                }
            }
        }
        Ok(routed)
    }
}

/// The messages `event` makes for some endpoint, and the endpoints that
/// may want them (its partition's, created before it).
fn wanted_by<'e>(
    event: &FeedEvent,
    endpoints: &'e [WebhookRow],
) -> Option<(Vec<Wanted>, Vec<&'e WebhookRow>)> {
    let tenant_id = event.metadata.get("tenant_id")?;
    let environment = event.metadata.get("environment")?;
    let candidates: Vec<&WebhookRow> = endpoints
        .iter()
        .filter(|endpoint| {
            endpoint.tenant_id == *tenant_id
                && endpoint.environment.as_str() == environment
                && endpoint.created_in_feed < event.position
        })
        .collect();
    if event.aggregate_type == "Webhook" && event.event_type == "WebhookTestRequested" {
        let endpoint = endpoints.iter().find(|e| e.id == event.aggregate_id)?;
        let wanted = vec![Wanted {
            event_type: TEST_EVENT_TYPE.to_string(),
            only_webhook: Some(endpoint.id.clone()),
        }];
        return Some((wanted, vec![endpoint]));
    }
    if candidates.is_empty() {
        return None;
    }
    let mut types = BTreeSet::new();
    for t in message_type(event)
        .into_iter()
        .chain([WebhookEventType::AuditEvent])
    {
        if candidates.iter().any(|e| e.spec.subscribes_to(t)) {
            types.insert(t);
        }
    }
    if types.is_empty() {
        return None;
    }
    let wanted = types
        .into_iter()
        .map(|t| Wanted {
            event_type: t.as_str().to_string(),
            only_webhook: None,
        })
        .collect();
    Some((wanted, candidates))
}

/// Whether `endpoint` receives `message`: a test message for it, or a
/// message of a type it subscribes to that passes its filter.
fn receives(endpoint: &WebhookRow, message: &Message) -> bool {
    if let Some(only) = &message.only_webhook {
        return *only == endpoint.id;
    }
    let Ok(event_type) = message.event_type.parse::<WebhookEventType>() else {
        return false;
    };
    if !endpoint.spec.subscribes_to(event_type) {
        return false;
    }
    let filter = &endpoint.spec.filter;
    let severity_passes = filter.severity.is_empty()
        || message
            .severity
            .is_none_or(|severity| filter.severity.contains(&severity));
    let product_passes = filter.product.is_empty()
        || message
            .product
            .as_ref()
            .is_none_or(|product| filter.product.contains(product));
    severity_passes && product_passes
}

#[async_trait]
impl FeedConsumer for WebhookDispatcher {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    async fn react(&self, batch: &[FeedEvent]) -> Result<(), RunnerError> {
        let routed = self.route(batch, true).await?;
        if let Some(last) = batch.last() {
            *self.prepared.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((last.position, routed));
        }
        Ok(())
    }

    async fn handle(
        &self,
        batch: &[FeedEvent],
        mut tx: BatchTransaction,
    ) -> Result<BatchTransaction, RunnerError> {
        let Some(last) = batch.last() else {
            return Ok(tx);
        };
        let prepared = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let routed = match prepared {
            Some((position, routed)) if position == last.position => routed,
            // Not prepared for this batch: the views have applied it
            // before (it was read once), so no wait is needed.
            _ => self.route(batch, false).await?,
        };
        let now = timestamp(&self.clock.now());
        for (message, endpoints) in &routed {
            let occurred_at = timestamp(&message.occurred_at);
            sqlx::query(
                "INSERT INTO webhook_messages (message_id, tenant_id, environment, event_type,
                                               feed_tx, position, occurred_at, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(&message.message_id)
            .bind(&message.partition.tenant_id)
            .bind(message.partition.environment.as_str())
            .bind(&message.event_type)
            .bind(message.position.tx)
            .bind(message.position.position)
            .bind(&occurred_at)
            .bind(&message.payload)
            .execute(&mut *tx)
            .await?;
            for webhook_id in endpoints {
                sqlx::query(
                    "INSERT INTO webhook_deliveries (delivery_id, webhook_id, message_id, tenant_id,
                                                     environment, event_type, feed_tx, position,
                                                     occurred_at, status, attempts,
                                                     next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10)
                     ON CONFLICT (delivery_id) DO NOTHING",
                )
                .bind(delivery_id(&message.message_id, webhook_id))
                .bind(webhook_id)
                .bind(&message.message_id)
                .bind(&message.partition.tenant_id)
                .bind(message.partition.environment.as_str())
                .bind(&message.event_type)
                .bind(message.position.tx)
                .bind(message.position.position)
                .bind(&occurred_at)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(tx)
    }
}
