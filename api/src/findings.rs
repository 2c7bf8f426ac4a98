//! Finding use cases: ingest with deduplication, bulk ingest, triage
//! commands, and the history of one finding.
//!
//! Deduplication needs no read model: a finding's id is derived from
//! (tenant, environment, fingerprint), so every ingest of one fingerprint
//! addresses the same aggregate. The first append wins; the others find the
//! finding there (or lose the optimistic-concurrency race) and re-observe it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_domain::finding::{
    fingerprint_source, Finding, FindingCommand, FindingDetails, FindingError, FindingEvent,
    NewFinding, Severity,
};
use palisade_domain::{limits, required_text, AssetId, Environment, EventMetadata, FindingId};
use palisade_infra::{CommandError, NewAggregate};
use palisade_projections::{FeedEvent, FindingRow};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::App;
use crate::auth::Principal;
use crate::rest::{precondition_failed, ApiError, FieldError};
use crate::tenants::format_time;

/// How often an ingest retries after losing a race on its finding.
const MAX_ATTEMPTS: usize = 200;

/// A UUIDv8 from the SHA-256 of `parts`, separated by a unit separator.
fn derived_uuid(parts: &[&str]) -> Uuid {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

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

/// The body of `POST /v1/findings` (and each item of a bulk ingest).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestFindingRequest {
    #[schema(example = "custom")]
    pub product: String,
    #[schema(example = "vulnerability")]
    pub category: String,
    #[schema(example = "SQL Injection")]
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `info`.
    #[schema(example = "high")]
    pub severity: String,
    #[schema(example = "app.example.com")]
    pub asset_identifier: String,
    /// 0 to 1; the severity's default when absent.
    #[schema(example = 0.8)]
    pub likelihood: Option<f64>,
    /// 0 to 1; the severity's default when absent.
    #[schema(example = 0.9)]
    pub impact: Option<f64>,
    pub cve: Option<String>,
    /// 0 to 10.
    pub cvss_score: Option<f64>,
    pub cwe: Option<String>,
    pub location: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Deduplication key; derived from product, category, title, asset and
    /// location when absent.
    pub fingerprint: Option<String>,
}

impl IngestFindingRequest {
    /// Valid details and the fingerprint, or every problem at once.
    pub(crate) fn parse(self) -> Result<(FindingDetails, String), ApiError> {
        let severity = self.severity.trim().parse::<Severity>();
        let details = FindingDetails {
            product: self.product,
            category: self.category,
            title: self.title,
            description: self.description.unwrap_or_default(),
            severity: *severity.as_ref().unwrap_or(&Severity::Info),
            asset_identifier: self.asset_identifier,
            likelihood: self.likelihood,
            impact: self.impact,
            cve: self.cve,
            cvss_score: self.cvss_score,
            cwe: self.cwe,
            location: self.location,
            references: self.references,
            tags: self.tags,
        };
        let mut problems = Vec::new();
        if let Err(message) = &severity {
            problems.push(FieldError {
                field: "severity".into(),
                message: message.clone(),
            });
        }
        let validated = match details.validated() {
            Ok(details) => Some(details),
            Err(error) => {
                problems.extend(finding_problems(error));
                None
            }
        };
        // Absent means derived; given, it must keep to the rule (blank too).
        let fingerprint = match self
            .fingerprint
            .as_deref()
            .map(|text| required_text("fingerprint", text, limits::FINGERPRINT))
        {
            Some(Ok(text)) => Some(text),
            Some(Err(problem)) => {
                problems.push(problem.into());
                None
            }
            None => None,
        };
        match validated {
            Some(details) if problems.is_empty() => {
                let fingerprint = fingerprint.unwrap_or_else(|| {
                    hex::encode(Sha256::digest(fingerprint_source(&details).as_bytes()))
                });
                Ok((details, fingerprint))
            }
            _ => Err(ApiError::validation(problems)),
        }
    }
}

fn finding_problems(error: FindingError) -> Vec<FieldError> {
    match error {
        FindingError::Invalid(problems) => problems.into_iter().map(FieldError::from).collect(),
        other => vec![FieldError {
            field: "body".into(),
            message: other.to_string(),
        }],
    }
}

/// How a finding command's failure reads over HTTP.
pub fn finding_error(error: CommandError<FindingError>) -> ApiError {
    use axum::http::StatusCode;
    match error {
        CommandError::Rejected(FindingError::NotFound) => not_found(),
        CommandError::Rejected(FindingError::AlreadyExists) | CommandError::Conflict => {
            ApiError::conflict("The finding was changed concurrently; retry")
        }
        CommandError::Rejected(error @ FindingError::InvalidTransition { .. }) => ApiError::new(
            StatusCode::CONFLICT,
            "invalid_transition",
            format!("Cannot {}", {
                let text = error.to_string();
                text.strip_prefix("cannot ")
                    .map(str::to_string)
                    .unwrap_or(text)
            }),
        ),
        CommandError::Rejected(error @ FindingError::Invalid(_)) => {
            ApiError::validation(finding_problems(error))
        }
        CommandError::VersionMismatch { current } => precondition_failed(format!(
            "If-Match does not match; the finding is at version \"{current}\""
        )),
        CommandError::Store(cause) => ApiError::internal(cause),
        CommandError::Unavailable(cause) => ApiError::unavailable(cause),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Finding not found")
}

/// Scores as the API shows them: two decimals.
pub fn round_score(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The asset a finding is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetRef {
    pub id: String,
    pub identifier: String,
}

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Ticket")]
pub struct TicketView {
    pub system: String,
    pub ticket_id: String,
    pub linked_at: String,
}

#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Comment")]
pub struct CommentView {
    pub id: String,
    pub author: String,
    pub body: String,
    pub created_at: String,
}

/// A finding as the API shows it.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "Finding", complex)]
pub struct FindingView {
    /// `fnd_…`
    pub id: String,
    /// `open`, `confirmed`, `dismissed`, `risk_accepted` or `remediated`.
    #[graphql(skip)]
    pub status: String,
    /// Why it was dismissed, accepted or reopened.
    pub status_reason: Option<String>,
    #[graphql(skip)]
    pub severity: String,
    /// 0–100: `100 × likelihood × impact` while open or confirmed, else 0.
    pub risk_score: f64,
    pub occurrences: i64,
    pub first_seen: String,
    pub last_seen: String,
    #[graphql(skip)]
    pub asset: AssetRef,
    pub product: String,
    pub category: String,
    pub title: String,
    pub description: String,
    pub likelihood: Option<f64>,
    pub impact: Option<f64>,
    pub cve: Option<String>,
    pub cvss_score: Option<f64>,
    pub cwe: Option<String>,
    pub location: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub fingerprint: String,
    pub assignee: Option<String>,
    pub risk_accepted_until: Option<String>,
    pub tickets: Vec<TicketView>,
    pub comments: Vec<CommentView>,
    /// `live` or `test` (sandbox).
    #[graphql(skip)]
    pub environment: String,
    /// The aggregate's version, also sent as `ETag`.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<FindingRow> for FindingView {
    fn from(row: FindingRow) -> Self {
        let d = row.details;
        Self {
            id: row.id,
            status: row.status.as_str().into(),
            status_reason: row.status_reason,
            severity: d.severity.as_str().into(),
            risk_score: round_score(row.risk_score),
            occurrences: row.occurrences,
            first_seen: format_time(&row.first_seen),
            last_seen: format_time(&row.last_seen),
            asset: AssetRef {
                id: row.asset_id,
                identifier: d.asset_identifier,
            },
            product: d.product,
            category: d.category,
            title: d.title,
            description: d.description,
            likelihood: d.likelihood,
            impact: d.impact,
            cve: d.cve,
            cvss_score: d.cvss_score,
            cwe: d.cwe,
            location: d.location,
            references: d.references,
            tags: d.tags,
            fingerprint: row.fingerprint,
            assignee: row.assignee,
            risk_accepted_until: row.accepted_until.as_ref().map(format_time),
            tickets: row
                .tickets
                .into_iter()
                .map(|t| TicketView {
                    system: t.system,
                    ticket_id: t.ticket_id,
                    linked_at: format_time(&t.linked_at),
                })
                .collect(),
            comments: row
                .comments
                .into_iter()
                .map(|c| CommentView {
                    id: c.id,
                    author: c.author,
                    body: c.body,
                    created_at: format_time(&c.created_at),
                })
                .collect(),
            environment: row.environment.as_str().into(),
            version: row.version,
            created_at: format_time(&row.created_at),
            updated_at: format_time(&row.updated_at),
        }
    }
}

/// The answer to an ingest: the finding, and whether it already existed.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "IngestFindingPayload")]
pub struct IngestedFinding {
    #[serde(flatten)]
    pub finding: FindingView,
    /// True when the fingerprint matched an existing finding, which was
    /// re-observed (occurrences + 1) instead of created.
    pub deduplicated: bool,
}

/// The finding's committed events, when it belongs to the caller's tenant
/// and environment; otherwise (or when unknown) 404.
async fn owned_events(app: &App, caller: &Principal, id: &str) -> Result<Vec<FeedEvent>, ApiError> {
    FindingId::parse(id).map_err(|_| not_found())?;
    let events = app
        .store
        .aggregate_events("Finding", id)
        .await
        .map_err(ApiError::internal)?;
    let first = events.first().ok_or_else(not_found)?;
    let metadata = first.typed_metadata().map_err(ApiError::internal)?;
    if metadata.tenant_id != caller.tenant_id.to_string()
        || metadata.environment != caller.environment
    {
        return Err(not_found());
    }
    Ok(events)
}

/// The finding as its events describe it (no read-model lag).
async fn current_row(app: &App, caller: &Principal, id: &str) -> Result<FindingRow, ApiError> {
    let events = owned_events(app, caller, id).await?;
    fold(&events)
}

fn fold(events: &[FeedEvent]) -> Result<FindingRow, ApiError> {
    let decoded = events
        .iter()
        .map(|e| Ok((e.decode()?, e.typed_metadata()?, e.sequence)))
        .collect::<Result<Vec<_>, palisade_projections::ProjectionError>>()
        .map_err(ApiError::internal)?;
    FindingRow::from_events(decoded.iter().map(|(e, m, s)| (e, m, *s))).ok_or_else(not_found)
}

/// What an ingest did.
enum Ingested {
    /// A new finding, as its one event describes it.
    Created(Box<FindingRow>),
    /// The finding with this id already existed and was re-observed.
    Reobserved(String),
}

/// Ingests one finding: creates it, or re-observes the one with the same
/// fingerprint.
async fn ingest_one(
    app: &App,
    caller: &Principal,
    request: IngestFindingRequest,
) -> Result<Ingested, ApiError> {
    let metadata = caller.metadata();
    let new = prepare(caller, request, &metadata)?;
    ingest_prepared(app, new, &metadata).await
}

/// A request turned into the ingest command: valid details, the
/// fingerprint, and the ids derived from them.
fn prepare(
    caller: &Principal,
    request: IngestFindingRequest,
    metadata: &EventMetadata,
) -> Result<NewFinding, ApiError> {
    let (details, fingerprint) = request.parse()?;
    let tenant_id = caller.tenant_id.to_string();
    Ok(NewFinding {
        finding_id: finding_id_for(&tenant_id, caller.environment, &fingerprint),
        asset_id: asset_id_for(&tenant_id, caller.environment, &details.asset_identifier),
        details,
        fingerprint,
        observed_at: metadata.occurred_at,
    })
}

/// Creates the finding, or re-observes it when it exists, retrying lost
/// races.
async fn ingest_prepared(
    app: &App,
    new: NewFinding,
    metadata: &EventMetadata,
) -> Result<Ingested, ApiError> {
    let id = new.finding_id.to_string();
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            let pause = rand::thread_rng().gen_range(1..=(5 + attempt as u64).min(50));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let created = app
            .commands
            .execute::<Finding>(
                &id,
                FindingCommand::Ingest(Box::new(new.clone())),
                (),
                metadata,
            )
            .await;
        match created {
            Ok(_) => {
                // The response needs no read: the one event says it all.
                let event = FindingEvent::FindingIngested {
                    finding_id: new.finding_id,
                    asset_id: new.asset_id,
                    details: Box::new(new.details),
                    fingerprint: new.fingerprint,
                    observed_at: new.observed_at,
                };
                let row = FindingRow::ingested(&event, metadata, 1)
                    .ok_or_else(|| ApiError::internal("an ingest must record FindingIngested"))?;
                return Ok(Ingested::Created(Box::new(row)));
            }
            Err(CommandError::Conflict) => continue,
            Err(CommandError::Rejected(FindingError::AlreadyExists)) => {}
            Err(other) => return Err(finding_error(other)),
        }
        let command = FindingCommand::Reobserve {
            observed_at: metadata.occurred_at,
        };
        match app
            .commands
            .execute::<Finding>(&id, command, (), metadata)
            .await
        {
            Ok(_) => return Ok(Ingested::Reobserved(id)),
            Err(CommandError::Conflict) => continue,
            Err(other) => return Err(finding_error(other)),
        }
    }
    Err(ApiError::conflict(
        "The finding is being changed by many requests at once; retry",
    ))
}

/// `POST /v1/findings`.
pub async fn ingest(
    app: &App,
    caller: &Principal,
    request: IngestFindingRequest,
) -> Result<IngestedFinding, ApiError> {
    let (row, deduplicated) = match ingest_one(app, caller, request).await? {
        Ingested::Created(row) => (*row, false),
        Ingested::Reobserved(id) => (current_row(app, caller, &id).await?, true),
    };
    Ok(IngestedFinding {
        finding: row.into(),
        deduplicated,
    })
}

/// The most items one bulk request may carry.
pub const BULK_LIMIT: usize = 1000;

/// The body of `POST /v1/findings/bulk`. Items are checked one by one, so a
/// bad item fails alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkIngestRequest {
    /// 1 to 1,000 findings, each shaped like `POST /v1/findings`'s body. An
    /// item that is not (not even an object) fails alone, in its result.
    #[schema(value_type = Vec<IngestFindingRequest>, min_items = 1, max_items = 1000)]
    pub findings: BulkItems,
}

/// A bulk request's items, counted as they are read: the parse stops with
/// an error at item 1,001, so the rest of the body is never materialised.
/// (Checked after parsing, 16 MiB of `0,` raised the server's RSS by
/// 290 MB before the limit refused it.)
#[derive(Debug, Default)]
pub struct BulkItems(pub Vec<serde_json::Value>);

impl BulkItems {
    fn out_of_bounds() -> String {
        format!("must hold 1 to {BULK_LIMIT} items")
    }
}

impl<'de> Deserialize<'de> for BulkItems {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> serde::de::Visitor<'de> for Items {
            type Value = BulkItems;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a list of 1 to {BULK_LIMIT} findings")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BulkItems, A::Error> {
                let hint = seq.size_hint().unwrap_or(0).min(BULK_LIMIT);
                let mut items = Vec::with_capacity(hint);
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                    if items.len() == BULK_LIMIT {
                        // One more (skipped, not kept) and the parse ends here.
                        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                            return Err(serde::de::Error::custom(BulkItems::out_of_bounds()));
                        }
                        break;
                    }
                }
                Ok(BulkItems(items))
            }
        }
        deserializer.deserialize_seq(Items)
    }
}

/// One item's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemResult {
    pub index: usize,
    /// `created`, `deduplicated` or `failed`.
    pub status: &'static str,
    pub id: Option<String>,
    pub error: Option<BulkItemError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkItemError {
    pub code: String,
    pub message: String,
    pub details: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkIngestResult {
    pub created: usize,
    pub deduplicated: usize,
    pub failed: usize,
    pub results: Vec<BulkItemResult>,
}

/// `POST /v1/findings/bulk`: every good item is kept, whatever the others do.
///
/// New findings (the first item of each fingerprint not stored yet) are
/// decided one by one and appended together in one transaction. The rest
/// (re-observations, and a batch that lost a race to a concurrent ingest)
/// go one by one through the single-ingest path, in request order.
pub async fn ingest_bulk(
    app: &App,
    caller: &Principal,
    request: BulkIngestRequest,
) -> Result<BulkIngestResult, ApiError> {
    let count = request.findings.0.len();
    if count == 0 || count > BULK_LIMIT {
        return Err(ApiError::invalid_field(
            "findings",
            BulkItems::out_of_bounds(),
        ));
    }
    let metadata = caller.metadata();
    let mut outcomes: Vec<Option<Result<(String, bool), ApiError>>> =
        (0..count).map(|_| None).collect();
    let mut prepared = Vec::new();
    for (index, item) in request.findings.0.into_iter().enumerate() {
        let new = serde_json::from_value::<IngestFindingRequest>(item)
            .map_err(|error| ApiError::invalid_field("body", error.to_string()))
            .and_then(|item| prepare(caller, item, &metadata));
        match new {
            Ok(new) => prepared.push((index, new)),
            Err(error) => outcomes[index] = Some(Err(error)),
        }
    }
    let ids: Vec<String> = prepared
        .iter()
        .map(|(_, new)| new.finding_id.to_string())
        .collect();
    let existing: HashSet<String> = app
        .store
        .existing_aggregates("Finding", &ids)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .collect();
    let mut first_seen = HashSet::new();
    let mut batch = Vec::new();
    let mut aggregates = Vec::new();
    let mut one_by_one = Vec::new();
    for (index, new) in prepared {
        let id = new.finding_id.to_string();
        if existing.contains(&id) || !first_seen.insert(id.clone()) {
            one_by_one.push((index, new));
            continue;
        }
        let command = FindingCommand::Ingest(Box::new(new.clone()));
        match app.commands.decide_new::<Finding>(command, ()).await {
            Ok(events) => {
                batch.push((index, new));
                aggregates.push(NewAggregate::<Finding> {
                    aggregate_id: id,
                    events,
                });
            }
            Err(error) => outcomes[index] = Some(Err(finding_error(CommandError::Rejected(error)))),
        }
    }
    match app.commands.create_many(&aggregates, &metadata).await {
        Ok(()) => {
            for ((index, _), aggregate) in batch.into_iter().zip(aggregates) {
                outcomes[index] = Some(Ok((aggregate.aggregate_id, false)));
            }
        }
        Err(CommandError::Conflict) => {
            one_by_one.extend(batch);
            one_by_one.sort_by_key(|(index, _)| *index);
        }
        Err(other) => return Err(finding_error(other)),
    }
    for (index, new) in one_by_one {
        let outcome = ingest_prepared(app, new, &metadata)
            .await
            .map(|done| match done {
                Ingested::Created(row) => (row.id, false),
                Ingested::Reobserved(id) => (id, true),
            });
        outcomes[index] = Some(outcome);
    }
    let mut result = BulkIngestResult {
        created: 0,
        deduplicated: 0,
        failed: 0,
        results: Vec::with_capacity(count),
    };
    for (index, outcome) in outcomes.into_iter().enumerate() {
        let item = match outcome.unwrap_or_else(|| Err(ApiError::internal("bulk item skipped"))) {
            Ok((id, deduplicated)) => {
                if deduplicated {
                    result.deduplicated += 1;
                } else {
                    result.created += 1;
                }
                BulkItemResult {
                    index,
                    status: if deduplicated {
                        "deduplicated"
                    } else {
                        "created"
                    },
                    id: Some(id),
                    error: None,
                }
            }
            Err(error) => {
                result.failed += 1;
                BulkItemResult {
                    index,
                    status: "failed",
                    id: None,
                    error: Some(BulkItemError {
                        code: error.code.to_string(),
                        message: error.message,
                        details: error.details,
                    }),
                }
            }
        };
        result.results.push(item);
    }
    Ok(result)
}

/// Runs a triage command on one of the caller's findings (only at
/// `expected_version`, when given) and returns the finding afterwards.
pub async fn command(
    app: &App,
    caller: &Principal,
    id: &str,
    command: FindingCommand,
    expected_version: Option<usize>,
) -> Result<FindingRow, ApiError> {
    let loaded = owned_events(app, caller, id).await?;
    let mut row = fold(&loaded)?;
    let metadata = caller.metadata();
    let executed = app
        .commands
        .execute_returning::<Finding>(id, command, (), &metadata, expected_version)
        .await
        .map_err(finding_error)?;
    // The row afterwards: the loaded one plus what was appended, no
    // re-read, unless another command appended in between.
    let first = executed.version - executed.events.len() + 1;
    if first != loaded.len() + 1 {
        return current_row(app, caller, id).await;
    }
    for (i, event) in executed.events.iter().enumerate() {
        row.apply(event, &metadata, (first + i) as i64);
    }
    Ok(row)
}

/// One entry of a finding's history.
#[derive(async_graphql::SimpleObject, Debug, Serialize, ToSchema)]
#[graphql(name = "HistoryEntry")]
pub struct HistoryEntry {
    pub sequence: i64,
    pub event_type: String,
    pub occurred_at: String,
    pub actor: String,
    /// `api_key`, `admin` or `system`.
    pub actor_type: String,
    pub request_id: Option<String>,
    /// The event itself.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `GET /v1/findings/{id}/history`: its events, oldest first.
pub async fn history(
    app: &App,
    caller: &Principal,
    id: &str,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let events = owned_events(app, caller, id).await?;
    events
        .into_iter()
        .map(|event| {
            let metadata = event.typed_metadata().map_err(ApiError::internal)?;
            let data = match event.payload {
                serde_json::Value::Object(map) if map.len() == 1 => {
                    map.into_iter().next().map(|(_, v)| v).unwrap_or_default()
                }
                other => other,
            };
            Ok(HistoryEntry {
                sequence: event.sequence,
                event_type: event.event_type,
                occurred_at: format_time(&metadata.occurred_at),
                actor: metadata.actor,
                actor_type: metadata.actor_type.as_str().into(),
                request_id: metadata.request_id,
                data,
            })
        })
        .collect()
}

/// A time given in a request, for the commands that take one.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid_field(field, "must be an RFC 3339 time"))
}
