use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::identity::{asset_id_for, finding_id_for, Fingerprint};
use super::{FindingError, Severity};
use crate::text::{limits, optional_text, required_text, FieldProblem, TextLimit, MAX_LIST_ITEMS};
use crate::{AssetId, Environment, FindingId};

/// What a finding says, as reported: parsed into [`ValidDetails`] by
/// [`FindingDetails::validated`], the only way an ingest gets its details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingDetails {
    pub product: String,
    pub category: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    pub asset_identifier: String,
    pub likelihood: Option<f64>,
    pub impact: Option<f64>,
    pub cve: Option<String>,
    pub cvss_score: Option<f64>,
    pub cwe: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// What the finding was reported for (an ingestion job's scope: a
    /// repository, an application): close-old compares reports within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Records the rule's verdict on one text field; the text, or empty when refused.
fn collect<T: Default>(problems: &mut Vec<FieldProblem>, checked: Result<T, FieldProblem>) -> T {
    checked.unwrap_or_else(|problem| {
        problems.push(problem);
        T::default()
    })
}

fn text(problems: &mut Vec<FieldProblem>, field: &str, value: &str, limit: TextLimit) -> String {
    collect(problems, required_text(field, value, limit))
}

fn optional(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<&str>,
    limit: TextLimit,
) -> Option<String> {
    collect(problems, optional_text(field, value, limit))
}

fn unit_interval(problems: &mut Vec<FieldProblem>, field: &str, value: Option<f64>) {
    if value.is_some_and(|v| !(0.0..=1.0).contains(&v) || v.is_nan()) {
        problems.push(FieldProblem {
            field: field.into(),
            message: "must be between 0 and 1".into(),
        });
    }
}

impl FindingDetails {
    /// Trims and checks every field; all problems at once.
    pub fn validated(self) -> Result<ValidDetails, FindingError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let product = text(p, "product", &self.product, limits::PRODUCT);
        let category = text(p, "category", &self.category, limits::CATEGORY);
        let title = text(p, "title", &self.title, limits::TITLE);
        let description = optional(
            p,
            "description",
            Some(&self.description),
            limits::DESCRIPTION,
        )
        .unwrap_or_default();
        let asset_identifier = text(
            p,
            "asset_identifier",
            &self.asset_identifier,
            limits::ASSET_IDENTIFIER,
        );
        unit_interval(p, "likelihood", self.likelihood);
        unit_interval(p, "impact", self.impact);
        if self
            .cvss_score
            .is_some_and(|v| !(0.0..=10.0).contains(&v) || v.is_nan())
        {
            p.push(FieldProblem {
                field: "cvss_score".into(),
                message: "must be between 0 and 10".into(),
            });
        }
        let cve = optional(p, "cve", self.cve.as_deref(), limits::CVE).map(|c| c.to_uppercase());
        if let Some(cve) = &cve {
            let parts: Vec<&str> = cve.split('-').collect();
            let valid = parts.len() == 3
                && parts[0] == "CVE"
                && parts[1].len() == 4
                && parts[1].bytes().all(|b| b.is_ascii_digit())
                && parts[2].len() >= 4
                && parts[2].bytes().all(|b| b.is_ascii_digit());
            if !valid {
                p.push(FieldProblem {
                    field: "cve".into(),
                    message: "must look like CVE-2024-12345".into(),
                });
            }
        }
        let cwe = optional(p, "cwe", self.cwe.as_deref(), limits::CWE).map(|c| {
            let digits = c
                .trim_start_matches("CWE-")
                .trim_start_matches("cwe-")
                .to_string();
            format!("CWE-{digits}")
        });
        if cwe
            .as_ref()
            .is_some_and(|c| !c[4..].bytes().all(|b| b.is_ascii_digit()) || c.len() == 4)
        {
            p.push(FieldProblem {
                field: "cwe".into(),
                message: "must look like CWE-79".into(),
            });
        }
        let location = optional(p, "location", self.location.as_deref(), limits::LOCATION);
        let scope = optional(p, "scope", self.scope.as_deref(), limits::ASSET_IDENTIFIER);
        if self.references.len() > MAX_LIST_ITEMS {
            p.push(FieldProblem::new(
                "references",
                format!("at most {MAX_LIST_ITEMS}"),
            ));
        }
        let references: Vec<String> = self
            .references
            .iter()
            .enumerate()
            .map(|(i, r)| text(p, &format!("references[{i}]"), r, limits::REFERENCE))
            .collect();
        if self.tags.len() > MAX_LIST_ITEMS {
            p.push(FieldProblem::new(
                "tags",
                format!("at most {MAX_LIST_ITEMS}"),
            ));
        }
        let mut tags: Vec<String> = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| text(p, &format!("tags[{i}]"), t, limits::TAG).to_lowercase())
            .collect();
        tags.sort();
        tags.dedup();
        if !problems.is_empty() {
            return Err(FindingError::Invalid(problems));
        }
        Ok(Self {
            product,
            category,
            title,
            description,
            asset_identifier,
            cve,
            cwe,
            location,
            references,
            tags,
            scope,
            ..self
        }
        .into_valid())
    }

    fn into_valid(self) -> ValidDetails {
        ValidDetails(self)
    }
}

/// Finding details that passed [`FindingDetails::validated`]: trimmed,
/// bounded, every field within its rule. Nothing else makes one, so the
/// aggregate trusts them.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDetails(FindingDetails);

impl ValidDetails {
    pub fn into_inner(self) -> FindingDetails {
        self.0
    }
}

impl std::ops::Deref for ValidDetails {
    type Target = FindingDetails;

    fn deref(&self) -> &FindingDetails {
        &self.0
    }
}

/// The text a default fingerprint is the hash of: product, category,
/// title, asset and location, trimmed and lower-cased, separated by a unit
/// separator. [`Fingerprint::derived`] hashes it.
pub fn fingerprint_source(details: &FindingDetails) -> String {
    [
        details.product.as_str(),
        details.category.as_str(),
        details.title.as_str(),
        details.asset_identifier.as_str(),
        details.location.as_deref().unwrap_or(""),
    ]
    .iter()
    .map(|part| part.trim().to_lowercase())
    .collect::<Vec<_>>()
    .join("\u{1f}")
}

/// A finding about to be ingested, every part already valid: its id and
/// its asset's id (usually derived, see [`NewFinding::in_partition`]),
/// its details and its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub finding_id: FindingId,
    /// The asset named by `details.asset_identifier`.
    pub asset_id: AssetId,
    pub details: ValidDetails,
    pub fingerprint: Fingerprint,
    pub observed_at: DateTime<Utc>,
}

impl NewFinding {
    /// A finding reported in a tenant environment: its ids derived from
    /// its fingerprint and asset, so every report of one fingerprint
    /// addresses the same aggregate (deduplication without a read model).
    pub fn in_partition(
        tenant_id: &str,
        environment: Environment,
        details: ValidDetails,
        fingerprint: Fingerprint,
        observed_at: DateTime<Utc>,
    ) -> Self {
        Self {
            finding_id: finding_id_for(tenant_id, environment, fingerprint.as_str()),
            asset_id: asset_id_for(tenant_id, environment, &details.asset_identifier),
            details,
            fingerprint,
            observed_at,
        }
    }
}

/// What can be asked of a finding. Every timestamp comes from the caller's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum FindingCommand {
    Ingest(Box<NewFinding>),
    /// The same fingerprint was seen again (deduplication).
    Reobserve {
        observed_at: DateTime<Utc>,
    },
    /// A scanner reported the finding with other scanner-owned fields
    /// (title, description, severity, location, references, identifiers,
    /// tags): they take the report's values. Triage fields never change
    /// this way.
    UpdateReport {
        details: Box<ValidDetails>,
        at: DateTime<Utc>,
    },
    ChangeSeverity {
        severity: Severity,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    Confirm {
        at: DateTime<Utc>,
    },
    Dismiss {
        reason: String,
        at: DateTime<Utc>,
    },
    AcceptRisk {
        reason: String,
        expires_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    Remediate {
        at: DateTime<Utc>,
    },
    /// From an ingestion job's close-old: remediates an open or confirmed
    /// finding that a newer report no longer holds, with the reason; a
    /// triaged (dismissed, risk-accepted) or closed finding is left alone.
    Close {
        reason: String,
        at: DateTime<Utc>,
    },
    Reopen {
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    /// From the scheduler: reverts an accepted risk whose expiry has passed.
    /// Does nothing when there is nothing (or nothing yet) to expire.
    ExpireRiskAcceptance {
        at: DateTime<Utc>,
    },
    Assign {
        assignee: Option<String>,
        at: DateTime<Utc>,
    },
    LinkTicket {
        system: String,
        ticket_id: String,
        at: DateTime<Utc>,
    },
    Comment {
        comment_id: String,
        body: String,
        at: DateTime<Utc>,
    },
}
