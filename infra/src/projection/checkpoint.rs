//! The `projection_checkpoints` table: one row per feed consumer (each
//! projection, later each webhook subscription or process manager).

use palisade_projections::{FeedEvent, FeedPosition};
use sqlx::Row;

use super::{FeedConsumer, RunnerError};
use crate::{Store, StoreError};

/// A consumer's checkpoint as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub version: i64,
    pub position: FeedPosition,
    /// How many times it was rewound to the start (see [`reset`]).
    pub resets: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) async fn load(store: &Store, name: &str) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT version, tx, position, resets FROM projection_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(store.read_pool())
    .await?;
    row.map(|row| {
        Ok(Checkpoint {
            version: row.try_get("version")?,
            position: FeedPosition {
                tx: row.try_get("tx")?,
                position: row.try_get("position")?,
            },
            resets: row.try_get("resets")?,
        })
    })
    .transpose()
    .map_err(StoreError::Database)
}

/// Every consumer's stored checkpoint, by name.
pub(super) async fn load_all(
    store: &Store,
) -> Result<std::collections::HashMap<String, Checkpoint>, StoreError> {
    let rows =
        sqlx::query("SELECT name, version, tx, position, resets FROM projection_checkpoints")
            .fetch_all(store.read_pool())
            .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("name")?,
                Checkpoint {
                    version: row.try_get("version")?,
                    position: FeedPosition {
                        tx: row.try_get("tx")?,
                        position: row.try_get("position")?,
                    },
                    resets: row.try_get("resets")?,
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::Database)
}

/// The checkpoint to resume from: created at 0 on first run, reset to 0
/// (what the consumer derived cleared) when its version changed.
pub(super) async fn prepare(
    store: &Store,
    projection: &dyn FeedConsumer,
) -> Result<FeedPosition, RunnerError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, version, tx, position, updated_at)
         VALUES ($1, $2, 0, 0, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(projection.name())
    .bind(projection.version())
    .bind(now_ms())
    .execute(store.read_pool())
    .await?;
    match load(store, projection.name()).await? {
        Some(c) if c.version == projection.version() => Ok(c.position),
        stored => {
            tracing::info!(
                projection = projection.name(),
                from_version = stored.map(|c| c.version),
                to_version = projection.version(),
                "projection version changed; rebuilding from the start of the feed"
            );
            reset(store, projection).await?;
            Ok(FeedPosition::START)
        }
    }
}

/// Rewinds the checkpoint first (waiting for, or fencing out, a batch in
/// flight), counting the rewind in `resets`, then clears what the consumer
/// derived (a projection's tables), in one transaction.
pub(super) async fn reset(store: &Store, projection: &dyn FeedConsumer) -> Result<(), RunnerError> {
    let _turn = store.write_turn().await;
    let mut tx = store.read_pool().begin().await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, version, tx, position, updated_at)
         VALUES ($1, $2, 0, 0, $3)
         ON CONFLICT (name) DO UPDATE SET version = excluded.version, tx = 0, position = 0,
                                          resets = projection_checkpoints.resets + 1,
                                          updated_at = excluded.updated_at",
    )
    .bind(projection.name())
    .bind(projection.version())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    projection.reset(&mut tx).await?;
    if store.kind() == crate::StoreKind::Postgres {
        // Wakes the feed readers of every process at commit, as an append
        // does: the replica that runs the consumer sees the rewind at once.
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(crate::store::EVENTS_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Hands one batch to each of `consumers` (all at the checkpoint `from`)
/// and moves their checkpoints to `to` (the end of the window the batch
/// was read from: its last event, or past it when the consumers follow
/// some aggregate types only), atomically: one transaction, one
/// checkpoint statement for all of them.
pub(super) async fn apply_batch(
    store: &Store,
    consumers: &[&dyn FeedConsumer],
    from: FeedPosition,
    to: FeedPosition,
    batch: &[FeedEvent],
) -> Result<(), RunnerError> {
    let Some(first) = consumers.first() else {
        return Ok(());
    };
    if to == from {
        return Ok(());
    }
    let _turn = store.write_turn().await;
    let mut tx = store.read_pool().begin().await?;
    // The fence first: every checkpoint must still be at `from`, at its
    // consumer's version.
    let mut sql = String::from(
        "UPDATE projection_checkpoints SET tx = $1, position = $2, updated_at = $3
          WHERE tx = $4 AND position = $5 AND (",
    );
    for i in 0..consumers.len() {
        if i > 0 {
            sql.push_str(" OR ");
        }
        sql.push_str(&format!(
            "(name = ${} AND version = ${})",
            6 + 2 * i,
            7 + 2 * i
        ));
    }
    sql.push(')');
    let mut query = sqlx::query(&sql)
        .bind(to.tx)
        .bind(to.position)
        .bind(now_ms())
        .bind(from.tx)
        .bind(from.position);
    for consumer in consumers {
        query = query.bind(consumer.name()).bind(consumer.version());
    }
    let moved = query.execute(&mut *tx).await?.rows_affected();
    if moved != consumers.len() as u64 {
        return Err(RunnerError::Fenced(first.name()));
    }
    for consumer in consumers {
        tx = consumer.handle(batch, tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Moves one consumer's checkpoint from `from` to `to` with nothing to
/// write beside it (the batches between were none of its business),
/// fenced like a batch.
pub(super) async fn advance(
    store: &Store,
    consumer: &dyn FeedConsumer,
    from: FeedPosition,
    to: FeedPosition,
) -> Result<(), RunnerError> {
    let _turn = store.write_turn().await;
    let moved = sqlx::query(
        "UPDATE projection_checkpoints SET tx = $1, position = $2, updated_at = $3
          WHERE name = $4 AND version = $5 AND tx = $6 AND position = $7",
    )
    .bind(to.tx)
    .bind(to.position)
    .bind(now_ms())
    .bind(consumer.name())
    .bind(consumer.version())
    .bind(from.tx)
    .bind(from.position)
    .execute(store.read_pool())
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(RunnerError::Fenced(consumer.name()));
    }
    Ok(())
}
