//! The process's counters and gauges, kept in atomics and cheap to update
//! from any task. `rest::metrics` serves them (with the projections' lag)
//! at `GET /metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

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
