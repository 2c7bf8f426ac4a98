//! The ingestion runner: runs the pending jobs, in one replica at a time
//! (under the store's lock `ingestion-runner`; the projection `ingestion` has its own), at most `PALISADE_INGEST_CONCURRENCY`
//! at once.
//!
//! A job copies its report from `ingestion_files` to a local file, parses
//! it on a blocking thread (the parser hands items over a bounded channel,
//! so memory stays bounded however large the report), and ingests the
//! findings in batches of [`BATCH`]. Each batch is one transaction: the
//! findings' new events (decided against their current events, read in
//! one query) together with the job's `IngestionJobProgressed`, which
//! counts the report items the batch consumed and lists the findings it
//! saw again unchanged (their re-observation is the job's fact: a re-scan
//! appends one event per batch, not one per finding). So after a crash the job's
//! events say exactly which items are done, and a resume (the runner finds
//! the job still `processing`) skips them: no item is counted twice.
//!
//! When the report is read, close-old (when asked) remediates the open
//! findings of the job's product and scope that the report no longer
//! holds, in batches recorded the same way; then the job completes and its
//! report is deleted. A report that cannot be read fails the job, naming
//! where parsing stopped; what was ingested before stays.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use palisade_domain::finding::{
    Finding, FindingCommand, FindingDetails, FindingEvent, Fingerprint, NewFinding, Status,
};
use palisade_domain::ingestion::{IngestionCommand, IngestionJob, ItemError, JobCounts};
use palisade_domain::{ActorType, EventMetadata};
use palisade_projections::{FeedEvent, IngestionJobRow};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::{parser_for, Item, ScannedFinding, MAX_LIST, TAG_CHARS};
use crate::projection::lock::LockSession;
use crate::readmodel::ingestion::open_ingestion_jobs;
use crate::readmodel::{list_findings, FindingFilter, FindingSort, Order, Partition, Window};
use crate::{Clock, CommandError, Commands, EventBatch, Store};

/// Report items per batch (one transaction each).
pub const BATCH: usize = 1000;

/// The actor of what a job does.
pub const ACTOR: &str = "system:ingestion";

/// How often a batch is decided again after a concurrent change to one of
/// its findings (a user's triage) before the job gives up.
const BATCH_ATTEMPTS: usize = 20;

/// Runs ingestion jobs.
#[derive(Clone)]
pub struct IngestRunner {
    store: Store,
    commands: Commands,
    concurrency: usize,
    scratch: PathBuf,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    poll: Duration,
}

/// Why a job stopped before its end.
#[derive(Debug, thiserror::Error)]
enum Stop {
    /// Another runner took the job over (its version moved on): this one
    /// leaves it alone.
    #[error("the job was taken over by another runner")]
    TakenOver,
    /// The job cannot go on: it fails with this reason.
    #[error("{0}")]
    Fail(String),
    /// The store failed; the job stays `processing` and is resumed later.
    #[error("{0}")]
    Store(String),
}

impl<E: std::error::Error> From<CommandError<E>> for Stop {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(e) => Stop::Fail(e.to_string()),
            CommandError::Conflict | CommandError::VersionMismatch { .. } => Stop::TakenOver,
            other => Stop::Store(other.to_string()),
        }
    }
}

impl From<crate::StoreError> for Stop {
    fn from(error: crate::StoreError) -> Self {
        Stop::Store(error.to_string())
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Store(error.to_string())
    }
}

impl From<palisade_projections::ProjectionError> for Stop {
    fn from(error: palisade_projections::ProjectionError) -> Self {
        Stop::Store(error.to_string())
    }
}

impl IngestRunner {
    /// A runner of `concurrency` jobs at once, keeping its temporary
    /// copies of reports in `scratch`.
    pub fn new(store: Store, concurrency: usize, scratch: PathBuf, clock: Arc<dyn Clock>) -> Self {
        Self {
            commands: Commands::new(store.clone()),
            store,
            concurrency: concurrency.max(1),
            scratch,
            clock,
            wake: Arc::new(Notify::new()),
            poll: Duration::from_millis(500),
        }
    }

    /// Wakes the runner whenever `wake` is notified (a job was submitted
    /// in this process); without it the runner looks every half second.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Runs jobs while this process holds the ingestion lock, until
    /// shutdown. A job cut off by shutdown is resumed by the next runner.
    pub fn spawn(self, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut lock = LockSession::new(self.store.clone(), "ingestion-runner");
            let running: Arc<Mutex<HashSet<String>>> = Arc::default();
            let mut tasks = JoinSet::new();
            while !*shutdown.borrow() {
                while tasks.try_join_next().is_some() {}
                match lock.try_acquire().await {
                    Ok(true) => self.start_jobs(&running, &mut tasks).await,
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "cannot try the ingestion lock"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = self.wake.notified() => {}
                    _ = shutdown.changed() => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            }
            tasks.shutdown().await;
            lock.release().await;
        })
    }

    async fn start_jobs(&self, running: &Arc<Mutex<HashSet<String>>>, tasks: &mut JoinSet<()>) {
        let busy = running.lock().unwrap_or_else(PoisonError::into_inner).len();
        if busy >= self.concurrency {
            return;
        }
        let jobs = match open_ingestion_jobs(self.store.read_pool(), 100).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%error, "cannot read the open ingestion jobs");
                return;
            }
        };
        for job in jobs {
            {
                let mut running = running.lock().unwrap_or_else(PoisonError::into_inner);
                if running.len() >= self.concurrency {
                    return;
                }
                if !running.insert(job.id.clone()) {
                    continue;
                }
            }
            let runner = self.clone();
            let running = running.clone();
            tasks.spawn(async move {
                let id = job.id.clone();
                runner.run(job).await;
                running
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&id);
            });
        }
    }

    /// Runs one job to its end (or until it stops for a reason that a
    /// later resume can get past).
    pub async fn run(&self, job: IngestionJobRow) {
        let id = job.id.clone();
        let span = tracing::info_span!("ingestion_job", job = %id);
        let outcome = tracing::Instrument::instrument(self.process(&job), span).await;
        match outcome {
            Ok(()) => {}
            Err(Stop::TakenOver) => tracing::info!(job = %id, "ingestion job taken over"),
            Err(Stop::Store(error)) => {
                tracing::warn!(job = %id, %error, "ingestion job interrupted; it resumes later")
            }
            Err(Stop::Fail(reason)) => {
                let command = IngestionCommand::Fail {
                    reason,
                    at: self.clock.now(),
                };
                let metadata = self.metadata(&job);
                if let Err(error) = self
                    .commands
                    .execute::<IngestionJob>(&id, command, (), &metadata)
                    .await
                {
                    tracing::warn!(job = %id, %error, "cannot record the job's failure");
                }
                self.discard_report(&id).await;
            }
        }
    }

    fn metadata(&self, job: &IngestionJobRow) -> EventMetadata {
        EventMetadata {
            tenant_id: job.tenant_id.clone(),
            environment: job.environment,
            actor: ACTOR.into(),
            actor_type: ActorType::System,
            api_key_id: None,
            request_id: None,
            correlation_id: Some(job.id.clone()),
            causation_id: Some(job.id.clone()),
            occurred_at: self.clock.now(),
        }
    }

    fn scratch_file(&self, id: &str) -> PathBuf {
        self.scratch.join(format!("ingest-{id}.report"))
    }

    async fn discard_report(&self, id: &str) {
        let _ = tokio::fs::remove_file(self.scratch_file(id)).await;
        if let Err(error) = super::files::delete_report(&self.store, id).await {
            tracing::warn!(job = %id, %error, "cannot delete the job's report");
        }
    }

    async fn process(&self, row: &IngestionJobRow) -> Result<(), Stop> {
        let id = row.id.as_str();
        let start = IngestionCommand::Start {
            at: self.clock.now(),
        };
        let started = self
            .commands
            .execute_returning::<IngestionJob>(id, start, (), &self.metadata(row), None)
            .await;
        match started {
            Ok(_) => {}
            // Completed or failed meanwhile (the view was behind): nothing to do.
            Err(CommandError::Rejected(_)) => return Ok(()),
            Err(other) => return Err(other.into()),
        }
        let (job, version) = self.commands.load::<IngestionJob>(id).await?;
        if job.status() != Some(palisade_domain::ingestion::JobStatus::Processing) {
            // It used its last attempt: failed at Start.
            self.discard_report(id).await;
            return Ok(());
        }
        let mut state = JobState {
            job,
            version,
            seen: HashSet::new(),
            products: row.options.product.iter().cloned().collect(),
        };
        let path = self.scratch_file(id);
        if super::files::copy_report_to(&self.store, id, &path)
            .await?
            .is_none()
        {
            return Err(Stop::Fail(
                "the uploaded report is no longer stored; upload it again".into(),
            ));
        }
        let resume = state.job.counts().items;
        // Each item comes with how far the parser had read when it was
        // found (the job's progress in bytes).
        let (sender, mut items) = mpsc::channel::<(Item, u64)>(4 * BATCH);
        let format = row.options.format;
        let file = path.clone();
        let parse = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&file).map_err(|e| {
                super::ParseError::new("byte 0", format!("cannot open the report: {e}"))
            })?;
            let read = Arc::new(AtomicU64::new(0));
            let counting = CountingReader {
                inner: file,
                read: read.clone(),
            };
            let mut reader = BufReader::with_capacity(256 * 1024, counting);
            parser_for(format).parse(&mut reader, &mut |item| {
                // A closed channel means the job stopped; the parse runs out.
                let _ = sender.blocking_send((item, read.load(Ordering::Relaxed)));
            })
        });
        let mut consumed = 0u64;
        let mut bytes_read = 0u64;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some((item, position)) = items.recv().await {
            consumed += 1;
            if consumed <= resume {
                // Done before the restart: only its finding's id is wanted
                // (close-old compares against every finding of the report).
                if let Item::Finding(finding) = &item {
                    if let Ok(new) = prepare(finding, row, self.clock.now()) {
                        state.seen.insert(new.finding_id.to_string());
                        state.products.insert(new.details.product.clone());
                    }
                }
                continue;
            }
            batch.push((consumed, item));
            bytes_read = position;
            if batch.len() == BATCH {
                self.ingest(row, &mut state, std::mem::take(&mut batch), bytes_read)
                    .await?;
            }
        }
        if !batch.is_empty() {
            self.ingest(row, &mut state, batch, bytes_read).await?;
        }
        let parsed = parse
            .await
            .map_err(|e| Stop::Fail(format!("the parser stopped: {e}")))?;
        let _ = tokio::fs::remove_file(&path).await;
        if let Err(error) = parsed {
            return Err(Stop::Fail(format!(
                "The report could not be read as {}: {} (at {})",
                format, error.message, error.at
            )));
        }
        let counts = state.job.counts();
        if counts.parsed == 0 && counts.errors > 0 {
            let first = self.first_error(&row.id).await;
            return Err(Stop::Fail(format!(
                "None of the report's {} items could be ingested{first}",
                counts.errors
            )));
        }
        if row.options.close_old {
            self.close_old(row, &mut state).await?;
        }
        let complete = IngestionCommand::Complete {
            at: self.clock.now(),
        };
        self.commands
            .execute_if::<IngestionJob>(id, complete, (), &self.metadata(row), Some(state.version))
            .await?;
        self.discard_report(id).await;
        Ok(())
    }

    /// `; the first: <at>: <reason>` of the job's kept item errors, from
    /// its events (the view may be behind).
    async fn first_error(&self, id: &str) -> String {
        let events = self
            .store
            .aggregate_events(IngestionJob::TYPE, id)
            .await
            .unwrap_or_default();
        events
            .iter()
            .filter_map(|e| {
                e.decode::<palisade_domain::ingestion::IngestionEvent>()
                    .ok()
            })
            .find_map(|e| match e {
                palisade_domain::ingestion::IngestionEvent::IngestionJobProgressed {
                    errors,
                    ..
                } => errors.into_iter().next(),
                _ => None,
            })
            .map(|e| format!("; the first, at {}: {}", e.at, e.reason))
            .unwrap_or_default()
    }

    /// One batch of report items: the findings' events and the job's
    /// progress, in one transaction.
    async fn ingest(
        &self,
        row: &IngestionJobRow,
        state: &mut JobState,
        items: Vec<(u64, Item)>,
        bytes_read: u64,
    ) -> Result<(), Stop> {
        let now = self.clock.now();
        let mut prepared = Vec::with_capacity(items.len());
        let mut base = JobCounts {
            items: items.len() as u64,
            ..JobCounts::default()
        };
        let mut errors = Vec::new();
        for (index, item) in items {
            match item {
                Item::Error(error) => {
                    base.errors += 1;
                    errors.push(error);
                }
                Item::Finding(finding) => {
                    base.parsed += 1;
                    if row
                        .options
                        .minimum_severity
                        .is_some_and(|min| finding.severity.rank() < min.rank())
                    {
                        base.skipped += 1;
                        continue;
                    }
                    match prepare(&finding, row, now) {
                        Ok(new) => prepared.push((new, finding.suppressed.clone())),
                        Err(reason) => {
                            base.errors += 1;
                            errors.push(ItemError {
                                at: format!("item {index} ('{}')", finding.title),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        let ids: Vec<String> = {
            let mut unique: Vec<String> = prepared
                .iter()
                .map(|(new, _)| new.finding_id.to_string())
                .collect();
            unique.sort();
            unique.dedup();
            unique
        };
        let mut metadata = self.metadata(row);
        metadata.occurred_at = now;
        for _ in 0..BATCH_ATTEMPTS {
            let events = self.store.aggregates_events(Finding::TYPE, &ids).await?;
            let mut findings = fold_findings(&events)?;
            let mut counts = base;
            let mut reobserved = Vec::new();
            for (new, suppressed) in &prepared {
                let id = new.finding_id.to_string();
                let current = findings.entry(id).or_default();
                if current.finding.status().is_none() {
                    decide(current, FindingCommand::Ingest(Box::new(new.clone()))).await?;
                    if let Some(reason) = suppressed {
                        let dismiss = FindingCommand::Dismiss {
                            reason: reason.clone(),
                            at: now,
                        };
                        decide(current, dismiss).await?;
                    }
                    current.details = Some(new.details.clone().into_inner());
                    counts.created += 1;
                    continue;
                }
                counts.deduplicated += 1;
                if current.finding.status() == Some(Status::Remediated) {
                    // A regression is the finding's own event.
                    decide(current, FindingCommand::Reobserve { observed_at: now }).await?;
                    counts.reopened += 1;
                } else {
                    reobserved.push(new.finding_id);
                }
                let reported = new.details.clone().into_inner();
                if current
                    .details
                    .as_ref()
                    .is_some_and(|d| scanner_fields_differ(d, &reported))
                {
                    let update = FindingCommand::UpdateReport {
                        details: Box::new(new.details.clone()),
                        at: now,
                    };
                    decide(current, update).await?;
                    current.details = Some(reported);
                }
            }
            if self
                .append(
                    row,
                    state,
                    &metadata,
                    &findings,
                    Progress {
                        counts,
                        errors: errors.clone(),
                        reobserved,
                        bytes_read,
                    },
                )
                .await?
            {
                state.seen.extend(ids);
                for (new, _) in &prepared {
                    state.products.insert(new.details.product.clone());
                }
                return Ok(());
            }
        }
        Err(Stop::Store(
            "the report's findings kept changing concurrently; the job resumes later".into(),
        ))
    }

    /// Remediates the open findings of the job's product and scope that
    /// the report no longer holds, in batches recorded like the ingest's.
    async fn close_old(&self, row: &IngestionJobRow, state: &mut JobState) -> Result<(), Stop> {
        for product in state.products.clone() {
            self.close_old_of(row, state, product).await?;
        }
        Ok(())
    }

    async fn close_old_of(
        &self,
        row: &IngestionJobRow,
        state: &mut JobState,
        product: String,
    ) -> Result<(), Stop> {
        let scope = row.options.scope.clone().unwrap_or_else(|| product.clone());
        let partition = Partition {
            tenant_id: row.tenant_id.clone(),
            environment: row.environment,
        };
        let filter = FindingFilter {
            product: Some(product),
            statuses: vec![Status::Open, Status::Confirmed],
            ..FindingFilter::default()
        };
        let mut stale = Vec::new();
        let mut offset = 0i64;
        loop {
            let window = Window { offset, limit: 500 };
            let page = list_findings(
                self.store.read_pool(),
                &partition,
                &filter,
                FindingSort::CreatedAt,
                Order::Asc,
                window,
            )
            .await?;
            let count = page.items.len();
            for finding in page.items {
                let same_scope = finding
                    .details
                    .scope
                    .as_deref()
                    .unwrap_or(finding.details.product.as_str())
                    == scope;
                if same_scope && !state.seen.contains(&finding.id) {
                    stale.push(finding.id);
                }
            }
            if count < 500 {
                break;
            }
            offset += 500;
        }
        let reason = format!("no longer in the report of ingestion job {}", row.id);
        for chunk in stale.chunks(BATCH) {
            let ids: Vec<String> = chunk.to_vec();
            let now = self.clock.now();
            let mut metadata = self.metadata(row);
            metadata.occurred_at = now;
            let mut done = false;
            for _ in 0..BATCH_ATTEMPTS {
                let events = self.store.aggregates_events(Finding::TYPE, &ids).await?;
                let mut findings = fold_findings(&events)?;
                let mut closed = 0;
                for current in findings.values_mut() {
                    let close = FindingCommand::Close {
                        reason: reason.clone(),
                        at: now,
                    };
                    decide(current, close).await?;
                    if !current.new_events.is_empty() {
                        closed += 1;
                    }
                }
                let counts = JobCounts {
                    closed,
                    ..JobCounts::default()
                };
                if self
                    .append(
                        row,
                        state,
                        &metadata,
                        &findings,
                        Progress {
                            counts,
                            errors: Vec::new(),
                            reobserved: Vec::new(),
                            bytes_read: row.file.size_bytes,
                        },
                    )
                    .await?
                {
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(Stop::Store(
                    "the findings to close kept changing concurrently; the job resumes later"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

impl IngestRunner {
    /// Appends the findings' new events and the job's `progress` in one
    /// transaction: true when done, false when a finding changed meanwhile
    /// (decide again); [`Stop::TakenOver`] when the job did.
    async fn append(
        &self,
        row: &IngestionJobRow,
        state: &mut JobState,
        metadata: &EventMetadata,
        findings: &HashMap<String, Current>,
        progress: Progress,
    ) -> Result<bool, Stop> {
        let mut batch = EventBatch::new(metadata).map_err(Stop::Store)?;
        for (id, current) in findings {
            if !current.new_events.is_empty() {
                batch
                    .push::<Finding>(id, current.version, &current.new_events)
                    .map_err(Stop::Store)?;
            }
        }
        let progress = IngestionCommand::RecordProgress {
            batch: progress.counts,
            errors: progress.errors,
            bytes_read: progress.bytes_read,
            reobserved: progress.reobserved,
            at: metadata.occurred_at,
        };
        let mut job = state.job.clone();
        let job_events = decide_job(&mut job, progress).await?;
        batch
            .push::<IngestionJob>(&row.id, state.version, &job_events)
            .map_err(Stop::Store)?;
        match self
            .commands
            .append_batch::<std::convert::Infallible>(&batch)
            .await
        {
            Ok(()) => {
                state.job = job;
                state.version += job_events.len();
                Ok(true)
            }
            Err(CommandError::Conflict) => {
                let (_, version) = self.commands.load::<IngestionJob>(&row.id).await?;
                if version != state.version {
                    return Err(Stop::TakenOver);
                }
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// What one batch adds to its job (`IngestionCommand::RecordProgress`).
struct Progress {
    counts: JobCounts,
    errors: Vec<ItemError>,
    /// The findings seen again that need no event of their own.
    reobserved: Vec<palisade_domain::FindingId>,
    /// How far the parser had read.
    bytes_read: u64,
}

/// A reader that counts the bytes read through it (the parser's position).
struct CountingReader<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What the runner knows of a job while it runs it.
struct JobState {
    job: IngestionJob,
    version: usize,
    /// The findings the report holds (their ids), for close-old.
    seen: HashSet<String>,
    /// The products the report's findings were filed under.
    products: BTreeSet<String>,
}

/// One finding of a batch: its state from its events, its version, the
/// events decided in this batch, and the details it was last reported with.
#[derive(Default)]
struct Current {
    finding: Finding,
    version: usize,
    new_events: Vec<FindingEvent>,
    details: Option<FindingDetails>,
}

fn fold_findings(events: &[FeedEvent]) -> Result<HashMap<String, Current>, Stop> {
    let mut findings: HashMap<String, Current> = HashMap::new();
    for event in events {
        let current = findings.entry(event.aggregate_id.clone()).or_default();
        let decoded: FindingEvent = event.decode()?;
        match &decoded {
            FindingEvent::FindingIngested { details, .. }
            | FindingEvent::FindingReportUpdated { details, .. } => {
                let mut details = (**details).clone();
                if let Some(previous) = &current.details {
                    // A report update keeps the product, asset and scope.
                    details.product = previous.product.clone();
                    details.asset_identifier = previous.asset_identifier.clone();
                    details.scope = previous.scope.clone();
                }
                current.details = Some(details);
            }
            FindingEvent::FindingSeverityChanged { to, .. } => {
                if let Some(details) = current.details.as_mut() {
                    details.severity = *to;
                }
            }
            _ => {}
        }
        current.finding.apply(decoded);
        current.version = usize::try_from(event.sequence).unwrap_or(usize::MAX);
    }
    Ok(findings)
}

/// Decides `command` on the finding, applying its events (kept as the
/// batch's new events).
async fn decide(current: &mut Current, command: FindingCommand) -> Result<(), Stop> {
    let sink = EventSink::default();
    current
        .finding
        .handle(command, &(), &sink)
        .await
        .map_err(|e| Stop::Fail(format!("a finding refused the report: {e}")))?;
    current.new_events.extend(sink.collect().await);
    Ok(())
}

async fn decide_job(
    job: &mut IngestionJob,
    command: IngestionCommand,
) -> Result<Vec<palisade_domain::ingestion::IngestionEvent>, Stop> {
    let sink = EventSink::default();
    job.handle(command, &(), &sink)
        .await
        .map_err(|e| Stop::Fail(e.to_string()))?;
    Ok(sink.collect().await)
}

/// Whether a report's scanner-owned fields differ from the finding's.
fn scanner_fields_differ(current: &FindingDetails, reported: &FindingDetails) -> bool {
    current.title != reported.title
        || current.description != reported.description
        || current.severity != reported.severity
        || current.location != reported.location
        || current.references != reported.references
        || current.cve != reported.cve
        || current.cwe != reported.cwe
        || current.cvss_score != reported.cvss_score
        || current.tags != reported.tags
        || current.category != reported.category
}

/// The finding a scanned one becomes in the job's tenant environment:
/// filed under the job's product (else the scanner's) and scope (else the
/// product), with the job's tags; or why it cannot be.
fn prepare(
    finding: &ScannedFinding,
    job: &IngestionJobRow,
    observed_at: chrono::DateTime<chrono::Utc>,
) -> Result<NewFinding, String> {
    let product = job
        .options
        .product
        .clone()
        .unwrap_or_else(|| finding.product.clone());
    let scope = job.options.scope.clone().unwrap_or_else(|| product.clone());
    let mut tags: Vec<String> = finding
        .tags
        .iter()
        .chain(job.options.tags.iter())
        .map(|t| super::fit_line(t, TAG_CHARS).to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags.truncate(MAX_LIST);
    let fingerprint = finding.fingerprint(&product, &scope);
    let details = FindingDetails {
        asset_identifier: finding.asset.clone().unwrap_or_else(|| scope.clone()),
        product,
        category: finding.category.clone(),
        title: finding.title.clone(),
        description: finding.description.clone(),
        severity: finding.severity,
        likelihood: None,
        impact: None,
        cve: finding.cve.clone(),
        cvss_score: finding.cvss_score,
        cwe: finding.cwe.clone(),
        location: finding.location.clone(),
        references: finding.references.clone(),
        tags,
        scope: Some(scope),
    };
    let details = details.validated().map_err(|e| e.to_string())?;
    let fingerprint = Fingerprint::parse(&fingerprint).map_err(|p| p.message)?;
    Ok(NewFinding::in_partition(
        &job.tenant_id,
        job.environment,
        details,
        fingerprint,
        observed_at,
    ))
}
