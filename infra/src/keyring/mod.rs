//! The key ring: this replica's copy of the keys it uses, so that an
//! encrypt or a sign costs no database round trip (`docs/keys.md`).
//!
//! - **A key** (its row and versions from the keys view) is kept by id once
//!   read. Operations check it with the domain's one rule
//!   (`KeyUse::check`), so a disabled key is refused from memory.
//! - **Its material** is unsealed on first use per version and kept with
//!   the key, zeroized when dropped.
//! - **Dropped on this replica at once**: a key command answers only once
//!   the keys view has applied it, and then drops the key here, before the
//!   answer (`app::keys`). Disable, deletion and destroy therefore refuse
//!   the very next operation on this replica.
//! - **Dropped on the other replicas within 1 s**: the follower
//!   (`readmodel::follow`) drops every key whose events the keys view
//!   applied since its last look, every 100 ms; a rebuild or a failed look
//!   drops everything.
//! - **No stale fill**: as in the API-key cache, a fill that read the view
//!   before an eviction is not kept (a generation counter).
//! - **Bounded**: past [`CAPACITY`] keys the ring starts again empty.

pub mod lifecycle;
pub mod material;
pub mod usage;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use palisade_projections::{KeyRow, KeyVersionRow, KeysProjection};

use crate::crypto::kms::Material;
use crate::crypto::seal::{Binding, Sealer};
use crate::readmodel::follow::FollowedCache;
use crate::readmodel::{get_key, Partition};
use crate::Store;
pub use material::MaterialError;

/// The most keys kept; past it the ring starts again empty.
pub const CAPACITY: usize = 10_000;

/// A key as this replica holds it.
pub struct RingKey {
    pub key: KeyRow,
    versions: HashMap<u32, KeyVersionRow>,
    materials: Mutex<HashMap<u32, Arc<Material>>>,
}

impl RingKey {
    pub fn version(&self, version: u32) -> Option<&KeyVersionRow> {
        self.versions.get(&version)
    }

    /// The key's versions, oldest first.
    pub fn versions(&self) -> Vec<&KeyVersionRow> {
        let mut versions: Vec<_> = self.versions.values().collect();
        versions.sort_by_key(|v| v.version);
        versions
    }
}

/// What the ring knows of a key.
pub enum Lookup {
    Found(Arc<RingKey>),
    /// Unknown, or someone else's.
    Missing,
    /// The keys view shows the key at an older version than its events
    /// (the view is behind, or being rebuilt): nothing is kept or answered
    /// from it. Wait for the view to apply `version`, then ask again.
    Behind {
        version: usize,
    },
}

/// The keys this replica has used.
pub struct KeyRing {
    store: Store,
    sealer: Sealer,
    entries: RwLock<HashMap<String, Arc<RingKey>>>,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl KeyRing {
    pub fn new(store: Store, sealer: Sealer) -> Self {
        Self {
            store,
            sealer,
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The key with this id in this partition: from memory, or from the
    /// keys view (and then kept), once the view is known to show the key's
    /// latest state: a fill compares the row's version with the key's last
    /// event, so a view that is behind or half rebuilt (where a disabled key
    /// would still read as enabled) is never used.
    pub async fn key(&self, partition: &Partition, id: &str) -> Result<Lookup, sqlx::Error> {
        let cached = self.read().get(id).cloned();
        let key = match cached {
            Some(key) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                key
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let generation = self.generation.load(Ordering::Acquire);
                let Some(found) = get_key(self.store.read_pool(), partition, id).await? else {
                    return Ok(Lookup::Missing);
                };
                let latest: i64 = sqlx::query_scalar(
                    "SELECT COALESCE(MAX(sequence), 0) FROM events
                      WHERE aggregate_type = 'Key' AND aggregate_id = $1",
                )
                .bind(id)
                .fetch_one(self.store.read_pool())
                .await?;
                if found.key.version < latest {
                    return Ok(Lookup::Behind {
                        version: usize::try_from(latest).unwrap_or(usize::MAX),
                    });
                }
                let key = Arc::new(RingKey {
                    versions: found.versions.into_iter().map(|v| (v.version, v)).collect(),
                    key: found.key,
                    materials: Mutex::default(),
                });
                self.keep(generation, &key);
                key
            }
        };
        let mine = key.key.tenant_id == partition.tenant_id
            && key.key.environment == partition.environment;
        Ok(if mine {
            Lookup::Found(key)
        } else {
            Lookup::Missing
        })
    }

    /// The unsealed material of one version of `key`: from memory, or read
    /// from `key_material` and opened.
    pub async fn material(
        &self,
        key: &RingKey,
        version: u32,
    ) -> Result<Arc<Material>, MaterialError> {
        if let Some(material) = lock(&key.materials).get(&version) {
            return Ok(material.clone());
        }
        let row = key.version(version).ok_or(MaterialError::Gone)?;
        let binding = Binding {
            tenant_id: &key.key.tenant_id,
            key_id: &key.key.id,
            version,
            material_id: &row.material_id,
        };
        let material = Arc::new(material::get(&self.store, &self.sealer, &binding).await?);
        lock(&key.materials).insert(version, material.clone());
        Ok(material)
    }

    /// Drops these keys and their material (and refuses fills in flight).
    pub fn evict(&self, key_ids: &[String]) {
        if key_ids.is_empty() {
            return;
        }
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for id in key_ids {
            entries.remove(id);
        }
    }

    /// Drops every key.
    pub fn clear(&self) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    /// Lookups answered from memory and from the view, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn keep(&self, generation: u64, key: &Arc<RingKey>) {
        let mut entries = self.write();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key.key.id.clone(), key.clone());
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<RingKey>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<RingKey>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FollowedCache for KeyRing {
    const VIEW: &'static str = KeysProjection::NAME;
    const AGGREGATE_TYPE: &'static str = "Key";

    fn evict(&self, aggregate_ids: &[String]) {
        KeyRing::evict(self, aggregate_ids);
    }

    fn clear(&self) {
        KeyRing::clear(self);
    }
}
