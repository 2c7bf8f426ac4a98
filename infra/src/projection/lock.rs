//! Which process runs a projection (or the scheduler): a named lock that at
//! most one process holds. What it is depends on the backend (a session
//! advisory lock on PostgreSQL, always granted on SQLite, which is one
//! process's embedded store): see `store/postgres.rs` and `store/sqlite.rs`.

use crate::store::Lock;
use crate::{Store, StoreError};

pub(crate) struct LockSession {
    lock: Box<dyn Lock>,
}

impl LockSession {
    pub fn new(store: Store, name: &'static str) -> Self {
        Self {
            lock: store.lock(name),
        }
    }

    /// Tries once, without waiting.
    pub async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        self.lock.try_acquire().await
    }

    /// Whether the lock is still ours (on PostgreSQL: its connection is alive).
    pub async fn still_held(&mut self) -> bool {
        self.lock.still_held().await
    }

    pub async fn release(&mut self) {
        self.lock.release().await
    }
}
