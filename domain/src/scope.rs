//! What an API key may do (`docs/security.md`). A closed set, parsed at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    FindingsRead,
    FindingsWrite,
    KeysUse,
    KeysAdmin,
    SecretsRead,
    SecretsWrite,
    AccessRequest,
    AccessApprove,
    AuditRead,
    WebhooksManage,
    TenantAdmin,
}

impl Scope {
    pub const ALL: [Scope; 11] = [
        Scope::FindingsRead,
        Scope::FindingsWrite,
        Scope::KeysUse,
        Scope::KeysAdmin,
        Scope::SecretsRead,
        Scope::SecretsWrite,
        Scope::AccessRequest,
        Scope::AccessApprove,
        Scope::AuditRead,
        Scope::WebhooksManage,
        Scope::TenantAdmin,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::FindingsRead => "findings:read",
            Scope::FindingsWrite => "findings:write",
            Scope::KeysUse => "keys:use",
            Scope::KeysAdmin => "keys:admin",
            Scope::SecretsRead => "secrets:read",
            Scope::SecretsWrite => "secrets:write",
            Scope::AccessRequest => "access:request",
            Scope::AccessApprove => "access:approve",
            Scope::AuditRead => "audit:read",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::TenantAdmin => "tenant:admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scope::ALL.iter().map(Scope::as_str).collect();
                format!("unknown scope '{s}'; expected one of {}", names.join(", "))
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
        }
        assert!("findings:delete".parse::<Scope>().is_err());
    }
}
