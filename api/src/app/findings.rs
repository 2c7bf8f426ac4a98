//! Finding use cases: ingest with deduplication, bulk ingest, the triage
//! commands, reads, and the history of one finding.
//!
//! Deduplication needs no read model: a finding's id is derived from
//! (tenant, environment, fingerprint) (`palisade_domain::finding::identity`),
//! so every ingest of one fingerprint addresses the same aggregate. The
//! first append wins; the others find the finding there (or lose the
//! optimistic-concurrency race) and re-observe it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use palisade_domain::finding::{
    Finding, FindingCommand, FindingDetails, FindingError, FindingEvent, Fingerprint, NewFinding,
    Severity,
};
use palisade_domain::{EventMetadata, FieldProblem, FindingId};
use palisade_infra::readmodel::{
    get_finding, list_findings, FindingFilter, FindingSort, Order, Page, Partition, Window,
};
use palisade_infra::{CommandError, NewAggregate};
use palisade_projections::{FeedEvent, FindingRow};
use rand::Rng;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{FindingsRead, FindingsWrite};
use super::input::{filter_text, within};
use super::{App, Authorized, Error, Result};

/// How often an ingest retries after losing a race on its finding.
const MAX_ATTEMPTS: usize = 200;

/// The most items one bulk request may carry.
pub const BULK_LIMIT: usize = 1000;

/// A finding as reported: the body of `POST /v1/findings`, each item of a
/// bulk ingest, and GraphQL's `ingestFinding` input.
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
    /// The ingest command's finding in a tenant environment, parsed once
    /// (every problem at once): valid details, the fingerprint, and the ids
    /// derived from them.
    pub fn parse(self, partition: &Partition, observed_at: DateTime<Utc>) -> Result<NewFinding> {
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
            scope: None,
        };
        let mut problems = Vec::new();
        if let Err(message) = &severity {
            problems.push(FieldProblem::new("severity", message.clone()));
        }
        let details = match details.validated() {
            Ok(details) => Some(details),
            Err(FindingError::Invalid(found)) => {
                problems.extend(found);
                None
            }
            Err(other) => {
                problems.push(FieldProblem::new("body", other.to_string()));
                None
            }
        };
        // Absent means derived; given, it must keep to the rule (blank too).
        let fingerprint = match self.fingerprint.as_deref().map(Fingerprint::parse) {
            Some(Ok(fingerprint)) => Some(fingerprint),
            Some(Err(problem)) => {
                problems.push(problem);
                None
            }
            None => None,
        };
        match details {
            Some(details) if problems.is_empty() => {
                let fingerprint = fingerprint.unwrap_or_else(|| Fingerprint::derived(&details));
                Ok(NewFinding::in_partition(
                    &partition.tenant_id,
                    partition.environment,
                    details,
                    fingerprint,
                    observed_at,
                ))
            }
            _ => Err(Error::Validation(problems)),
        }
    }
}

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

/// What an ingest did: the finding, and whether its fingerprint matched an
/// existing one (re-observed, occurrences + 1) instead of creating it.
pub struct Ingested {
    pub finding: FindingRow,
    pub deduplicated: bool,
}

/// One bulk item's outcome: the finding's id and whether it was
/// deduplicated, or why it failed.
pub type BulkOutcome = Result<(String, bool)>;

/// The finding's committed events, when it belongs to the caller's tenant
/// and environment; otherwise (or when unknown) not found.
async fn owned_events(
    app: &App,
    context: &super::RequestContext,
    id: &str,
) -> Result<Vec<FeedEvent>> {
    let not_found = || Error::from(FindingError::NotFound);
    FindingId::parse(id).map_err(|_| not_found())?;
    let events = app.store.aggregate_events("Finding", id).await?;
    let first = events.first().ok_or_else(not_found)?;
    let metadata = first.typed_metadata()?;
    let caller = &context.principal;
    if metadata.tenant_id != caller.tenant_id.to_string()
        || metadata.environment != caller.environment
    {
        return Err(not_found());
    }
    Ok(events)
}

/// The finding as its events describe it (no read-model lag).
async fn current_row(app: &App, context: &super::RequestContext, id: &str) -> Result<FindingRow> {
    let events = owned_events(app, context, id).await?;
    fold(&events)
}

fn fold(events: &[FeedEvent]) -> Result<FindingRow> {
    let decoded = events
        .iter()
        .map(|e| Ok((e.decode()?, e.typed_metadata()?, e.sequence)))
        .collect::<Result<Vec<_>, palisade_projections::ProjectionError>>()?;
    FindingRow::from_events(decoded.iter().map(|(e, m, s)| (e, m, *s)))
        .ok_or_else(|| FindingError::NotFound.into())
}

/// What one ingest did, before the answer is read.
enum Outcome {
    /// A new finding, as its one event describes it.
    Created(Box<FindingRow>),
    /// The finding with this id already existed and was re-observed.
    Reobserved(String),
}

/// The new finding as its one event describes it (the response needs no
/// read).
fn created(new: NewFinding, metadata: &EventMetadata) -> Result<Outcome> {
    let event = FindingEvent::FindingIngested {
        finding_id: new.finding_id,
        asset_id: new.asset_id,
        details: Box::new(new.details.into_inner()),
        fingerprint: new.fingerprint.into_string(),
        observed_at: new.observed_at,
    };
    let row = FindingRow::ingested(&event, metadata, 1)
        .ok_or_else(|| Error::internal("an ingest must record FindingIngested"))?;
    Ok(Outcome::Created(Box::new(row)))
}

/// Creates the finding, or re-observes it when it exists, retrying lost
/// races.
///
/// When the finding is `likely_new`, its first event is appended without
/// loading it first: its id is derived from its fingerprint, so the event
/// store's unique key on (aggregate, sequence) is the existence check, and
/// the one statement either appends the event or, when the finding exists,
/// appends nothing (and the load-decide-append path below re-observes it).
async fn ingest_prepared(
    app: &App,
    new: NewFinding,
    metadata: &EventMetadata,
    likely_new: bool,
) -> Result<Outcome> {
    let id = new.finding_id.to_string();
    if likely_new {
        let command = FindingCommand::Ingest(Box::new(new.clone()));
        let events = app.commands.decide_new::<Finding>(command, ()).await?;
        let first = NewAggregate::<Finding> {
            aggregate_id: id.clone(),
            events,
        };
        match app.commands.create_many(&[first], metadata).await {
            Ok(()) => return created(new, metadata),
            Err(CommandError::Conflict) => {}
            Err(other) => return Err(other.into()),
        }
    }
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            let pause = rand::thread_rng().gen_range(1..=(5 + attempt as u64).min(50));
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let command = FindingCommand::Ingest(Box::new(new.clone()));
        match app
            .commands
            .execute::<Finding>(&id, command, (), metadata)
            .await
        {
            Ok(_) => return created(new, metadata),
            Err(CommandError::Conflict) => continue,
            Err(CommandError::Rejected(FindingError::AlreadyExists)) => {}
            Err(other) => return Err(other.into()),
        }
        let command = FindingCommand::Reobserve {
            observed_at: metadata.occurred_at,
        };
        match app
            .commands
            .execute::<Finding>(&id, command, (), metadata)
            .await
        {
            Ok(_) => return Ok(Outcome::Reobserved(id)),
            Err(CommandError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(Error::conflict(
        "The finding is being changed by many requests at once; retry",
    ))
}

/// Ingests one finding: creates it, or re-observes the one with the same
/// fingerprint.
pub async fn ingest(
    app: &App,
    context: &Authorized<FindingsWrite>,
    request: IngestFindingRequest,
) -> Result<Ingested> {
    let metadata = context.metadata();
    let new = request.parse(&context.principal.partition(), metadata.occurred_at)?;
    Ok(match ingest_prepared(app, new, &metadata, true).await? {
        Outcome::Created(row) => Ingested {
            finding: *row,
            deduplicated: false,
        },
        Outcome::Reobserved(id) => Ingested {
            finding: current_row(app, context, &id).await?,
            deduplicated: true,
        },
    })
}

/// Ingests up to [`BULK_LIMIT`] findings; every good item is kept, whatever
/// the others do. One outcome per item, in order.
///
/// New findings (the first item of each fingerprint not stored yet) are
/// decided one by one and appended together in one transaction. The rest
/// (re-observations, and a batch that lost a race to a concurrent ingest)
/// go one by one through the single-ingest path, in request order.
pub async fn ingest_bulk(
    app: &App,
    context: &Authorized<FindingsWrite>,
    request: BulkIngestRequest,
) -> Result<Vec<BulkOutcome>> {
    let count = request.findings.0.len();
    if count == 0 || count > BULK_LIMIT {
        return Err(Error::invalid("findings", BulkItems::out_of_bounds()));
    }
    let metadata = context.metadata();
    let partition = context.principal.partition();
    let mut outcomes: Vec<Option<BulkOutcome>> = (0..count).map(|_| None).collect();
    let mut prepared = Vec::new();
    for (index, item) in request.findings.0.into_iter().enumerate() {
        let new = serde_json::from_value::<IngestFindingRequest>(item)
            .map_err(|error| Error::invalid("body", error.to_string()))
            .and_then(|item| item.parse(&partition, metadata.occurred_at));
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
        .await?
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
            Err(error) => outcomes[index] = Some(Err(error.into())),
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
        Err(other) => return Err(other.into()),
    }
    for (index, new) in one_by_one {
        // Known to exist, a repeat within the batch, or a lost race.
        let outcome = ingest_prepared(app, new, &metadata, false)
            .await
            .map(|done| match done {
                Outcome::Created(row) => (row.id, false),
                Outcome::Reobserved(id) => (id, true),
            });
        outcomes[index] = Some(outcome);
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| Err(Error::internal("bulk item skipped"))))
        .collect())
}

/// Runs a triage command on one of the caller's findings (only at
/// `expected_version`, when given) and returns the finding afterwards.
pub async fn triage(
    app: &App,
    context: &Authorized<FindingsWrite>,
    id: &str,
    command: FindingCommand,
    expected_version: Option<usize>,
) -> Result<FindingRow> {
    let loaded = owned_events(app, context, id).await?;
    let mut row = fold(&loaded)?;
    let metadata = context.metadata();
    let executed = app
        .commands
        .execute_returning::<Finding>(id, command, (), &metadata, expected_version)
        .await?;
    // The row afterwards: the loaded one plus what was appended, no
    // re-read, unless another command appended in between.
    let first = executed.version - executed.events.len() + 1;
    if first != loaded.len() + 1 {
        return current_row(app, context, id).await;
    }
    for (i, event) in executed.events.iter().enumerate() {
        row.apply(event, &metadata, (first + i) as i64);
    }
    Ok(row)
}

/// The command that adds a comment: a fresh comment id, and now.
pub fn comment(body: String) -> FindingCommand {
    FindingCommand::Comment {
        comment_id: format!("cmt_{}", uuid::Uuid::now_v7().simple()),
        body,
        at: chrono::Utc::now(),
    }
}

/// One event of a finding's history, with who caused it.
pub struct HistoryRecord {
    pub sequence: i64,
    pub event_type: String,
    pub metadata: EventMetadata,
    /// The event's fields.
    pub data: serde_json::Value,
}

/// A finding's events, oldest first, read from the event store itself (so
/// never behind).
pub async fn history(
    app: &App,
    context: &Authorized<FindingsRead>,
    id: &str,
) -> Result<Vec<HistoryRecord>> {
    let events = owned_events(app, context, id).await?;
    events
        .into_iter()
        .map(|event| {
            let metadata = event.typed_metadata()?;
            let data = match event.payload {
                serde_json::Value::Object(map) if map.len() == 1 => {
                    map.into_iter().next().map(|(_, v)| v).unwrap_or_default()
                }
                other => other,
            };
            Ok(HistoryRecord {
                sequence: event.sequence,
                event_type: event.event_type,
                metadata,
                data,
            })
        })
        .collect()
}

/// One of the caller's findings from the view; None when unknown or
/// another tenant's.
pub async fn find(
    app: &App,
    context: &Authorized<FindingsRead>,
    id: &str,
) -> Result<Option<FindingRow>> {
    Ok(get_finding(app.store.read_pool(), &context.principal.partition(), id).await?)
}

/// One of the caller's findings from the view, or not found.
pub async fn get(app: &App, context: &Authorized<FindingsRead>, id: &str) -> Result<FindingRow> {
    find(app, context, id)
        .await?
        .ok_or_else(|| FindingError::NotFound.into())
}

/// A filter as given, checked once for every adapter: free text within the
/// text rule (blank is absent), `min_risk` within 0–100.
pub fn checked_filter(filter: FindingFilter) -> Result<FindingFilter> {
    Ok(FindingFilter {
        product: filter_text("product", filter.product.as_deref())?,
        category: filter_text("category", filter.category.as_deref())?,
        asset: filter_text("asset", filter.asset.as_deref())?,
        cve: filter_text("cve", filter.cve.as_deref())?,
        assignee: filter_text("assignee", filter.assignee.as_deref())?,
        tag: filter_text("tag", filter.tag.as_deref())?,
        search: filter_text("search", filter.search.as_deref())?,
        min_risk: within("min_risk", filter.min_risk, 0.0, 100.0)?,
        ..filter
    })
}

/// A window of the caller's findings, filtered and sorted, and the total
/// that match.
pub async fn list(
    app: &App,
    context: &Authorized<FindingsRead>,
    filter: FindingFilter,
    sort: FindingSort,
    order: Order,
    window: impl Into<Window>,
) -> Result<Page<FindingRow>> {
    let filter = checked_filter(filter)?;
    let (pool, partition) = (app.store.read_pool(), context.principal.partition());
    Ok(list_findings(pool, &partition, &filter, sort, order, window).await?)
}
