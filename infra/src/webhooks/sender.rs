//! The senders: claim due deliveries, post them signed, record each
//! attempt, and schedule the next one or give up.
//!
//! Every replica may run them. A claim is a lease (`claimed_until`): a
//! sender that dies mid-attempt hands its claims back when the lease
//! ends, and the delivery is attempted again (at least once; a receiver
//! tells the repeat by its `webhook-id`). Per endpoint, due deliveries are
//! claimed in feed order, at most [`IN_FLIGHT_PER_ENDPOINT`] at a time
//! and within the endpoint's rate limit, so one slow endpoint holds up
//! only itself.
//!
//! Attempt times and the retry schedule follow the [`Clock`] (tests drive
//! it); the `webhook-timestamp` header is the machine's time, which is
//! what a receiver compares it with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use palisade_domain::webhook::{check_url, DisableCause, UrlProblem, Webhook, WebhookCommand};
use palisade_domain::{ActorType, EventMetadata};
use palisade_projections::{FeedPosition, WebhookRow};
use sqlx::Row;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use zeroize::Zeroizing;

use super::guard::{client, refused_in};
use super::secrets::SigningSecrets;
use super::signature::sign;
use super::{
    ATTEMPT_TIMEOUT, FAILING_DISABLES_AFTER, IN_FLIGHT_PER_ENDPOINT, MAX_RETRY_AFTER,
    RESPONSE_EXCERPT_BYTES, RETRY_SCHEDULE,
};
use crate::readmodel::webhooks::enabled_webhooks;
use crate::readmodel::{parse_timestamp, timestamp};
use crate::scheduler::Clock;
use crate::{CommandError, Commands, Store};

/// The actor of the commands the senders issue (disabling an endpoint).
const ACTOR: &str = "system:webhooks";

/// How the senders of one replica work.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// `PALISADE_WEBHOOKS_ALLOW_PRIVATE`.
    pub allow_private: bool,
    /// How long a claim lasts: longer than an attempt may take.
    pub lease: Duration,
    /// How often the senders look for due deliveries when nothing wakes
    /// them (another replica's dispatcher, retries coming due).
    pub poll: Duration,
}

impl SenderConfig {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            lease: ATTEMPT_TIMEOUT + Duration::from_secs(15),
            poll: Duration::from_millis(500),
        }
    }
}

/// What the senders of this replica have done (for `/metrics`).
#[derive(Debug, Default)]
pub struct SenderCounts {
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub refused: AtomicU64,
    pub gave_up: AtomicU64,
}

/// A claimed delivery, ready to post.
struct Claimed {
    delivery_id: String,
    message_id: String,
    attempts: i64,
    payload: String,
    endpoint: Arc<WebhookRow>,
}

/// How one attempt ended.
#[derive(Debug, Default)]
struct Outcome {
    status_code: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
    refused: bool,
}

impl Outcome {
    fn success(&self) -> bool {
        self.status_code.is_some_and(|code| (200..300).contains(&code))
    }

    fn failure(error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// The senders of one replica; cheap to clone.
#[derive(Clone)]
pub struct Senders {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    commands: Commands,
    secrets: SigningSecrets,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    config: SenderConfig,
    /// Requests in flight per endpoint.
    in_flight: Mutex<HashMap<String, usize>>,
    /// Per endpoint: the second (Unix) and how many were sent in it.
    sent_in_second: Mutex<HashMap<String, (i64, u32)>>,
    /// Opened signing secrets, by row id.
    keys: Mutex<HashMap<String, Arc<Zeroizing<Vec<u8>>>>>,
    settled: Notify,
    counts: SenderCounts,
}

impl Senders {
    pub fn new(
        store: Store,
        secrets: SigningSecrets,
        clock: Arc<dyn Clock>,
        config: SenderConfig,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                commands: Commands::new(store.clone()),
                client: client(config.allow_private)?,
                store,
                secrets,
                clock,
                config,
                in_flight: Mutex::default(),
                sent_in_second: Mutex::default(),
                keys: Mutex::default(),
                settled: Notify::new(),
                counts: SenderCounts::default(),
            }),
        })
    }

    pub fn counts(&self) -> &SenderCounts {
        &self.inner.counts
    }

    /// One pass at the clock's time: claims what is due and attempts it,
    /// and returns once every claimed delivery is settled (how many).
    pub async fn pass(&self) -> Result<usize, sqlx::Error> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        let mut attempts = JoinSet::new();
        for delivery in claimed {
            let senders = self.clone();
            attempts.spawn(async move { senders.deliver(delivery).await });
        }
        while attempts.join_next().await.is_some() {}
        Ok(count)
    }

    /// Sends until shutdown: looks for due deliveries whenever the
    /// dispatcher of this replica commits (`dispatched`), an attempt
    /// settles, or the poll interval passes.
    pub fn spawn(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut dispatched: Option<watch::Receiver<FeedPosition>>,
    ) -> JoinHandle<()> {
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                match self.claim().await {
                    Ok(claimed) => {
                        for delivery in claimed {
                            let senders = self.clone();
                            tokio::spawn(async move { senders.deliver(delivery).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot claim webhook deliveries"),
                }
                let dispatched_changed = async {
                    match dispatched.as_mut() {
                        Some(receiver) => {
                            if receiver.changed().await.is_err() {
                                std::future::pending::<()>().await;
                            }
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = dispatched_changed => {}
                    _ = self.inner.settled.notified() => {}
                    _ = tokio::time::sleep(self.inner.config.poll) => {}
                }
            }
        })
    }

    /// How many more requests `endpoint` may have now: its free in-flight
    /// slots, within what its rate limit leaves of this second.
    fn room(&self, endpoint: &WebhookRow, now: DateTime<Utc>) -> usize {
        let in_flight = self
            .inner
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&endpoint.id)
            .copied()
            .unwrap_or(0);
        let free = IN_FLIGHT_PER_ENDPOINT.saturating_sub(in_flight);
        let Some(rate) = endpoint.spec.rate_limit_per_second else {
            return free;
        };
        let second = now.timestamp();
        let sent = match self
            .inner
            .sent_in_second
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&endpoint.id)
        {
            Some((s, sent)) if *s == second => *sent,
            _ => 0,
        };
        free.min(rate.saturating_sub(sent) as usize)
    }

    fn count_sent(&self, endpoint: &str, now: DateTime<Utc>, n: usize) {
        let second = now.timestamp();
        let mut sent = self
            .inner
            .sent_in_second
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = sent.entry(endpoint.to_string()).or_insert((second, 0));
        if entry.0 != second {
            *entry = (second, 0);
        }
        entry.1 = entry.1.saturating_add(n as u32);
    }

    /// Claims, per enabled endpoint, the due deliveries it has room for,
    /// oldest in the feed first; marks them in flight.
    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        let inner = &self.inner;
        let pool = inner.store.read_pool();
        let now = inner.clock.now();
        let now_text = timestamp(&now);
        let lease = now
            + chrono::Duration::from_std(inner.config.lease).unwrap_or(chrono::Duration::zero());
        let lease_text = timestamp(&lease);
        let mut claimed = Vec::new();
        for endpoint in enabled_webhooks(pool).await? {
            let room = self.room(&endpoint, now);
            if room == 0 {
                continue;
            }
            let rows = sqlx::query(
                "SELECT d.delivery_id, d.message_id, d.attempts, m.payload
                   FROM webhook_deliveries d
                   JOIN webhook_messages m ON m.message_id = d.message_id
                  WHERE d.webhook_id = $1 AND d.status = 'pending' AND d.next_attempt_at <= $2
                    AND (d.claimed_until IS NULL OR d.claimed_until <= $2)
                  ORDER BY d.feed_tx, d.position
                  LIMIT $3",
            )
            .bind(&endpoint.id)
            .bind(&now_text)
            .bind(room as i64)
            .fetch_all(pool)
            .await?;
            if rows.is_empty() {
                continue;
            }
            let endpoint = Arc::new(endpoint);
            let _turn = inner.store.write_turn().await;
            for row in rows {
                let delivery_id: String = row.try_get("delivery_id")?;
                let taken = sqlx::query(
                    "UPDATE webhook_deliveries SET claimed_until = $1
                      WHERE delivery_id = $2 AND status = 'pending'
                        AND (claimed_until IS NULL OR claimed_until <= $3)",
                )
                .bind(&lease_text)
                .bind(&delivery_id)
                .bind(&now_text)
                .execute(pool)
                .await?;
                if taken.rows_affected() == 0 {
                    continue;
                }
                claimed.push(Claimed {
                    delivery_id,
                    message_id: row.try_get("message_id")?,
                    attempts: row.try_get("attempts")?,
                    payload: row.try_get("payload")?,
                    endpoint: endpoint.clone(),
                });
            }
            let mine = claimed
                .iter()
                .filter(|c| c.endpoint.id == endpoint.id)
                .count();
            if mine > 0 {
                *inner
                    .in_flight
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(endpoint.id.clone())
                    .or_insert(0) += mine;
                self.count_sent(&endpoint.id, now, mine);
            }
        }
        Ok(claimed)
    }

    /// Attempts one claimed delivery and settles it.
    async fn deliver(&self, delivery: Claimed) {
        let at = self.inner.clock.now();
        let started = Instant::now();
        let outcome = self.attempt(&delivery, at).await;
        let duration = started.elapsed();
        if let Err(error) = self.settle(&delivery, at, duration, &outcome).await {
            // The lease runs out and the delivery is attempted again.
            tracing::warn!(%error, delivery = %delivery.delivery_id, "cannot record a webhook attempt");
        }
        {
            let mut in_flight = self
                .inner
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = in_flight.get_mut(&delivery.endpoint.id) {
                *n = n.saturating_sub(1);
            }
        }
        self.inner.settled.notify_one();
    }

    async fn signing_key(
        &self,
        endpoint: &WebhookRow,
        secret_id: &str,
    ) -> Result<Arc<Zeroizing<Vec<u8>>>, String> {
        if let Some(key) = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(secret_id)
        {
            return Ok(key.clone());
        }
        let key = self
            .inner
            .secrets
            .open(
                &self.inner.store,
                &endpoint.tenant_id,
                &endpoint.id,
                secret_id,
            )
            .await
            .map_err(|e| format!("the signing secret cannot be opened: {e}"))?;
        let key = Arc::new(key);
        self.inner
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(secret_id.to_string(), key.clone());
        Ok(key)
    }

    async fn attempt(&self, delivery: &Claimed, at: DateTime<Utc>) -> Outcome {
        let endpoint = &delivery.endpoint;
        let url = match check_url(&endpoint.spec.url, self.inner.config.allow_private) {
            Ok(url) => url,
            Err(UrlProblem::Unsafe(reason)) => {
                return Outcome {
                    refused: true,
                    ..Outcome::failure(format!("refused: {reason}"))
                }
            }
            Err(UrlProblem::Invalid(problem)) => {
                return Outcome::failure(format!("the URL {}", problem.message))
            }
        };
        let mut keys = Vec::new();
        for secret_id in endpoint.signing_secret_ids(at) {
            match self.signing_key(endpoint, secret_id).await {
                Ok(key) => keys.push(key),
                Err(error) => return Outcome::failure(error),
            }
        }
        let key_refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let sent_at = Utc::now().timestamp();
        let signature = sign(
            &key_refs,
            &delivery.message_id,
            sent_at,
            delivery.payload.as_bytes(),
        );
        let request = self
            .inner
            .client
            .post(url)
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", sent_at.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(delivery.payload.clone());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                if let Some(reason) = refused_in(&error) {
                    return Outcome {
                        refused: true,
                        ..Outcome::failure(format!("refused: {reason}"))
                    };
                }
                return Outcome::failure(describe(&error));
            }
        };
        let status = response.status().as_u16();
        let retry_after = match status {
            429 | 503 => response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_AFTER)),
            _ => None,
        };
        let mut body = Vec::new();
        let mut error = None;
        while body.len() < RESPONSE_EXCERPT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    error = Some(format!("reading the answer: {}", describe(&e)));
                    break;
                }
            }
        }
        body.truncate(RESPONSE_EXCERPT_BYTES);
        let excerpt = String::from_utf8_lossy(&body).into_owned();
        Outcome {
            status_code: Some(status),
            error,
            excerpt: (!excerpt.is_empty()).then_some(excerpt),
            retry_after,
            refused: false,
        }
    }

    /// Records the attempt and what follows from it.
    async fn settle(
        &self,
        delivery: &Claimed,
        at: DateTime<Utc>,
        duration: Duration,
        outcome: &Outcome,
    ) -> Result<(), sqlx::Error> {
        let inner = &self.inner;
        let counts = &inner.counts;
        counts.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = delivery.attempts + 1;
        let gone = outcome.status_code == Some(410);
        let (status, next) = if outcome.success() {
            counts.delivered.fetch_add(1, Ordering::Relaxed);
            ("success", None)
        } else {
            counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
            if outcome.refused {
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            match RETRY_SCHEDULE.get((attempt - 1) as usize) {
                Some(delay) if !gone => {
                    let delay = outcome.retry_after.unwrap_or(*delay);
                    let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
                    ("pending", Some(at + delay))
                }
                _ => {
                    counts.gave_up.fetch_add(1, Ordering::Relaxed);
                    ("failed", None)
                }
            }
        };
        let at_text = timestamp(&at);
        let failing_since = {
            let _turn = inner.store.write_turn().await;
            let mut tx = inner.store.read_pool().begin().await?;
            sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code,
                                               duration_ms, error, response_excerpt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (delivery_id, attempt) DO NOTHING",
            )
            .bind(&delivery.delivery_id)
            .bind(attempt)
            .bind(&at_text)
            .bind(outcome.status_code.map(i64::from))
            .bind(duration.as_millis().min(i64::MAX as u128) as i64)
            .bind(outcome.error.as_deref())
            .bind(outcome.excerpt.as_deref())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_deliveries
                    SET status = $1, attempts = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                        claimed_until = NULL, last_attempt_at = $4
                  WHERE delivery_id = $5",
            )
            .bind(status)
            .bind(attempt)
            .bind(next.as_ref().map(timestamp))
            .bind(&at_text)
            .bind(&delivery.delivery_id)
            .execute(&mut *tx)
            .await?;
            let failing_since = if outcome.success() {
                sqlx::query(
                    "INSERT INTO webhook_health (webhook_id, failing_since, last_success_at)
                     VALUES ($1, NULL, $2)
                     ON CONFLICT (webhook_id) DO UPDATE
                        SET failing_since = NULL, last_success_at = excluded.last_success_at",
                )
                .bind(&delivery.endpoint.id)
                .bind(&at_text)
                .execute(&mut *tx)
                .await?;
                None
            } else {
                sqlx::query(
                    "INSERT INTO webhook_health (webhook_id, failing_since, last_success_at)
                     VALUES ($1, $2, NULL)
                     ON CONFLICT (webhook_id) DO UPDATE
                        SET failing_since = COALESCE(webhook_health.failing_since, excluded.failing_since)",
                )
                .bind(&delivery.endpoint.id)
                .bind(&at_text)
                .execute(&mut *tx)
                .await?;
                let since: Option<String> = sqlx::query_scalar(
                    "SELECT failing_since FROM webhook_health WHERE webhook_id = $1",
                )
                .bind(&delivery.endpoint.id)
                .fetch_one(&mut *tx)
                .await?;
                since.as_deref().map(parse_timestamp).transpose()?
            };
            tx.commit().await?;
            failing_since
        };
        let cause = if gone {
            Some(DisableCause::Gone)
        } else {
            failing_since
                .filter(|since| at - *since >= FAILING_DISABLES_AFTER)
                .map(|since| DisableCause::Failing { since })
        };
        if let Some(cause) = cause {
            self.disable(&delivery.endpoint, cause, at).await;
        }
        Ok(())
    }

    async fn disable(&self, endpoint: &WebhookRow, cause: DisableCause, at: DateTime<Utc>) {
        let metadata = EventMetadata {
            tenant_id: endpoint.tenant_id.clone(),
            environment: endpoint.environment,
            actor: ACTOR.to_string(),
            actor_type: ActorType::System,
            api_key_id: None,
            request_id: None,
            correlation_id: None,
            causation_id: None,
            occurred_at: at,
        };
        for _ in 0..3 {
            let run = self
                .inner
                .commands
                .execute::<Webhook>(
                    &endpoint.id,
                    WebhookCommand::Disable { cause, at },
                    (),
                    &metadata,
                )
                .await;
            match run {
                Ok(_) => {
                    tracing::warn!(webhook = %endpoint.id, cause = cause.as_str(), "webhook endpoint disabled");
                    return;
                }
                Err(CommandError::Conflict) => continue,
                // Deleted meanwhile, or the store failed: the next failed
                // attempt tries again.
                Err(error) => {
                    tracing::warn!(%error, webhook = %endpoint.id, "cannot disable a webhook endpoint");
                    return;
                }
            }
        }
    }
}

/// An HTTP client error with its causes, on one line.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("timed out after {} s", ATTEMPT_TIMEOUT.as_secs());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
