//! The `key_material` table: each key version's secret half, sealed
//! (`crypto::seal`), outside the event log, so that destroying a key
//! deletes it for good (`docs/keys.md`).
//!
//! On SQLite every connection runs with `secure_delete` (freed pages are
//! zeroed), and a destroy ends with a `TRUNCATE` checkpoint so that the
//! write-ahead log no longer holds the deleted rows' pages either. On
//! PostgreSQL the rows are deleted; what WAL and backups still hold is in
//! `docs/keys.md`.

use base64::Engine;
use chrono::Utc;

use crate::crypto::kms::{CryptoError, Material};
use crate::crypto::seal::{Binding, Sealer};
use crate::readmodel::timestamp;
use crate::{Store, StoreError};

/// Why material could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key material: {0}")]
    Database(#[from] sqlx::Error),
    /// No row: the key was destroyed (or the row never landed).
    #[error("the key material is gone")]
    Gone,
    /// The row does not open under its binding and this root key.
    #[error("the key material does not open: {0}")]
    Unsealed(#[from] CryptoError),
}

/// Seals `material` and writes its row (named by `binding.material_id`).
pub async fn put(
    store: &Store,
    sealer: &Sealer,
    binding: &Binding<'_>,
    material: &Material,
) -> Result<(), MaterialError> {
    let sealed = base64::engine::general_purpose::STANDARD.encode(sealer.seal(binding, material)?);
    let _turn = store.write_turn().await;
    sqlx::query(
        "INSERT INTO key_material (material_id, key_id, tenant_id, version, sealed, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(binding.material_id)
    .bind(binding.key_id)
    .bind(binding.tenant_id)
    .bind(i64::from(binding.version))
    .bind(sealed)
    .bind(timestamp(&Utc::now()))
    .execute(store.read_pool())
    .await?;
    Ok(())
}

/// Reads and opens the row `binding` names.
pub async fn get(
    store: &Store,
    sealer: &Sealer,
    binding: &Binding<'_>,
) -> Result<Material, MaterialError> {
    let sealed: Option<String> = sqlx::query_scalar(
        "SELECT sealed FROM key_material WHERE material_id = $1 AND key_id = $2",
    )
    .bind(binding.material_id)
    .bind(binding.key_id)
    .fetch_optional(store.read_pool())
    .await?;
    let sealed = sealed.ok_or(MaterialError::Gone)?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|_| CryptoError::BadMaterial)?;
    Ok(sealer.open(binding, &sealed)?)
}

/// Deletes one row: the material of a rotation that lost its race, which
/// no event names.
pub async fn forget(store: &Store, material_id: &str) -> Result<(), MaterialError> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM key_material WHERE material_id = $1")
        .bind(material_id)
        .execute(store.read_pool())
        .await?;
    Ok(())
}

/// Deletes every row of these keys (all versions, and any orphan), then,
/// on SQLite, checkpoints the write-ahead log and truncates it. Returns
/// the rows deleted.
pub async fn shred(store: &Store, key_ids: &[String]) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    let _turn = store.write_turn().await;
    for key_id in key_ids {
        deleted += sqlx::query("DELETE FROM key_material WHERE key_id = $1")
            .bind(key_id)
            .execute(store.read_pool())
            .await?
            .rows_affected();
    }
    if deleted > 0 {
        store.scrub_deleted_pages().await?;
    }
    Ok(deleted)
}

/// Keys that are destroyed but still have material rows (a destroy whose
/// delete did not happen: a crash between the event and the delete).
pub async fn unshredded(store: &Store) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT m.key_id FROM key_material m JOIN keys k ON k.id = m.key_id
          WHERE k.state = 'destroyed'",
    )
    .fetch_all(store.read_pool())
    .await
}
