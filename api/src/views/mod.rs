//! What the API shows: the response shapes both adapters serve, under the
//! same names (REST serialises them in the envelope, GraphQL exposes them as
//! objects), built from the rows and results the application layer returns.
//! Presentation only: times as RFC 3339 with milliseconds, scores to two
//! decimals, enums as their names.

pub mod access;
pub mod assets;
pub mod audit;
pub mod findings;
pub mod ingestion;
pub mod keys;
pub mod kms;
pub mod risk;
pub mod secrets;
pub mod tenants;
pub mod timeline;
pub mod webhooks;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

/// A time as the API shows it: RFC 3339, UTC, milliseconds.
pub fn format_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Scores as the API shows them: two decimals.
pub fn round_score(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// One offending field of a validation error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl From<palisade_domain::FieldProblem> for FieldError {
    fn from(problem: palisade_domain::FieldProblem) -> Self {
        Self {
            field: problem.field,
            message: problem.message,
        }
    }
}

impl From<&palisade_domain::FieldProblem> for FieldError {
    fn from(problem: &palisade_domain::FieldProblem) -> Self {
        problem.clone().into()
    }
}
