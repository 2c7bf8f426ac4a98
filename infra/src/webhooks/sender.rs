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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use palisade_domain::webhook::{check_url, DisableCause, UrlProblem, Webhook, WebhookCommand};
use palisade_domain::{ActorType, EventMetadata};
use palisade_projections::{FeedPosition, WebhookRow};
use sqlx::Row;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use zeroize::Zeroizing;

use super::guard::{client, refused_in};
use super::secrets::SigningSecrets;
use super::signature::sign;
use super::{
    ATTEMPT_TIMEOUT, FAILING_DISABLES_AFTER, IN_FLIGHT_PER_ENDPOINT, MAX_RETRY_AFTER,
    RESPONSE_EXCERPT_BYTES, RETRY_SCHEDULE,
};
use crate::readmodel::sql::{Sql, Value};
use crate::readmodel::webhooks::enabled_webhooks;
use crate::readmodel::{parse_timestamp, timestamp};
use crate::scheduler::Clock;
use crate::store::dialect_of;
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
    /// PEM certificates trusted for `https://` besides the built-in
    /// public roots (`PALISADE_WEBHOOKS_CA_FILE`).
    pub extra_roots_pem: Option<Arc<[u8]>>,
}

impl SenderConfig {
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            lease: ATTEMPT_TIMEOUT + Duration::from_secs(15),
            poll: Duration::from_millis(500),
            extra_roots_pem: None,
        }
    }

    /// Also trusts the certificates of `pem` (checked by
    /// [`super::guard::roots_from_pem`]).
    pub fn trusting(mut self, pem: Vec<u8>) -> Self {
        self.extra_roots_pem = Some(pem.into());
        self
    }
}

/// What the senders of this replica have done (for `/metrics`).
#[derive(Debug, Default)]
pub struct SenderCounts {
    pub attempts: AtomicU64,
    /// Attempts answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts that failed otherwise than refused.
    pub failed_attempts: AtomicU64,
    /// Attempts the address guard refused.
    pub refused: AtomicU64,
    /// Deliveries given up on.
    pub gave_up: AtomicU64,
    /// Attempt results that came after their claim ended (a lease ran
    /// out, a retry or replay handed the delivery out again): recorded as
    /// attempts, without moving the delivery's schedule.
    pub stale: AtomicU64,
}

/// A claimed delivery, ready to post.
struct Claimed {
    /// When the claim ends: a claim too close to its end is not started.
    lease_until: DateTime<Utc>,
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
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
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

/// What this replica knows of one endpoint between passes.
struct EndpointState {
    /// Requests in flight.
    in_flight: usize,
    /// Claimed, not yet started (a fast endpoint's next few).
    queue: VecDeque<Claimed>,
    /// The second (Unix) and how many requests were started in it.
    second: i64,
    started: u32,
    /// Recent attempt duration, ms (exponentially weighted).
    recent_ms: f64,
    /// The endpoint as the claiming loop last saw it enabled, and when: a
    /// finished attempt starts the next queued one only while this is
    /// fresh ([`FRESH`]), with this snapshot (URL, secrets).
    seen: Option<(Arc<WebhookRow>, Instant)>,
}

impl Default for EndpointState {
    fn default() -> Self {
        Self {
            in_flight: 0,
            queue: VecDeque::new(),
            second: 0,
            started: 0,
            // Not fast until its attempts show it.
            recent_ms: FAST_MS,
            seen: None,
        }
    }
}

/// What a batch of results says of one endpoint's health.
#[derive(Default)]
struct Health {
    last_success_at: Option<String>,
    /// The first failure after the batch's last success (or in it).
    failing_from: Option<String>,
}

/// One attempt's result on its way to the database.
struct Settled {
    delivery: Claimed,
    at: DateTime<Utc>,
    duration: Duration,
    outcome: Outcome,
}

struct Inner {
    store: Store,
    commands: Commands,
    secrets: SigningSecrets,
    clock: Arc<dyn Clock>,
    client: reqwest::Client,
    config: SenderConfig,
    endpoints: Mutex<HashMap<String, EndpointState>>,
    /// Opened signing secrets, by row id.
    keys: Mutex<HashMap<String, Arc<Zeroizing<Vec<u8>>>>>,
    settled: Notify,
    counts: Arc<SenderCounts>,
}

/// How many deliveries per in-flight slot a fast endpoint has claimed
/// ahead, so that the next request starts without a database round trip.
const AHEAD_PER_SLOT: usize = 8;

/// An endpoint whose recent attempts took less than this is fast.
const FAST_MS: f64 = 200.0;

/// How long the claiming loop's look at an endpoint lets finished
/// attempts start its next queued ones: a deleted, disabled or changed
/// endpoint stops (or changes) within this on every replica.
const FRESH: Duration = Duration::from_millis(250);

/// Most attempt results written in one transaction.
const SETTLE_BATCH: usize = 512;

impl Senders {
    /// Senders that count what they do in `counts` (the API's `/metrics`
    /// reads them).
    pub fn new(
        store: Store,
        secrets: SigningSecrets,
        clock: Arc<dyn Clock>,
        config: SenderConfig,
        counts: Arc<SenderCounts>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Self {
            inner: Arc::new(Inner {
                commands: Commands::new(store.clone()),
                client: client(config.allow_private, config.extra_roots_pem.as_deref())?,
                store,
                secrets,
                clock,
                config,
                endpoints: Mutex::default(),
                keys: Mutex::default(),
                settled: Notify::new(),
                counts,
            }),
        })
    }

    fn endpoints(&self) -> std::sync::MutexGuard<'_, HashMap<String, EndpointState>> {
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One pass at the clock's time: claims what is due (as many as each
    /// endpoint has free slots, nothing ahead) and attempts it, and returns
    /// once every claimed delivery is settled (how many).
    pub async fn pass(&self) -> Result<usize, sqlx::Error> {
        let now = self.inner.clock.now();
        let mut claimed = Vec::new();
        for endpoint in enabled_webhooks(self.inner.store.read_pool()).await? {
            let room = {
                let mut endpoints = self.endpoints();
                let state = endpoints.entry(endpoint.id.clone()).or_default();
                rate_room(state, &endpoint, now).min(IN_FLIGHT_PER_ENDPOINT)
            };
            let taken = self.claim(Arc::new(endpoint), room, now).await?;
            {
                let mut endpoints = self.endpoints();
                for delivery in &taken {
                    if let Some(state) = endpoints.get_mut(&delivery.endpoint.id) {
                        count_start(state, now);
                    }
                }
            }
            claimed.extend(taken);
        }
        let count = claimed.len();
        let mut attempts = JoinSet::new();
        for delivery in claimed {
            let senders = self.clone();
            attempts.spawn(async move { senders.attempted(delivery).await });
        }
        let mut settled = Vec::with_capacity(count);
        while let Some(done) = attempts.join_next().await {
            if let Ok(done) = done {
                settled.push(done);
            }
        }
        self.settle(settled).await?;
        Ok(count)
    }

    /// Sends until shutdown: looks for due deliveries whenever the
    /// dispatcher of this replica commits (`dispatched`), an attempt
    /// ends, or the poll interval passes. Results are written in batches
    /// by one task.
    pub fn spawn(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut dispatched: Option<watch::Receiver<FeedPosition>>,
    ) -> JoinHandle<()> {
        let (results, mut pending) = mpsc::unbounded_channel::<Settled>();
        let writer = self.clone();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut batch = vec![first];
                while batch.len() < SETTLE_BATCH {
                    match pending.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                if let Err(error) = writer.settle(batch).await {
                    // The leases run out and the deliveries are attempted again.
                    tracing::warn!(%error, "cannot record webhook attempts");
                }
            }
        });
        tokio::spawn(async move {
            while !*shutdown.borrow() {
                if let Err(error) = self.fill_and_start(&results).await {
                    tracing::warn!(%error, "cannot claim webhook deliveries");
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

    /// Claims for every enabled endpoint what it has room for (a fast one
    /// a few ahead), and starts what its free slots and rate limit allow.
    async fn fill_and_start(
        &self,
        results: &mpsc::UnboundedSender<Settled>,
    ) -> Result<(), sqlx::Error> {
        let now = self.inner.clock.now();
        let enabled = enabled_webhooks(self.inner.store.read_pool()).await?;
        {
            // Endpoints disabled or deleted meanwhile: their queued claims
            // are dropped (the leases run out).
            let mut endpoints = self.endpoints();
            endpoints
                .retain(|id, state| state.in_flight > 0 || enabled.iter().any(|e| e.id == *id));
            for (id, state) in endpoints.iter_mut() {
                if !enabled.iter().any(|e| e.id == *id) {
                    state.queue.clear();
                }
            }
        }
        {
            // Opened secrets no enabled endpoint signs with any more
            // (rotated out, deleted, disabled) are dropped (and zeroed).
            let signing: std::collections::HashSet<&str> = enabled
                .iter()
                .flat_map(|endpoint| endpoint.signing_secret_ids(now))
                .collect();
            self.inner
                .keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|id, _| signing.contains(id.as_str()));
        }
        for endpoint in enabled {
            let want = {
                let mut endpoints = self.endpoints();
                let state = endpoints.entry(endpoint.id.clone()).or_default();
                let ahead = if state.recent_ms < FAST_MS {
                    IN_FLIGHT_PER_ENDPOINT * AHEAD_PER_SLOT
                } else {
                    0
                };
                let have = state.in_flight + state.queue.len();
                // A rate-limited endpoint has no more claimed than it may
                // start well within a lease: claims that ran out while
                // queued would be sent after later ones.
                let most = match endpoint.spec.rate_limit_per_second {
                    Some(rate) => (IN_FLIGHT_PER_ENDPOINT + ahead).min(rate as usize * 5),
                    None => IN_FLIGHT_PER_ENDPOINT + ahead,
                };
                // Refill in chunks: not for every request that ends.
                if state.queue.len() >= IN_FLIGHT_PER_ENDPOINT && ahead > 0 {
                    0
                } else {
                    most.saturating_sub(have)
                }
            };
            let endpoint = Arc::new(endpoint);
            if let Some(state) = self.endpoints().get_mut(&endpoint.id) {
                state.seen = Some((endpoint.clone(), Instant::now()));
            }
            if want > 0 {
                let claimed = self.claim(endpoint.clone(), want, now).await?;
                let mut endpoints = self.endpoints();
                if let Some(state) = endpoints.get_mut(&endpoint.id) {
                    state.queue.extend(claimed);
                }
            }
            let starting: Vec<Claimed> = {
                let mut endpoints = self.endpoints();
                let Some(state) = endpoints.get_mut(&endpoint.id) else {
                    continue;
                };
                let mut starting = Vec::new();
                while state.in_flight < IN_FLIGHT_PER_ENDPOINT {
                    let Some(next) = startable(state, &endpoint, now) else {
                        break;
                    };
                    state.in_flight += 1;
                    starting.push(next);
                }
                starting
            };
            for delivery in starting {
                tokio::spawn(self.clone().slot(delivery, results.clone()));
            }
        }
        Ok(())
    }

    /// One in-flight slot of an endpoint: attempts `delivery`, then the
    /// next one queued while the endpoint's rate allows (without a trip
    /// through the claiming loop), and frees the slot when none is left.
    /// The loop is woken to refill when the queue runs low.
    async fn slot(self, mut delivery: Claimed, results: mpsc::UnboundedSender<Settled>) {
        loop {
            let endpoint = delivery.endpoint.clone();
            let settled = self.attempted(delivery).await;
            let _ = results.send(settled);
            let now = self.inner.clock.now();
            let (next, low) = {
                let mut endpoints = self.endpoints();
                match endpoints.get_mut(&endpoint.id) {
                    Some(state) => {
                        let fresh = match &state.seen {
                            Some((latest, at)) if at.elapsed() < FRESH => Some(latest.clone()),
                            _ => None,
                        };
                        let next = fresh.and_then(|latest| {
                            let mut next = startable(state, &latest, now)?;
                            next.endpoint = latest;
                            Some(next)
                        });
                        if next.is_none() {
                            state.in_flight = state.in_flight.saturating_sub(1);
                        }
                        (next, state.queue.len() < IN_FLIGHT_PER_ENDPOINT)
                    }
                    None => (None, true),
                }
            };
            if next.is_none() || low {
                self.inner.settled.notify_one();
            }
            match next {
                Some(next) => delivery = next,
                None => return,
            }
        }
    }

    /// Claims up to `limit` due deliveries of `endpoint`, oldest in the
    /// feed first, under a lease.
    async fn claim(
        &self,
        endpoint: Arc<WebhookRow>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, sqlx::Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let pool = inner.store.read_pool();
        let now_text = timestamp(&now);
        let lease = now
            + chrono::Duration::from_std(inner.config.lease).unwrap_or(chrono::Duration::zero());
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
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new("UPDATE webhook_deliveries SET claimed_until = ");
        sql.bind(Value::Text(timestamp(&lease)))
            .push(" WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ")
            .bind(Value::Text(now_text.clone()))
            .push(") AND delivery_id IN (");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.bind(Value::Text(row.try_get("delivery_id")?));
        }
        sql.push(") RETURNING delivery_id");
        let taken: Vec<String> = {
            let _turn = inner.store.write_turn().await;
            sql.query(dialect_of(pool))
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| row.try_get("delivery_id"))
                .collect::<Result<_, _>>()?
        };
        let mut claimed = Vec::with_capacity(taken.len());
        for row in rows {
            let delivery_id: String = row.try_get("delivery_id")?;
            if !taken.contains(&delivery_id) {
                continue;
            }
            claimed.push(Claimed {
                lease_until: lease,
                delivery_id,
                message_id: row.try_get("message_id")?,
                attempts: row.try_get("attempts")?,
                payload: row.try_get("payload")?,
                endpoint: endpoint.clone(),
            });
        }
        Ok(claimed)
    }

    /// Attempts one claimed delivery: its result, to settle.
    async fn attempted(&self, delivery: Claimed) -> Settled {
        let at = self.inner.clock.now();
        let started = Instant::now();
        let outcome = self.attempt(&delivery, at).await;
        let duration = started.elapsed();
        if let Some(state) = self.endpoints().get_mut(&delivery.endpoint.id) {
            let ms = duration.as_secs_f64() * 1000.0;
            state.recent_ms = 0.8 * state.recent_ms + 0.2 * ms;
        }
        Settled {
            delivery,
            at,
            duration,
            outcome,
        }
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

    /// Records a batch of attempts, in one transaction, and what follows
    /// from them: the next attempt or the end of each delivery, the
    /// endpoints' health, and an endpoint disabled by a 410 or by 5 days
    /// of failures.
    async fn settle(&self, batch: Vec<Settled>) -> Result<(), sqlx::Error> {
        if batch.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let counts = &inner.counts;
        let mut gone: Vec<(Arc<WebhookRow>, DateTime<Utc>)> = Vec::new();
        let mut failing: HashMap<String, (Arc<WebhookRow>, DateTime<Utc>)> = HashMap::new();
        let mut since_of: HashMap<String, Option<DateTime<Utc>>> = HashMap::new();
        let mut health: HashMap<String, Health> = HashMap::new();
        {
            let _turn = inner.store.write_turn().await;
            let mut tx = inner.store.read_pool().begin().await?;
            for Settled {
                delivery,
                at,
                duration,
                outcome,
            } in &batch
            {
                counts.attempts.fetch_add(1, Ordering::Relaxed);
                let attempt = delivery.attempts + 1;
                let is_gone = outcome.status_code == Some(410);
                let (status, next) = if outcome.success() {
                    counts.delivered.fetch_add(1, Ordering::Relaxed);
                    ("success", None)
                } else {
                    if outcome.refused {
                        counts.refused.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counts.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    }
                    match RETRY_SCHEDULE.get((attempt - 1) as usize) {
                        Some(delay) if !is_gone => {
                            let delay = outcome.retry_after.unwrap_or(*delay);
                            let delay = chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::zero());
                            ("pending", Some(*at + delay))
                        }
                        _ => {
                            counts.gave_up.fetch_add(1, Ordering::Relaxed);
                            ("failed", None)
                        }
                    }
                };
                let at_text = timestamp(at);
                // The delivery's state follows only the claim the attempt
                // was made under (its lease, written at the claim). A result
                // that comes after its lease ran out, or after a manual
                // retry or replay handed the delivery out again, is
                // recorded as an attempt but does not move the schedule; a
                // success still marks the delivery delivered.
                let claim = timestamp(&delivery.lease_until);
                let recorded = sqlx::query(
                    "UPDATE webhook_deliveries
                        SET status = $1, attempts = $2,
                            next_attempt_at = COALESCE($3, next_attempt_at),
                            claimed_until = NULL, last_attempt_at = $4
                      WHERE delivery_id = $5 AND status = 'pending' AND claimed_until = $6",
                )
                .bind(status)
                .bind(attempt)
                .bind(next.as_ref().map(timestamp))
                .bind(&at_text)
                .bind(&delivery.delivery_id)
                .bind(&claim)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let number = if recorded == 0 {
                    counts.stale.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(delivery = %delivery.delivery_id, "an attempt's result came after its claim ended");
                    if outcome.success() {
                        sqlx::query(
                            "UPDATE webhook_deliveries SET status = 'success', last_attempt_at = $1
                              WHERE delivery_id = $2 AND status = 'pending'",
                        )
                        .bind(&at_text)
                        .bind(&delivery.delivery_id)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let last: Option<i64> = sqlx::query_scalar(
                        "SELECT MAX(attempt) FROM webhook_attempts WHERE delivery_id = $1",
                    )
                    .bind(&delivery.delivery_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    last.unwrap_or(0) + 1
                } else {
                    attempt
                };
                sqlx::query(
                    "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code,
                                                   duration_ms, error, response_excerpt)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (delivery_id, attempt) DO NOTHING",
                )
                .bind(&delivery.delivery_id)
                .bind(number)
                .bind(&at_text)
                .bind(outcome.status_code.map(i64::from))
                .bind(duration.as_millis().min(i64::MAX as u128) as i64)
                .bind(outcome.error.as_deref())
                .bind(outcome.excerpt.as_deref())
                .execute(&mut *tx)
                .await?;
                let endpoint = &delivery.endpoint;
                let health = health.entry(endpoint.id.clone()).or_default();
                if outcome.success() {
                    health.last_success_at = Some(at_text);
                    health.failing_from = None;
                    failing.remove(&endpoint.id);
                } else {
                    health.failing_from.get_or_insert(at_text);
                    if is_gone {
                        gone.push((endpoint.clone(), *at));
                    }
                    failing.insert(endpoint.id.clone(), (endpoint.clone(), *at));
                }
            }
            // Each endpoint's health once per batch: after a success in it,
            // failing since its first failure after that success (or not);
            // without one, failing since whenever it began.
            for (id, health) in &health {
                let statement = if health.last_success_at.is_some() {
                    "INSERT INTO webhook_health (webhook_id, failing_since, last_success_at)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (webhook_id) DO UPDATE
                        SET failing_since = excluded.failing_since,
                            last_success_at = excluded.last_success_at"
                } else {
                    "INSERT INTO webhook_health (webhook_id, failing_since, last_success_at)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (webhook_id) DO UPDATE
                        SET failing_since = COALESCE(webhook_health.failing_since, excluded.failing_since)"
                };
                sqlx::query(statement)
                    .bind(id)
                    .bind(health.failing_from.as_deref())
                    .bind(health.last_success_at.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            for id in failing.keys() {
                let since: Option<String> = sqlx::query_scalar(
                    "SELECT failing_since FROM webhook_health WHERE webhook_id = $1",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                since_of.insert(
                    id.clone(),
                    since.as_deref().map(parse_timestamp).transpose()?,
                );
            }
            tx.commit().await?;
        }
        for (endpoint, at) in gone {
            self.disable(&endpoint, DisableCause::Gone, at).await;
        }
        for (id, (endpoint, at)) in failing {
            if let Some(Some(since)) = since_of.get(&id) {
                if at - *since >= FAILING_DISABLES_AFTER {
                    self.disable(&endpoint, DisableCause::Failing { since: *since }, at)
                        .await;
                }
            }
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

/// How many more requests the endpoint's rate limit lets start in the
/// current second.
fn rate_room(state: &EndpointState, endpoint: &WebhookRow, now: DateTime<Utc>) -> usize {
    let Some(rate) = endpoint.spec.rate_limit_per_second else {
        return usize::MAX;
    };
    let started = if state.second == now.timestamp() {
        state.started
    } else {
        0
    };
    rate.saturating_sub(started) as usize
}

/// The next queued delivery of an endpoint that may start now (counted
/// as started), if its rate limit lets one start. A claim too close to
/// its lease's end to finish within it is dropped: it is claimed again
/// when the lease ends.
fn startable(
    state: &mut EndpointState,
    endpoint: &WebhookRow,
    now: DateTime<Utc>,
) -> Option<Claimed> {
    while rate_room(state, endpoint, now) > 0 {
        let next = state.queue.pop_front()?;
        let left = (next.lease_until - now).to_std().unwrap_or(Duration::ZERO);
        if left < ATTEMPT_TIMEOUT + Duration::from_secs(5) {
            continue;
        }
        count_start(state, now);
        return Some(next);
    }
    None
}

fn count_start(state: &mut EndpointState, now: DateTime<Utc>) {
    let second = now.timestamp();
    if state.second != second {
        state.second = second;
        state.started = 0;
    }
    state.started = state.started.saturating_add(1);
}
