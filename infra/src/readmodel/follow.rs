//! Keeping an in-memory copy of a view honest across replicas: every
//! [`FOLLOW_EVERY`] a follower reads the view's checkpoint (whichever
//! replica runs the projection) and drops from the cache the aggregates
//! whose events the view applied since its last look. A checkpoint that
//! was rewound (its `resets` count changed: a rebuild, however quickly it
//! finished) or a look that fails or takes over [`FOLLOW_TIMEOUT`] empties
//! the cache. Used by the API-key cache (`key_cache.rs`) and the key ring
//! (`keyring`).

use std::sync::Arc;
use std::time::Duration;

use palisade_projections::FeedPosition;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::projection::Checkpoint;
use crate::{ProjectionRunner, Store};

/// How often a follower looks at its view's checkpoint.
pub const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// How long one look may take before it counts as failed (and the cache
/// is emptied).
const FOLLOW_TIMEOUT: Duration = Duration::from_millis(500);

/// A cache of rows of one view, keyed by the aggregates they come from.
pub trait FollowedCache: Send + Sync + 'static {
    /// The projection whose view is cached.
    const VIEW: &'static str;
    /// The aggregate type whose events change the cached rows.
    const AGGREGATE_TYPE: &'static str;
    /// Drops what came from these aggregates (and refuses fills in flight).
    fn evict(&self, aggregate_ids: &[String]);
    /// Drops everything.
    fn clear(&self);
}

/// Until shutdown, every [`FOLLOW_EVERY`]: drops from `cache` the
/// aggregates whose events its view applied since the last look.
pub fn follow<C: FollowedCache>(
    cache: Arc<C>,
    store: Store,
    runner: ProjectionRunner,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Option<Checkpoint> = None;
        let mut failing = false;
        while !*shutdown.borrow() {
            // A look that cannot finish in time is a failed one: the cache
            // must not outlive the bound it promises.
            let look = tokio::time::timeout(
                FOLLOW_TIMEOUT,
                follow_once(cache.as_ref(), &store, &runner, seen),
            );
            match look.await {
                Ok(Ok(now)) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!(view = C::VIEW, "following the view again");
                    }
                    seen = Some(now);
                }
                failed => {
                    // Unsure what changed meanwhile: serve nothing from
                    // memory until a look succeeds (it starts empty).
                    if !std::mem::replace(&mut failing, true) {
                        let error = match failed {
                            Ok(Err(error)) => error.to_string(),
                            _ => format!("no answer within {FOLLOW_TIMEOUT:?}"),
                        };
                        tracing::warn!(view = C::VIEW, %error, "cannot follow the view; its rows are read from the database until it can");
                    }
                    cache.clear();
                    seen = None;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = shutdown.changed() => {}
            }
        }
    })
}

async fn follow_once<C: FollowedCache>(
    cache: &C,
    store: &Store,
    runner: &ProjectionRunner,
    seen: Option<Checkpoint>,
) -> Result<Checkpoint, crate::StoreError> {
    let now = runner.checkpoint(C::VIEW).await?.unwrap_or(Checkpoint {
        version: 0,
        position: FeedPosition::START,
        resets: 0,
    });
    match seen {
        // First look: nothing kept is older than this.
        None => cache.clear(),
        // Rewound (a rebuild, or a new version), however quickly it caught
        // up again: the view may have shown older states than the ones
        // kept. From here on, every event the rebuild applies passes
        // through the eviction below.
        Some(seen) if now.resets != seen.resets || now.position < seen.position => cache.clear(),
        Some(seen) if now.position > seen.position => {
            let changed = store
                .changed_aggregates(C::AGGREGATE_TYPE, seen.position, now.position)
                .await?;
            cache.evict(&changed);
        }
        Some(_) => {}
    }
    Ok(now)
}
