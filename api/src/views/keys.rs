//! KMS keys and the answers of their operations as the API shows them.
//! Secret values (plaintexts, data keys, shared secrets) appear only in
//! the answer of the operation that produced them, marked so that an
//! idempotent replay shows them redacted.

use base64::Engine;
use palisade_domain::key::KeyState;
use palisade_infra::crypto::kms;
use palisade_infra::readmodel::KeyWithVersions;
use palisade_projections::{KeyRow, KeyVersionRow};
use serde::Serialize;
use utoipa::ToSchema;

use super::format_time;
use crate::app::keys::{DataKey, Decrypted, Encrypted, ItemResult};
use crate::app::Error;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A key as the API shows it (never its material).
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Key", complex)]
pub struct KeyView {
    #[schema(example = "key_0190f0e4c3a87d2f9b1c2d3e4f5a6b7c")]
    pub id: String,
    pub name: String,
    #[schema(example = "aes-256-gcm")]
    pub algorithm: String,
    /// `enabled`, `disabled`, `pending_deletion` or `destroyed`.
    pub state: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// What the key can do (`encrypt`, `sign`, …).
    pub operations: Vec<String>,
    pub latest_version: u32,
    pub min_decryption_version: u32,
    pub rotation_period_days: Option<u32>,
    pub next_rotation_at: Option<String>,
    /// When a key pending deletion is destroyed.
    pub deletion_date: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_used_at: Option<String>,
    /// The key that takes this one's place (a migration), if named.
    pub replaced_by: Option<String>,
    /// The latest version outlived its rotation period (or the policy's
    /// cryptoperiod) and was not rotated: a `crypto` finding says so too.
    pub rotation_overdue: bool,
    /// When an enabled key's latest version is due a rotation.
    pub rotation_due_at: Option<String>,
    /// Oldest first; only on a single key's answers (GraphQL resolves it
    /// for every key).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[graphql(skip)]
    pub versions: Option<Vec<KeyVersionView>>,
}

/// One version of a key.
#[derive(async_graphql::SimpleObject, Debug, Clone, Serialize, ToSchema)]
#[graphql(name = "KeyVersion")]
pub struct KeyVersionView {
    pub version: u32,
    /// `current` (new operations use it), `enabled` (decrypts and
    /// verifies), `retired` (below `min_decryption_version`) or `destroyed`.
    pub state: String,
    pub created_at: String,
    /// `sha256:` and the hex SHA-256 of the public key (asymmetric keys).
    pub public_key_fingerprint: Option<String>,
}

fn version_view(key: &KeyRow, version: &KeyVersionRow) -> KeyVersionView {
    let state = if key.state == KeyState::Destroyed {
        "destroyed"
    } else if version.version == key.latest_version {
        "current"
    } else if version.version < key.min_decryption_version {
        "retired"
    } else {
        "enabled"
    };
    KeyVersionView {
        version: version.version,
        state: state.to_string(),
        created_at: format_time(&version.created_at),
        public_key_fingerprint: version.public_key.as_ref().and_then(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .map(|bytes| kms::fingerprint(&bytes))
        }),
    }
}

impl From<KeyRow> for KeyView {
    fn from(key: KeyRow) -> Self {
        Self {
            operations: key
                .algorithm
                .operations()
                .iter()
                .map(|o| o.as_str().to_string())
                .collect(),
            id: key.id,
            name: key.name,
            algorithm: key.algorithm.as_str().to_string(),
            state: key.state.as_str().to_string(),
            description: key.description,
            tags: key.tags,
            latest_version: key.latest_version,
            min_decryption_version: key.min_decryption_version,
            rotation_period_days: key.rotation_period_days,
            next_rotation_at: key.next_rotation_at.as_ref().map(format_time),
            deletion_date: key.deletion_date.as_ref().map(format_time),
            created_at: format_time(&key.created_at),
            updated_at: format_time(&key.updated_at),
            last_used_at: key.last_used_at.as_ref().map(format_time),
            replaced_by: key.replaced_by,
            rotation_overdue: key.rotation_overdue,
            rotation_due_at: key.rotation_due_at.as_ref().map(format_time),
            versions: None,
        }
    }
}

impl From<KeyWithVersions> for KeyView {
    fn from(found: KeyWithVersions) -> Self {
        let versions = found
            .versions
            .iter()
            .map(|v| version_view(&found.key, v))
            .collect();
        let mut view = KeyView::from(found.key);
        view.versions = Some(versions);
        view
    }
}

/// An error of one batch item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    pub code: String,
    pub message: String,
}

impl From<&Error> for ItemError {
    fn from(error: &Error) -> Self {
        Self {
            code: error.code().to_string(),
            message: error.to_string(),
        }
    }
}

/// The answer of `encrypt`, `rewrap` (and one item of their batches).
#[derive(Debug, Serialize, ToSchema)]
pub struct CiphertextView {
    #[schema(example = "pal:v1:3q2+7w...")]
    pub ciphertext: String,
    pub key_version: u32,
}

impl From<Encrypted> for CiphertextView {
    fn from(encrypted: Encrypted) -> Self {
        Self {
            ciphertext: encrypted.ciphertext,
            key_version: encrypted.key_version,
        }
    }
}

/// The answer of `decrypt`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaintextView {
    /// Base64.
    pub plaintext: String,
    pub key_version: u32,
}

impl From<Decrypted> for PlaintextView {
    fn from(decrypted: Decrypted) -> Self {
        Self {
            plaintext: b64(&decrypted.plaintext),
            key_version: decrypted.key_version,
        }
    }
}

/// One item of a batch's results, in input order: its value or its error.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItem {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// The answer of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResults {
    pub results: Vec<BatchItem>,
}

impl BatchResults {
    pub fn of_ciphertexts(results: Vec<ItemResult<Encrypted>>) -> Self {
        Self {
            results: results
                .into_iter()
                .map(|result| match result {
                    Ok(item) => BatchItem {
                        reference: item.reference,
                        ciphertext: Some(item.ciphertext),
                        plaintext: None,
                        key_version: Some(item.key_version),
                        error: None,
                    },
                    Err(error) => BatchItem::failed(&error),
                })
                .collect(),
        }
    }

    pub fn of_plaintexts(results: Vec<ItemResult<Decrypted>>) -> Self {
        Self {
            results: results
                .into_iter()
                .map(|result| match result {
                    Ok(item) => BatchItem {
                        plaintext: Some(b64(&item.plaintext)),
                        reference: item.reference,
                        ciphertext: None,
                        key_version: Some(item.key_version),
                        error: None,
                    },
                    Err(error) => BatchItem::failed(&error),
                })
                .collect(),
        }
    }

    /// The plaintexts the answer shows (secrets: redacted in a replay).
    pub fn plaintexts(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter_map(|item| item.plaintext.as_deref())
            .collect()
    }
}

impl BatchItem {
    fn failed(error: &Error) -> Self {
        Self {
            reference: None,
            ciphertext: None,
            plaintext: None,
            key_version: None,
            error: Some(ItemError::from(error)),
        }
    }
}

/// The answer of `data-key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataKeyView {
    /// Base64 of the key's bytes; absent with `include_plaintext: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    /// The bytes encrypted under the key: store this, decrypt when needed.
    pub ciphertext: String,
    pub key_version: u32,
}

impl From<DataKey> for DataKeyView {
    fn from(key: DataKey) -> Self {
        Self {
            plaintext: key.plaintext.as_ref().map(|bytes| b64(bytes)),
            ciphertext: key.encrypted.ciphertext,
            key_version: key.encrypted.key_version,
        }
    }
}

/// The answer of `sign`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    /// Base64 (ASN.1 DER for ECDSA P-256).
    pub signature: String,
    pub key_version: u32,
}

impl SignatureView {
    pub fn new(signature: &[u8], key_version: u32) -> Self {
        Self {
            signature: b64(signature),
            key_version,
        }
    }
}

/// The answer of `mac`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MacView {
    /// Base64 of the 32-byte HMAC-SHA256.
    pub mac: String,
    pub key_version: u32,
}

impl MacView {
    pub fn new(mac: &[u8], key_version: u32) -> Self {
        Self {
            mac: b64(mac),
            key_version,
        }
    }
}

/// The answer of `verify` and `mac/verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidView {
    pub valid: bool,
}

/// The answer of `decapsulate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SharedSecretView {
    /// Base64 of the 32-byte shared secret.
    pub shared_secret: String,
    pub key_version: u32,
}

impl SharedSecretView {
    pub fn new(secret: &[u8], key_version: u32) -> Self {
        Self {
            shared_secret: b64(secret),
            key_version,
        }
    }
}

/// The answer of `public-key`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    pub algorithm: String,
    pub version: u32,
    /// `spki-pem` (Ed25519, P-256: `pem` is what `openssl` reads),
    /// `fips204` (ML-DSA-65) or `fips203` (ML-KEM-768): `pem` holds the
    /// FIPS encoding in base64.
    pub format: String,
    pub pem: String,
}

impl PublicKeyView {
    pub fn new(
        algorithm: palisade_domain::key::Algorithm,
        version: u32,
        text: kms::PublicKeyText,
    ) -> Self {
        Self {
            algorithm: algorithm.as_str().to_string(),
            version,
            format: text.format.to_string(),
            pem: text.text,
        }
    }
}
