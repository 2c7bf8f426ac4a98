//! The IngestionJob aggregate: one uploaded scanner report, from
//! `pending` through `processing` to `completed` or `failed`, with the
//! counts of what it did.
//!
//! ```text
//! pending ──Start──▶ processing ──Complete──▶ completed
//!    │                  │  ▲ Start (a resume after a restart: attempt + 1)
//!    │                  │  └─ RecordProgress (a batch ingested, or closed)
//!    └──────Fail────────┴──Fail──▶ failed
//! ```
//!
//! A batch's progress is recorded in the same transaction as the findings
//! it ingested (the runner appends both together), so after a crash the
//! job knows exactly which report items are done: a resume skips them,
//! and no item is counted twice. At most [`MAX_KEPT_ERRORS`] item errors
//! are kept (their count is always exact).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::finding::Severity;
use crate::text::{limits, optional_text, FieldProblem, MAX_LIST_ITEMS};
use crate::{FindingId, IngestionJobId};

/// Item errors a job keeps with their reason; the count goes on.
pub const MAX_KEPT_ERRORS: usize = 100;

/// How many times a job is started (the first run and its resumes)
/// before it fails instead of starting again.
pub const MAX_ATTEMPTS: u32 = 3;

/// A report format, detected from content or declared by the uploader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Sarif,
    Nuclei,
    Zap,
    Burp,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Sarif, Format::Nuclei, Format::Zap, Format::Burp];

    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Sarif => "sarif",
            Format::Nuclei => "nuclei",
            Format::Zap => "zap",
            Format::Burp => "burp",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                format!("unknown format '{s}'; expected one of sarif, nuclei, zap, burp")
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One report item that did not become a finding, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Where: a JSON path (`runs[0].results[3]`), a line, or an XML element.
    pub at: String,
    pub reason: String,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Pending,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status '{s}'; expected one of pending, processing, completed, failed"
                )
            })
    }
}

/// What a job does with its report, as the uploader asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOptions {
    pub format: Format,
    /// True when the uploader named the format (otherwise it was detected).
    pub declared: bool,
    /// The product findings are filed under; the report's tool when absent.
    pub product: Option<String>,
    /// What close-old compares against, and the asset of findings whose
    /// report names no host; the product when absent.
    pub scope: Option<String>,
    pub close_old: bool,
    /// Findings below it are counted as parsed and skipped.
    pub minimum_severity: Option<Severity>,
    pub tags: Vec<String>,
}

/// The uploaded file, as the job knows it (its bytes are kept outside the
/// event store, and deleted when the job ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    pub name: Option<String>,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
}

/// What a job has done: every count exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Report items read (findings and item errors): where a resume starts.
    pub items: u64,
    /// Findings the report holds.
    pub parsed: u64,
    /// New findings.
    pub created: u64,
    /// Findings seen before (re-observed).
    pub deduplicated: u64,
    /// Remediated findings seen again (regressions).
    pub reopened: u64,
    /// Findings below the minimum severity, not ingested.
    pub skipped: u64,
    /// Findings of the product and scope that the report no longer holds,
    /// remediated by close-old.
    pub closed: u64,
    /// Items that could not be ingested.
    pub errors: u64,
}

impl JobCounts {
    /// Adds a batch's counts (what `IngestionJobProgressed` does to a job).
    pub fn add(&mut self, batch: &JobCounts) {
        self.items += batch.items;
        self.parsed += batch.parsed;
        self.created += batch.created;
        self.deduplicated += batch.deduplicated;
        self.reopened += batch.reopened;
        self.skipped += batch.skipped;
        self.closed += batch.closed;
        self.errors += batch.errors;
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum IngestionCommand {
    Submit {
        job_id: IngestionJobId,
        options: JobOptions,
        file: JobFile,
        at: DateTime<Utc>,
    },
    /// Begins (or, after a restart, resumes) processing.
    Start {
        at: DateTime<Utc>,
    },
    /// One batch done: its counts (added to the job's) and its item errors.
    RecordProgress {
        batch: JobCounts,
        errors: Vec<ItemError>,
        /// How far into the report the parser has read (bytes): progress.
        bytes_read: u64,
        /// The findings the batch saw again that changed in no other way
        /// (see [`IngestionEvent::IngestionJobProgressed`]).
        reobserved: Vec<FindingId>,
        at: DateTime<Utc>,
    },
    /// The end: every batch (and close-old's) recorded.
    Complete {
        at: DateTime<Utc>,
    },
    Fail {
        reason: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IngestionEvent {
    IngestionJobSubmitted {
        job_id: IngestionJobId,
        options: JobOptions,
        file: JobFile,
        at: DateTime<Utc>,
    },
    IngestionJobStarted {
        attempt: u32,
        /// Report items already done (a resume skips them).
        resume_at_item: u64,
        at: DateTime<Utc>,
    },
    IngestionJobProgressed {
        batch: JobCounts,
        /// Item errors kept (the job keeps the first [`MAX_KEPT_ERRORS`]).
        errors: Vec<ItemError>,
        /// How far into the report the parser had read (bytes; 0 in events
        /// written before it was recorded).
        #[serde(default)]
        bytes_read: u64,
        /// The findings this batch saw again and changed in no other way:
        /// their re-observation is the job's fact (the findings view adds
        /// one occurrence and moves `last_seen` for each), so a re-scan of
        /// an unchanged report appends one event per batch, not one per
        /// finding. A regression, a new severity or new scanner fields are
        /// still the finding's own events. At most `batch.deduplicated`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reobserved: Vec<FindingId>,
        at: DateTime<Utc>,
    },
    IngestionJobCompleted {
        counts: JobCounts,
        at: DateTime<Utc>,
    },
    IngestionJobFailed {
        reason: String,
        counts: JobCounts,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for IngestionEvent {
    fn event_type(&self) -> String {
        match self {
            IngestionEvent::IngestionJobSubmitted { .. } => "IngestionJobSubmitted",
            IngestionEvent::IngestionJobStarted { .. } => "IngestionJobStarted",
            IngestionEvent::IngestionJobProgressed { .. } => "IngestionJobProgressed",
            IngestionEvent::IngestionJobCompleted { .. } => "IngestionJobCompleted",
            IngestionEvent::IngestionJobFailed { .. } => "IngestionJobFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Every event type of the aggregate (the audit trail's catalogue).
pub const EVENT_TYPES: [&str; 5] = [
    "IngestionJobSubmitted",
    "IngestionJobStarted",
    "IngestionJobProgressed",
    "IngestionJobCompleted",
    "IngestionJobFailed",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestionError {
    #[error("ingestion job not found")]
    NotFound,
    #[error("ingestion job already exists")]
    AlreadyExists,
    /// 409: the job is already completed or failed (or not started).
    #[error("the job is {0}")]
    InvalidState(&'static str),
    #[error("invalid ingestion job: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestionJob {
    state: Option<State>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    status: JobStatus,
    attempts: u32,
    counts: JobCounts,
    kept_errors: usize,
}

impl IngestionJob {
    pub fn status(&self) -> Option<JobStatus> {
        self.state.as_ref().map(|s| s.status)
    }

    pub fn counts(&self) -> JobCounts {
        self.state.as_ref().map(|s| s.counts).unwrap_or_default()
    }

    pub fn attempts(&self) -> u32 {
        self.state.as_ref().map_or(0, |s| s.attempts)
    }

    /// Checks the uploader's options: product, scope and tags keep to the
    /// finding's text rules.
    pub fn validate(options: &JobOptions) -> Result<(), IngestionError> {
        let mut problems = Vec::new();
        if let Err(p) = optional_text("product", options.product.as_deref(), limits::PRODUCT) {
            problems.push(p);
        }
        if let Err(p) = optional_text("scope", options.scope.as_deref(), limits::ASSET_IDENTIFIER) {
            problems.push(p);
        }
        if options.tags.len() > MAX_LIST_ITEMS {
            problems.push(FieldProblem::new(
                "tags",
                format!("at most {MAX_LIST_ITEMS}"),
            ));
        }
        for (i, tag) in options.tags.iter().enumerate() {
            if let Err(p) = crate::text::required_text(&format!("tags[{i}]"), tag, limits::TAG) {
                problems.push(p);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(IngestionError::Invalid(problems))
        }
    }

    fn decide(&self, command: IngestionCommand) -> Result<Vec<IngestionEvent>, IngestionError> {
        use IngestionCommand as C;
        use IngestionEvent as E;
        if let C::Submit {
            job_id,
            options,
            file,
            at,
        } = command
        {
            if self.state.is_some() {
                return Err(IngestionError::AlreadyExists);
            }
            Self::validate(&options)?;
            return Ok(vec![E::IngestionJobSubmitted {
                job_id,
                options,
                file,
                at,
            }]);
        }
        let state = self.state.as_ref().ok_or(IngestionError::NotFound)?;
        let ended = matches!(state.status, JobStatus::Completed | JobStatus::Failed);
        Ok(match command {
            C::Submit { .. } => unreachable!("handled above"),
            C::Start { at } => {
                if ended {
                    return Err(IngestionError::InvalidState(state.status.as_str()));
                }
                if state.attempts >= MAX_ATTEMPTS {
                    vec![E::IngestionJobFailed {
                        reason: format!(
                            "the job was interrupted {} times (the server stopped while processing it); upload the report again",
                            state.attempts
                        ),
                        counts: state.counts,
                        at,
                    }]
                } else {
                    vec![E::IngestionJobStarted {
                        attempt: state.attempts + 1,
                        resume_at_item: state.counts.items,
                        at,
                    }]
                }
            }
            C::RecordProgress {
                batch,
                errors,
                bytes_read,
                reobserved,
                at,
            } => {
                if state.status != JobStatus::Processing {
                    return Err(IngestionError::InvalidState(state.status.as_str()));
                }
                if reobserved.len() as u64 > batch.deduplicated {
                    return Err(IngestionError::Invalid(vec![FieldProblem::new(
                        "reobserved",
                        "more findings re-observed than the batch deduplicated",
                    )]));
                }
                let room = MAX_KEPT_ERRORS.saturating_sub(state.kept_errors);
                let errors: Vec<ItemError> = errors.into_iter().take(room).collect();
                vec![E::IngestionJobProgressed {
                    batch,
                    errors,
                    bytes_read,
                    reobserved,
                    at,
                }]
            }
            C::Complete { at } => {
                if state.status != JobStatus::Processing {
                    return Err(IngestionError::InvalidState(state.status.as_str()));
                }
                vec![E::IngestionJobCompleted {
                    counts: state.counts,
                    at,
                }]
            }
            C::Fail { reason, at } => {
                if ended {
                    return Err(IngestionError::InvalidState(state.status.as_str()));
                }
                let reason = crate::text::required_text("reason", &reason, limits::REASON)
                    .map_err(|p| IngestionError::Invalid(vec![p]))?;
                vec![E::IngestionJobFailed {
                    reason,
                    counts: state.counts,
                    at,
                }]
            }
        })
    }
}

impl Aggregate for IngestionJob {
    const TYPE: &'static str = "IngestionJob";
    type Command = IngestionCommand;
    type Event = IngestionEvent;
    type Error = IngestionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use IngestionEvent as E;
        if let E::IngestionJobSubmitted { .. } = event {
            self.state = Some(State {
                status: JobStatus::Pending,
                attempts: 0,
                counts: JobCounts::default(),
                kept_errors: 0,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            E::IngestionJobSubmitted { .. } => {}
            E::IngestionJobStarted { attempt, .. } => {
                state.status = JobStatus::Processing;
                state.attempts = attempt;
            }
            E::IngestionJobProgressed { batch, errors, .. } => {
                state.counts.add(&batch);
                state.kept_errors += errors.len();
            }
            E::IngestionJobCompleted { counts, .. } => {
                state.status = JobStatus::Completed;
                state.counts = counts;
            }
            E::IngestionJobFailed { .. } => state.status = JobStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    type Given = TestFramework<IngestionJob>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap()
    }

    fn id() -> IngestionJobId {
        IngestionJobId::from_uuid(Uuid::from_u128(7))
    }

    fn options() -> JobOptions {
        JobOptions {
            format: Format::Sarif,
            declared: false,
            product: None,
            scope: None,
            close_old: false,
            minimum_severity: None,
            tags: vec![],
        }
    }

    fn submitted() -> IngestionEvent {
        IngestionEvent::IngestionJobSubmitted {
            job_id: id(),
            options: options(),
            file: JobFile {
                name: Some("r.sarif".into()),
                size_bytes: 10,
                sha256: "00".into(),
            },
            at: t0(),
        }
    }

    fn started(attempt: u32, resume_at_item: u64) -> IngestionEvent {
        IngestionEvent::IngestionJobStarted {
            attempt,
            resume_at_item,
            at: t0(),
        }
    }

    fn batch(items: u64) -> JobCounts {
        JobCounts {
            items,
            parsed: items,
            created: items,
            ..JobCounts::default()
        }
    }

    fn progressed(items: u64) -> IngestionEvent {
        IngestionEvent::IngestionJobProgressed {
            batch: batch(items),
            errors: vec![],
            bytes_read: items * 100,
            reobserved: vec![],
            at: t0(),
        }
    }

    #[test]
    fn a_submitted_job_starts_and_completes_with_its_counts() {
        Given::with(())
            .given(vec![submitted()])
            .when(IngestionCommand::Start { at: t0() })
            .then_expect_events(vec![started(1, 0)]);
        Given::with(())
            .given(vec![
                submitted(),
                started(1, 0),
                progressed(5),
                progressed(3),
            ])
            .when(IngestionCommand::Complete { at: t0() })
            .then_expect_events(vec![IngestionEvent::IngestionJobCompleted {
                counts: JobCounts {
                    items: 8,
                    parsed: 8,
                    created: 8,
                    ..JobCounts::default()
                },
                at: t0(),
            }]);
    }

    #[test]
    fn a_resume_starts_after_the_recorded_items_and_gives_up_after_the_last_attempt() {
        Given::with(())
            .given(vec![submitted(), started(1, 0), progressed(1000)])
            .when(IngestionCommand::Start { at: t0() })
            .then_expect_events(vec![started(2, 1000)]);
        let counts = batch(1000);
        Given::with(())
            .given(vec![
                submitted(),
                started(1, 0),
                progressed(1000),
                started(2, 1000),
                started(3, 1000),
            ])
            .when(IngestionCommand::Start { at: t0() })
            .then_expect_events(vec![IngestionEvent::IngestionJobFailed {
                reason: "the job was interrupted 3 times (the server stopped while processing it); upload the report again".into(),
                counts,
                at: t0(),
            }]);
    }

    #[test]
    fn only_the_first_errors_are_kept() {
        let error = |i: usize| ItemError {
            at: format!("line {i}"),
            reason: "bad".into(),
        };
        let first: Vec<ItemError> = (0..MAX_KEPT_ERRORS - 1).map(error).collect();
        Given::with(())
            .given(vec![
                submitted(),
                started(1, 0),
                IngestionEvent::IngestionJobProgressed {
                    batch: JobCounts::default(),
                    errors: first,
                    bytes_read: 10,
                    reobserved: vec![],
                    at: t0(),
                },
            ])
            .when(IngestionCommand::RecordProgress {
                batch: JobCounts::default(),
                errors: vec![error(1), error(2)],
                bytes_read: 20,
                reobserved: vec![],
                at: t0(),
            })
            .then_expect_events(vec![IngestionEvent::IngestionJobProgressed {
                batch: JobCounts::default(),
                errors: vec![error(1)],
                bytes_read: 20,
                reobserved: vec![],
                at: t0(),
            }]);
    }

    #[test]
    fn a_batch_re_observes_at_most_the_findings_it_deduplicated() {
        let seen = |n: u128| -> Vec<FindingId> {
            (0..n)
                .map(|i| FindingId::from_uuid(uuid::Uuid::from_u128(i + 1)))
                .collect()
        };
        let counts = JobCounts {
            items: 2,
            parsed: 2,
            deduplicated: 2,
            ..JobCounts::default()
        };
        Given::with(())
            .given(vec![submitted(), started(1, 0)])
            .when(IngestionCommand::RecordProgress {
                batch: counts,
                errors: vec![],
                bytes_read: 20,
                reobserved: seen(2),
                at: t0(),
            })
            .then_expect_events(vec![IngestionEvent::IngestionJobProgressed {
                batch: counts,
                errors: vec![],
                bytes_read: 20,
                reobserved: seen(2),
                at: t0(),
            }]);
        Given::with(())
            .given(vec![submitted(), started(1, 0)])
            .when(IngestionCommand::RecordProgress {
                batch: counts,
                errors: vec![],
                bytes_read: 20,
                reobserved: seen(3),
                at: t0(),
            })
            .then_expect_error(IngestionError::Invalid(vec![FieldProblem::new(
                "reobserved",
                "more findings re-observed than the batch deduplicated",
            )]));
    }

    #[test]
    fn an_event_without_re_observations_reads_as_before() {
        let old = serde_json::json!({"IngestionJobProgressed": {
            "batch": batch(1), "errors": [], "bytes_read": 5, "at": t0()
        }});
        let event: IngestionEvent = serde_json::from_value(old.clone()).unwrap();
        assert!(matches!(
            &event,
            IngestionEvent::IngestionJobProgressed { reobserved, .. } if reobserved.is_empty()
        ));
        assert_eq!(serde_json::to_value(&event).unwrap(), old);
    }

    #[test]
    fn an_ended_job_takes_no_more_commands() {
        let completed = IngestionEvent::IngestionJobCompleted {
            counts: JobCounts::default(),
            at: t0(),
        };
        Given::with(())
            .given(vec![submitted(), started(1, 0), completed.clone()])
            .when(IngestionCommand::Start { at: t0() })
            .then_expect_error(IngestionError::InvalidState("completed"));
        Given::with(())
            .given(vec![submitted(), started(1, 0), completed])
            .when(IngestionCommand::Fail {
                reason: "x".into(),
                at: t0(),
            })
            .then_expect_error(IngestionError::InvalidState("completed"));
        Given::with(())
            .given(vec![submitted()])
            .when(IngestionCommand::Complete { at: t0() })
            .then_expect_error(IngestionError::InvalidState("pending"));
    }

    #[test]
    fn options_keep_to_the_text_rules() {
        let mut bad = options();
        bad.product = Some("a\u{0}".into());
        bad.tags = vec!["".into()];
        match IngestionJob::validate(&bad) {
            Err(IngestionError::Invalid(problems)) => {
                let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
                assert_eq!(fields, ["product", "tags[0]"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
