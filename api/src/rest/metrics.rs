//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4): the
//! process's counters and gauges, plus the projections' lag read at scrape
//! time. Numbers only, never a tenant's data. The admin token is required
//! (a scrape reads the projections' checkpoints and backlog).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::state::AppState;

/// One metric family: its help, its type, and one sample per label set
/// (`""` for an unlabelled metric).
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// `GET /metrics`, with the admin token.
pub async fn metrics(
    _: super::admin::Admin,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let metrics = &state.app.metrics;
    let statuses = state.app.projection_status().await?;
    let per_projection = |value: &dyn Fn(&palisade_infra::ProjectionStatus) -> String| {
        statuses
            .iter()
            .map(|s| (format!("{{projection=\"{}\"}}", s.name), value(s)))
            .collect::<Vec<_>>()
    };
    let mut out = String::new();
    family(
        &mut out,
        "palisade_audit_subscribers",
        "gauge",
        "Audit subscribers connected to this process (SSE and GraphQL).",
        &[(
            String::new(),
            metrics
                .audit_subscribers
                .load(Ordering::Relaxed)
                .to_string(),
        )],
    );
    family(
        &mut out,
        "palisade_audit_events_delivered_total",
        "counter",
        "Audit records this process sent to subscribers.",
        &[(
            String::new(),
            metrics
                .audit_events_delivered
                .load(Ordering::Relaxed)
                .to_string(),
        )],
    );
    let (hits, misses) = state.app.keys.hits_and_misses();
    family(
        &mut out,
        "palisade_api_key_lookups_total",
        "counter",
        "API-key lookups by this process: answered from its key cache (hit) or from the tenants view (miss).",
        &[
            ("{result=\"hit\"}".to_string(), hits.to_string()),
            ("{result=\"miss\"}".to_string(), misses.to_string()),
        ],
    );
    let (hits, misses) = state.app.keyring.hits_and_misses();
    family(
        &mut out,
        "palisade_kms_key_lookups_total",
        "counter",
        "KMS key lookups by this process: answered from its key ring (hit) or from the keys view (miss).",
        &[
            ("{result=\"hit\"}".to_string(), hits.to_string()),
            ("{result=\"miss\"}".to_string(), misses.to_string()),
        ],
    );
    let webhooks = &state.app.webhook_counts;
    let count = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed).to_string();
    family(
        &mut out,
        "palisade_webhook_attempts_total",
        "counter",
        "Webhook delivery attempts by this process's senders, by outcome (refused: the address guard refused the host).",
        &[
            ("{outcome=\"success\"}".to_string(), count(&webhooks.delivered)),
            ("{outcome=\"failure\"}".to_string(), count(&webhooks.failed_attempts)),
            ("{outcome=\"refused\"}".to_string(), count(&webhooks.refused)),
        ],
    );
    family(
        &mut out,
        "palisade_webhook_deliveries_failed_total",
        "counter",
        "Webhook deliveries this process gave up on (every attempt failed, or 410 Gone).",
        &[(String::new(), count(&webhooks.gave_up))],
    );
    family(
        &mut out,
        "palisade_webhook_attempts_unrecorded_total",
        "counter",
        "Webhook attempts whose result came after their claim ended (lease run out, or a retry or replay handed the delivery out again): recorded as attempts without moving the delivery's schedule.",
        &[(String::new(), count(&webhooks.stale))],
    );
    family(
        &mut out,
        "palisade_projection_lag_events",
        "gauge",
        "Committed events a projection has not applied yet.",
        &per_projection(&|s| s.lag_events.to_string()),
    );
    family(
        &mut out,
        "palisade_projection_lag_seconds",
        "gauge",
        "Age of the oldest event a projection has not applied yet.",
        &per_projection(&|s| format!("{:.3}", s.lag_ms as f64 / 1000.0)),
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
