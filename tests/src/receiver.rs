//! A webhook receiver on loopback for the tests and the benchmark: it
//! records every request, answers as scripted (status, `Retry-After`,
//! delay), and verifies signatures with the Standard Webhooks algorithm
//! as the official libraries do ([`verify`]), written here independently
//! of Palisade's signer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::Notify;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    /// Answer when the script is empty.
    default: Mutex<Option<Reply>>,
    arrived: Notify,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = inner
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| inner.default.lock().unwrap().clone())
        .unwrap_or(Reply::status(200));
    let received = Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    inner.received.lock().unwrap().push(received);
    inner.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        "received",
    )
        .into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

impl Receiver {
    /// A receiver on `127.0.0.1` at `path` (its URL ends with it).
    pub async fn start(path: &str) -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route(path, axum::routing::post(handle))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{address}{path}"),
            inner,
            task,
        }
    }

    /// The next answers, in order (then the default).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is spent (200 unless set).
    pub fn answer_by_default(&self, reply: Reply) {
        *self.inner.default.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// How many requests have arrived (without copying them).
    pub fn count(&self) -> usize {
        self.inner.received.lock().unwrap().len()
    }

    /// Waits until `count` requests have arrived (or `limit` passes): how
    /// many have.
    pub async fn wait_for_count(&self, count: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.inner.arrived.notified();
            let now = self.count();
            if now >= count || tokio::time::Instant::now() >= deadline {
                return now;
            }
            let _ = tokio::time::timeout_at(deadline, arrived).await;
        }
    }

    /// Waits until `count` requests have arrived (or `limit` passes): all
    /// received so far.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<Received> {
        self.wait_for_count(count, limit).await;
        self.received()
    }
}

/// Why a message does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    MissingHeader(&'static str),
    BadTimestamp,
    /// Older or newer than 5 minutes.
    OutsideTolerance,
    NoMatchingSignature,
}

/// The Standard Webhooks verification, as the official libraries do it:
/// the secret is `whsec_` and base64; the signed content is
/// `{webhook-id}.{webhook-timestamp}.{body}`; the timestamp must be within
/// 5 minutes of `now` (Unix seconds); any one of the space-separated
/// `v1,` signatures must match (compared in constant time).
pub fn verify(
    secret: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    now: i64,
) -> Result<(), Unverified> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .map(String::as_str)
            .ok_or(Unverified::MissingHeader(name))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    let sent: i64 = timestamp.parse().map_err(|_| Unverified::BadTimestamp)?;
    if (now - sent).abs() > 5 * 60 {
        return Err(Unverified::OutsideTolerance);
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Unverified::NoMatchingSignature)?;
    for signature in signatures.split(' ') {
        let Some(("v1", encoded)) = signature.split_once(',') else {
            continue;
        };
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
            continue;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        if mac.verify_slice(&expected).is_ok() {
            return Ok(());
        }
    }
    Err(Unverified::NoMatchingSignature)
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}
