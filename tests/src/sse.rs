//! A minimal server-sent-events client for the black-box tests: frames as
//! the wire carries them (`id:`, `event:`, `data:` lines, `:` comments),
//! parsed per the WHATWG rules the tests rely on.

use std::time::Duration;

use crate::Server;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {}", self.data))
    }
}

/// An open stream.
pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen so far (heartbeats).
    pub comments: Vec<String>,
    /// Every raw byte received, for tests that search the wire.
    pub raw: String,
    /// Whether the server closed the stream.
    pub ended: bool,
}

impl SseClient {
    /// `GET path` with the key (and `Last-Event-ID` when given); panics
    /// unless the answer is a 200 event stream.
    pub async fn connect(
        server: &Server,
        key: &str,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut request = server.http.get(server.url(path)).header("x-api-key", key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            panic!("{path} answered {status}: {body}");
        }
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("text/event-stream"),
            "content-type {content_type}"
        );
        Self {
            response,
            buffer: String::new(),
            comments: Vec::new(),
            raw: String::new(),
            ended: false,
        }
    }

    /// The next event, or None when `limit` passes or the stream ends.
    pub async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(event) = self.dispatch() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
                    self.raw.push_str(&text);
                    self.buffer.push_str(&text);
                }
                Ok(Ok(None)) => {
                    self.ended = true;
                    return None;
                }
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Exactly `n` events, each within `limit` of the previous one.
    pub async fn take(&mut self, n: usize, limit: Duration) -> Vec<SseEvent> {
        let mut events = Vec::with_capacity(n);
        while events.len() < n {
            match self.next(limit).await {
                Some(event) => events.push(event),
                None => panic!(
                    "the stream gave {} of {n} events, then nothing for {limit:?} (ended: {}); last: {:?}",
                    events.len(),
                    self.ended,
                    events.last().map(|e: &SseEvent| e.json()),
                ),
            }
        }
        events
    }

    /// Parses the first complete block in the buffer, skipping blocks that
    /// hold only comments.
    fn dispatch(&mut self) -> Option<SseEvent> {
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                id: None,
                event: None,
                data: String::new(),
            };
            let mut has_data = false;
            for line in block.lines() {
                if let Some(comment) = line.strip_prefix(':') {
                    self.comments.push(comment.trim().to_string());
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => event.id = Some(value.to_string()),
                    "event" => event.event = Some(value.to_string()),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_data {
                return Some(event);
            }
        }
        None
    }
}
