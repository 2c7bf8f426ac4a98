//! The secret store's values, outside the event log (`docs/secrets.md`).
//!
//! - **Data keys.** Each secret has a data key: 32 random bytes, sealed in
//!   `secret_data_keys` under a key-encryption key derived from the root
//!   key for its tenant and secret (`crypto::seal`, the KMS's sealer; a
//!   secret id never equals a key id, so the derivations never meet).
//!   Deleting the secret deletes it, and with it every value it sealed.
//! - **Values.** Each version's value is AES-256-GCM under its secret's
//!   data key, in `secret_values`, with tenant, secret, version and the
//!   row's value id as additional authenticated data: a row copied onto
//!   another version, secret or tenant does not open. Rows are written
//!   before the event that names them; destroying a version deletes its
//!   row (SQLite zeroes freed pages and the log is then truncated).
//! - **Fingerprints.** Events carry HMAC-SHA256 of the value under a key
//!   derived from the root key, over tenant, environment, secret id and
//!   value: two versions of one secret with the same value have the same
//!   fingerprint (compare, leak check), two secrets never do, and an
//!   offline reader of the events cannot test guesses.
//!
//! Values in memory are [`SecretValue`]: zeroized on drop, never printed.

pub mod lifecycle;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretBox};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::crypto::kms::{random_bytes, CryptoError, Material};
use crate::crypto::seal::{Binding, Sealer};
use crate::crypto::{KeyedDigest, RootKey};
use crate::readmodel::timestamp;
use crate::{Store, StoreError};

const FORMAT: u8 = 1;

/// A secret's value in memory: zeroized on drop; `Debug` shows nothing.
pub struct SecretValue(SecretBox<[u8]>);

impl SecretValue {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    pub fn len(&self) -> usize {
        self.expose().len()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// Why a value could not be sealed, stored or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("secret values: {0}")]
    Database(#[from] sqlx::Error),
    /// No row: the version (or the secret) was destroyed.
    #[error("the value is gone")]
    Gone,
    /// The row does not open under its binding and this root key.
    #[error("the value does not open: {0}")]
    Unsealed(#[from] CryptoError),
}

/// Where a value belongs: every field is bound into its seal.
#[derive(Debug, Clone, Copy)]
pub struct ValueAt<'a> {
    pub tenant_id: &'a str,
    pub secret_id: &'a str,
    pub data_key_id: &'a str,
    pub version: u32,
}

impl ValueAt<'_> {
    fn aad(&self, value_id: &str) -> Vec<u8> {
        let mut aad = b"secret value v1\0".to_vec();
        for part in [self.tenant_id, self.secret_id, value_id] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }

    fn data_key_binding(&self) -> Binding<'_> {
        Binding {
            tenant_id: self.tenant_id,
            key_id: self.secret_id,
            version: 0,
            material_id: self.data_key_id,
        }
    }
}

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

fn new_row_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Seals, stores, opens and shreds secret values.
pub struct SecretVault {
    sealer: Sealer,
    fingerprints: KeyedDigest,
}

impl std::fmt::Debug for SecretVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretVault(***)")
    }
}

impl SecretVault {
    pub fn new(root: &RootKey) -> Self {
        Self {
            sealer: Sealer::new(root),
            fingerprints: KeyedDigest::new(root, "secret value fingerprint"),
        }
    }

    /// The keyed fingerprint of `value` as a value of one secret: equal
    /// values of two versions of it have equal fingerprints, those of two
    /// secrets (or environments, or tenants) do not.
    pub fn fingerprint(
        &self,
        tenant_id: &str,
        environment: palisade_domain::Environment,
        secret_id: &str,
        value: &[u8],
    ) -> String {
        self.fingerprints.digest(&[
            tenant_id.as_bytes(),
            environment.as_str().as_bytes(),
            secret_id.as_bytes(),
            value,
        ])
    }

    /// Whether `candidate` has the fingerprint `fingerprint`, compared in
    /// constant time.
    pub fn matches(
        &self,
        tenant_id: &str,
        environment: palisade_domain::Environment,
        secret_id: &str,
        candidate: &[u8],
        fingerprint: &str,
    ) -> bool {
        let computed = self.fingerprint(tenant_id, environment, secret_id, candidate);
        computed.as_bytes().ct_eq(fingerprint.as_bytes()).into()
    }

    /// Makes a secret a new data key and stores it sealed; its id.
    pub async fn new_data_key(
        &self,
        store: &Store,
        tenant_id: &str,
        secret_id: &str,
    ) -> Result<String, VaultError> {
        let data_key_id = new_row_id();
        let key = Material::from_bytes(random_bytes(32)?.to_vec());
        let at = ValueAt {
            tenant_id,
            secret_id,
            data_key_id: &data_key_id,
            version: 0,
        };
        let sealed = b64().encode(self.sealer.seal(&at.data_key_binding(), &key)?);
        let _turn = store.write_turn().await;
        sqlx::query(
            "INSERT INTO secret_data_keys (data_key_id, secret_id, tenant_id, sealed, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&data_key_id)
        .bind(secret_id)
        .bind(tenant_id)
        .bind(sealed)
        .bind(timestamp(&Utc::now()))
        .execute(store.read_pool())
        .await?;
        Ok(data_key_id)
    }

    fn value_cipher(
        &self,
        at: &ValueAt<'_>,
        sealed_key: &str,
    ) -> Result<aes_gcm::Aes256Gcm, VaultError> {
        let sealed_key = b64()
            .decode(sealed_key)
            .map_err(|_| CryptoError::BadMaterial)?;
        let key = self.sealer.open(&at.data_key_binding(), &sealed_key)?;
        Ok(aes_gcm::Aes256Gcm::new_from_slice(key.expose())
            .map_err(|_| CryptoError::BadMaterial)?)
    }

    /// Seals `value` as version `at.version` and stores its row; its id.
    pub async fn seal(
        &self,
        store: &Store,
        at: &ValueAt<'_>,
        value: &SecretValue,
    ) -> Result<String, VaultError> {
        let sealed_key: Option<String> = sqlx::query_scalar(
            "SELECT sealed FROM secret_data_keys WHERE data_key_id = $1 AND secret_id = $2",
        )
        .bind(at.data_key_id)
        .bind(at.secret_id)
        .fetch_optional(store.read_pool())
        .await?;
        let cipher = self.value_cipher(at, &sealed_key.ok_or(VaultError::Gone)?)?;
        let value_id = new_row_id();
        let nonce = random_bytes(12)?;
        let aad = at.aad(&value_id);
        let body = cipher
            .encrypt(
                nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::Random)?,
                Payload {
                    msg: value.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::BadMaterial)?;
        let mut sealed = Vec::with_capacity(1 + nonce.len() + body.len());
        sealed.push(FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        let _turn = store.write_turn().await;
        sqlx::query(
            "INSERT INTO secret_values (value_id, secret_id, data_key_id, version, sealed, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&value_id)
        .bind(at.secret_id)
        .bind(at.data_key_id)
        .bind(i64::from(at.version))
        .bind(b64().encode(sealed))
        .bind(timestamp(&Utc::now()))
        .execute(store.read_pool())
        .await?;
        Ok(value_id)
    }

    /// Reads and opens the value row `value_id` of version `at.version`.
    pub async fn open(
        &self,
        store: &Store,
        at: &ValueAt<'_>,
        value_id: &str,
    ) -> Result<SecretValue, VaultError> {
        let row = sqlx::query(
            "SELECT v.sealed AS value, d.sealed AS data_key
               FROM secret_values v JOIN secret_data_keys d ON d.data_key_id = v.data_key_id
              WHERE v.value_id = $1 AND v.secret_id = $2 AND v.data_key_id = $3",
        )
        .bind(value_id)
        .bind(at.secret_id)
        .bind(at.data_key_id)
        .fetch_optional(store.read_pool())
        .await?
        .ok_or(VaultError::Gone)?;
        let sealed_key: String = row.try_get("data_key")?;
        let sealed: String = row.try_get("value")?;
        let cipher = self.value_cipher(at, &sealed_key)?;
        let sealed = b64().decode(sealed).map_err(|_| CryptoError::BadMaterial)?;
        let Some((&FORMAT, rest)) = sealed.split_first() else {
            return Err(CryptoError::BadMaterial.into());
        };
        if rest.len() < 12 + 16 {
            return Err(CryptoError::BadMaterial.into());
        }
        let (nonce, body) = rest.split_at(12);
        let aad = at.aad(value_id);
        let opened = cipher
            .decrypt(
                nonce.try_into().map_err(|_| CryptoError::BadMaterial)?,
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::BadMaterial)?;
        Ok(SecretValue::from_bytes(opened))
    }
}

/// Deletes one value row (a write that lost its race, which no event names).
pub async fn forget_value(store: &Store, value_id: &str) -> Result<(), VaultError> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM secret_values WHERE value_id = $1")
        .bind(value_id)
        .execute(store.read_pool())
        .await?;
    Ok(())
}

/// Deletes a data key row that no event names (a first write that lost).
pub async fn forget_data_key(store: &Store, data_key_id: &str) -> Result<(), VaultError> {
    let _turn = store.write_turn().await;
    sqlx::query("DELETE FROM secret_data_keys WHERE data_key_id = $1")
        .bind(data_key_id)
        .execute(store.read_pool())
        .await?;
    Ok(())
}

/// Deletes the value rows of these versions of one generation of a secret
/// (the versions an event destroyed, under the data key it names: never a
/// later generation's rows of the same numbers), then
/// scrubs the SQLite log. Returns the rows deleted.
pub async fn shred_versions(
    store: &Store,
    secret_id: &str,
    data_key_id: &str,
    versions: &[u32],
) -> Result<u64, VaultError> {
    let mut deleted = 0;
    {
        let _turn = store.write_turn().await;
        for version in versions {
            deleted += sqlx::query(
                "DELETE FROM secret_values
                  WHERE secret_id = $1 AND data_key_id = $2 AND version = $3",
            )
            .bind(secret_id)
            .bind(data_key_id)
            .bind(i64::from(*version))
            .execute(store.read_pool())
            .await?
            .rows_affected();
        }
    }
    if deleted > 0 {
        store.scrub_deleted_pages().await?;
    }
    Ok(deleted)
}

/// Deletes a data key and every value sealed under it (a deleted secret),
/// then scrubs the SQLite log.
pub async fn shred_secret(
    store: &Store,
    secret_id: &str,
    data_key_id: &str,
) -> Result<u64, VaultError> {
    let mut deleted = 0;
    {
        let _turn = store.write_turn().await;
        for sql in [
            "DELETE FROM secret_values WHERE secret_id = $1 AND data_key_id = $2",
            "DELETE FROM secret_data_keys WHERE secret_id = $1 AND data_key_id = $2",
        ] {
            deleted += sqlx::query(sql)
                .bind(secret_id)
                .bind(data_key_id)
                .execute(store.read_pool())
                .await?
                .rows_affected();
        }
    }
    if deleted > 0 {
        store.scrub_deleted_pages().await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_per_tenant_keyed_and_compared_exactly() {
        let vault = SecretVault::new(&RootKey::from_hex(&"11".repeat(32)).unwrap());
        let other_root = SecretVault::new(&RootKey::from_hex(&"22".repeat(32)).unwrap());
        use palisade_domain::Environment::{Live, Test};
        let a = vault.fingerprint("ten_a", Live, "sec_a", b"hunter2");
        assert_eq!(a, vault.fingerprint("ten_a", Live, "sec_a", b"hunter2"));
        assert_ne!(a, vault.fingerprint("ten_b", Live, "sec_a", b"hunter2"));
        assert_ne!(a, vault.fingerprint("ten_a", Test, "sec_a", b"hunter2"));
        assert_ne!(a, vault.fingerprint("ten_a", Live, "sec_b", b"hunter2"));
        assert_ne!(a, vault.fingerprint("ten_a", Live, "sec_a", b"hunter3"));
        assert_ne!(
            a,
            other_root.fingerprint("ten_a", Live, "sec_a", b"hunter2")
        );
        assert!(vault.matches("ten_a", Live, "sec_a", b"hunter2", &a));
        assert!(!vault.matches("ten_a", Live, "sec_a", b"hunter", &a));
        assert_eq!(
            format!("{:?}", SecretValue::from_bytes(b"x".to_vec())),
            "SecretValue(***)"
        );
    }

    #[test]
    fn a_value_is_bound_to_its_tenant_secret_version_and_row() {
        let at = ValueAt {
            tenant_id: "ten_a",
            secret_id: "sec_a",
            data_key_id: "dk",
            version: 1,
        };
        let base = at.aad("v1");
        assert_ne!(base, at.aad("v2"));
        assert_ne!(base, ValueAt { version: 2, ..at }.aad("v1"));
        assert_ne!(
            base,
            ValueAt {
                secret_id: "sec_b",
                ..at
            }
            .aad("v1")
        );
        assert_ne!(
            base,
            ValueAt {
                tenant_id: "ten_b",
                ..at
            }
            .aad("v1")
        );
    }
}
