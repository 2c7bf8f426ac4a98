//! The Key aggregate: one key of the KMS, its algorithm, its versions and
//! its lifecycle (`enabled`, `disabled`, `pending_deletion`, `destroyed`,
//! as AWS KMS names them).
//!
//! Events carry no secret material: only the algorithm, the versions with
//! their public keys (for asymmetric algorithms) and a reference to each
//! version's sealed material, which lives outside the event log so that
//! destroying a key really destroys it (`docs/keys.md`).
//!
//! A key's id is derived from (tenant, environment, name), as a finding's is
//! from its fingerprint: names are unique per tenant environment without a
//! lookup, and two concurrent creates with one name race on one aggregate.

mod aggregate;
mod commands;
mod events;
pub mod policy;
mod usage;

pub use aggregate::{rotation_due_at, Key, KeyError, KeyUse};
pub use commands::{
    key_id_for, KeyCommand, KeyName, KeyUpdate, NewKey, NewKeyVersion, DEFAULT_PENDING_WINDOW_DAYS,
    MAX_KEY_TAGS, PENDING_WINDOW_DAYS, ROTATION_GRACE_DAYS, ROTATION_PERIOD_DAYS,
};
pub use events::{KeyEvent, KeyUsage, KeyUsageEvent, KeyVersion};
pub use usage::{key_usage_id, KeyUsageCommand, KeyUsageMinute};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a key is for and how it does it. A closed set, parsed at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Algorithm {
    /// AES-256 in Galois/Counter Mode: encrypt, decrypt, data keys.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439): encrypt, decrypt, data keys.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    /// HMAC with SHA-256: MACs.
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// Ed25519 (RFC 8032): signs messages.
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA on P-256 with SHA-256: signs messages or their digests.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ML-DSA-65 (FIPS 204), post-quantum: signs messages.
    #[serde(rename = "ml-dsa-65")]
    MlDsa65,
    /// ML-KEM-768 (FIPS 203), post-quantum key encapsulation.
    #[serde(rename = "ml-kem-768")]
    MlKem768,
}

impl Algorithm {
    pub const ALL: [Algorithm; 7] = [
        Algorithm::Aes256Gcm,
        Algorithm::ChaCha20Poly1305,
        Algorithm::HmacSha256,
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::MlDsa65,
        Algorithm::MlKem768,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Aes256Gcm => "aes-256-gcm",
            Algorithm::ChaCha20Poly1305 => "chacha20-poly1305",
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::MlDsa65 => "ml-dsa-65",
            Algorithm::MlKem768 => "ml-kem-768",
        }
    }

    /// Whether the key has a public half that may be shown (and is carried
    /// by its events).
    pub fn is_asymmetric(&self) -> bool {
        matches!(
            self,
            Algorithm::Ed25519 | Algorithm::EcdsaP256 | Algorithm::MlDsa65 | Algorithm::MlKem768
        )
    }

    /// Whether a key of this algorithm can do `operation`.
    pub fn supports(&self, operation: Operation) -> bool {
        use Operation::*;
        match self {
            Algorithm::Aes256Gcm | Algorithm::ChaCha20Poly1305 => {
                matches!(operation, Encrypt | Decrypt | Rewrap | DataKey)
            }
            Algorithm::HmacSha256 => matches!(operation, Mac | MacVerify),
            Algorithm::Ed25519 | Algorithm::EcdsaP256 | Algorithm::MlDsa65 => {
                matches!(operation, Sign | Verify)
            }
            Algorithm::MlKem768 => matches!(operation, Decapsulate),
        }
    }

    /// The operations this algorithm supports, in [`Operation::ALL`] order.
    pub fn operations(&self) -> Vec<Operation> {
        Operation::ALL
            .into_iter()
            .filter(|operation| self.supports(*operation))
            .collect()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Algorithm::ALL.iter().map(Algorithm::as_str).collect();
                format!(
                    "unknown algorithm '{s}'; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// What a caller does with a key; usage is counted per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Encrypt,
    Decrypt,
    Rewrap,
    DataKey,
    Sign,
    Verify,
    Mac,
    MacVerify,
    Decapsulate,
}

impl Operation {
    pub const ALL: [Operation; 9] = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::Rewrap,
        Operation::DataKey,
        Operation::Sign,
        Operation::Verify,
        Operation::Mac,
        Operation::MacVerify,
        Operation::Decapsulate,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::Rewrap => "rewrap",
            Operation::DataKey => "data_key",
            Operation::Sign => "sign",
            Operation::Verify => "verify",
            Operation::Mac => "mac",
            Operation::MacVerify => "mac_verify",
            Operation::Decapsulate => "decapsulate",
        }
    }

    /// Whether the operation reads an older version (a ciphertext's, a
    /// signature's, an encapsulation's), so that `min_decryption_version`
    /// applies to it.
    pub fn reads_old_versions(&self) -> bool {
        matches!(
            self,
            Operation::Decrypt
                | Operation::Rewrap
                | Operation::Verify
                | Operation::MacVerify
                | Operation::Decapsulate
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|operation| operation.as_str() == s)
            .ok_or_else(|| format!("unknown operation '{s}'"))
    }
}

/// A key's lifecycle state (AWS KMS's names and transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    Destroyed,
}

impl KeyState {
    pub const ALL: [KeyState; 4] = [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::Destroyed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending_deletion",
            KeyState::Destroyed => "destroyed",
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = KeyState::ALL.iter().map(KeyState::as_str).collect();
                format!(
                    "unknown key state '{s}'; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        for algorithm in Algorithm::ALL {
            assert_eq!(algorithm.as_str().parse::<Algorithm>(), Ok(algorithm));
            assert_eq!(
                serde_json::to_value(algorithm).unwrap(),
                serde_json::json!(algorithm.as_str())
            );
        }
        for operation in Operation::ALL {
            assert_eq!(operation.as_str().parse::<Operation>(), Ok(operation));
        }
        for state in KeyState::ALL {
            assert_eq!(state.as_str().parse::<KeyState>(), Ok(state));
        }
        assert!("rsa-2048".parse::<Algorithm>().is_err());
    }

    #[test]
    fn each_algorithm_does_only_its_own_operations() {
        assert_eq!(
            Algorithm::Aes256Gcm.operations(),
            vec![
                Operation::Encrypt,
                Operation::Decrypt,
                Operation::Rewrap,
                Operation::DataKey
            ]
        );
        assert_eq!(
            Algorithm::HmacSha256.operations(),
            vec![Operation::Mac, Operation::MacVerify]
        );
        assert_eq!(
            Algorithm::MlDsa65.operations(),
            vec![Operation::Sign, Operation::Verify]
        );
        assert_eq!(
            Algorithm::MlKem768.operations(),
            vec![Operation::Decapsulate]
        );
        assert!(!Algorithm::Ed25519.supports(Operation::Encrypt));
        assert!(Algorithm::MlKem768.is_asymmetric() && !Algorithm::HmacSha256.is_asymmetric());
    }
}
