//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4):
//! counters and gauges kept in atomics, plus the projections' lag read at
//! scrape time. Numbers only, never a tenant's data. The admin token is
//! required (a scrape reads the projections' checkpoints and backlog).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::rest::ApiError;
use crate::server::AppState;

/// The process's counters; cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Audit subscribers connected now (SSE and GraphQL).
    pub audit_subscribers: AtomicI64,
    /// Audit records sent to subscribers.
    pub audit_events_delivered: AtomicU64,
}

impl Metrics {
    /// Counts a subscriber until the guard is dropped.
    pub fn subscriber(self: &std::sync::Arc<Self>) -> SubscriberGuard {
        self.audit_subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.clone())
    }

    pub fn delivered(&self) {
        self.audit_events_delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// One connected subscriber; disconnecting drops it.
#[derive(Debug)]
pub struct SubscriberGuard(std::sync::Arc<Metrics>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.audit_subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `GET /metrics`, with the admin token.
pub async fn metrics(
    _: crate::rest::admin::Admin,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let metrics = &state.app.metrics;
    let mut out = String::new();
    family(
        &mut out,
        "palisade_audit_subscribers",
        "gauge",
        "Audit subscribers connected to this process (SSE and GraphQL).",
    );
    let _ = writeln!(
        out,
        "palisade_audit_subscribers {}",
        metrics.audit_subscribers.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "palisade_audit_events_delivered_total",
        "counter",
        "Audit records this process sent to subscribers.",
    );
    let _ = writeln!(
        out,
        "palisade_audit_events_delivered_total {}",
        metrics.audit_events_delivered.load(Ordering::Relaxed)
    );
    let statuses = state
        .app
        .runner
        .status()
        .await
        .map_err(ApiError::internal)?;
    family(
        &mut out,
        "palisade_projection_lag_events",
        "gauge",
        "Committed events a projection has not applied yet.",
    );
    for status in &statuses {
        let _ = writeln!(
            out,
            "palisade_projection_lag_events{{projection=\"{}\"}} {}",
            status.name, status.lag_events
        );
    }
    family(
        &mut out,
        "palisade_projection_lag_seconds",
        "gauge",
        "Age of the oldest event a projection has not applied yet.",
    );
    for status in &statuses {
        let _ = writeln!(
            out,
            "palisade_projection_lag_seconds{{projection=\"{}\"}} {:.3}",
            status.name,
            status.lag_ms as f64 / 1000.0
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
