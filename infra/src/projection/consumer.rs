//! A checkpointed feed consumer: anything that reads the global feed in
//! order, handles each batch in one transaction together with moving its
//! checkpoint, and waits for the feed to change. The worker loop
//! (`worker.rs`: lock, resume from the checkpoint, apply batches, back off
//! after errors) and the checkpoints (`checkpoint.rs`) serve any
//! [`FeedConsumer`]; projections are one kind ([`ProjectionConsumer`]),
//! process managers (`crate::process`) another: they act on each batch in
//! [`FeedConsumer::react`], before the checkpoint moves, and webhook
//! delivery will be a third.

use std::sync::Arc;

use async_trait::async_trait;
use palisade_projections::{FeedEvent, Projection};

use super::RunnerError;
use crate::readmodel::{BatchTransaction, SqlBatch};

/// Something that consumes the feed from a checkpoint of its own.
#[async_trait]
pub trait FeedConsumer: Send + Sync {
    /// Its checkpoint's name, unique among consumers.
    fn name(&self) -> &'static str;

    /// A changed version rewinds the checkpoint to the start of the feed,
    /// after [`FeedConsumer::reset`].
    fn version(&self) -> i64;

    /// The aggregate types whose events the consumer acts on; None (what
    /// projections say) for all. Its batches hold only those: the others
    /// are read past without their payloads, and a window with none of
    /// them stores its checkpoint later (within a second, or as soon as
    /// the consumer is idle), which saves a transaction per batch.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// How long the consumer lets the feed gather after a change before
    /// it reads (a worker's; projections read at once): under load one
    /// read then takes many events instead of one read per commit.
    fn gather(&self) -> std::time::Duration {
        std::time::Duration::from_millis(50)
    }

    /// Acts on one batch before its transaction opens (a process manager
    /// issues its commands here, which would otherwise wait on the write
    /// turn the batch holds). The checkpoint moves only after this returns
    /// Ok, so an effect is never lost; it may happen again after a crash
    /// or a rewind, so it must be idempotent. Projections do nothing here,
    /// and only consumers that are not projections are ever asked.
    async fn react(&self, _batch: &[FeedEvent]) -> Result<(), RunnerError> {
        Ok(())
    }

    /// Handles one batch (in feed order) in `tx`, the transaction that has
    /// already moved the checkpoint past it, and hands `tx` back to be
    /// committed. An error rolls both back: the batch is handled again.
    async fn handle(
        &self,
        batch: &[FeedEvent],
        tx: BatchTransaction,
    ) -> Result<BatchTransaction, RunnerError>;

    /// Clears what the consumer derived from the feed, in the transaction
    /// that rewinds its checkpoint.
    async fn reset(&self, _tx: &mut BatchTransaction) -> Result<(), RunnerError> {
        Ok(())
    }
}

/// A projection as a feed consumer: each batch goes through its view's SQL
/// store ([`SqlBatch`]), which writes the batch's rows before the commit;
/// a reset empties its tables.
pub(crate) struct ProjectionConsumer(pub Arc<dyn Projection>);

#[async_trait]
impl FeedConsumer for ProjectionConsumer {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn version(&self) -> i64 {
        self.0.version()
    }

    async fn handle(
        &self,
        batch: &[FeedEvent],
        tx: BatchTransaction,
    ) -> Result<BatchTransaction, RunnerError> {
        let projection = self.0.as_ref();
        let failed = |position, source| RunnerError::Projection {
            name: projection.name(),
            position,
            source,
        };
        let Some(last) = batch.last() else {
            return Ok(tx);
        };
        let mut model = SqlBatch::new(tx);
        projection
            .prepare(batch, &mut model)
            .await
            .map_err(|source| failed(last.position, source))?;
        for event in batch {
            projection
                .apply(event, &mut model)
                .await
                .map_err(|source| failed(event.position, source))?;
        }
        model
            .finish()
            .await
            .map_err(|source| failed(last.position, source.into()))
    }

    async fn reset(&self, tx: &mut BatchTransaction) -> Result<(), RunnerError> {
        for table in self.0.tables() {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
