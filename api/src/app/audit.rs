//! The audit trail's use cases: pages of records, the chain's
//! verification, and following the trail live (the one loop behind the SSE
//! stream and the GraphQL subscription).
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
//! Scope `audit:read`; only the key's tenant and environment.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use palisade_domain::{ApiKeyId, TenantId};
use palisade_infra::readmodel::{
    audit_last_seq, list_audit, verify_audit_chain, AuditFilter, ChainReport, Partition,
};
use palisade_projections::{AuditProjection, AuditRecord, FeedPosition};
use tokio::sync::watch;

use super::auth::{still_usable, AuditRead};
use super::input::{check_window, filter_text, filter_values};
use super::{App, Authorized, Error, Result};
use crate::metrics::SubscriberGuard;

/// Records read per query while following.
const PAGE: u32 = 200;

/// How often a caught-up follower looks again without a wake-up: the bound
/// on its delay when another replica runs the audit projection.
const POLL: Duration = Duration::from_millis(500);

/// How often a follower checks that its key may still be used: the bound
/// on how long a stream outlives its key's revocation or expiry, or its
/// tenant's suspension.
const RECHECK: Duration = Duration::from_secs(5);

/// How long a follower keeps trying while the database does not answer
/// its reads, before the stream ends with `unavailable`.
const OUTAGE_TOLERANCE: Duration = Duration::from_secs(30);

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
    pub fn take(self: &Arc<Self>, tenant_id: TenantId, key_id: ApiKeyId) -> Result<StreamSlot> {
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
            return Err(Error::TooManyStreams(format!("{message}; close one first")));
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
        assert_eq!(refused.code(), "too_many_streams");
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
        assert!(refused.to_string().contains("tenant"), "{refused}");
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

/// A filter as given, checked once for every adapter: free text within the
/// text rule, at most 50 event types, `until` after `since`.
pub fn checked_filter(filter: AuditFilter) -> Result<AuditFilter> {
    check_window(filter.since, filter.until)?;
    Ok(AuditFilter {
        aggregate_type: filter_text("aggregate_type", filter.aggregate_type.as_deref())?,
        aggregate_id: filter_text("aggregate_id", filter.aggregate_id.as_deref())?,
        event_types: filter_values("event_type", filter.event_types.iter().map(String::as_str))?,
        actor: filter_text("actor", filter.actor.as_deref())?,
        ..filter
    })
}

/// A page of audit records, oldest first, and the seq the next page starts
/// after (None on the last page).
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
    pub next_cursor: Option<i64>,
}

/// At most `limit` of the caller's audit records after seq `after`.
pub async fn list(
    app: &App,
    context: &Authorized<AuditRead>,
    filter: AuditFilter,
    after: i64,
    limit: u32,
) -> Result<AuditPage> {
    let filter = checked_filter(filter)?;
    let partition = context.principal.partition();
    let mut records =
        list_audit(app.store.read_pool(), &partition, &filter, after, limit + 1).await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(|r| r.seq)).flatten();
    Ok(AuditPage {
        records,
        next_cursor,
    })
}

/// Re-walks the caller's chain: whether every record is present, in
/// order, and unchanged.
pub async fn verify(app: &App, context: &Authorized<AuditRead>) -> Result<ChainReport> {
    let partition = context.principal.partition();
    Ok(verify_audit_chain(app.store.read_pool(), &partition).await?)
}

/// The last seq of the caller's chain (0 when empty): where a live-only
/// subscription starts.
pub async fn last_seq(app: &App, context: &Authorized<AuditRead>) -> Result<i64> {
    let partition = context.principal.partition();
    Ok(audit_last_seq(app.store.read_pool(), &partition).await?)
}

/// Follows the caller's trail after seq `after` ([`follow`]).
pub fn follow_for(
    app: &App,
    context: &Authorized<AuditRead>,
    filter: AuditFilter,
    after: i64,
    draining: watch::Receiver<bool>,
) -> Result<impl Stream<Item = Result<AuditRecord>> + Send + 'static> {
    let filter = checked_filter(filter)?;
    follow(
        app.clone(),
        Follow {
            partition: context.principal.partition(),
            filter,
            after,
            key_id: context.principal.key_id,
        },
        draining,
    )
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
    /// Since when reads have failed for want of the database, if they do.
    unavailable_since: Option<Instant>,
    _subscriber: SubscriberGuard,
    _slot: StreamSlot,
}

/// The records of `follow`, oldest first, then live ones as they are
/// committed; ends when the server drains, after a failed read (a
/// database that does not answer is given [`OUTAGE_TOLERANCE`]), or when
/// its key is refused (the error is its last item, and a client resumes
/// after the last seq it got). Refused at once when the key holds
/// [`MAX_STREAMS_PER_KEY`] streams already.
pub fn follow(
    app: App,
    follow: Follow,
    draining: watch::Receiver<bool>,
) -> Result<impl Stream<Item = Result<AuditRecord>> + Send + 'static> {
    let tenant_id = TenantId::parse(&follow.partition.tenant_id).map_err(Error::internal)?;
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
        unavailable_since: None,
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
                match still_usable(&state.app, &state.follow.key_id).await {
                    Ok(()) => state.checked = Instant::now(),
                    // The database did not answer: ask again at the next turn.
                    Err(Error::Unavailable) => {}
                    Err(refusal) => {
                        state.failed = true;
                        return Some((Err(refusal), state));
                    }
                }
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
            match page.map_err(Error::from) {
                // A read the database could not answer (a pool that stayed
                // busy, a connection reset): look again after a pause, for
                // up to [`OUTAGE_TOLERANCE`]; the stream ends after that.
                Err(Error::Unavailable)
                    if state
                        .unavailable_since
                        .get_or_insert_with(Instant::now)
                        .elapsed()
                        < OUTAGE_TOLERANCE =>
                {
                    state.wait().await;
                }
                Err(error) => {
                    state.failed = true;
                    return Some((Err(error), state));
                }
                Ok(records) => {
                    state.unavailable_since = None;
                    if records.is_empty() {
                        state.wait().await;
                    } else {
                        state.buffer.extend(records);
                    }
                }
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
