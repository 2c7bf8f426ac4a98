//! Endpoints' signing secrets, sealed in `webhook_secrets` (never in an
//! event, a log line or an idempotency record).
//!
//! A secret is 32 random bytes, shown to its owner once as `whsec_` and
//! their base64 (the Standard Webhooks form). The row is sealed like KMS
//! key material (`crypto::seal`): AES-256-GCM under a key derived from the
//! root key for the tenant and the endpoint, the row's id bound in, so a
//! row copied to another endpoint does not open. Deleting the endpoint
//! deletes its rows ([`SigningSecrets::delete`]).

use base64::Engine;
use chrono::Utc;
use zeroize::Zeroizing;

use crate::crypto::kms::{random_bytes, CryptoError, Material};
use crate::crypto::seal::{Binding, Sealer};
use crate::readmodel::timestamp;
use crate::Store;

/// The prefix of a signing secret as its owner sees it.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret could not be made, stored or opened.
#[derive(Debug, thiserror::Error)]
pub enum SigningSecretError {
    #[error("webhook secrets: {0}")]
    Database(#[from] sqlx::Error),
    /// No row: the endpoint was deleted, or the secret retired.
    #[error("the signing secret is gone")]
    Gone,
    #[error("the signing secret does not open: {0}")]
    Unsealed(#[from] CryptoError),
}

/// A new secret: its row's id and the value to show once.
pub struct NewSigningSecret {
    pub secret_id: String,
    /// `whsec_…`: shown in the answer that made it, nowhere else.
    pub shown: Zeroizing<String>,
}

impl std::fmt::Debug for NewSigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningSecret")
            .field("secret_id", &self.secret_id)
            .field("shown", &"***")
            .finish()
    }
}

fn binding<'a>(tenant_id: &'a str, webhook_id: &'a str, secret_id: &'a str) -> Binding<'a> {
    Binding {
        tenant_id,
        key_id: webhook_id,
        version: 0,
        material_id: secret_id,
    }
}

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

/// Makes, seals, opens and deletes signing secrets.
#[derive(Clone)]
pub struct SigningSecrets {
    sealer: Sealer,
}

impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecrets(***)")
    }
}

impl SigningSecrets {
    pub fn new(sealer: Sealer) -> Self {
        Self { sealer }
    }

    /// Makes a secret for the endpoint and stores it sealed (before the
    /// event that names it is recorded).
    pub async fn create(
        &self,
        store: &Store,
        tenant_id: &str,
        webhook_id: &str,
    ) -> Result<NewSigningSecret, SigningSecretError> {
        let secret_id = format!("whs_{}", uuid::Uuid::new_v4().simple());
        let bytes = random_bytes(32)?;
        let material = Material::from_bytes(bytes.to_vec());
        let sealed = self
            .sealer
            .seal(&binding(tenant_id, webhook_id, &secret_id), &material)?;
        let _turn = store.write_turn().await;
        sqlx::query(
            "INSERT INTO webhook_secrets (secret_id, webhook_id, tenant_id, sealed, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&secret_id)
        .bind(webhook_id)
        .bind(tenant_id)
        .bind(b64().encode(sealed))
        .bind(timestamp(&Utc::now()))
        .execute(store.read_pool())
        .await?;
        let shown = Zeroizing::new(format!("{SECRET_PREFIX}{}", b64().encode(&*bytes)));
        Ok(NewSigningSecret { secret_id, shown })
    }

    /// The secret's 32 bytes.
    pub async fn open(
        &self,
        store: &Store,
        tenant_id: &str,
        webhook_id: &str,
        secret_id: &str,
    ) -> Result<Zeroizing<Vec<u8>>, SigningSecretError> {
        let sealed: Option<String> = sqlx::query_scalar(
            "SELECT sealed FROM webhook_secrets WHERE secret_id = $1 AND webhook_id = $2",
        )
        .bind(secret_id)
        .bind(webhook_id)
        .fetch_optional(store.read_pool())
        .await?;
        let sealed = b64()
            .decode(sealed.ok_or(SigningSecretError::Gone)?)
            .map_err(|_| CryptoError::BadMaterial)?;
        let material = self
            .sealer
            .open(&binding(tenant_id, webhook_id, secret_id), &sealed)?;
        Ok(Zeroizing::new(material.expose().to_vec()))
    }

    /// Deletes the endpoint's rows named in `secret_ids` (all of them when
    /// empty), and scrubs the freed pages.
    pub async fn delete(
        &self,
        store: &Store,
        webhook_id: &str,
        secret_ids: &[String],
    ) -> Result<(), SigningSecretError> {
        {
            let _turn = store.write_turn().await;
            let mut tx = store.read_pool().begin().await?;
            delete_in(&mut tx, webhook_id, secret_ids).await?;
            tx.commit().await?;
        }
        store.scrub_deleted_pages().await?;
        Ok(())
    }
}

/// Deletes the endpoint's rows named in `secret_ids` (all of them when
/// empty) within a transaction.
pub async fn delete_in(
    conn: &mut sqlx::AnyConnection,
    webhook_id: &str,
    secret_ids: &[String],
) -> Result<(), sqlx::Error> {
    if secret_ids.is_empty() {
        sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = $1")
            .bind(webhook_id)
            .execute(&mut *conn)
            .await?;
    }
    for secret_id in secret_ids {
        sqlx::query("DELETE FROM webhook_secrets WHERE webhook_id = $1 AND secret_id = $2")
            .bind(webhook_id)
            .bind(secret_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
