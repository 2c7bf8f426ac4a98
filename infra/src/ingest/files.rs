//! An uploaded report's bytes, kept in `ingestion_files` from the upload
//! until its job ends: in the database, in parts of [`PART_BYTES`], so
//! that whichever replica runs the job reads them, and a restart finds
//! them again. A job copies its report to a local temporary file to parse
//! it (parsers read a file, not the database), and deletes both when it
//! ends.

use std::path::Path;

use sqlx::Row;
use tokio::io::AsyncWriteExt;

use crate::{Store, StoreError};

/// The most bytes one row holds.
pub const PART_BYTES: usize = 1024 * 1024;

/// Stores `bytes` as job `job_id`'s report, in one transaction.
pub async fn save_report(store: &Store, job_id: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let _turn = store.write_turn().await;
    let mut tx = store.read_pool().begin().await?;
    // An empty report is one empty part: stored, so that its job finds it.
    let parts: Vec<&[u8]> = if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(PART_BYTES).collect()
    };
    for (part, chunk) in parts.into_iter().enumerate() {
        sqlx::query("INSERT INTO ingestion_files (job_id, part, data) VALUES ($1, $2, $3)")
            .bind(job_id)
            .bind(part as i64)
            .bind(chunk.to_vec())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Writes job `job_id`'s report to `path`, one part at a time: the bytes
/// written, or None when the report is not (or no longer) stored.
pub async fn copy_report_to(
    store: &Store,
    job_id: &str,
    path: &Path,
) -> Result<Option<u64>, StoreError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| io_error(e, path))?;
    let mut written = 0u64;
    let mut part = 0i64;
    loop {
        let row = sqlx::query("SELECT data FROM ingestion_files WHERE job_id = $1 AND part = $2")
            .bind(job_id)
            .bind(part)
            .fetch_optional(store.read_pool())
            .await?;
        let Some(row) = row else { break };
        let data: Vec<u8> = row.try_get("data")?;
        file.write_all(&data).await.map_err(|e| io_error(e, path))?;
        written += data.len() as u64;
        part += 1;
    }
    file.flush().await.map_err(|e| io_error(e, path))?;
    Ok((part > 0).then_some(written))
}

/// Deletes job `job_id`'s report (nothing when it is gone already).
pub async fn delete_report(store: &Store, job_id: &str) -> Result<(), StoreError> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM ingestion_files WHERE job_id = $1")
        .bind(job_id)
        .execute(store.read_pool())
        .await?;
    Ok(())
}

fn io_error(error: std::io::Error, path: &Path) -> StoreError {
    StoreError::Io(std::io::Error::new(
        error.kind(),
        format!("{}: {error}", path.display()),
    ))
}
