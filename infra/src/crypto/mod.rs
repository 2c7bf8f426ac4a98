//! Cryptography: the root key and what is derived from it, and the KMS's
//! algorithms. RustCrypto crates only.

pub mod api_key;
pub mod kms;
pub mod seal;

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The server's root secret: 32 bytes, from `PALISADE_ROOT_KEY` (64 hex
/// digits) or generated once into `$PALISADE_DATA_DIR/root-key` (0600).
/// Every replica on one database must share it.
#[derive(Clone)]
pub struct RootKey([u8; 32]);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    #[error("PALISADE_ROOT_KEY must be 64 hex digits (32 bytes)")]
    Malformed,
    #[error("root key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RootKey {
    pub fn from_hex(text: &str) -> Result<Self, RootKeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| RootKeyError::Malformed)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(Self)
            .map_err(|_| RootKeyError::Malformed)
    }

    /// The configured key, or the one in `data_dir/root-key`, generating it
    /// on first use. Returns the file's path when the file was used.
    pub fn load(
        configured: Option<&str>,
        data_dir: &Path,
    ) -> Result<(Self, Option<PathBuf>), RootKeyError> {
        if let Some(text) = configured {
            return Ok((Self::from_hex(text)?, None));
        }
        let path = data_dir.join("root-key");
        let text = crate::keyfile::load_or_generate(&path, || {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            hex::encode(bytes)
        })
        .map_err(|source| RootKeyError::File {
            path: path.clone(),
            source,
        })?;
        Ok((Self::from_hex(&text)?, Some(path)))
    }

    /// The root key's bytes, for derivations that need them as input
    /// keying material (HKDF in [`seal`]).
    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A subkey for one purpose, so no two uses share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"palisade subkey v1\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// HMAC-SHA256 under a subkey of the root key: a fingerprint of data that
/// may hold secrets (an idempotent request's body) which an offline reader
/// of the database cannot test guesses against.
#[derive(Clone)]
pub struct KeyedDigest {
    key: [u8; 32],
}

impl std::fmt::Debug for KeyedDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedDigest(***)")
    }
}

impl KeyedDigest {
    pub fn new(root: &RootKey, purpose: &str) -> Self {
        Self {
            key: root.derive(purpose),
        }
    }

    /// The hex HMAC of `parts`, each followed by a zero byte.
    pub fn digest(&self, parts: &[&[u8]]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
            mac.update(&[0]);
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_are_stable() {
        let root = RootKey::from_hex(&"11".repeat(32)).unwrap();
        assert_ne!(root.derive("a"), root.derive("b"));
        assert_eq!(
            root.derive("a"),
            RootKey::from_hex(&"11".repeat(32)).unwrap().derive("a")
        );
    }

    #[test]
    fn a_malformed_root_key_is_refused() {
        assert!(RootKey::from_hex("abcd").is_err());
        assert!(RootKey::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_generated_root_key_is_kept_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("palisade-root-{}", uuid::Uuid::new_v4()));
        let (first, path) = RootKey::load(None, &dir).unwrap();
        let mode = std::fs::metadata(path.unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, _) = RootKey::load(None, &dir).unwrap();
        assert_eq!(first.derive("x"), second.derive("x"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
