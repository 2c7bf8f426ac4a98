use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FindingError, Severity};
use crate::{AssetId, FindingId};

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// What a finding says, as ingested. Built valid by [`FindingDetails::validated`].
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
}

fn text(problems: &mut Vec<FieldProblem>, field: &str, value: &str, max: usize) -> String {
    let trimmed = value.trim();
    let mut problem = |message: &str| {
        problems.push(FieldProblem {
            field: field.into(),
            message: message.into(),
        })
    };
    if trimmed.is_empty() {
        problem("must not be empty");
    } else if trimmed.chars().count() > max {
        problem(&format!("must be at most {max} characters"));
    } else if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        problem("must not contain control characters");
    }
    trimmed.to_string()
}

fn optional_text(
    problems: &mut Vec<FieldProblem>,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    value
        .filter(|v| !v.trim().is_empty())
        .map(|v| text(problems, field, &v, max))
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
    pub fn validated(self) -> Result<Self, FindingError> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let product = text(p, "product", &self.product, 100);
        let category = text(p, "category", &self.category, 100);
        let title = text(p, "title", &self.title, 500);
        let description = self.description.trim().to_string();
        if description.chars().count() > 20_000 {
            p.push(FieldProblem {
                field: "description".into(),
                message: "must be at most 20000 characters".into(),
            });
        }
        let asset_identifier = text(p, "asset_identifier", &self.asset_identifier, 500);
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
        let cve = optional_text(p, "cve", self.cve, 50).map(|c| c.to_uppercase());
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
        let cwe = optional_text(p, "cwe", self.cwe, 20).map(|c| {
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
        let location = optional_text(p, "location", self.location, 2000);
        if self.references.len() > 50 {
            p.push(FieldProblem {
                field: "references".into(),
                message: "at most 50".into(),
            });
        }
        let references: Vec<String> = self
            .references
            .iter()
            .enumerate()
            .map(|(i, r)| text(p, &format!("references[{i}]"), r, 2000))
            .collect();
        if self.tags.len() > 50 {
            p.push(FieldProblem {
                field: "tags".into(),
                message: "at most 50".into(),
            });
        }
        let mut tags: Vec<String> = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| text(p, &format!("tags[{i}]"), t, 100).to_lowercase())
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
            ..self
        })
    }
}

/// The text a default fingerprint is the hash of: product, category,
/// title, asset and location, trimmed and lower-cased, separated by a unit
/// separator. The edge hashes it (the domain does no cryptography).
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

/// A finding about to be ingested: its id and fingerprint chosen at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFinding {
    pub finding_id: FindingId,
    /// The asset named by `details.asset_identifier`, its id chosen at the edge.
    pub asset_id: AssetId,
    pub details: FindingDetails,
    pub fingerprint: String,
    pub observed_at: DateTime<Utc>,
}

/// What can be asked of a finding. Every timestamp comes from the caller's clock.
#[derive(Debug, Clone, PartialEq)]
pub enum FindingCommand {
    Ingest(Box<NewFinding>),
    /// The same fingerprint was seen again (deduplication).
    Reobserve {
        observed_at: DateTime<Utc>,
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
