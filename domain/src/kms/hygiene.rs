//! Key hygiene: when a key is a finding.
//!
//! Three reasons make one finding each, on the asset `kms:key/<name>`,
//! product `palisade-kms`, category `crypto`, with a fingerprint stable
//! per key and reason (so reporting it again re-observes, never
//! duplicates):
//!
//! - **rotation overdue**: the scheduler recorded `KeyRotationOverdue` and
//!   no rotation followed;
//! - **weak algorithm**: the crypto policy marks the key's algorithm
//!   `deprecated` or `forbidden`;
//! - **quantum vulnerable**: a signing or key-exchange key with `high`
//!   quantum risk in the scope of an active migration plan, not yet
//!   migrated.
//!
//! A reason holds only while the key is `enabled` or `disabled` (a key
//! pending deletion or destroyed is on its way out) and is not replaced
//! ([`replaces`]: its `replaced_by` key is live, of the same category, on
//! an algorithm the policy does not deprecate, and of low quantum risk
//! when the key's is high — a link to just any key silences nothing). [`action`] turns "holds or not" and the finding's
//! status into the one command to issue: a user's dismissal or risk
//! acceptance is never overridden.

use crate::finding::{FindingDetails, Fingerprint, Severity, Status};
use crate::key::policy::{policy, Category, PolicyStatus, QuantumRisk};
use crate::key::{Algorithm, KeyState};
use crate::KeyId;

pub const PRODUCT: &str = "palisade-kms";
pub const CATEGORY: &str = "crypto";
/// The actor of every command the hygiene process manager issues.
pub const ACTOR: &str = "system:kms-hygiene";

/// Why a key is a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    RotationOverdue,
    WeakAlgorithm,
    QuantumVulnerable,
}

impl Reason {
    pub const ALL: [Reason; 3] = [
        Reason::RotationOverdue,
        Reason::WeakAlgorithm,
        Reason::QuantumVulnerable,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::RotationOverdue => "rotation_overdue",
            Reason::WeakAlgorithm => "weak_algorithm",
            Reason::QuantumVulnerable => "quantum_vulnerable",
        }
    }
}

/// What the rules need to know of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub key_id: KeyId,
    pub name: String,
    pub algorithm: Algorithm,
    pub state: KeyState,
    /// Recorded overdue by the scheduler, not rotated since.
    pub rotation_overdue: bool,
    /// Its `replaced_by` key [`replaces`] it.
    pub replaced: bool,
    /// In the scope of an active migration plan and not migrated by it.
    pub awaiting_migration: bool,
}

/// Whether `reason` holds for the key.
pub fn holds(reason: Reason, key: &KeyFacts) -> bool {
    if !matches!(key.state, KeyState::Enabled | KeyState::Disabled) || key.replaced {
        return false;
    }
    let row = policy(key.algorithm);
    match reason {
        Reason::RotationOverdue => key.rotation_overdue,
        Reason::WeakAlgorithm => {
            matches!(
                row.status,
                PolicyStatus::Deprecated | PolicyStatus::Forbidden
            )
        }
        Reason::QuantumVulnerable => {
            key.awaiting_migration
                && row.quantum_risk == QuantumRisk::High
                && matches!(row.category, Category::Signing | Category::KeyExchange)
        }
    }
}

/// Whether a key on `replacement` (in `state`) takes the place of a key on
/// `original`: live, the same category, not deprecated or forbidden, and
/// of low quantum risk when the original's is high.
pub fn replaces(original: Algorithm, replacement: Algorithm, state: KeyState) -> bool {
    let (from, to) = (policy(original), policy(replacement));
    matches!(state, KeyState::Enabled | KeyState::Disabled)
        && from.category == to.category
        && !matches!(
            to.status,
            PolicyStatus::Deprecated | PolicyStatus::Forbidden
        )
        && (from.quantum_risk == QuantumRisk::Low || to.quantum_risk == QuantumRisk::Low)
}

/// The finding's asset: one per key.
pub fn asset_identifier(name: &str) -> String {
    format!("kms:key/{name}")
}

/// The finding's fingerprint: one per key and reason.
pub fn fingerprint(key_id: &KeyId, reason: Reason) -> Fingerprint {
    Fingerprint::parse(&format!("{PRODUCT}:{key_id}:{}", reason.as_str()))
        .unwrap_or_else(|_| unreachable!("a key id and a reason make a short fingerprint"))
}

/// How serious: an overdue rotation is medium; a deprecated algorithm
/// medium and a forbidden one high; a quantum-vulnerable key-exchange key
/// high (what it protects can be recorded now and decrypted later), a
/// signing key medium.
pub fn severity(reason: Reason, algorithm: Algorithm) -> Severity {
    let row = policy(algorithm);
    match reason {
        Reason::RotationOverdue => Severity::Medium,
        Reason::WeakAlgorithm if row.status == PolicyStatus::Forbidden => Severity::High,
        Reason::WeakAlgorithm => Severity::Medium,
        Reason::QuantumVulnerable if row.category == Category::KeyExchange => Severity::High,
        Reason::QuantumVulnerable => Severity::Medium,
    }
}

/// The finding reported for `reason` on the key.
pub fn details(reason: Reason, key: &KeyFacts) -> FindingDetails {
    let row = policy(key.algorithm);
    let replacement = row
        .replacement
        .map_or(String::new(), |r| format!(" Move to {r}."));
    let (title, description) = match reason {
        Reason::RotationOverdue => (
            format!("KMS key '{}' is overdue for rotation", key.name),
            format!(
                "The key's latest version outlived its rotation period (or, without one, the policy's cryptoperiod of {} days for {}). Rotate the key.",
                row.cryptoperiod_days, key.algorithm
            ),
        ),
        Reason::WeakAlgorithm => (
            format!(
                "KMS key '{}' uses {} algorithm {}",
                key.name,
                row.status.as_str(),
                key.algorithm
            ),
            format!("{}.{replacement}", row.rationale),
        ),
        Reason::QuantumVulnerable => (
            format!(
                "KMS key '{}' ({}) is quantum-vulnerable and awaits migration",
                key.name, key.algorithm
            ),
            format!("{}.{replacement}", row.rationale),
        ),
    };
    FindingDetails {
        product: PRODUCT.into(),
        category: CATEGORY.into(),
        title,
        description,
        severity: severity(reason, key.algorithm),
        asset_identifier: asset_identifier(&key.name),
        likelihood: None,
        impact: None,
        cve: None,
        cvss_score: None,
        cwe: None,
        location: Some(key.key_id.to_string()),
        references: Vec::new(),
        tags: vec!["kms".into(), reason.as_str().replace('_', "-")],
        scope: None,
    }
}

/// What to do about a reason's finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Ingest it (it does not exist).
    Report,
    /// Re-observe it: a remediated finding reopens as a regression.
    Reobserve,
    /// Remediate it: the cause went away.
    Remediate,
}

/// The command that brings a finding in line with whether its reason
/// holds, or none. Dismissed and risk-accepted findings are the user's
/// call and are left alone either way.
pub fn action(holds: bool, status: Option<Status>) -> Option<Action> {
    match (holds, status) {
        (true, None) => Some(Action::Report),
        (true, Some(Status::Remediated)) => Some(Action::Reobserve),
        (false, Some(Status::Open | Status::Confirmed)) => Some(Action::Remediate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn key(algorithm: Algorithm) -> KeyFacts {
        KeyFacts {
            key_id: KeyId::from_uuid(Uuid::from_u128(1)),
            name: "payments".into(),
            algorithm,
            state: KeyState::Enabled,
            rotation_overdue: false,
            replaced: false,
            awaiting_migration: false,
        }
    }

    #[test]
    fn an_overdue_key_holds_until_rotated_replaced_or_on_its_way_out() {
        let overdue = KeyFacts {
            rotation_overdue: true,
            ..key(Algorithm::Aes256Gcm)
        };
        assert!(holds(Reason::RotationOverdue, &overdue));
        assert!(!holds(Reason::RotationOverdue, &key(Algorithm::Aes256Gcm)));
        for state in [KeyState::PendingDeletion, KeyState::Destroyed] {
            let gone = KeyFacts {
                state,
                ..overdue.clone()
            };
            assert!(!holds(Reason::RotationOverdue, &gone));
        }
        let replaced = KeyFacts {
            replaced: true,
            ..overdue.clone()
        };
        assert!(!holds(Reason::RotationOverdue, &replaced));
        assert_eq!(
            severity(Reason::RotationOverdue, Algorithm::Aes256Gcm),
            Severity::Medium
        );
    }

    #[test]
    fn only_quantum_vulnerable_asymmetric_keys_awaiting_migration_hold() {
        let awaiting = |algorithm| KeyFacts {
            awaiting_migration: true,
            ..key(algorithm)
        };
        assert!(holds(
            Reason::QuantumVulnerable,
            &awaiting(Algorithm::EcdsaP256)
        ));
        assert!(holds(
            Reason::QuantumVulnerable,
            &awaiting(Algorithm::Ed25519)
        ));
        assert!(!holds(
            Reason::QuantumVulnerable,
            &awaiting(Algorithm::MlDsa65)
        ));
        assert!(!holds(
            Reason::QuantumVulnerable,
            &awaiting(Algorithm::Aes256Gcm)
        ));
        assert!(!holds(
            Reason::QuantumVulnerable,
            &key(Algorithm::EcdsaP256)
        ));
        // No algorithm of today's policy is deprecated or forbidden.
        for algorithm in Algorithm::ALL {
            assert!(!holds(Reason::WeakAlgorithm, &key(algorithm)));
        }
    }

    #[test]
    fn findings_are_one_per_key_and_reason_on_the_keys_asset() {
        let facts = KeyFacts {
            rotation_overdue: true,
            ..key(Algorithm::EcdsaP256)
        };
        let a = fingerprint(&facts.key_id, Reason::RotationOverdue);
        assert_eq!(a, fingerprint(&facts.key_id, Reason::RotationOverdue));
        assert_ne!(a, fingerprint(&facts.key_id, Reason::QuantumVulnerable));
        let details = details(Reason::RotationOverdue, &facts);
        assert_eq!(details.asset_identifier, "kms:key/payments");
        assert_eq!(details.product, "palisade-kms");
        assert_eq!(details.category, "crypto");
        assert!(details.clone().validated().is_ok(), "{details:?}");
    }

    #[test]
    fn only_a_live_stronger_key_of_the_same_category_replaces_one() {
        use Algorithm::*;
        let live = KeyState::Enabled;
        assert!(replaces(EcdsaP256, MlDsa65, live));
        assert!(replaces(Aes256Gcm, ChaCha20Poly1305, KeyState::Disabled));
        assert!(
            !replaces(EcdsaP256, Ed25519, live),
            "still quantum-vulnerable"
        );
        assert!(!replaces(EcdsaP256, Aes256Gcm, live), "another category");
        assert!(!replaces(EcdsaP256, MlDsa65, KeyState::Destroyed));
        assert!(!replaces(EcdsaP256, MlDsa65, KeyState::PendingDeletion));
    }

    #[test]
    fn a_users_triage_wins_over_the_process_manager() {
        assert_eq!(action(true, None), Some(Action::Report));
        assert_eq!(action(true, Some(Status::Open)), None);
        assert_eq!(
            action(true, Some(Status::Remediated)),
            Some(Action::Reobserve)
        );
        assert_eq!(action(true, Some(Status::Dismissed)), None);
        assert_eq!(action(true, Some(Status::RiskAccepted)), None);
        assert_eq!(action(false, Some(Status::Open)), Some(Action::Remediate));
        assert_eq!(
            action(false, Some(Status::Confirmed)),
            Some(Action::Remediate)
        );
        assert_eq!(action(false, Some(Status::Dismissed)), None);
        assert_eq!(action(false, Some(Status::RiskAccepted)), None);
        assert_eq!(action(false, None), None);
    }
}
