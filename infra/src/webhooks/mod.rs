//! Webhook delivery (`docs/webhooks.md`): from the feed to each endpoint,
//! at least once, signed per Standard Webhooks.
//!
//! - [`WebhookDispatcher`] (`webhook-dispatcher`) is a feed consumer: one
//!   replica at a time, under its lock, it turns each batch of events into
//!   messages ([`MessageSource`], which the API layer implements: the data
//!   is the object as the REST API shows it) and writes one delivery row
//!   per (message, subscribed endpoint) — the outbox — in the transaction
//!   that moves its checkpoint. An event committed before a crash is
//!   delivered after the restart; one handled twice (after a rewind) makes
//!   the same rows, which are kept once.
//! - [`Senders`] claim due deliveries (a lease: a sender that dies hands its
//!   claims back when the lease ends), post them, record each attempt, and
//!   schedule the next one (the Svix schedule) or give up. Each endpoint
//!   has at most [`IN_FLIGHT_PER_ENDPOINT`] requests in flight, so a slow
//!   one never holds up the others.
//! - [`signature`] is the Standard Webhooks signing algorithm; [`secrets`]
//!   seals the signing secrets; [`guard`] resolves a host and refuses
//!   addresses webhooks may not reach, at every attempt.

mod dispatcher;
pub mod guard;
pub mod outbox;
pub mod secrets;
mod sender;
pub mod signature;

pub use dispatcher::WebhookDispatcher;
pub use sender::{SenderConfig, SenderCounts, Senders};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::finding::Severity;
use palisade_projections::{FeedEvent, FeedPosition};
use sha2::{Digest, Sha256};

use crate::readmodel::Partition;

/// How long one attempt may take, connect to last byte.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How much of an answer's body an attempt keeps.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// Requests in flight to one endpoint at most.
pub const IN_FLIGHT_PER_ENDPOINT: usize = 4;

/// The delays before the 2nd, 3rd, … attempt (the Svix schedule): after
/// the first attempt fails, 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h, 10 h;
/// a delivery whose 8th attempt fails has failed.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// The longest `Retry-After` honoured; a longer one waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// An endpoint whose every attempt failed for this long is disabled.
pub const FAILING_DISABLES_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(5);

/// The message type of a test message, outside the catalogue.
pub const TEST_EVENT_TYPE: &str = palisade_domain::webhook::TEST_EVENT_TYPE;

/// One message as the dispatcher stores it and the senders post it.
#[derive(Debug, Clone)]
pub struct Message {
    /// Stable across retries and re-dispatches: the `webhook-id` header.
    pub message_id: String,
    pub event_type: String,
    pub partition: Partition,
    /// Where the event it tells of is in the feed.
    pub position: FeedPosition,
    pub occurred_at: DateTime<Utc>,
    /// The body: `{"type", "timestamp", "data"}`.
    pub payload: String,
    /// What an endpoint's filter looks at (findings only).
    pub severity: Option<Severity>,
    pub product: Option<String>,
    /// A test message: for this endpoint only, whatever it subscribes to.
    pub only_webhook: Option<String>,
}

/// What a message of one event is about, before its data is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub event_type: String,
    pub only_webhook: Option<String>,
}

/// Turns events into messages: the API layer renders each one's data as
/// its REST API shows the object.
#[async_trait]
pub trait MessageSource: Send + Sync {
    /// The views the data is read from: the dispatcher waits until they
    /// have applied a batch before asking for its messages.
    fn views(&self) -> &'static [&'static str];

    /// The messages of each event, one per entry of its `wanted`, in that
    /// order (the answer has one list per event asked about); an error
    /// hands the batch over again later.
    async fn render(
        &self,
        events: &[(&FeedEvent, Vec<Wanted>)],
    ) -> Result<Vec<Vec<Message>>, String>;
}

/// The id of the message of type `event_type` about `event`: the same
/// whenever the event is dispatched.
pub fn message_id(event: &FeedEvent, event_type: &str) -> String {
    let mut digest = Sha256::new();
    for part in [
        "webhook message",
        &event.aggregate_type,
        &event.aggregate_id,
        &event.sequence.to_string(),
        event_type,
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    format!("msg_{}", hex::encode(&digest.finalize()[..16]))
}

/// The id of the delivery of a message to an endpoint.
pub fn delivery_id(message_id: &str, webhook_id: &str) -> String {
    let mut digest = Sha256::new();
    for part in ["webhook delivery", message_id, webhook_id] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    format!("dlv_{}", hex::encode(&digest.finalize()[..16]))
}
