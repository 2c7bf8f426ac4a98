//! `palisade import`: uploads scanner reports to a running server
//! (`POST /v1/ingestion/upload`) and, with `--wait`, follows each job
//! (`GET /v1/ingestion/jobs/{id}`) to its end.
//!
//! Each report is sent as the request body itself (the raw upload), read
//! from disk as it is sent, with its options and file name in the query
//! and an `Idempotency-Key` per file: a retry (after a 429 or 503, or a
//! dropped connection) sends the same bytes under the same key, so the
//! server answers it with the job it already queued instead of a second
//! one.
//!
//! On a terminal the progress is an `indicatif` bar: the bytes uploaded,
//! then how far the job's parser has read, with the items processed, the
//! rate and the ETA. Elsewhere (CI logs) it is a line per phase and one
//! every few seconds while a job runs. The exit code is non-zero when an
//! upload is refused or, with `--wait`, a job fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures_util::stream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// What `palisade import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportArgs {
    pub files: Vec<PathBuf>,
    /// The server's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    pub key: String,
    pub format: Option<String>,
    pub product: Option<String>,
    pub scope: Option<String>,
    pub close_old: bool,
    pub minimum_severity: Option<String>,
    pub tags: Vec<String>,
    pub wait: bool,
    pub json: bool,
}

/// The largest report the server takes (its 413 above).
const MAX_REPORT_BYTES: u64 = crate::app::ingestion::MAX_REPORT_BYTES as u64;

/// Attempts of one request when the server asks to retry (429, 503) or
/// the connection drops.
const ATTEMPTS: u32 = 5;

/// The first wait between reads of a job; each next is half as long
/// again, up to [`POLL_MAX`] (a plan's rate limit counts the reads).
const POLL_FIRST: Duration = Duration::from_millis(200);
const POLL_MAX: Duration = Duration::from_secs(2);

/// Plain progress lines (no terminal) at most this often.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The parts of a job document the command reads.
#[derive(Debug, Deserialize)]
struct Job {
    job_id: String,
    status: String,
    file: JobFile,
    counts: Counts,
    failure: Option<String>,
    duration_ms: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct JobFile {
    size_bytes: u64,
    bytes_read: u64,
}

#[derive(Debug, Deserialize)]
struct Counts {
    parsed: u64,
    created: u64,
    deduplicated: u64,
    reopened: u64,
    skipped: u64,
    closed: u64,
    errors: u64,
    items_processed: u64,
}

impl Job {
    fn ended(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed")
    }

    fn summary(&self) -> String {
        let c = &self.counts;
        let took = self
            .duration_ms
            .map(|ms| format!(" in {:.1} s", ms as f64 / 1000.0))
            .unwrap_or_default();
        match self.status.as_str() {
            "failed" => format!(
                "failed{took}: {}",
                self.failure.as_deref().unwrap_or("no reason given")
            ),
            status => format!(
                "{status}{took}: {} parsed, {} created, {} deduplicated ({} reopened), {} skipped, {} closed, {} errors",
                c.parsed, c.created, c.deduplicated, c.reopened, c.skipped, c.closed, c.errors
            ),
        }
    }
}

/// Runs the command: every file in turn; an error when any failed.
pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let client = Client::new(&args)?;
    let mut failed = 0usize;
    for path in &args.files {
        let name = display_name(path);
        match import_one(&client, &args, path, &name).await {
            Ok(job) => {
                if args.json {
                    println!("{}", serde_json::to_string(&job)?);
                }
                if job.get("status").and_then(Value::as_str) == Some("failed") {
                    failed += 1;
                }
            }
            Err(error) => {
                failed += 1;
                eprintln!("{name}: {error:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} imports failed", args.files.len());
    }
    Ok(())
}

/// The file's name as shown and as sent to the server.
fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Uploads one report and, with `--wait`, follows its job; the last job
/// document read.
async fn import_one(
    client: &Client,
    args: &ImportArgs,
    path: &Path,
    name: &str,
) -> anyhow::Result<Value> {
    let size = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_REPORT_BYTES {
        bail!(
            "{} bytes is more than the server takes ({} MiB)",
            size,
            MAX_REPORT_BYTES / 1024 / 1024
        );
    }
    let progress = Progress::new(args.json, name);
    progress.uploading(size);
    let idempotency_key = format!("import-{}", uuid::Uuid::new_v4());
    let document = client
        .upload(args, path, name, size, &idempotency_key, &progress)
        .await?;
    let mut job = parse_job(&document)?;
    progress.uploaded(&job);
    if !args.wait {
        progress.finish(&format!(
            "{} {} (follow it with GET /v1/ingestion/jobs/{})",
            job.job_id, job.status, job.job_id
        ));
        return Ok(document);
    }
    let started = Instant::now();
    let mut document = document;
    let mut poll = POLL_FIRST;
    while !job.ended() {
        tokio::time::sleep(poll).await;
        poll = (poll * 3 / 2).min(POLL_MAX);
        document = client.job(&job.job_id).await?;
        job = parse_job(&document)?;
        progress.processing(&job, started.elapsed());
    }
    progress.finish(&format!("{} {}", job.job_id, job.summary()));
    Ok(document)
}

fn parse_job(document: &Value) -> anyhow::Result<Job> {
    serde_json::from_value(document.clone())
        .map_err(|e| anyhow!("the server's answer is not an ingestion job ({e}): {document}"))
}

/// The HTTP side: the upload and the job reads, with retries where the
/// server asks for them.
struct Client {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
}

impl Client {
    fn new(args: &ImportArgs) -> anyhow::Result<Self> {
        let base = args.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("--url must start with http:// or https:// (got {base:?})");
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", args.key))
            .map_err(|_| anyhow!("the API key holds characters a header cannot carry"))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("palisade-import/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            http,
            base,
            authorization,
        })
    }

    /// `POST /v1/ingestion/upload` with the file as the body; the job
    /// document of the 202.
    async fn upload(
        &self,
        args: &ImportArgs,
        path: &Path,
        name: &str,
        size: u64,
        idempotency_key: &str,
        progress: &Progress,
    ) -> anyhow::Result<Value> {
        let mut query: Vec<(&str, String)> = vec![("file_name", name.to_string())];
        let options = [
            ("format", &args.format),
            ("product", &args.product),
            ("scope", &args.scope),
            ("minimum_severity", &args.minimum_severity),
        ];
        for (field, value) in options {
            if let Some(value) = value {
                query.push((field, value.clone()));
            }
        }
        if args.close_old {
            query.push(("close_old", "true".into()));
        }
        if !args.tags.is_empty() {
            query.push(("tags", args.tags.join(",")));
        }
        let url = format!("{}/v1/ingestion/upload", self.base);
        let (url, query) = (url.as_str(), query.as_slice());
        let note = |text: &str| progress.note(text);
        self.call(note, move || async move {
            progress.restart_upload();
            let file = tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?;
            let body = reqwest::Body::wrap_stream(file_stream(file, progress.bar.clone()));
            Ok(self
                .http
                .post(url)
                .query(query)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, size)
                .header("Idempotency-Key", idempotency_key)
                .body(body))
        })
        .await
    }

    /// `GET /v1/ingestion/jobs/{id}`.
    async fn job(&self, id: &str) -> anyhow::Result<Value> {
        let url = format!("{}/v1/ingestion/jobs/{id}", self.base);
        let url = url.as_str();
        self.call(
            |_| {},
            move || async move { Ok(self.http.get(url).timeout(Duration::from_secs(30))) },
        )
        .await
    }

    /// Sends the request `request` builds (again for each attempt), with
    /// the key; `data` of the answer. A dropped connection, a 429 or a 503
    /// is tried again (after a backoff or the `Retry-After`), up to
    /// [`ATTEMPTS`] in all; `note` hears of each retry.
    async fn call<F, Fut>(&self, note: impl Fn(&str), request: F) -> anyhow::Result<Value>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<reqwest::RequestBuilder>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = request()
                .await?
                .header(AUTHORIZATION, self.authorization.clone())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(error) if attempt < ATTEMPTS && !error.is_builder() => {
                    note(&format!("request interrupted ({error}); retrying"));
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(error) => {
                    return Err(anyhow!(error).context(format!("cannot reach {}", self.base)))
                }
            };
            match answer(response).await? {
                Answer::Data(data) => return Ok(data),
                Answer::Retry(wait, why) if attempt < ATTEMPTS => {
                    note(&format!("{why}; retrying in {} s", wait.as_secs()));
                    tokio::time::sleep(wait).await;
                }
                Answer::Retry(_, why) => bail!("{why}; gave up after {attempt} attempts"),
            }
        }
    }
}

/// A server's answer: its `data`, or a wait before retrying.
enum Answer {
    Data(Value),
    Retry(Duration, String),
}

/// Reads an answer: `data` of a success, a retry for 429 and 503 (after
/// their `Retry-After`), and an error naming the server's message for
/// anything else.
async fn answer(response: reqwest::Response) -> anyhow::Result<Answer> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.max(1)).min(MAX_RETRY_AFTER));
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return body
            .get("data")
            .cloned()
            .map(Answer::Data)
            .ok_or_else(|| anyhow!("the server answered {status} without data: {text}"));
    }
    let message = error_message(&body).unwrap_or_else(|| text.chars().take(500).collect());
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        return Ok(Answer::Retry(
            retry_after.unwrap_or(Duration::from_secs(2)),
            format!("the server answered {status}: {message}"),
        ));
    }
    bail!("the server answered {status}: {message}")
}

/// `error.message` (a 422's names each field's problem).
fn error_message(body: &Value) -> Option<String> {
    Some(body.get("error")?.get("message")?.as_str()?.to_string())
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500 * 2u64.pow(attempt.min(5)))
}

/// The file as a stream of chunks, counted on the bar as they are sent.
fn file_stream(
    file: tokio::fs::File,
    bar: ProgressBar,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    stream::try_unfold((file, bar), |(mut file, bar)| async move {
        let mut chunk = vec![0u8; 256 * 1024];
        let n = file.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        chunk.truncate(n);
        bar.inc(n as u64);
        Ok(Some((chunk, (file, bar))))
    })
}

/// A file's progress: an `indicatif` bar on a terminal, plain lines
/// elsewhere, nothing with `--json`.
struct Progress {
    bar: ProgressBar,
    name: String,
    plain: bool,
    quiet: bool,
    last_line: std::sync::Mutex<Option<Instant>>,
}

impl Progress {
    fn new(json: bool, name: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let quiet = json;
        if quiet {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let plain = !quiet && bar.is_hidden();
        bar.set_prefix(name.to_string());
        Self {
            bar,
            name: name.to_string(),
            plain,
            quiet,
            last_line: std::sync::Mutex::new(None),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    fn line(&self, text: &str) {
        if self.plain {
            eprintln!("{}: {text}", self.name);
        }
    }

    fn uploading(&self, size: u64) {
        self.bar.set_length(size);
        self.bar.set_style(Self::style(
            "{prefix} upload  [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        ));
        self.line(&format!("uploading {size} bytes"));
    }

    fn restart_upload(&self) {
        self.bar.set_position(0);
    }

    fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.plain {
            self.line(text);
        } else {
            self.bar.println(format!("{}: {text}", self.name));
        }
    }

    fn uploaded(&self, job: &Job) {
        self.line(&format!(
            "uploaded {} bytes: job {} {}",
            job.file.size_bytes, job.job_id, job.status
        ));
        self.bar.set_length(job.file.size_bytes.max(1));
        self.bar.set_position(0);
        self.bar.reset_eta();
        self.bar.set_style(Self::style(
            "{prefix} ingest  [{bar:30}] {percent:>3}% {msg} eta {eta}",
        ));
    }

    fn processing(&self, job: &Job, elapsed: Duration) {
        let items = job.counts.items_processed;
        let rate = items as f64 / elapsed.as_secs_f64().max(1e-3);
        let message = format!("{} · {items} items ({rate:.0}/s)", job.status);
        self.bar
            .set_position(job.file.bytes_read.min(job.file.size_bytes));
        self.bar.set_message(message.clone());
        if self.plain && !job.ended() {
            let mut last = self
                .last_line
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_none_or(|at| at.elapsed() >= PLAIN_EVERY) {
                *last = Some(Instant::now());
                let percent = 100 * job.file.bytes_read / job.file.size_bytes.max(1);
                drop(last);
                self.line(&format!("{message}, {percent}% read"));
            }
        }
    }

    /// The bar goes; the outcome stays, on standard output.
    fn finish(&self, text: &str) {
        self.bar.finish_and_clear();
        if !self.quiet {
            println!("{}: {text}", self.name);
        }
    }
}
