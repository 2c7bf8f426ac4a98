//! `/v1/ingestion`: scanner reports in (`docs/ingestion.md`). An upload
//! (`findings:write`) becomes a job that runs in the background; jobs are
//! read with `findings:read`.
//!
//! The upload is `multipart/form-data` (field `file`, and the options as
//! fields), or, for CI pipelines, the report itself as the body
//! (`application/sarif+json`, `application/json`, `application/x-ndjson`,
//! `application/xml`, `text/xml`, `text/html`), with the options as query
//! parameters.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::parse_paging;
use super::openapi::{BodyErrors, ErrorEnvelope, KeyErrors, ReadErrors, Success};
use super::query::{comma_list, ApiQuery};
use super::{ApiError, Consistency, Envelope};
use crate::app::auth::{FindingsRead, FindingsWrite};
use crate::app::ingestion::{self, JobQuery, UploadOptions, MAX_REPORT_BYTES};
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::ingestion::IngestionJobView;

/// The upload route's body limit: the largest report, and room for the
/// form's framing and fields.
pub const UPLOAD_BODY_LIMIT: usize = MAX_REPORT_BYTES + 256 * 1024;

const IDEMPOTENCY: &str = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response";

/// Body types taken as the report itself.
const RAW_TYPES: [&str; 8] = [
    "application/sarif+json",
    "application/json",
    "application/x-ndjson",
    "application/jsonl",
    "application/xml",
    "text/xml",
    "text/html",
    "application/octet-stream",
];

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
}

/// The upload's options as query parameters (a raw body's only way to
/// give them; a form's fields take precedence).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `sarif`, `nuclei`, `zap` or `burp`; detected from the content when absent.
    format: Option<String>,
    /// The product findings are filed under (the report's tool when absent).
    product: Option<String>,
    /// What close-old compares within, and the asset of findings whose
    /// report names no host (the product when absent).
    scope: Option<String>,
    /// `true`: remediate the product's and scope's open findings that this report no longer holds.
    close_old: Option<String>,
    /// Findings below it are skipped: `critical`, `high`, `medium`, `low` or `info`.
    minimum_severity: Option<String>,
    /// Comma-separated tags added to every finding.
    tags: Option<String>,
    /// The report's file name, kept with the job (a form's `file` part
    /// names it instead).
    file_name: Option<String>,
}

/// The form of `POST /v1/ingestion/upload` (documentation of the
/// multipart fields).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The report, at most 50 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `sarif`, `nuclei`, `zap` or `burp`; detected from the content when absent.
    format: Option<String>,
    product: Option<String>,
    scope: Option<String>,
    /// `true` or `false`.
    close_old: Option<String>,
    minimum_severity: Option<String>,
    /// Comma-separated.
    tags: Option<String>,
}

impl From<UploadQuery> for UploadOptions {
    fn from(query: UploadQuery) -> Self {
        UploadOptions {
            format: query.format,
            product: query.product,
            scope: query.scope,
            close_old: query.close_old,
            minimum_severity: query.minimum_severity,
            tags: query.tags.into_iter().collect(),
            file_name: query.file_name,
        }
    }
}

fn too_large() -> ApiError {
    ApiError::payload_too_large(MAX_REPORT_BYTES)
}

/// The report and the options of a multipart form.
async fn read_form(
    request: Request,
    state: &AppState,
    mut options: UploadOptions,
) -> Result<(UploadOptions, axum::body::Bytes), ApiError> {
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut report: Option<axum::body::Bytes> = None;
    let failed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(format!("The form cannot be read: {}", e.body_text()))
        }
    };
    while let Some(field) = form.next_field().await.map_err(failed)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            if let Some(name) = field.file_name() {
                options.file_name = Some(name.to_string());
            }
            let bytes = field.bytes().await.map_err(failed)?;
            if bytes.len() > MAX_REPORT_BYTES {
                return Err(too_large());
            }
            report = Some(bytes);
            continue;
        }
        let known = matches!(
            name.as_str(),
            "format" | "product" | "scope" | "close_old" | "minimum_severity" | "tags"
        );
        if !known {
            return Err(ApiError::invalid_field(
                &name,
                "unknown field; expected file, format, product, scope, close_old, minimum_severity or tags",
            ));
        }
        let text = field.text().await.map_err(failed)?;
        if text.len() > 4096 {
            return Err(ApiError::invalid_field(&name, "must be at most 4096 bytes"));
        }
        match name.as_str() {
            "format" => options.format = Some(text),
            "product" => options.product = Some(text),
            "scope" => options.scope = Some(text),
            "close_old" => options.close_old = Some(text),
            "minimum_severity" => options.minimum_severity = Some(text),
            _ => options.tags.push(text),
        }
    }
    let report = report.ok_or_else(|| ApiError::invalid_field("file", "is required"))?;
    Ok((options, report))
}

#[utoipa::path(post, path = "/v1/ingestion/upload", tag = "ingestion", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope findings:write. Queues a scanner report (SARIF 2.1.0, Nuclei JSON or JSONL, OWASP ZAP XML or JSON, Burp Scanner XML, REST or GraphQL JSON, Dastardly JUnit XML or the DAST HTML report) as a job, answered 202 at once; follow it at `GET /v1/ingestion/jobs/{id}`. The body is multipart/form-data with the report in `file` and the options as fields, or the report itself (Content-Type application/sarif+json, application/json, application/x-ndjson, application/xml, text/xml, text/html or application/octet-stream) with the options as query parameters. At most 50 MiB (413 above). The format is detected from the content unless declared (422 on `format` when it cannot be told). Re-imports deduplicate by fingerprint; with close_old=true the product's and scope's open findings that the report no longer holds are remediated by `system:ingestion`, while dismissed and risk-accepted ones are never touched.",
    params(UploadQuery, ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY)),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, description = "The job, pending", body = Success<IngestionJobView>), KeyErrors, BodyErrors))]
pub async fn upload(
    caller: Authorized<FindingsWrite>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    request: Request,
) -> Result<Envelope<IngestionJobView>, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let options = UploadOptions::from(query);
    ingestion::check_options(options.clone())?;
    let (options, report) = if media == "multipart/form-data" {
        read_form(request, &state, options).await?
    } else if RAW_TYPES.contains(&media.as_str()) {
        let body = axum::body::to_bytes(request.into_body(), UPLOAD_BODY_LIMIT)
            .await
            .map_err(|_| too_large())?;
        if body.len() > MAX_REPORT_BYTES {
            return Err(too_large());
        }
        (options, body)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Expected multipart/form-data (field file), or the report itself as application/sarif+json, application/json, application/x-ndjson, application/xml, text/xml, text/html or application/octet-stream",
        ));
    };
    let job = ingestion::submit(&state.app, &caller, options, report).await?;
    Ok(Envelope::with_status(StatusCode::ACCEPTED, job.into()))
}

/// The query of `GET /v1/ingestion/jobs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// Comma-separated: `pending`, `processing`, `completed`, `failed`.
    status: Option<String>,
    /// Comma-separated: `sarif`, `nuclei`, `zap`, `burp`.
    format: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(get, path = "/v1/ingestion/jobs", tag = "ingestion", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope findings:read. The environment's ingestion jobs, newest first.",
    params(JobsQuery),
    responses((status = 200, description = "A page of jobs", body = Success<Vec<IngestionJobView>>), KeyErrors, ReadErrors))]
pub async fn list_jobs(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<JobsQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<IngestionJobView>>, ApiError> {
    let job_query = JobQuery {
        statuses: comma_list("status", &query.status)?,
        formats: comma_list("format", &query.format)?,
    };
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = ingestion::jobs(&state.app, &caller, job_query, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/ingestion/jobs/{id}", tag = "ingestion", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope findings:read. One job: status, counts, the first 100 item errors, the failure, timings.",
    params(("id" = String, Path, description = "Job id (job_…)")),
    responses((status = 200, description = "The job", body = Success<IngestionJobView>), KeyErrors, ReadErrors,
              (status = 404, description = "No such job", body = ErrorEnvelope)))]
pub async fn get_job(
    caller: Authorized<FindingsRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<IngestionJobView>, ApiError> {
    Ok(Envelope::ok(
        ingestion::job(&state.app, &caller, &id).await?.into(),
    ))
}
