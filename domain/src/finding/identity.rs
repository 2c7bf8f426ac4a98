//! Finding identity: fingerprints, and the ids derived from them.
//!
//! A finding's id is derived from (tenant, environment, fingerprint) and an
//! asset's from (tenant, environment, identifier): UUIDv8s from SHA-256,
//! so the same report always addresses the same aggregate, and
//! deduplication needs no lookup.

use sha2::{Digest, Sha256};

use super::commands::{fingerprint_source, FindingDetails};
use crate::ids::derived_uuid;
use crate::text::{limits, required_text, FieldProblem};
use crate::{AssetId, Environment, FindingId};

/// The finding a fingerprint names within a tenant environment.
pub fn finding_id_for(tenant_id: &str, environment: Environment, fingerprint: &str) -> FindingId {
    FindingId::from_uuid(derived_uuid(&[
        "finding",
        tenant_id,
        environment.as_str(),
        fingerprint,
    ]))
}

/// The asset an identifier names within a tenant environment.
pub fn asset_id_for(tenant_id: &str, environment: Environment, identifier: &str) -> AssetId {
    AssetId::from_uuid(derived_uuid(&[
        "asset",
        tenant_id,
        environment.as_str(),
        identifier,
    ]))
}

/// A finding's deduplication key: given by the reporter (within the text
/// rule), or derived from what the finding says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// A fingerprint as given: trimmed, at most [`limits::FINGERPRINT`]
    /// characters, no control characters.
    pub fn parse(text: &str) -> Result<Self, FieldProblem> {
        required_text("fingerprint", text, limits::FINGERPRINT).map(Self)
    }

    /// The default: hex SHA-256 of [`fingerprint_source`].
    pub fn derived(details: &FindingDetails) -> Self {
        Self(hex::encode(Sha256::digest(
            fingerprint_source(details).as_bytes(),
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_per_tenant_environment() {
        let a = finding_id_for("ten_1", Environment::Live, "fp");
        assert_eq!(a, finding_id_for("ten_1", Environment::Live, "fp"));
        assert_ne!(a, finding_id_for("ten_1", Environment::Test, "fp"));
        assert_ne!(a, finding_id_for("ten_2", Environment::Live, "fp"));
        assert_ne!(
            asset_id_for("ten_1", Environment::Live, "x").to_string(),
            finding_id_for("ten_1", Environment::Live, "x").to_string()
        );
    }

    #[test]
    fn given_fingerprints_keep_to_the_text_rule() {
        assert_eq!(
            Fingerprint::parse(" fp ").map(|f| f.into_string()),
            Ok("fp".into())
        );
        assert_eq!(
            Fingerprint::parse("fp\0").map_err(|p| p.field),
            Err("fingerprint".to_string())
        );
    }
}
