//! Scanner-report ingestion use cases (`docs/ingestion.md`): submitting
//! an uploaded report as an [`IngestionJob`], and reading jobs. The job
//! itself runs in `palisade_infra::ingest::runner`.
//!
//! Upload options arrive as text (multipart fields or query parameters)
//! and are parsed here, every problem at once.

use palisade_domain::finding::Severity;
use palisade_domain::ingestion::{
    Format, IngestionCommand, IngestionError, IngestionJob, JobFile, JobOptions, JobStatus,
};
use palisade_domain::{FieldProblem, IngestionJobId};
use palisade_infra::ingest::{detect, files};
use palisade_infra::readmodel::ingestion::{
    get_ingestion_job, list_ingestion_jobs, IngestionJobFilter,
};
use palisade_infra::readmodel::{Page, Window};
use palisade_infra::CommandError;
use palisade_projections::{IngestionJobRow, IngestionProjection};
use sha2::{Digest, Sha256};

use super::auth::{FindingsRead, FindingsWrite};
use super::{App, Authorized, Error, Result};

/// The largest report accepted (413 above).
pub const MAX_REPORT_BYTES: usize = 50 * 1024 * 1024;

/// How an upload's options arrive: text, as a form or a query sends it.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub format: Option<String>,
    pub product: Option<String>,
    pub scope: Option<String>,
    /// `true` or `false`.
    pub close_old: Option<String>,
    pub minimum_severity: Option<String>,
    /// Comma-separated, or repeated.
    pub tags: Vec<String>,
    pub file_name: Option<String>,
}

impl From<IngestionError> for Error {
    fn from(error: IngestionError) -> Self {
        match error {
            IngestionError::NotFound => Error::not_found("Ingestion job not found"),
            IngestionError::AlreadyExists => Error::conflict("The job exists already; retry"),
            IngestionError::InvalidState(status) => {
                Error::InvalidTransition(format!("The job is {status}"))
            }
            IngestionError::Invalid(problems) => Error::Validation(problems),
        }
    }
}

impl From<CommandError<IngestionError>> for Error {
    fn from(error: CommandError<IngestionError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "ingestion job"),
        }
    }
}

fn blank_to_none(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Checks options on their own (no report to detect a format from): the
/// query's, before a form's fields take their place, so that a bad value
/// is refused wherever it was given.
pub fn check_options(options: UploadOptions) -> Result<()> {
    parse_options(options, None).map(|_| ())
}

/// The options, parsed and checked; the format detected from `report`
/// unless declared (or not at all, without a report).
fn parse_options(
    options: UploadOptions,
    report: Option<&[u8]>,
) -> Result<(JobOptions, Option<String>)> {
    let mut problems = Vec::new();
    // Exact values (as the document lists them): no trimming, no folding.
    let declared = options.format;
    let format = match &declared {
        Some(name) => match name.parse::<Format>() {
            Ok(format) => Some(format),
            Err(message) => {
                problems.push(FieldProblem::new("format", message));
                None
            }
        },
        None => match report.map(|report| (detect(report), report)) {
            None => None,
            Some((Some(format), _)) => Some(format),
            Some((None, report)) => {
                problems.push(FieldProblem::new(
                    "format",
                    if report.iter().all(u8::is_ascii_whitespace) {
                        "the report is empty; declare its format (sarif, nuclei, zap or burp) to import it"
                    } else {
                        "the report's format cannot be told from its content; declare it: sarif, nuclei, zap or burp"
                    },
                ));
                None
            }
        },
    };
    let close_old = match options.close_old.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            problems.push(FieldProblem::new("close_old", "must be true or false"));
            false
        }
    };
    let minimum_severity = match options.minimum_severity {
        None => None,
        Some(word) => match word.parse::<Severity>() {
            Ok(severity) => Some(severity),
            Err(message) => {
                problems.push(FieldProblem::new("minimum_severity", message));
                None
            }
        },
    };
    let tags: Vec<String> = options
        .tags
        .iter()
        .flat_map(|t| t.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    let file_name =
        blank_to_none(options.file_name).map(|name| palisade_infra::ingest::fit_line(&name, 200));
    let job = JobOptions {
        format: format.unwrap_or(Format::Sarif),
        declared: declared.is_some(),
        product: blank_to_none(options.product).map(|p| p.trim().to_string()),
        scope: blank_to_none(options.scope).map(|s| s.trim().to_string()),
        close_old,
        minimum_severity,
        tags,
    };
    if let Err(IngestionError::Invalid(found)) = IngestionJob::validate(&job) {
        problems.extend(found);
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok((job, file_name))
}

/// Queues an uploaded report: stores its bytes, records the job
/// (`pending`), waits for the jobs view to show it, and wakes the runner.
/// The answer is the job as submitted. The report is taken as it arrived (no copy: a report
/// may be 50 MiB) and dropped once stored.
pub async fn submit<R: AsRef<[u8]> + Send>(
    app: &App,
    context: &Authorized<FindingsWrite>,
    options: UploadOptions,
    report: R,
) -> Result<IngestionJobRow> {
    let bytes = report.as_ref();
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "A report may hold at most {} MiB",
            MAX_REPORT_BYTES / (1024 * 1024)
        )));
    }
    let (options, file_name) = parse_options(options, Some(bytes))?;
    let job_id = IngestionJobId::from_uuid(uuid::Uuid::now_v7());
    let id = job_id.to_string();
    let metadata = context.metadata();
    let file = JobFile {
        name: file_name,
        size_bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    };
    files::save_report(&app.store, &id, bytes).await?;
    drop(report);
    let command = IngestionCommand::Submit {
        job_id,
        options,
        file,
        at: metadata.occurred_at,
    };
    let submitted = app
        .commands
        .execute_returning::<IngestionJob>(&id, command, (), &metadata, None)
        .await;
    let executed = match submitted {
        Ok(executed) => executed,
        Err(error) => {
            let _ = files::delete_report(&app.store, &id).await;
            return Err(error.into());
        }
    };
    // So that a read right after the answer finds the job (when the view
    // is late the read may 404 for a moment; the job is queued all the same).
    app.await_view(
        IngestionProjection::NAME,
        "IngestionJob",
        &id,
        executed.version,
    )
    .await?;
    // The runner finds jobs in the view: woken once the job is there.
    app.ingest_wake.notify_one();
    // The answer is the job as submitted (`pending`), not a read of the
    // view: the runner may have started it already, and a 202 says what
    // was accepted.
    executed
        .events
        .first()
        .and_then(|event| IngestionJobRow::submitted(event, &metadata, executed.version as i64))
        .ok_or_else(|| Error::internal("a submission must record IngestionJobSubmitted"))
}

/// One of the caller's jobs.
pub async fn job(
    app: &App,
    context: &Authorized<FindingsRead>,
    id: &str,
) -> Result<IngestionJobRow> {
    IngestionJobId::parse(id).map_err(|_| Error::not_found("Ingestion job not found"))?;
    get_ingestion_job(app.store.read_pool(), &context.principal.partition(), id)
        .await?
        .ok_or_else(|| Error::not_found("Ingestion job not found"))
}

/// What `GET /v1/ingestion/jobs` filters by.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    pub statuses: Vec<JobStatus>,
    pub formats: Vec<Format>,
}

/// A page of the caller's jobs, newest first.
pub async fn jobs(
    app: &App,
    context: &Authorized<FindingsRead>,
    query: JobQuery,
    window: impl Into<Window>,
) -> Result<Page<IngestionJobRow>> {
    let filter = IngestionJobFilter {
        statuses: query.statuses,
        formats: query.formats,
    };
    Ok(list_ingestion_jobs(
        app.store.read_pool(),
        &context.principal.partition(),
        &filter,
        window,
    )
    .await?)
}
