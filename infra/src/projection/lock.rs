//! Which process runs a projection. On PostgreSQL: a session advisory lock
//! held on a dedicated connection, released when that connection ends — so a
//! replica that dies (even `kill -9`) frees it and another takes over. SQLite
//! is one process's embedded store; its lock is always granted.

use sqlx::postgres::PgConnection;
use sqlx::{ConnectOptions, Connection};

use crate::{Store, StoreError};

/// The first key of every projection lock: "palisade" in ASCII, truncated.
const LOCK_NAMESPACE: i32 = 0x7061_6c69;

pub(crate) struct LockSession {
    store: Store,
    name: &'static str,
    connection: Option<PgConnection>,
    held: bool,
}

impl LockSession {
    pub fn new(store: Store, name: &'static str) -> Self {
        Self {
            store,
            name,
            connection: None,
            held: false,
        }
    }

    /// Tries once, without waiting.
    pub async fn try_acquire(&mut self) -> Result<bool, StoreError> {
        let Some(pool) = self.store.postgres_pool() else {
            self.held = true;
            return Ok(true);
        };
        let connection = match self.connection.as_mut() {
            Some(connection) => connection,
            None => self
                .connection
                .insert(pool.connect_options().connect().await?),
        };
        let acquired =
            sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(LOCK_NAMESPACE)
                .bind(self.name)
                .fetch_one(&mut *connection)
                .await;
        match acquired {
            Ok(acquired) => {
                self.held = acquired;
                Ok(acquired)
            }
            Err(error) => {
                self.connection = None;
                Err(error.into())
            }
        }
    }

    /// Whether the lock is still ours (its connection is alive).
    pub async fn still_held(&mut self) -> bool {
        if !self.held {
            return false;
        }
        let Some(connection) = self.connection.as_mut() else {
            return self.store.postgres_pool().is_none();
        };
        if connection.ping().await.is_ok() {
            return true;
        }
        self.connection = None;
        self.held = false;
        false
    }

    pub async fn release(&mut self) {
        if !std::mem::take(&mut self.held) {
            return;
        }
        if let Some(connection) = self.connection.as_mut() {
            let released = sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(LOCK_NAMESPACE)
                .bind(self.name)
                .execute(&mut *connection)
                .await;
            if released.is_err() {
                self.connection = None;
            }
        }
    }
}
