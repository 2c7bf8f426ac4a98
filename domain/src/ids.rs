//! Typed identifiers. Each id is a prefix (`ten_`, …) and a UUID in simple
//! (32 hex digit) form; an id can only be built valid, through [`TenantId::parse`]
//! or from a UUID chosen by the caller (the domain never generates randomness).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{value}' is not a valid {kind} id (expected '{prefix}' followed by 32 hex digits)")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

/// A UUIDv8 from the SHA-256 of `parts`, separated by a unit separator:
/// the id of an aggregate named by what it is (a finding's fingerprint, a
/// key's name), so that naming it twice addresses one aggregate.
pub(crate) fn derived_uuid(parts: &[&str]) -> Uuid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Wraps a UUID chosen by the caller (the edge generates it).
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub fn uuid(&self) -> Uuid {
                self.0
            }

            pub fn parse(value: &str) -> Result<Self, IdError> {
                let error = || IdError { kind: $kind, prefix: $prefix, value: value.to_string() };
                let hex = value.strip_prefix($prefix).ok_or_else(error)?;
                if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(error());
                }
                Uuid::try_parse(hex).map(Self).map_err(|_| error())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.simple())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A tenant: one customer organisation, the unit of isolation.
    TenantId, "ten_", "tenant"
);

typed_id!(
    /// A finding: one issue on one asset.
    FindingId, "fnd_", "finding"
);

typed_id!(
    /// An asset: the thing findings are about (a host, an app, a repository).
    AssetId, "ast_", "asset"
);

typed_id!(
    /// An API key's identity (never its secret value).
    ApiKeyId, "apk_", "API key"
);

typed_id!(
    /// A key of the KMS (derived from its tenant, environment and name).
    KeyId, "key_", "key"
);

typed_id!(
    /// A KMS alert rule.
    AlertRuleId, "kar_", "alert rule"
);

typed_id!(
    /// One alert a rule raised (derived from its rule, key and window).
    AlertId, "kal_", "alert"
);

typed_id!(
    /// A post-quantum migration plan.
    MigrationPlanId, "kmp_", "migration plan"
);

typed_id!(
    /// A secret of the secret store (derived from its tenant, environment
    /// and path).
    SecretId, "sec_", "secret"
);

typed_id!(
    /// A reported leak of a secret.
    IncidentId, "lki_", "leakage incident"
);

typed_id!(
    /// A just-in-time access policy.
    PolicyId, "acp_", "access policy"
);

typed_id!(
    /// An access request (and, once approved, the grant it became).
    AccessRequestId, "acr_", "access request"
);

typed_id!(
    /// A scanner report's ingestion job.
    IngestionJobId, "job_", "ingestion job"
);

typed_id!(
    /// A webhook endpoint (a subscription to events).
    WebhookId, "whk_", "webhook"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_round_trips_through_its_text_form() {
        let id = TenantId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let text = id.to_string();
        assert_eq!(text, "ten_0123456789abcdef0123456789abcdef");
        assert_eq!(TenantId::parse(&text), Ok(id));
    }

    #[test]
    fn ids_with_the_wrong_prefix_or_length_are_refused() {
        for bad in [
            "",
            "ten_",
            "fnd_0123456789abcdef0123456789abcdef",
            "ten_0123",
            "ten_0123456789abcdef0123456789abcdeg",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
