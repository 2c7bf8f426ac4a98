//! The dispatcher: the feed consumer that writes the outbox.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use palisade_domain::webhook::{WebhookEvent, WebhookEventType, WebhookSpec};
use palisade_projections::{
    message_type, FeedEvent, FeedPosition, ProjectionError, WebhookRow, WebhooksProjection,
};

use super::{delivery_id, Message, MessageSource, Wanted, TEST_EVENT_TYPE};
use crate::projection::{FeedConsumer, RunnerError};
use crate::readmodel::pending::insert_rows;
use crate::readmodel::sql::Value;
use crate::readmodel::webhooks::all_webhooks;
use crate::readmodel::{timestamp, BatchTransaction};
use crate::scheduler::Clock;
use crate::Store;

/// How long the dispatcher waits for the views it reads before it gives
/// the batch up (the runner retries it with backoff).
const VIEW_PATIENCE: Duration = Duration::from_secs(30);

/// A batch's messages, each with the endpoints it goes to.
type Routed = Vec<(Message, Vec<String>)>;

/// An endpoint as it routed one event: its spec then.
type Candidate<'e> = (&'e WebhookRow, &'e WebhookSpec);

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
        let endpoints = all_webhooks(self.store.read_pool())
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
                    .filter(|candidate| receives(candidate, &message))
                    .map(|(endpoint, _)| endpoint.id.clone())
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
/// may want them: its partition's, existing and enabled when it happened,
/// each with its spec then.
fn wanted_by<'e>(
    event: &FeedEvent,
    endpoints: &'e [WebhookRow],
) -> Option<(Vec<Wanted>, Vec<Candidate<'e>>)> {
    let tenant_id = event.metadata.get("tenant_id")?;
    let environment = event.metadata.get("environment")?;
    let enabled_then = |endpoint: &'e WebhookRow| match endpoint.routing_at(event.position) {
        Some((true, spec)) => Some((endpoint, spec)),
        _ => None,
    };
    if event.aggregate_type == "Webhook" && event.event_type == "WebhookTestRequested" {
        let endpoint = endpoints.iter().find(|e| e.id == event.aggregate_id)?;
        let candidate = enabled_then(endpoint)?;
        let wanted = vec![Wanted {
            event_type: TEST_EVENT_TYPE.to_string(),
            only_webhook: Some(endpoint.id.clone()),
        }];
        return Some((wanted, vec![candidate]));
    }
    let candidates: Vec<Candidate<'e>> = endpoints
        .iter()
        .filter(|endpoint| {
            endpoint.tenant_id == *tenant_id && endpoint.environment.as_str() == environment
        })
        .filter_map(enabled_then)
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let mut types = BTreeSet::new();
    for t in message_type(event)
        .into_iter()
        .chain([WebhookEventType::AuditEvent])
    {
        if candidates.iter().any(|(_, spec)| spec.subscribes_to(t)) {
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

/// Whether an endpoint receives `message`: a test message for it, or a
/// message of a type it subscribed to that passes its filter (as its spec
/// was when the event happened).
fn receives((endpoint, spec): &Candidate<'_>, message: &Message) -> bool {
    if let Some(only) = &message.only_webhook {
        return *only == endpoint.id;
    }
    let Ok(event_type) = message.event_type.parse::<WebhookEventType>() else {
        return false;
    };
    if !spec.subscribes_to(event_type) {
        return false;
    }
    let filter = &spec.filter;
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

    /// Less than a process manager's: what it writes is what a receiver
    /// waits for (the feed-to-delivery latency).
    fn gather(&self) -> Duration {
        Duration::from_millis(10)
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
        insert_rows(
            &mut tx,
            "webhook_messages (message_id, tenant_id, environment, event_type,
                               feed_tx, position, occurred_at, payload)",
            "ON CONFLICT (message_id) DO NOTHING",
            &routed,
            |(message, _)| {
                let mut row = vec![Value::Text(message.message_id.clone())];
                row.extend(about(message));
                row.push(Value::Text(message.payload.clone()));
                Ok(row)
            },
        )
        .await
        .map_err(|e| Self::failed(last.position, format!("writing the outbox: {e}")))?;
        let deliveries: Vec<(&Message, &String)> = routed
            .iter()
            .flat_map(|(message, endpoints)| endpoints.iter().map(move |id| (message, id)))
            .collect();
        insert_rows(
            &mut tx,
            "webhook_deliveries (delivery_id, webhook_id, message_id, tenant_id, environment,
                                 event_type, feed_tx, position, occurred_at, status, attempts,
                                 next_attempt_at, created_at)",
            "ON CONFLICT (delivery_id) DO NOTHING",
            &deliveries,
            |(message, webhook_id)| {
                let mut row = vec![
                    Value::Text(delivery_id(&message.message_id, webhook_id)),
                    Value::Text((*webhook_id).clone()),
                    Value::Text(message.message_id.clone()),
                ];
                row.extend(about(message));
                row.extend([
                    Value::Text("pending".to_string()),
                    Value::Int(0),
                    Value::Text(now.clone()),
                    Value::Text(now.clone()),
                ]);
                Ok(row)
            },
        )
        .await
        .map_err(|e| Self::failed(last.position, format!("writing the outbox: {e}")))?;
        for event in batch.iter().filter(|e| e.aggregate_type == "Webhook") {
            destroy_after(event, &mut tx).await?;
        }
        Ok(tx)
    }
}

/// The columns a message and its deliveries share: tenant, environment,
/// type, feed position (tx, position), and when its event happened.
fn about(message: &Message) -> [Value; 6] {
    [
        Value::Text(message.partition.tenant_id.clone()),
        Value::Text(message.partition.environment.as_str().to_string()),
        Value::Text(message.event_type.clone()),
        Value::Int(message.position.tx),
        Value::Int(message.position.position),
        Value::Text(timestamp(&message.occurred_at)),
    ]
}

/// What a webhook event leaves to destroy, in the transaction of the
/// dispatcher's checkpoint: a deleted endpoint's signing secrets and
/// outbox rows, a rotation's retired secret. The request that issued the
/// command destroys them at once too; this makes sure a crash between
/// its command and its cleanup leaves nothing behind.
async fn destroy_after(event: &FeedEvent, tx: &mut BatchTransaction) -> Result<(), RunnerError> {
    let webhook_id = &event.aggregate_id;
    match event.event_type.as_str() {
        "WebhookDeleted" => {
            super::secrets::delete_in(tx, webhook_id, &[]).await?;
            super::outbox::forget_webhook_in(tx, webhook_id).await?;
        }
        "WebhookSecretRotated" => {
            if let Ok(WebhookEvent::WebhookSecretRotated {
                retired_secret_id: Some(retired),
                ..
            }) = event.decode::<WebhookEvent>()
            {
                super::secrets::delete_in(tx, webhook_id, &[retired]).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use palisade_domain::webhook::WebhookStatus;
    use palisade_projections::Routing;
    use serde_json::json;

    use super::*;

    fn at(position: i64) -> FeedPosition {
        FeedPosition { tx: 0, position }
    }

    fn finding_ingested(position: i64) -> FeedEvent {
        FeedEvent {
            position: at(position),
            aggregate_type: "Finding".into(),
            aggregate_id: format!("f{position}"),
            sequence: 1,
            event_type: "FindingIngested".into(),
            event_version: "1".into(),
            payload: json!({}),
            metadata: HashMap::from([
                ("tenant_id".to_string(), "t1".to_string()),
                ("environment".to_string(), "live".to_string()),
            ]),
            recorded_at_ms: 0,
        }
    }

    /// An endpoint created at 10, subscribed to every type, disabled at
    /// 20 (the view as a lagging dispatcher finds it: disabled now).
    fn disabled_at_20() -> WebhookRow {
        let mut row: WebhookRow = serde_json::from_value(json!({
            "id": "wh1", "tenant_id": "t1", "environment": "live",
            "spec": {"url": "http://example.com/hook", "event_types": []},
            "status": "enabled", "disabled_by": null, "disabled_at": null,
            "secret_id": "whs_1", "previous_secret_id": null, "previous_valid_until": null,
            "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "created_in_feed": {"tx": 0, "position": 10}, "version": 2
        }))
        .unwrap();
        row.routing = vec![
            Routing {
                since: at(10),
                enabled: true,
                spec: row.spec.clone(),
            },
            Routing {
                since: at(20),
                enabled: false,
                spec: row.spec.clone(),
            },
        ];
        row.status = WebhookStatus::Disabled;
        row
    }

    #[test]
    fn given_an_endpoint_disabled_later_when_an_earlier_event_is_routed_then_it_still_goes_there() {
        let endpoints = [disabled_at_20()];
        let (wanted, to) = wanted_by(&finding_ingested(15), &endpoints).expect("routed");
        assert_eq!(to.len(), 1);
        assert!(wanted.iter().any(|w| w.event_type == "finding.created"));
    }

    #[test]
    fn given_an_endpoint_disabled_when_a_later_event_is_routed_then_it_goes_nowhere() {
        let endpoints = [disabled_at_20()];
        assert!(wanted_by(&finding_ingested(25), &endpoints).is_none());
        assert!(
            wanted_by(&finding_ingested(5), &endpoints).is_none(),
            "before it existed"
        );
    }

    #[test]
    fn given_another_tenants_endpoint_when_routed_then_it_goes_nowhere() {
        let mut endpoint = disabled_at_20();
        endpoint.tenant_id = "t2".into();
        assert!(wanted_by(&finding_ingested(15), &[endpoint]).is_none());
    }
}
