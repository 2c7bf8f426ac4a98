//! The one seam between the store and its database: everything that differs
//! between SQLite and PostgreSQL is a method of [`Backend`] (what needs the
//! backend's own connections: the feed, positions, the backlog, locks,
//! migrations, bulk appends) or of [`Dialect`] (how SQL is written for it,
//! reachable from any pool or connection). `sqlite.rs` and `postgres.rs`
//! implement both; nothing outside `store/` asks which backend it runs on.

use async_trait::async_trait;
use palisade_projections::{FeedEvent, FeedPosition};
use sqlx::{AnyPool, PgPool};

use super::{Backlog, EventRepository, FeedSlice, NewEventRow, StoreError, StoreKind};
use crate::readmodel::sql::Sql;

/// How SQL is written for one backend. Stateless: see [`dialect_of`] and
/// [`dialect_named`].
pub trait Dialect: Send + Sync {
    fn kind(&self) -> StoreKind;

    /// Whether statements bind anonymous `?` rather than numbered `$n`
    /// placeholders (SQLite: see `readmodel::sql` for why).
    fn anonymous_placeholders(&self) -> bool;

    /// An expression for the text of `field` in the JSON column `column`.
    fn json_text(&self, column: &str, field: &str) -> String;
}

/// The dialect of the database `pool` talks to.
pub fn dialect_of(pool: &AnyPool) -> &'static dyn Dialect {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        &super::sqlite::SqliteDialect
    } else {
        &super::postgres::PostgresDialect
    }
}

/// The dialect of a connection, by its `backend_name()`.
pub fn dialect_named(backend_name: &str) -> &'static dyn Dialect {
    if backend_name == <sqlx::Sqlite as sqlx::Database>::NAME {
        &super::sqlite::SqliteDialect
    } else {
        &super::postgres::PostgresDialect
    }
}

/// One database's connections and what the store does with them that
/// depends on which database it is.
#[async_trait]
pub(crate) trait Backend: Send + Sync {
    fn dialect(&self) -> &'static dyn Dialect;

    /// The process-wide write turn, on a backend with one writer (SQLite).
    fn write_gate(&self) -> Option<&std::sync::Arc<tokio::sync::Mutex<()>>> {
        None
    }

    /// The PostgreSQL pool, on PostgreSQL.
    fn postgres_pool(&self) -> Option<&PgPool> {
        None
    }

    async fn migrate(&self) -> Result<(), StoreError>;

    fn event_repository(&self) -> EventRepository;

    /// Up to `limit` committed events after `after`, in feed order, never
    /// past an event that may still commit before them. With `only`, just
    /// the events of those aggregate types are decoded and returned (the
    /// others are read as positions: the window is the same).
    async fn read_feed(
        &self,
        after: FeedPosition,
        limit: i64,
        only: Option<&[&str]>,
    ) -> Result<FeedSlice, StoreError>;

    /// One aggregate's committed events, oldest first.
    async fn read_aggregate(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<FeedEvent>, StoreError>;

    /// The committed events of several aggregates of one type, by
    /// aggregate, oldest first.
    async fn read_aggregates(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[String],
    ) -> Result<Vec<FeedEvent>, StoreError>;

    /// The feed position of the last event committed so far.
    async fn feed_head_position(&self) -> Result<FeedPosition, StoreError>;

    /// Where one committed event stands in the feed.
    async fn feed_position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> Result<Option<FeedPosition>, StoreError>;

    /// How many committed events lie after `after`, and the oldest's age.
    async fn feed_backlog(&self, after: FeedPosition) -> Result<Backlog, StoreError>;

    /// The aggregates of `aggregate_type` with an event after `after` and
    /// at or before `upto`, in feed order (each once).
    async fn changed_aggregates(
        &self,
        aggregate_type: &str,
        after: FeedPosition,
        upto: FeedPosition,
    ) -> Result<Vec<String>, StoreError>;

    /// A query for the aggregates of `aggregate_type` among `ids` that
    /// have a first event.
    fn existing_aggregates_query(&self, aggregate_type: &str, ids: &[&str]) -> Sql;

    /// Appends `rows` in one transaction: true, or false (and nothing
    /// appended) when one of their sequences is taken.
    async fn append_events(&self, rows: &[NewEventRow]) -> Result<bool, sqlx::Error>;

    /// A lock named `name` that at most one process holds at a time.
    fn lock(&self, name: &'static str) -> Box<dyn Lock>;

    async fn close(&self);
}

/// `ids` without repeats, in their first order.
pub(super) fn distinct(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// A named lock held by at most one process (see `projection::lock`).
#[async_trait]
pub(crate) trait Lock: Send {
    /// Tries once, without waiting.
    async fn try_acquire(&mut self) -> Result<bool, StoreError>;
    /// Whether the lock is still ours.
    async fn still_held(&mut self) -> bool;
    async fn release(&mut self);
}
