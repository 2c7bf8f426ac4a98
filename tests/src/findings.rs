//! Building finding commands for in-process tests (scheduler, properties).

use chrono::{DateTime, Utc};
use palisade_domain::finding::{FindingCommand, FindingDetails, Fingerprint, NewFinding, Severity};
use palisade_domain::{ActorType, AssetId, Environment, EventMetadata, FindingId};

/// Metadata of a system actor in `tenant_id`'s `environment`, at `at`.
pub fn metadata(tenant_id: &str, environment: Environment, at: DateTime<Utc>) -> EventMetadata {
    EventMetadata {
        tenant_id: tenant_id.to_string(),
        environment,
        actor: "test-suite".into(),
        actor_type: ActorType::System,
        api_key_id: None,
        request_id: None,
        correlation_id: None,
        causation_id: None,
        occurred_at: at,
    }
}

/// An ingest of a finding titled `title` on `asset`.
pub fn ingest(
    finding_id: FindingId,
    asset: (AssetId, &str),
    title: &str,
    severity: Severity,
    likelihood_impact: Option<(f64, f64)>,
    at: DateTime<Utc>,
) -> FindingCommand {
    FindingCommand::Ingest(Box::new(NewFinding {
        finding_id,
        asset_id: asset.0,
        details: FindingDetails {
            product: "custom".into(),
            category: "vulnerability".into(),
            title: title.into(),
            description: String::new(),
            severity,
            asset_identifier: asset.1.into(),
            likelihood: likelihood_impact.map(|(l, _)| l),
            impact: likelihood_impact.map(|(_, i)| i),
            cve: None,
            cvss_score: None,
            cwe: None,
            location: None,
            references: vec![],
            tags: vec![],
            scope: None,
        }
        .validated()
        .expect("valid details"),
        fingerprint: Fingerprint::parse(&format!("fp-{title}")).expect("a valid fingerprint"),
        observed_at: at,
    }))
}
