//! Sealing key material for its own table (`docs/keys.md`).
//!
//! Each (tenant, key, version) has its own key-encryption key: HKDF-SHA256
//! of the root key, with `info` binding the tenant, the key id and the
//! version. The material is sealed with AES-256-GCM under it, with the same
//! binding (and the row's material id) as additional authenticated data,
//! so a row copied onto another key, version or tenant does not open.
//!
//! Sealed form: a format byte (1), the 96-bit nonce, the ciphertext, the tag.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::kms::{random_bytes, CryptoError, Material};
use super::RootKey;

const FORMAT: u8 = 1;
const SALT: &[u8] = b"palisade key material v1";

/// What a sealed row belongs to. Every field is bound into the seal.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub tenant_id: &'a str,
    pub key_id: &'a str,
    pub version: u32,
    pub material_id: &'a str,
}

impl Binding<'_> {
    fn info(&self) -> Vec<u8> {
        let mut info = b"kek\0".to_vec();
        for part in [self.tenant_id.as_bytes(), self.key_id.as_bytes()] {
            info.extend_from_slice(&(part.len() as u32).to_be_bytes());
            info.extend_from_slice(part);
        }
        info.extend_from_slice(&self.version.to_be_bytes());
        info
    }

    fn aad(&self) -> Vec<u8> {
        let mut aad = self.info();
        aad.extend_from_slice(&(self.material_id.len() as u32).to_be_bytes());
        aad.extend_from_slice(self.material_id.as_bytes());
        aad
    }
}

/// Seals and opens material under key-encryption keys derived from the
/// root key.
#[derive(Clone)]
pub struct Sealer {
    hkdf: Hkdf<Sha256>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

impl Sealer {
    pub fn new(root: &RootKey) -> Self {
        Self {
            hkdf: Hkdf::<Sha256>::new(Some(SALT), root.expose()),
        }
    }

    fn cipher(&self, binding: &Binding<'_>) -> Result<aes_gcm::Aes256Gcm, CryptoError> {
        let mut kek = Zeroizing::new([0u8; 32]);
        self.hkdf
            .expand(&binding.info(), &mut *kek)
            .map_err(|_| CryptoError::BadMaterial)?;
        aes_gcm::Aes256Gcm::new_from_slice(&*kek).map_err(|_| CryptoError::BadMaterial)
    }

    pub fn seal(&self, binding: &Binding<'_>, material: &Material) -> Result<Vec<u8>, CryptoError> {
        let nonce = random_bytes(12)?;
        let aad = binding.aad();
        let sealed = self
            .cipher(binding)?
            .encrypt(
                nonce
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::Random)?,
                Payload {
                    msg: material.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::BadMaterial)?;
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The material, or [`CryptoError::BadMaterial`] when the row does not
    /// open under this binding (another key's row, tampering, another root).
    pub fn open(&self, binding: &Binding<'_>, sealed: &[u8]) -> Result<Material, CryptoError> {
        let Some((&FORMAT, rest)) = sealed.split_first() else {
            return Err(CryptoError::BadMaterial);
        };
        if rest.len() < 12 + 16 {
            return Err(CryptoError::BadMaterial);
        }
        let (nonce, body) = rest.split_at(12);
        let aad = binding.aad();
        let opened = self
            .cipher(binding)?
            .decrypt(
                nonce.try_into().map_err(|_| CryptoError::BadMaterial)?,
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::BadMaterial)?;
        Ok(Material::from_bytes(opened))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(version: u32) -> Binding<'static> {
        Binding {
            tenant_id: "ten_a",
            key_id: "key_a",
            version,
            material_id: "m1",
        }
    }

    #[test]
    fn sealed_material_opens_only_under_its_own_binding_and_root() {
        let root = RootKey::from_hex(&"11".repeat(32)).unwrap();
        let sealer = Sealer::new(&root);
        let material = Material::from_bytes(vec![7u8; 32]);
        let sealed = sealer.seal(&binding(1), &material).unwrap();
        assert!(
            !sealed.windows(32).any(|w| w == [7u8; 32]),
            "sealed in clear"
        );
        assert_eq!(
            sealer.open(&binding(1), &sealed).unwrap().expose(),
            material.expose()
        );
        for other in [
            binding(2),
            Binding {
                key_id: "key_b",
                ..binding(1)
            },
            Binding {
                tenant_id: "ten_b",
                ..binding(1)
            },
            Binding {
                material_id: "m2",
                ..binding(1)
            },
        ] {
            assert!(sealer.open(&other, &sealed).is_err());
        }
        let other_root = Sealer::new(&RootKey::from_hex(&"22".repeat(32)).unwrap());
        assert!(other_root.open(&binding(1), &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(sealer.open(&binding(1), &flipped).is_err());
    }
}
