//! The webhooks view's table (`webhooks`): the projection's writes and the
//! queries of `/v1/webhooks`, the dispatcher's and the senders'.

use async_trait::async_trait;
use palisade_projections::{StoreError, ViewRef, WebhookRow, WebhooksStore};
use sqlx::AnyPool;

use super::findings::{from_doc, paged};
use super::kms::partition_doc;
use super::sql::Sql;
use super::{store_error, timestamp, BatchTransaction, SqlStore};
use super::{Page, Partition, Window};

/// The most endpoints one environment holds.
pub const MAX_WEBHOOKS: u32 = 100;

/// The webhooks view's SQL store for one batch: it writes as it goes.
pub(super) struct WebhooksSql {
    tx: BatchTransaction,
}

pub(super) fn open(tx: BatchTransaction) -> Box<dyn SqlStore> {
    Box::new(WebhooksSql { tx })
}

#[async_trait]
impl SqlStore for WebhooksSql {
    fn view(&mut self) -> ViewRef<'_> {
        ViewRef::new(self, |s| s as &mut dyn WebhooksStore)
    }

    async fn finish(self: Box<Self>) -> Result<BatchTransaction, StoreError> {
        Ok(self.tx)
    }
}

#[async_trait]
impl WebhooksStore for WebhooksSql {
    async fn webhook(&mut self, id: &str) -> Result<Option<WebhookRow>, StoreError> {
        super::batch_doc(&mut self.tx, "webhooks", id).await
    }

    async fn save_webhook(&mut self, webhook: &WebhookRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, environment, status, created_at, doc)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc",
        )
        .bind(&webhook.id)
        .bind(&webhook.tenant_id)
        .bind(webhook.environment.as_str())
        .bind(webhook.status.as_str())
        .bind(timestamp(&webhook.created_at))
        .bind(super::json_doc(webhook)?)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn delete_webhook(&mut self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

// ------------------------------------------------------------------ reads

pub async fn get_webhook(
    pool: &AnyPool,
    partition: &Partition,
    id: &str,
) -> Result<Option<WebhookRow>, sqlx::Error> {
    partition_doc(pool, "webhooks", partition, id).await
}

/// A page of a partition's endpoints, oldest first.
pub async fn list_webhooks(
    pool: &AnyPool,
    partition: &Partition,
    window: impl Into<Window>,
) -> Result<Page<WebhookRow>, sqlx::Error> {
    let mut sql = Sql::new("SELECT doc FROM webhooks");
    partition.restrict(&mut sql);
    paged(
        pool,
        sql,
        " ORDER BY created_at, id",
        window.into(),
        from_doc,
    )
    .await
}

/// Every enabled endpoint of every tenant (what the dispatcher and the
/// senders serve).
pub async fn enabled_webhooks(pool: &AnyPool) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT doc FROM webhooks WHERE status = 'enabled' ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_doc).collect()
}

/// Every endpoint of every tenant, enabled or not (what the dispatcher
/// routes by: an endpoint disabled now may have been enabled when an
/// event it has not routed yet happened).
pub async fn all_webhooks(pool: &AnyPool) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let rows = sqlx::query("SELECT doc FROM webhooks ORDER BY id")
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_doc).collect()
}

/// An endpoint by id alone, in whatever tenant (the senders').
pub async fn webhook_by_id(pool: &AnyPool, id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
    let row = sqlx::query("SELECT doc FROM webhooks WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_doc).transpose()
}
