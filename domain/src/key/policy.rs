//! The crypto policy: what Palisade thinks of each algorithm it offers —
//! its category, whether it is recommended, how exposed it is to a
//! cryptographically relevant quantum computer, and what replaces it. One
//! table, here and in `docs/crypto-policy.md` (with the sources), read by
//! the crypto-agility views and the key-hygiene findings.

use serde::Serialize;

use super::Algorithm;

/// What an algorithm is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Encryption,
    Signing,
    KeyExchange,
    Mac,
}

impl Category {
    pub fn as_str(&self) -> &'static str {
        match self {
            Category::Encryption => "encryption",
            Category::Signing => "signing",
            Category::KeyExchange => "key_exchange",
            Category::Mac => "mac",
        }
    }
}

/// Whether new keys should use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    Recommended,
    Acceptable,
    Deprecated,
    Forbidden,
}

impl PolicyStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyStatus::Recommended => "recommended",
            PolicyStatus::Acceptable => "acceptable",
            PolicyStatus::Deprecated => "deprecated",
            PolicyStatus::Forbidden => "forbidden",
        }
    }
}

/// How exposed it is to a quantum computer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantumRisk {
    /// Grover's algorithm at most halves the security level; 256-bit keys
    /// keep about 128 bits.
    Low,
    /// Shor's algorithm breaks it outright.
    High,
}

impl QuantumRisk {
    pub fn as_str(&self) -> &'static str {
        match self {
            QuantumRisk::Low => "low",
            QuantumRisk::High => "high",
        }
    }
}

/// One algorithm's row of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlgorithmPolicy {
    pub algorithm: Algorithm,
    pub category: Category,
    pub status: PolicyStatus,
    pub quantum_risk: QuantumRisk,
    /// Post-quantum (FIPS 203/204) by design.
    pub post_quantum: bool,
    /// What new keys of this category should use instead, if anything.
    pub replacement: Option<Algorithm>,
    /// How long a version may be used before it is due a rotation when
    /// the key sets no rotation period of its own: within the
    /// originator-usage periods NIST SP 800-57 Part 1 Rev. 5 (§5.3.6)
    /// suggests — two years for symmetric encryption and MAC keys, one
    /// year for private signing and key-establishment keys.
    pub cryptoperiod_days: u32,
    /// Why, with the source.
    pub rationale: &'static str,
}

/// The policy of `algorithm`.
pub fn policy(algorithm: Algorithm) -> AlgorithmPolicy {
    use Algorithm::*;
    let row =
        |category, status, quantum_risk, post_quantum, replacement, rationale| AlgorithmPolicy {
            algorithm,
            category,
            status,
            quantum_risk,
            post_quantum,
            replacement,
            cryptoperiod_days: match category {
                Category::Encryption | Category::Mac => 730,
                Category::Signing | Category::KeyExchange => 365,
            },
            rationale,
        };
    match algorithm {
        Aes256Gcm => row(
            Category::Encryption,
            PolicyStatus::Recommended,
            QuantumRisk::Low,
            false,
            None,
            "AES-256 keeps about 128-bit security against Grover; approved in NIST IR 8547 and required by CNSA 2.0",
        ),
        ChaCha20Poly1305 => row(
            Category::Encryption,
            PolicyStatus::Acceptable,
            QuantumRisk::Low,
            false,
            Some(Aes256Gcm),
            "256-bit key, Grover-resistant like AES-256 (RFC 8439), but not a FIPS-approved cipher; AES-256-GCM where FIPS matters",
        ),
        HmacSha256 => row(
            Category::Mac,
            PolicyStatus::Recommended,
            QuantumRisk::Low,
            false,
            None,
            "HMAC with a 256-bit key is unaffected by Shor and keeps about 128-bit security against Grover (NIST IR 8547)",
        ),
        Ed25519 => row(
            Category::Signing,
            PolicyStatus::Acceptable,
            QuantumRisk::High,
            false,
            Some(MlDsa65),
            "elliptic-curve signatures fall to Shor; NIST IR 8547 deprecates quantum-vulnerable signatures after 2030 and disallows them after 2035; CNSA 2.0 wants ML-DSA for signing by 2030–2033",
        ),
        EcdsaP256 => row(
            Category::Signing,
            PolicyStatus::Acceptable,
            QuantumRisk::High,
            false,
            Some(MlDsa65),
            "ECDSA falls to Shor; NIST IR 8547 disallows quantum-vulnerable signatures after 2035 (112-bit strength after 2030); replace with ML-DSA (FIPS 204)",
        ),
        MlDsa65 => row(
            Category::Signing,
            PolicyStatus::Recommended,
            QuantumRisk::Low,
            true,
            None,
            "FIPS 204 module-lattice signature, NIST category 3; CNSA 2.0 specifies ML-DSA-87 for national security systems",
        ),
        MlKem768 => row(
            Category::KeyExchange,
            PolicyStatus::Recommended,
            QuantumRisk::Low,
            true,
            None,
            "FIPS 203 module-lattice KEM, NIST category 3; CNSA 2.0 specifies ML-KEM-1024 for national security systems",
        ),
    }
}

/// Every algorithm's policy, in [`Algorithm::ALL`] order.
pub fn policies() -> Vec<AlgorithmPolicy> {
    Algorithm::ALL.into_iter().map(policy).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quantum_vulnerable_algorithm_names_a_post_quantum_replacement() {
        for row in policies() {
            if row.quantum_risk == QuantumRisk::High {
                let replacement = row.replacement.expect("a replacement");
                assert!(policy(replacement).post_quantum, "{:?}", row.algorithm);
                assert_eq!(policy(replacement).category, row.category);
            }
            assert_eq!(
                row.post_quantum,
                row.algorithm == Algorithm::MlDsa65 || row.algorithm == Algorithm::MlKem768
            );
        }
        assert_eq!(
            policy(Algorithm::EcdsaP256).replacement,
            Some(Algorithm::MlDsa65)
        );
        assert_eq!(policy(Algorithm::Aes256Gcm).quantum_risk, QuantumRisk::Low);
    }
}
