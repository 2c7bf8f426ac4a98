//! Authentication without a round trip: API keys as the tenants view shows
//! them (key, tenant status, plan), kept in memory by keyed hash and by id,
//! and dropped when the tenant changes.
//!
//! - **Filled** from the tenants view on a miss. Only keys the view knows
//!   are kept (a made-up key is looked up every time, as before); a revoked
//!   or expired key is kept too, and refused from memory.
//! - **Dropped on this replica at once**: a tenant command answers only once
//!   the tenants view has applied it (`App::command_tenant`), and then drops
//!   the tenant's keys here, before the answer. A revoked key therefore
//!   fails on the very next request to this replica.
//! - **Dropped on the other replicas within [`super::follow::FOLLOW_EVERY`] plus a query**:
//!   [`super::follow::follow`] watches the tenants view's checkpoint (whichever
//!   replica runs the projection) and drops the tenants whose events it has
//!   passed since the last look. It asks every [`super::follow::FOLLOW_EVERY`], so the
//!   bound is well inside the 1 s the design promises. A checkpoint that
//!   was rewound since (its `resets` count changed: a rebuild, however
//!   quickly it finished) drops every key.
//! - **A late view**: when the tenants view does not apply a change within
//!   the command's wait, the command answers 503 (recorded, not yet in
//!   effect) and a fill may keep the old key meanwhile; the follower drops
//!   it when the view applies the change.
//! - **No stale fill**: a fill that read the view before an eviction is not
//!   kept. Every eviction bumps a generation under the write lock; a fill
//!   notes the generation before it reads and is kept only if no eviction
//!   came in between. Evictions happen only after the view shows the
//!   change, so whatever is kept was read after it or is dropped with it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use sqlx::AnyPool;

use super::api_keys::{find_api_key_by_hash, find_api_key_by_id, ApiKeyOwner};
use super::follow::FollowedCache;

/// The most keys kept; past it the cache starts again empty.
const CAPACITY: usize = 100_000;

/// The projection whose view the cache copies.
const TENANTS_VIEW: &str = "tenants";

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Arc<ApiKeyOwner>>,
    by_id: HashMap<String, Arc<ApiKeyOwner>>,
}

/// The API keys this replica has seen, as the tenants view shows them.
#[derive(Default)]
pub struct ApiKeyCache {
    entries: RwLock<Entries>,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ApiKeyCache {
    /// The key whose keyed hash is `key_hash`, revoked or not: from memory,
    /// or from the tenants view (and then kept).
    pub async fn by_hash(
        &self,
        pool: &AnyPool,
        key_hash: &str,
    ) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
        self.lookup(
            |entries| entries.by_hash.get(key_hash).cloned(),
            find_api_key_by_hash(pool, key_hash),
        )
        .await
    }

    /// The key with this id, revoked or not (what a long-lived stream
    /// checks again): from memory, or from the tenants view.
    pub async fn by_id(
        &self,
        pool: &AnyPool,
        id: &str,
    ) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
        self.lookup(
            |entries| entries.by_id.get(id).cloned(),
            find_api_key_by_id(pool, id),
        )
        .await
    }

    /// `cached` from memory, or `fetch` from the view (kept unless an
    /// eviction came in between; see the module docs).
    async fn lookup(
        &self,
        cached: impl FnOnce(&Entries) -> Option<Arc<ApiKeyOwner>>,
        fetch: impl std::future::Future<Output = Result<Option<ApiKeyOwner>, sqlx::Error>>,
    ) -> Result<Option<ApiKeyOwner>, sqlx::Error> {
        if let Some(owner) = cached(&self.read()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(owner.as_ref().clone()));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let generation = self.generation.load(Ordering::Acquire);
        let found = fetch.await?;
        if let Some(owner) = &found {
            self.keep(generation, owner);
        }
        Ok(found)
    }

    /// Drops every key of these tenants (and makes fills in flight not kept).
    pub fn evict_tenants(&self, tenant_ids: &[String]) {
        if tenant_ids.is_empty() {
            return;
        }
        let tenants: HashSet<&str> = tenant_ids.iter().map(String::as_str).collect();
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries
            .by_hash
            .retain(|_, owner| !tenants.contains(owner.key.tenant_id.as_str()));
        entries
            .by_id
            .retain(|_, owner| !tenants.contains(owner.key.tenant_id.as_str()));
    }

    /// Drops every key.
    pub fn clear(&self) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        *entries = Entries::default();
    }

    /// Lookups answered from memory and from the view, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn keep(&self, generation: u64, owner: &ApiKeyOwner) {
        let mut entries = self.write();
        // An eviction since the read: what was read may be stale.
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.by_hash.len() >= CAPACITY {
            *entries = Entries::default();
        }
        let owner = Arc::new(owner.clone());
        entries
            .by_hash
            .insert(owner.key.key_hash.clone(), owner.clone());
        entries.by_id.insert(owner.key.id.clone(), owner);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl FollowedCache for ApiKeyCache {
    const VIEW: &'static str = TENANTS_VIEW;
    const AGGREGATE_TYPE: &'static str = "Tenant";

    fn evict(&self, aggregate_ids: &[String]) {
        self.evict_tenants(aggregate_ids);
    }

    fn clear(&self) {
        ApiKeyCache::clear(self);
    }
}
