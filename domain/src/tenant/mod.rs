//! The Tenant aggregate: one customer organisation, its plan, its status
//! and the API keys it has issued (their hashes, never their values).

mod aggregate;
mod commands;
mod events;

pub use aggregate::{Tenant, TenantError};
pub use commands::{NewApiKey, TenantCommand, TenantName};
pub use events::TenantEvent;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Whether a tenant may use the API. A suspended tenant gets 403 on everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

/// A tenant's billing plan; it sets rate limits and the monthly quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Business,
    Enterprise,
    Unlimited,
}

impl Plan {
    pub const ALL: [Plan; 6] = [
        Plan::Free,
        Plan::Starter,
        Plan::Pro,
        Plan::Business,
        Plan::Enterprise,
        Plan::Unlimited,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Business => "business",
            Plan::Enterprise => "enterprise",
            Plan::Unlimited => "unlimited",
        }
    }
}

/// A rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn as_str(&self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    pub fn seconds(&self) -> i64 {
        match self {
            Period::Minute => 60,
            Period::Hour => 3_600,
            Period::Day => 86_400,
        }
    }
}

impl Plan {
    /// Requests per tenant environment per window (README, "Plans"); `None` for unlimited.
    pub fn rate_limits(&self) -> Option<[(Period, u64); 3]> {
        let (minute, hour, day) = match self {
            Plan::Free => (10, 100, 500),
            Plan::Starter => (30, 500, 5_000),
            Plan::Pro => (60, 1_500, 15_000),
            Plan::Business => (120, 5_000, 50_000),
            Plan::Enterprise => (300, 15_000, 150_000),
            Plan::Unlimited => return None,
        };
        Some([
            (Period::Minute, minute),
            (Period::Hour, hour),
            (Period::Day, day),
        ])
    }

    /// Live requests per tenant per calendar month (UTC); `None` for unlimited.
    pub fn monthly_quota(&self) -> Option<u64> {
        match self {
            Plan::Free => Some(1_000),
            Plan::Starter => Some(10_000),
            Plan::Pro => Some(50_000),
            Plan::Business => Some(250_000),
            Plan::Enterprise => Some(1_000_000),
            Plan::Unlimited => None,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|plan| plan.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Plan::ALL.iter().map(Plan::as_str).collect();
                format!("unknown plan '{s}'; expected one of {}", names.join(", "))
            })
    }
}
