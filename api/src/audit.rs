//! Following the audit trail live: the one loop behind the SSE stream and
//! the GraphQL subscription.
//!
//! A follower never holds more than one page of records. It reads the
//! audit table after the last seq it handed out, hands those out one at a
//! time as the consumer pulls (so a slow subscriber only slows its own
//! reads), and when it has caught up waits for the audit projection to
//! commit (or a poll, for batches committed by another replica). Catch-up
//! and live are the same query, so the switch between them can neither
//! lose nor repeat a record. Every few seconds it also checks that the key
//! that opened it may still be used, so a revoked key's streams end.
//!
//! One key holds at most [`MAX_STREAMS_PER_KEY`] followers at once in one
//! process, and one tenant (all its keys) at most
//! [`MAX_STREAMS_PER_TENANT`] (SSE streams and GraphQL subscriptions
//! together); one more is refused with 429 `too_many_streams` until one
//! ends. Minting keys therefore buys no more than the tenant's cap.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use palisade_domain::{ApiKeyId, TenantId};
use palisade_infra::readmodel::{list_audit, AuditFilter, Partition};
use palisade_projections::{AuditProjection, AuditRecord, FeedPosition};
use tokio::sync::watch;

use crate::app::App;
use crate::auth::still_usable;
use crate::metrics::SubscriberGuard;
use crate::rest::ApiError;

/// Records read per query while following.
const PAGE: u32 = 200;

/// How often a caught-up follower looks again without a wake-up: the bound
/// on its delay when another replica runs the audit projection.
const POLL: Duration = Duration::from_millis(500);

/// How often a follower checks that its key may still be used: the bound
/// on how long a stream outlives its key's revocation or expiry, or its
/// tenant's suspension.
const RECHECK: Duration = Duration::from_secs(5);

/// Most followers one API key may hold open at once in one process.
pub const MAX_STREAMS_PER_KEY: usize = 10;
/// Most followers one tenant (all its keys together) may hold open at once
/// in one process.
pub const MAX_STREAMS_PER_TENANT: usize = 250;

/// Who holds followers: a key, or a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Holder {
    Key(ApiKeyId),
    Tenant(TenantId),
}

/// The followers open now, per key and per tenant.
#[derive(Debug, Default)]
pub struct StreamSlots(Mutex<HashMap<Holder, usize>>);

impl StreamSlots {
    /// A slot for one more follower of `key_id` (of `tenant_id`), held
    /// until dropped; 429 `too_many_streams` when the key has
    /// [`MAX_STREAMS_PER_KEY`] or the tenant [`MAX_STREAMS_PER_TENANT`].
    pub fn take(
        self: &Arc<Self>,
        tenant_id: TenantId,
        key_id: ApiKeyId,
    ) -> Result<StreamSlot, ApiError> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let held = |holder| open.get(&holder).copied().unwrap_or(0);
        let full = if held(Holder::Key(key_id)) >= MAX_STREAMS_PER_KEY {
            Some(format!(
                "This API key has {MAX_STREAMS_PER_KEY} audit streams open already"
            ))
        } else if held(Holder::Tenant(tenant_id)) >= MAX_STREAMS_PER_TENANT {
            Some(format!(
                "This tenant has {MAX_STREAMS_PER_TENANT} audit streams open already"
            ))
        } else {
            None
        };
        if let Some(message) = full {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("{message}; close one first"),
            )
            .with_retry_after(1));
        }
        let holders = [Holder::Key(key_id), Holder::Tenant(tenant_id)];
        for holder in holders {
            *open.entry(holder).or_default() += 1;
        }
        Ok(StreamSlot {
            slots: self.clone(),
            holders,
        })
    }
}

/// One open follower's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    holders: [Holder; 2],
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.0.lock().unwrap_or_else(PoisonError::into_inner);
        for holder in &self.holders {
            if let Some(count) = open.get_mut(holder) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(holder);
                }
            }
        }
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn keys_and_tenants_are_capped_and_dropping_frees_a_place() {
        let slots = Arc::new(StreamSlots::default());
        let tenant = TenantId::from_uuid(uuid::Uuid::from_u128(1));
        let key = |n: u128| ApiKeyId::from_uuid(uuid::Uuid::from_u128(n));
        let mut held: Vec<StreamSlot> = (0..MAX_STREAMS_PER_KEY)
            .map(|_| slots.take(tenant, key(1)).expect("a place"))
            .collect();
        let refused = slots.take(tenant, key(1)).expect_err("the key is full");
        assert_eq!(refused.code, "too_many_streams");
        held.pop();
        held.push(slots.take(tenant, key(1)).expect("a place again"));
        // Other keys of the tenant, up to the tenant's cap.
        let mut n = 2;
        while held.len() < MAX_STREAMS_PER_TENANT {
            held.push(slots.take(tenant, key(n / 10 + 2)).expect("a place"));
            n += 1;
        }
        let refused = slots
            .take(tenant, key(999))
            .expect_err("the tenant is full");
        assert!(refused.message.contains("tenant"), "{}", refused.message);
        let other = TenantId::from_uuid(uuid::Uuid::from_u128(2));
        assert!(slots.take(other, key(1000)).is_ok(), "another tenant");
        drop(held);
        assert!(slots
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }
}

/// What to follow.
#[derive(Debug, Clone)]
pub struct Follow {
    pub partition: Partition,
    pub filter: AuditFilter,
    /// Start after this seq (0: from the first record).
    pub after: i64,
    /// The key that opened the stream; the stream ends once it is refused.
    pub key_id: ApiKeyId,
}

struct State {
    app: App,
    follow: Follow,
    buffer: VecDeque<AuditRecord>,
    applied: Option<watch::Receiver<FeedPosition>>,
    draining: watch::Receiver<bool>,
    failed: bool,
    checked: Instant,
    _subscriber: SubscriberGuard,
    _slot: StreamSlot,
}

/// The records of `follow`, oldest first, then live ones as they are
/// committed; ends when the server drains, after a failed read, or when
/// its key is refused (the error is its last item, and a client resumes
/// after the last seq it got). Refused at once when the key holds
/// [`MAX_STREAMS_PER_KEY`] streams already.
pub fn follow(
    app: App,
    follow: Follow,
    draining: watch::Receiver<bool>,
) -> Result<impl Stream<Item = Result<AuditRecord, ApiError>> + Send + 'static, ApiError> {
    let tenant_id = TenantId::parse(&follow.partition.tenant_id).map_err(ApiError::internal)?;
    let slot = app.streams.take(tenant_id, follow.key_id)?;
    let state = State {
        _slot: slot,
        applied: app.runner.applied_here(AuditProjection::NAME),
        _subscriber: app.metrics.subscriber(),
        app,
        follow,
        buffer: VecDeque::new(),
        draining,
        failed: false,
        checked: Instant::now(),
    };
    Ok(stream::unfold(state, |mut state| async move {
        loop {
            if let Some(record) = state.buffer.pop_front() {
                state.follow.after = record.seq;
                state.app.metrics.delivered();
                return Some((Ok(record), state));
            }
            if state.failed || *state.draining.borrow() {
                return None;
            }
            if state.checked.elapsed() >= RECHECK {
                if let Err(refusal) = still_usable(&state.app, &state.follow.key_id).await {
                    state.failed = true;
                    return Some((Err(refusal), state));
                }
                state.checked = Instant::now();
            }
            // Mark before reading, so a commit during the read still wakes us.
            if let Some(applied) = state.applied.as_mut() {
                applied.borrow_and_update();
            }
            let page = list_audit(
                state.app.store.read_pool(),
                &state.follow.partition,
                &state.follow.filter,
                state.follow.after,
                PAGE,
            )
            .await;
            match page {
                Err(error) => {
                    state.failed = true;
                    return Some((Err(ApiError::internal(error)), state));
                }
                Ok(records) if !records.is_empty() => state.buffer.extend(records),
                Ok(_) => state.wait().await,
            }
        }
    }))
}

impl State {
    async fn wait(&mut self) {
        let applied = async {
            match self.applied.as_mut() {
                Some(applied) => {
                    let _ = applied.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = applied => {}
            _ = tokio::time::sleep(POLL) => {}
            // A dropped sender means the server is gone: stop as when draining.
            changed = self.draining.changed() => {
                if changed.is_err() {
                    self.failed = true;
                }
            }
        }
    }
}
