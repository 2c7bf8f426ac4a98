//! Leak checks and leakage incidents (`docs/secrets.md`, QNSP's leakage
//! detection). A leak check compares a candidate's keyed fingerprint with
//! every version's, in constant time; the candidate is never stored or
//! logged. A match with an active version opens an incident, as a report
//! does; an open incident shows on the secret's metadata (`leaked`) until a
//! version is written after it.
//!
//! Checks and reads need `secrets:read`; reports and updates
//! `secrets:write`, and only a check by a key that also has
//! `secrets:write` opens an incident.

use chrono::{DateTime, Utc};
use palisade_domain::secret::{
    IncidentCommand, IncidentError, IncidentStatus, LeakageIncident, NewIncident, Severity,
    VersionState, MAX_VALUE_BYTES,
};
use palisade_domain::IncidentId;
use palisade_infra::readmodel::{
    get_incident, latest_open_incident, list_incidents, IncidentFilter, Page, Window,
};
use palisade_infra::CommandError;
use palisade_projections::{IncidentRow, Projection as _, SecretsProjection};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{SecretsRead, SecretsWrite};
use super::input::json_secret_string;
use super::{App, Authorized, Error, Result};

/// Who opens an incident when a leak check matches.
pub const LEAK_CHECK_ACTOR: &str = "system:leak-check";

/// `POST /v1/secrets/leak-check/{path}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakCheckRequest {
    /// The text found (at most 1 MiB); compared, never stored or logged.
    #[schema(value_type = String)]
    #[serde(deserialize_with = "json_secret_string")]
    pub candidate: Zeroizing<String>,
}

/// `POST /v1/leakage/incidents`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIncidentRequest {
    /// The leaked secret's path.
    pub path: String,
    /// Where it was seen (`github`, `pastebin`, `ci-log`, …).
    pub source: String,
    /// A URL, a file, a ticket.
    pub location: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    pub details: Option<String>,
}

/// `PATCH /v1/leakage/incidents/{id}`; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIncidentRequest {
    /// `investigating`, `resolved` or `false_positive`; closing needs a
    /// resolution.
    pub status: Option<String>,
    pub resolution: Option<String>,
    pub notes: Option<String>,
}

impl From<IncidentError> for Error {
    fn from(error: IncidentError) -> Self {
        match error {
            IncidentError::NotFound => Error::not_found("Incident not found"),
            IncidentError::AlreadyExists => {
                Error::conflict("The incident was reported concurrently; retry")
            }
            IncidentError::Invalid(problems) => Error::Validation(problems),
            error @ IncidentError::Closed(_) => {
                Error::InvalidTransition(super::keys::capitalized(&error.to_string()))
            }
        }
    }
}

impl From<CommandError<IncidentError>> for Error {
    fn from(error: CommandError<IncidentError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "incident"),
        }
    }
}

/// A leak check's answer.
#[derive(Debug, Clone)]
pub struct LeakCheck {
    pub matched: bool,
    pub version: Option<u32>,
    pub state: Option<VersionState>,
    /// The incident the match opened (or the open one it belongs to).
    pub incident_id: Option<String>,
}

/// Whether `candidate` is one of the secret's values.
pub async fn leak_check(
    app: &App,
    context: &Authorized<SecretsRead>,
    path: &str,
    request: LeakCheckRequest,
) -> Result<LeakCheck> {
    if request.candidate.len() > MAX_VALUE_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "The candidate exceeds the limit of {MAX_VALUE_BYTES} bytes"
        )));
    }
    let found = super::secrets::metadata_of(app, context, path).await?;
    let tenant_id = context.principal.tenant_id.to_string();
    // Every version whose value is not destroyed is compared, matched or
    // not, so the time taken says nothing about which (a destroyed value
    // is gone: nobody confirms a guess of it).
    let mut matched = None;
    let kept = found
        .versions
        .iter()
        .rev()
        .filter(|v| v.state != VersionState::Destroyed);
    for version in kept {
        let same = app.secrets.matches(
            &tenant_id,
            found.secret.environment,
            &found.secret.id,
            request.candidate.as_bytes(),
            &version.fingerprint,
        );
        if same && matched.is_none() {
            matched = Some(version.clone());
        }
    }
    let Some(version) = matched else {
        return Ok(LeakCheck {
            matched: false,
            version: None,
            state: None,
            incident_id: None,
        });
    };
    let mut incident_id = None;
    // Opening an incident is a change: only a key that may also write
    // secrets opens one (a read-only key learns the match, nothing more).
    let may_write = context
        .principal
        .scopes
        .contains(&palisade_domain::Scope::SecretsWrite);
    if version.state == VersionState::Active && may_write {
        let partition = context.principal.partition();
        let open = list_incidents(
            app.store.read_pool(),
            &partition,
            &IncidentFilter {
                status: vec![IncidentStatus::Open, IncidentStatus::Investigating],
                secret_id: Some(found.secret.id.clone()),
                ..IncidentFilter::default()
            },
            Window {
                offset: 0,
                limit: 100,
            },
        )
        .await?;
        incident_id = match open
            .items
            .iter()
            .find(|i| i.matched_version == Some(version.version))
        {
            Some(existing) => Some(existing.id.clone()),
            None => {
                let incident = NewIncident {
                    incident_id: IncidentId::from_uuid(uuid::Uuid::now_v7()),
                    tenant_id: context.principal.tenant_id,
                    environment: partition.environment,
                    secret_id: palisade_domain::SecretId::parse(&found.secret.id)
                        .map_err(|e| Error::internal(e.to_string()))?,
                    path: found.secret.path.clone(),
                    source: "leak-check".into(),
                    location: None,
                    severity: Severity::High,
                    details: Some(format!(
                        "A leak check matched the active version {}",
                        version.version
                    )),
                    matched_version: Some(version.version),
                };
                Some(report(app, context, incident, LEAK_CHECK_ACTOR).await?.id)
            }
        };
    }
    Ok(LeakCheck {
        matched: true,
        version: Some(version.version),
        state: Some(version.state),
        incident_id,
    })
}

async fn report(
    app: &App,
    context: &super::RequestContext,
    incident: NewIncident,
    actor: &str,
) -> Result<IncidentRow> {
    let id = incident.incident_id.to_string();
    let metadata = context.metadata();
    let version = app
        .commands
        .execute::<LeakageIncident>(
            &id,
            IncidentCommand::Report {
                incident: Box::new(incident),
                actor: actor.to_string(),
                at: metadata.occurred_at,
            },
            (),
            &metadata,
        )
        .await?;
    settle(app, &id, version).await?;
    view_incident(app, context, &id).await
}

async fn settle(app: &App, id: &str, version: usize) -> Result<()> {
    app.await_in_effect(SecretsProjection.name(), "LeakageIncident", id, version)
        .await
}

async fn view_incident(
    app: &App,
    context: &super::RequestContext,
    id: &str,
) -> Result<IncidentRow> {
    if IncidentId::parse(id).is_err() {
        return Err(Error::not_found("Incident not found"));
    }
    get_incident(app.store.read_pool(), &context.principal.partition(), id)
        .await?
        .ok_or_else(|| Error::not_found("Incident not found"))
}

fn severity(text: &str) -> Result<Severity> {
    text.parse::<Severity>()
        .map_err(|message| Error::invalid("severity", message))
}

/// Reports a leak of the secret at `request.path`.
pub async fn report_incident(
    app: &App,
    context: &Authorized<SecretsWrite>,
    request: ReportIncidentRequest,
) -> Result<IncidentRow> {
    let severity = severity(&request.severity)?;
    let found = super::secrets::metadata_of(app, context, &request.path).await?;
    let partition = context.principal.partition();
    let incident = NewIncident {
        incident_id: IncidentId::from_uuid(uuid::Uuid::now_v7()),
        tenant_id: context.principal.tenant_id,
        environment: partition.environment,
        secret_id: palisade_domain::SecretId::parse(&found.secret.id)
            .map_err(|e| Error::internal(e.to_string()))?,
        path: found.secret.path,
        source: request.source,
        location: request.location,
        severity,
        details: request.details,
        matched_version: None,
    };
    report(app, context, incident, &context.principal.name).await
}

/// Changes an incident's status, resolution or notes.
pub async fn update_incident(
    app: &App,
    context: &Authorized<SecretsWrite>,
    id: &str,
    request: UpdateIncidentRequest,
) -> Result<IncidentRow> {
    let status = match request.status.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<IncidentStatus>()
                .map_err(|message| Error::invalid("status", message))?,
        ),
    };
    view_incident(app, context, id).await?;
    let metadata = context.metadata();
    let version = app
        .commands
        .execute::<LeakageIncident>(
            id,
            IncidentCommand::Update {
                status,
                resolution: request.resolution,
                notes: request.notes,
                actor: context.principal.name.clone(),
                at: metadata.occurred_at,
            },
            (),
            &metadata,
        )
        .await?;
    settle(app, id, version).await?;
    view_incident(app, context, id).await
}

/// One incident with its timeline.
pub async fn incident(
    app: &App,
    context: &Authorized<SecretsRead>,
    id: &str,
) -> Result<IncidentRow> {
    view_incident(app, context, id).await
}

/// What `GET /v1/leakage/incidents` asks for, parsed by the adapter.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    pub status: Vec<IncidentStatus>,
    pub severity: Vec<Severity>,
    pub since: Option<DateTime<Utc>>,
}

/// A page of the caller's incidents, newest first.
pub async fn incidents(
    app: &App,
    context: &Authorized<SecretsRead>,
    query: IncidentQuery,
    window: impl Into<Window>,
) -> Result<Page<IncidentRow>> {
    let filter = IncidentFilter {
        status: query.status,
        severity: query.severity,
        since: query.since,
        secret_id: None,
    };
    Ok(list_incidents(
        app.store.read_pool(),
        &context.principal.partition(),
        &filter,
        window.into(),
    )
    .await?)
}

/// Whether the secret counts as leaked: an open incident reported after its
/// current version was written.
pub async fn leaked(
    app: &App,
    secret_id: &str,
    current_created_at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let Some(reported) = latest_open_incident(app.store.read_pool(), secret_id).await? else {
        return Ok(false);
    };
    Ok(current_created_at.is_none_or(|written| reported >= written))
}
