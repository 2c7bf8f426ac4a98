//! The OpenAPI 3.1 document, generated from the handlers' annotations, and
//! the interactive reference. The router is built from the same
//! registrations (utoipa-axum), so every served route is documented.
//! [`contract`] then writes in the bounds the server enforces (text limits
//! from the domain's table, enums, formats, ranges), so that the document is
//! a contract a fuzzer can hold the server to (`scripts/fuzz`).

use std::sync::Arc;

use axum::response::{Html, IntoResponse};
use axum::{Extension, Json};
use palisade_domain::finding::{Severity, Status};
use palisade_domain::tenant::Plan;
use palisade_domain::{limits, Scope, TextLimit, MAX_LIST_ITEMS};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// A successful answer: `data` holds the route's result.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub success: bool,
    pub data: T,
    pub meta: MetaDoc,
}

/// `meta` of every answer; lists add the pagination fields: `page`,
/// `per_page`, `total` and `pages` on a paged list, `next_cursor` on a
/// cursor list.
#[derive(Serialize, ToSchema)]
pub struct MetaDoc {
    /// The request id (`X-Request-Id`, echoed or `req_…`).
    pub request_id: String,
    /// When the answer was made (RFC 3339).
    pub timestamp: String,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// How many match, counted up to 10,000; above that 10,000, with
    /// `total_exact` false.
    pub total: Option<i64>,
    pub pages: Option<i64>,
    /// False when more than 10,000 match (`total` is then 10,000).
    pub total_exact: Option<bool>,
    /// On a cursor list (the timeline, the audit trail): pass as `cursor`
    /// for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Every error: `{"success": false, "error": {…}, "meta": {…}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDoc,
    pub meta: MetaDoc,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDoc {
    /// Machine-readable: `bad_request`, `missing_api_key`, `invalid_api_key`,
    /// `missing_admin_token`, `invalid_admin_token`, `quota_exceeded`,
    /// `forbidden`, `tenant_suspended`, `not_found`, `method_not_allowed`,
    /// `conflict`, `precondition_failed`, `payload_too_large`,
    /// `unsupported_media_type`, `validation_error`, `idempotency_key_reused`,
    /// `idempotency_response_lost`, `invalid_transition`, `rate_limit_exceeded`,
    /// `too_many_streams`, `internal_error`, `unavailable`, `consistency_timeout`
    /// (and on `POST /graphql`: `batch_not_supported`, `too_many_root_fields`).
    pub code: String,
    pub message: String,
    /// Per-field problems (422).
    pub details: Option<Vec<FieldErrorDoc>>,
    /// Seconds until a retry may succeed (429).
    pub retry_after: Option<u64>,
}

/// The errors any route behind an API key may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum KeyErrors {
    #[response(
        status = 401,
        description = "Missing, unknown, revoked or expired API key"
    )]
    Unauthorized(ErrorEnvelope),
    #[response(
        status = 402,
        description = "The tenant's monthly quota is spent (live keys; each request reserves its place atomically)"
    )]
    QuotaExceeded(ErrorEnvelope),
    #[response(status = 403, description = "Missing scope, or tenant suspended")]
    Forbidden(ErrorEnvelope),
    #[response(
        status = 422,
        description = "Invalid input, naming each field or parameter"
    )]
    Invalid(ErrorEnvelope),
    #[response(
        status = 429,
        description = "The tenant's rate limit is exceeded (every key of the tenant shares the plan's limits)"
    )]
    RateLimited(ErrorEnvelope),
}

/// What a read may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    #[response(
        status = 400,
        description = "bad_request: a control character (or bytes that are not UTF-8) in the path"
    )]
    BadRequest(ErrorEnvelope),
    #[response(
        status = 404,
        description = "No such resource in this tenant and environment"
    )]
    NotFound(ErrorEnvelope),
    #[response(
        status = 504,
        description = "consistency=strong could not be met in time (consistency_timeout)"
    )]
    ConsistencyTimeout(ErrorEnvelope),
}

/// What a command on an existing finding may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CommandErrors {
    #[response(
        status = 404,
        description = "No such finding in this tenant and environment"
    )]
    NotFound(ErrorEnvelope),
    #[response(
        status = 409,
        description = "invalid_transition (naming the current status), or a concurrent change"
    )]
    Conflict(ErrorEnvelope),
    #[response(
        status = 412,
        description = "If-Match does not match the finding's version"
    )]
    PreconditionFailed(ErrorEnvelope),
}

/// What a KMS key's command or operation may also answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum KeyOperationErrors {
    #[response(
        status = 404,
        description = "No such key in this tenant and environment"
    )]
    NotFound(ErrorEnvelope),
    #[response(
        status = 409,
        description = "key_disabled, key_pending_deletion, invalid_transition (naming the state), or a concurrent change"
    )]
    Conflict(ErrorEnvelope),
    #[response(
        status = 410,
        description = "key_destroyed: the key's material is gone"
    )]
    Gone(ErrorEnvelope),
    #[response(
        status = 412,
        description = "If-Match does not match the key's version"
    )]
    PreconditionFailed(ErrorEnvelope),
    #[response(
        status = 503,
        description = "unavailable: recorded, but the keys view has not applied it within 10 s; retry to confirm"
    )]
    NotInEffect(ErrorEnvelope),
}

/// What an administrator's command on a tenant may answer besides 200.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum TenantCommandErrors {
    #[response(status = 401, description = "Missing or invalid admin token")]
    Unauthorized(ErrorEnvelope),
    #[response(status = 404, description = "No such tenant")]
    NotFound(ErrorEnvelope),
    #[response(status = 412, description = "If-Match does not match")]
    PreconditionFailed(ErrorEnvelope),
    #[response(status = 422, description = "Invalid input")]
    Invalid(ErrorEnvelope),
}

#[derive(Serialize, ToSchema)]
pub struct FieldErrorDoc {
    pub field: String,
    pub message: String,
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "An API key (pal_live_… or pal_test_…); also accepted as Authorization: Bearer",
            ))),
        );
        components.add_security_scheme(
            "bearer_api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key as a bearer token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (PALISADE_ADMIN_TOKEN or data/admin-token)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Palisade",
        description = "Event-sourced security backend: REST commands and queries. Every answer uses the envelope described by `Success` and `ErrorEnvelope`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "health", description = "Liveness"),
        (name = "admin", description = "Platform administration (admin token)"),
        (name = "api-keys", description = "A tenant's API keys"),
        (name = "usage", description = "Requests, rate limits and quota"),
        (name = "findings", description = "Findings: ingest, deduplication, triage (scopes findings:read / findings:write)"),
        (name = "assets", description = "Assets derived from findings (findings:read)"),
        (name = "risk", description = "Risk scores, overview and history (findings:read; recalculate needs findings:write)"),
        (name = "timeline", description = "Every change, newest first (findings:read)"),
        (name = "audit", description = "The audit trail: every event, redacted and hash-chained; live over SSE (audit:read)"),
        (name = "keys", description = "The KMS: key lifecycle (keys:admin) and cryptographic operations (keys:use)"),
        (name = "kms", description = "KMS analytics and crypto agility: usage, applications, the crypto policy, post-quantum adoption (keys:admin)"),
        (name = "ingestion", description = "Scanner reports in: SARIF, Nuclei, ZAP and Burp uploads as background jobs (findings:write to upload, findings:read to follow)"),
        (name = "access", description = "Just-in-time access: policies (tenant:admin), requests, reviews, revocation, the check (access:request / access:approve)"),
        (name = "webhooks", description = "Webhooks: endpoints, signing secrets (Standard Webhooks), test messages, deliveries and their attempts (webhooks:manage)"),
        (name = "meta", description = "This document")
    )
)]
pub struct ApiDoc;

/// The document as served, shared with the handler.
#[derive(Clone)]
pub struct Document(pub Arc<Value>);

/// `GET /v1/openapi.json`: this document (no auth).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi_json(Extension(document): Extension<Document>) -> impl IntoResponse {
    Json(document.0.as_ref().clone())
}

/// `GET /docs`: an interactive reference over `/v1/openapi.json`.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

/// What any command may also answer about its request as such: the
/// `Idempotency-Key`, the body's size, type and syntax.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum BodyErrors {
    #[response(
        status = 400,
        description = "bad_request: malformed JSON, an Idempotency-Key that is not 1 to 255 visible ASCII characters, or a control character in the path"
    )]
    BadRequest(ErrorEnvelope),
    #[response(
        status = 409,
        description = "A request with this Idempotency-Key is still in progress, or its response was lost (idempotency_response_lost)"
    )]
    IdempotencyConflict(ErrorEnvelope),
    #[response(
        status = 413,
        description = "payload_too_large: the body exceeds the route's limit"
    )]
    PayloadTooLarge(ErrorEnvelope),
    #[response(
        status = 415,
        description = "unsupported_media_type: a body without Content-Type: application/json"
    )]
    UnsupportedMediaType(ErrorEnvelope),
}

/// The constraints the server enforces, written into the generated document
/// so that it is a complete contract: text limits (from the domain's
/// [`limits`] table), enums, formats and numeric bounds. Parameters are
/// matched by name (every route gives a name one meaning); request-body
/// fields by schema and property.
pub fn contract(document: &utoipa::openapi::OpenApi) -> Value {
    let mut json = serde_json::to_value(document).unwrap_or_default();
    // A path parameter that may hold `/` is routed as `{*path}`; OpenAPI
    // writes it `{path}` (its description says it may hold `/`).
    if let Some(paths) = json.get_mut("paths").and_then(Value::as_object_mut) {
        let wild: Vec<String> = paths.keys().filter(|p| p.contains("{*")).cloned().collect();
        for path in wild {
            if let Some(item) = paths.remove(&path) {
                paths.insert(path.replace("{*", "{"), item);
            }
        }
    }
    if let Some(paths) = json.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for parameter in parameters {
                    constrain_parameter(path, parameter);
                }
            }
        }
    }
    // A KMS batch (`{"batch": [...]}`) answers `{"results": [...]}`, each
    // item its value or its own error, where a single request answers the
    // value: the 200 is either.
    for operation in ["encrypt", "decrypt", "rewrap"] {
        let pointer = format!(
            "/paths/~1v1~1keys~1{{id}}~1{operation}/post/responses/200/content/application~1json/schema"
        );
        if let Some(schema) = json.pointer_mut(&pointer) {
            let single = schema.take();
            *schema = json!({"anyOf": [single, {
                "type": "object",
                "required": ["success", "data", "meta"],
                "properties": {
                    "success": {"type": "boolean"},
                    "meta": {"type": "object"},
                    "data": {
                        "type": "object",
                        "required": ["results"],
                        "properties": {"results": {"type": "array", "maxItems": 100}},
                    },
                },
            }]});
        }
    }
    if let Some(schemas) = json
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for (schema, constraint) in schema_constraints() {
            if let Some(object) = schemas.get_mut(schema).and_then(Value::as_object_mut) {
                merge(object, constraint);
            }
        }
        for (schema, field, constraint) in body_fields() {
            if let Some(property) = schemas
                .get_mut(schema)
                .and_then(|s| s.get_mut("properties"))
                .and_then(|p| p.get_mut(field))
                .and_then(Value::as_object_mut)
            {
                merge(property, constraint);
            }
        }
    }
    json
}

/// Characters a one-line text never holds: C0, DEL, C1 (`char::is_control`).
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";
/// Those a long-form text never holds: the same but tab, line feed and
/// carriage return.
const CONTROL_MULTILINE: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";

/// Required text: at least one character that is not whitespace (the
/// server trims), none of the refused control characters, at most the
/// limit's characters.
pub fn required_text(limit: TextLimit) -> Value {
    let refused = if limit.multiline {
        CONTROL_MULTILINE
    } else {
        CONTROL
    };
    json!({
        "minLength": 1,
        "maxLength": limit.max_chars,
        "pattern": format!(r"^[^{refused}]*[^\s{CONTROL}][^{refused}]*$"),
    })
}

/// Optional text: blank means absent; otherwise as [`required_text`].
pub fn optional_text(limit: TextLimit) -> Value {
    let refused = if limit.multiline {
        CONTROL_MULTILINE
    } else {
        CONTROL
    };
    json!({
        "maxLength": limit.max_chars,
        "pattern": format!(r"^[^{refused}]*$"),
    })
}

/// `schema` as a string's.
fn string(mut schema: Value) -> Value {
    if let Some(object) = schema.as_object_mut() {
        object.insert("type".into(), "string".into());
    }
    schema
}

/// A string parameter that is one of `values` (`#[param(schema_with)]`).
pub fn one_of(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn strings(values: impl IntoIterator<Item = &'static str>) -> Vec<&'static str> {
    values.into_iter().collect()
}

fn severities() -> Vec<&'static str> {
    strings(Severity::ALL.iter().map(Severity::as_str))
}

fn statuses() -> Vec<&'static str> {
    strings(Status::ALL.iter().map(Status::as_str))
}

/// A comma-separated list in a query parameter, as OpenAPI says it:
/// `style: form, explode: false` over an array. Its bound is on distinct
/// values (duplicates and blanks collapse, then more than
/// [`MAX_LIST_ITEMS`] is a 422), which JSON Schema cannot state, so the
/// description says it and `maxItems` does not.
fn comma_list(items: Value) -> Value {
    json!({
        "style": "form",
        "explode": false,
        "schema": {"type": "array", "items": items},
    })
}

/// The schema (or parameter fields) each parameter name stands for.
fn parameter_constraint(name: &str) -> Option<Value> {
    let filter = || json!({"schema": string(optional_text(limits::FILTER))});
    let time = || json!({"schema": {"type": "string", "format": "date-time"}});
    Some(match name {
        "consistency" => json!({"schema": {"type": "string", "enum": ["strong", "eventual"]}}),
        "page" => {
            json!({"schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": u32::MAX}})
        }
        "per_page" => {
            json!({"schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": super::pagination::PageQuery::MAX_PER_PAGE}})
        }
        "days" => {
            json!({"schema": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 365}})
        }
        "after" | "Last-Event-ID" => {
            json!({"schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX}})
        }
        "min_risk" => {
            json!({"schema": {"type": "number", "format": "double", "minimum": 0, "maximum": 100}})
        }
        "order" => json!({"schema": {"type": "string", "enum": ["asc", "desc"]}}),
        "Idempotency-Key" => {
            json!({"schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}})
        }
        "created_after" | "created_before" | "since" | "until" => time(),
        "id" => {
            json!({"schema": {"type": "string", "minLength": 1, "pattern": format!("^[^{CONTROL}]+$")}})
        }
        "severity" => comma_list(json!({"type": "string", "enum": severities()})),
        "status" => comma_list(json!({"type": "string", "enum": statuses()})),
        "event_type" | "types" => comma_list(string(optional_text(limits::FILTER))),
        "state" => comma_list(
            json!({"type": "string", "enum": strings(palisade_domain::key::KeyState::ALL.iter().map(|s| s.as_str()))}),
        ),
        "algorithm" => comma_list(
            json!({"type": "string", "enum": strings(palisade_domain::key::Algorithm::ALL.iter().map(|a| a.as_str()))}),
        ),
        "acknowledged" => json!({"schema": {"type": "boolean"}}),
        "granularity" => {
            json!({"schema": {"type": "string", "enum": ["hour", "day", "week"]}})
        }
        "operation" => {
            json!({"schema": {"type": "string", "enum": strings(palisade_domain::key::Operation::ALL.iter().map(|o| o.as_str()))}})
        }
        "key_id" => {
            json!({"schema": {"type": "string", "minLength": 1, "maxLength": limits::KEY_NAME.max_chars, "pattern": "^[A-Za-z0-9._-]+$"}})
        }
        "version" => {
            json!({"schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": u32::MAX}})
        }
        "path" => {
            json!({"schema": {"type": "string", "minLength": 1, "maxLength": 512, "pattern": format!("^{SECRET_SEGMENT}(/{SECRET_SEGMENT})*$")}})
        }
        "prefix" => {
            json!({"schema": {"type": "string", "maxLength": 512, "pattern": format!("^({SECRET_SEGMENT}(/{SECRET_SEGMENT})*)?/*$")}})
        }
        "period" => json!({"schema": {"type": "string", "enum": ["24h", "7d", "30d"]}}),
        "product" | "category" | "asset" | "cve" | "assignee" | "tag" | "search" | "finding"
        | "aggregate_type" | "aggregate_id" | "actor" | "requester" | "resource_type"
        | "resource_id" | "principal" => filter(),
        _ => return None,
    })
}

/// One segment of a secret's path: `A-Z a-z 0-9 . _ -`, but not `.` or `..`.
const SECRET_SEGMENT: &str =
    r"([A-Za-z0-9_-][A-Za-z0-9._-]*|\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\.\.[A-Za-z0-9._-]+)";

/// The one name with other meanings: `status` of migration plans and of
/// leakage incidents.
fn parameter_constraint_at(path: &str, name: &str) -> Option<Value> {
    if path.starts_with("/v1/webhooks/") {
        match name {
            "status" => {
                return Some(
                    json!({"schema": {"type": "string", "enum": ["success", "failed", "pending"]}}),
                )
            }
            "event_type" => {
                let mut types = strings(
                    palisade_domain::webhook::WebhookEventType::ALL
                        .iter()
                        .map(|t| t.as_str()),
                );
                types.push(palisade_domain::webhook::TEST_EVENT_TYPE);
                return Some(json!({"schema": {"type": "string", "enum": types}}));
            }
            "delivery_id" => return parameter_constraint("id"),
            _ => {}
        }
    }
    if name == "status" && path.starts_with("/v1/leakage/incidents") {
        let statuses = strings(
            palisade_domain::secret::IncidentStatus::ALL
                .iter()
                .map(|s| s.as_str()),
        );
        return Some(comma_list(json!({"type": "string", "enum": statuses})));
    }
    if path == "/v1/ingestion/upload" {
        if let Some((_, schema)) = upload_options().into_iter().find(|(n, _)| *n == name) {
            return Some(json!({ "schema": schema }));
        }
    }
    if path.starts_with("/v1/ingestion/jobs") {
        let statuses = strings(
            palisade_domain::ingestion::JobStatus::ALL
                .iter()
                .map(|s| s.as_str()),
        );
        match name {
            "status" => return Some(comma_list(json!({"type": "string", "enum": statuses}))),
            "format" => return Some(comma_list(json!({"type": "string", "enum": formats()}))),
            _ => {}
        }
    }
    if name == "status" && path.starts_with("/v1/access/requests") {
        let statuses = strings(
            palisade_domain::grant::RequestStatus::ALL
                .iter()
                .map(|s| s.as_str()),
        );
        return Some(comma_list(json!({"type": "string", "enum": statuses})));
    }
    if name == "status" && path.starts_with("/v1/kms/crypto-agility/migration-plans") {
        let statuses = strings(
            palisade_domain::kms::PlanStatus::ALL
                .iter()
                .map(|s| s.as_str()),
        );
        return Some(comma_list(json!({"type": "string", "enum": statuses})));
    }
    parameter_constraint(name)
}

fn constrain_parameter(path: &str, parameter: &mut Value) {
    let Some(name) = parameter.get("name").and_then(Value::as_str) else {
        return;
    };
    let Some(constraint) = parameter_constraint_at(path, name) else {
        return;
    };
    let Some(parameter) = parameter.as_object_mut() else {
        return;
    };
    for (key, value) in constraint.as_object().cloned().unwrap_or_default() {
        // `schema` replaces the generated one (a `value_type` stand-in).
        parameter.insert(key, value);
    }
}

/// Adds `constraint`'s keys to a property schema.
fn merge(property: &mut Map<String, Value>, constraint: Value) {
    if let Value::Object(constraint) = constraint {
        for (key, value) in constraint {
            property.insert(key, value);
        }
    }
}

fn enum_of(values: Vec<&'static str>) -> Value {
    json!({"enum": values})
}

/// Every request-body field the server checks beyond its JSON type.
fn body_fields() -> Vec<(&'static str, &'static str, Value)> {
    let required = required_text;
    let optional = |limit: TextLimit| {
        // Optional means absent or null; a string given must be valid text.
        required_text(limit)
    };
    let unit = || json!({"minimum": 0, "maximum": 1});
    let mut fields = vec![
        ("IngestFindingRequest", "product", required(limits::PRODUCT)),
        (
            "IngestFindingRequest",
            "category",
            required(limits::CATEGORY),
        ),
        ("IngestFindingRequest", "title", required(limits::TITLE)),
        (
            "IngestFindingRequest",
            "description",
            optional_text(limits::DESCRIPTION),
        ),
        ("IngestFindingRequest", "severity", enum_of(severities())),
        (
            "IngestFindingRequest",
            "asset_identifier",
            required(limits::ASSET_IDENTIFIER),
        ),
        ("IngestFindingRequest", "likelihood", unit()),
        ("IngestFindingRequest", "impact", unit()),
        (
            "IngestFindingRequest",
            "cvss_score",
            json!({"minimum": 0, "maximum": 10}),
        ),
        (
            "IngestFindingRequest",
            "cve",
            json!({"maxLength": limits::CVE.max_chars, "pattern": "^([Cc][Vv][Ee]-[0-9]{4}-[0-9]{4,})?$"}),
        ),
        (
            "IngestFindingRequest",
            "cwe",
            json!({"maxLength": limits::CWE.max_chars, "pattern": "^(((CWE|cwe)-)?[0-9]+)?$"}),
        ),
        (
            "IngestFindingRequest",
            "location",
            optional_text(limits::LOCATION),
        ),
        (
            "IngestFindingRequest",
            "references",
            json!({"maxItems": MAX_LIST_ITEMS, "items": string(required(limits::REFERENCE))}),
        ),
        (
            "IngestFindingRequest",
            "tags",
            json!({"maxItems": MAX_LIST_ITEMS, "items": string(required(limits::TAG))}),
        ),
        (
            "IngestFindingRequest",
            "fingerprint",
            optional(limits::FINGERPRINT),
        ),
        // Any item is taken; one that is not an ingest body fails alone.
        (
            "BulkIngestRequest",
            "findings",
            json!({"items": {"anyOf": [{"$ref": "#/components/schemas/IngestFindingRequest"}, {}]}}),
        ),
        ("DismissRequest", "reason", required(limits::REASON)),
        ("AcceptRiskRequest", "reason", required(limits::REASON)),
        (
            "AcceptRiskRequest",
            "expires_at",
            json!({"format": "date-time"}),
        ),
        ("ReopenRequest", "reason", optional_text(limits::REASON)),
        ("AssignRequest", "assignee", optional(limits::ASSIGNEE)),
        ("SeverityRequest", "severity", enum_of(severities())),
        ("SeverityRequest", "reason", optional_text(limits::REASON)),
        ("TicketRequest", "system", required(limits::TICKET_SYSTEM)),
        ("TicketRequest", "ticket_id", required(limits::TICKET_ID)),
        ("CommentRequest", "body", required(limits::COMMENT_BODY)),
        ("CreateTenantRequest", "name", required(limits::TENANT_NAME)),
        (
            "CreateTenantRequest",
            "owner_principal",
            optional(limits::PRINCIPAL),
        ),
        (
            "ChangePlanRequest",
            "plan",
            enum_of(strings(Plan::ALL.iter().map(Plan::as_str))),
        ),
        ("SuspendRequest", "reason", optional_text(limits::REASON)),
        ("IssueApiKeyRequest", "name", required(limits::API_KEY_NAME)),
        (
            "IssueApiKeyRequest",
            "principal",
            required(limits::PRINCIPAL),
        ),
        (
            "IssueApiKeyRequest",
            "scopes",
            json!({"minItems": 1, "items": string(enum_of(strings(Scope::ALL.iter().map(Scope::as_str))))}),
        ),
    ];
    // Nullable enums keep `null` allowed.
    let plans: Vec<Value> = Plan::ALL
        .iter()
        .map(|p| Value::from(p.as_str()))
        .chain([Value::Null])
        .collect();
    fields.push(("CreateTenantRequest", "plan", json!({"enum": plans})));
    fields.push((
        "IssueApiKeyRequest",
        "environment",
        json!({"enum": ["live", "test", null]}),
    ));
    fields.extend(kms_fields());
    fields.extend(kms_analytics_fields());
    fields.extend(secrets_fields());
    fields.extend(access_fields());
    fields.extend(webhook_fields());
    fields.extend(
        upload_options()
            .into_iter()
            .map(|(field, schema)| ("UploadForm", field, schema)),
    );
    fields
}

fn formats() -> Vec<&'static str> {
    strings(
        palisade_domain::ingestion::Format::ALL
            .iter()
            .map(|f| f.as_str()),
    )
}

/// An upload's options (`app::ingestion`), as form fields and as query
/// parameters alike: exact values (the server neither trims nor folds
/// them), text within the finding's limits.
fn upload_options() -> Vec<(&'static str, Value)> {
    vec![
        ("format", json!({"type": "string", "enum": formats()})),
        ("product", string(optional_text(limits::PRODUCT))),
        ("scope", string(optional_text(limits::ASSET_IDENTIFIER))),
        (
            "close_old",
            json!({"type": "string", "enum": ["true", "false"]}),
        ),
        (
            "minimum_severity",
            json!({"type": "string", "enum": severities()}),
        ),
        ("tags", string(optional_text(limits::TAG))),
    ]
}

/// Just-in-time access's request bodies (`app::access`).
/// The webhook requests' fields: the URL's shape (the server also judges
/// the address it names or resolves to: 422 `unsafe_webhook_url`), the
/// catalogue's types, severities, the rate limit.
fn webhook_fields() -> Vec<(&'static str, &'static str, Value)> {
    use palisade_domain::webhook::{WebhookEventType, MAX_RATE_LIMIT_PER_SECOND, MAX_URL_CHARS};
    let url = || {
        json!({"maxLength": MAX_URL_CHARS,
               "pattern": "^http://[A-Za-z][A-Za-z0-9-]*(\\.[A-Za-z][A-Za-z0-9-]*)*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$"})
    };
    let types = || {
        json!({"maxItems": WebhookEventType::ALL.len(),
               "items": {"type": "string", "enum": strings(WebhookEventType::ALL.iter().map(|t| t.as_str()))}})
    };
    let rate = || json!({"minimum": 1, "maximum": MAX_RATE_LIMIT_PER_SECOND});
    let mut fields = Vec::new();
    for schema in ["CreateWebhookRequest", "UpdateWebhookRequest"] {
        fields.extend([
            (schema, "url", url()),
            (
                schema,
                "description",
                optional_text(limits::WEBHOOK_DESCRIPTION),
            ),
            (schema, "event_types", types()),
            (schema, "rate_limit_per_second", rate()),
        ]);
    }
    fields.extend([
        (
            "FilterRequest",
            "severity",
            json!({"maxItems": 10, "items": {"type": "string", "enum": severities()}}),
        ),
        (
            "FilterRequest",
            "product",
            json!({"maxItems": MAX_LIST_ITEMS, "items": string(required_text(limits::PRODUCT))}),
        ),
        (
            "ReplayRequest",
            "since",
            json!({"type": "string", "format": "date-time"}),
        ),
    ]);
    fields
}

fn access_fields() -> Vec<(&'static str, &'static str, Value)> {
    use palisade_domain::grant::{
        MAX_APPROVALS, MAX_DURATION_MINUTES, MAX_REQUEST_TTL_MINUTES, RESOURCE_TYPE_PATTERN,
        TIMEZONE_PATTERN, TIME_OF_DAY_PATTERN,
    };
    let minutes = || json!({"minimum": 1, "maximum": MAX_DURATION_MINUTES});
    let types = || json!({"minItems": 1, "maxItems": MAX_LIST_ITEMS, "items": {"type": "string", "pattern": RESOURCE_TYPE_PATTERN}});
    let principals =
        || json!({"maxItems": MAX_LIST_ITEMS, "items": string(required_text(limits::PRINCIPAL))});
    let scopes =
        || json!({"items": string(enum_of(strings(Scope::ALL.iter().map(Scope::as_str))))});
    let permissions = || json!({"minItems": 1, "maxItems": MAX_LIST_ITEMS, "items": string(required_text(limits::ACCESS_TERM))});
    let mut fields = Vec::new();
    for schema in ["CreatePolicyRequest", "UpdatePolicyRequest"] {
        fields.extend([
            (schema, "name", required_text(limits::POLICY_NAME)),
            (schema, "resource_types", types()),
            (schema, "max_duration_minutes", minutes()),
            (
                schema,
                "approvals_required",
                json!({"minimum": 1, "maximum": MAX_APPROVALS}),
            ),
            (schema, "approver_principals", principals()),
            (schema, "approver_scopes", scopes()),
            (
                schema,
                "request_ttl_minutes",
                json!({"minimum": 1, "maximum": MAX_REQUEST_TTL_MINUTES}),
            ),
        ]);
    }
    fields.extend([
        (
            "TimeWindowRequest",
            "start",
            json!({"pattern": TIME_OF_DAY_PATTERN}),
        ),
        (
            "TimeWindowRequest",
            "end",
            json!({"pattern": TIME_OF_DAY_PATTERN}),
        ),
        (
            "TimeWindowRequest",
            "timezone",
            json!({"pattern": TIMEZONE_PATTERN}),
        ),
        (
            "AutoApproveRequest",
            "max_asset_risk",
            json!({"minimum": 0, "maximum": 100}),
        ),
        (
            "ReviewRequest",
            "decision",
            enum_of(vec!["approve", "deny"]),
        ),
        ("ReviewRequest", "reason", optional_text(limits::REASON)),
        ("ReviewRequest", "modified_duration", minutes()),
        ("RevokeRequest", "reason", required_text(limits::REASON)),
    ]);
    for schema in ["CreateAccessRequest", "SimulateRequest", "CheckRequest"] {
        fields.extend([
            (schema, "resource_type", required_text(limits::ACCESS_TERM)),
            (schema, "resource_id", required_text(limits::RESOURCE_ID)),
        ]);
    }
    for schema in ["CreateAccessRequest", "SimulateRequest"] {
        fields.extend([
            (schema, "permissions", permissions()),
            (schema, "duration_minutes", minutes()),
        ]);
    }
    for schema in ["SimulateRequest", "CheckRequest"] {
        fields.push((schema, "principal", required_text(limits::PRINCIPAL)));
    }
    fields.extend([
        (
            "CreateAccessRequest",
            "justification",
            required_text(limits::JUSTIFICATION),
        ),
        (
            "CreateAccessRequest",
            "ticket_reference",
            optional_text(limits::TICKET_REFERENCE),
        ),
        (
            "CheckRequest",
            "permission",
            required_text(limits::ACCESS_TERM),
        ),
    ]);
    fields
}

/// Base64 (standard, padded) of at most `bytes` bytes.
fn base64_of(bytes: usize) -> Value {
    json!({
        "type": "string",
        "maxLength": bytes.div_ceil(3) * 4,
        "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
    })
}

/// The alert-rule and migration-plan request fields (`app::kms_alerts`,
/// `app::kms_migrations`).
/// The secret store's request bodies.
fn secrets_fields() -> Vec<(&'static str, &'static str, Value)> {
    use palisade_domain::secret::{
        MAX_CUSTOM_METADATA, MAX_MAX_VERSIONS, MAX_VALUE_BYTES, MAX_VERSIONS_PER_COMMAND,
    };
    let reason = optional_text(limits::REASON);
    let version = json!({"minimum": 1});
    let versions = |min: usize| json!({"minItems": min, "maxItems": MAX_VERSIONS_PER_COMMAND, "items": {"type": "integer", "minimum": 1, "maximum": u32::MAX}});
    let incident_statuses = strings(
        palisade_domain::secret::IncidentStatus::ALL
            .iter()
            .map(|s| s.as_str()),
    );
    let path = json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": format!("^{SECRET_SEGMENT}(/{SECRET_SEGMENT})*$")});
    vec![
        (
            "WriteSecretRequest",
            "value",
            json!({"maxLength": MAX_VALUE_BYTES}),
        ),
        (
            "LeakCheckRequest",
            "candidate",
            json!({"maxLength": MAX_VALUE_BYTES}),
        ),
        ("ReportIncidentRequest", "path", path),
        (
            "ReportIncidentRequest",
            "source",
            required_text(limits::LEAK_SOURCE),
        ),
        (
            "ReportIncidentRequest",
            "location",
            optional_text(limits::LEAK_LOCATION),
        ),
        ("ReportIncidentRequest", "severity", enum_of(severities())),
        (
            "ReportIncidentRequest",
            "details",
            optional_text(limits::REASON),
        ),
        (
            "UpdateIncidentRequest",
            "status",
            json!({"enum": incident_statuses}),
        ),
        (
            "UpdateIncidentRequest",
            "resolution",
            optional_text(limits::REASON),
        ),
        (
            "UpdateIncidentRequest",
            "notes",
            optional_text(limits::REASON),
        ),
        ("WriteOptions", "reason", reason.clone()),
        ("VersionRequest", "reason", reason.clone()),
        ("RollbackRequest", "reason", reason),
        ("RollbackRequest", "version", version.clone()),
        ("VersionRequest", "version", version.clone()),
        ("CompareRequest", "version1", version.clone()),
        ("CompareRequest", "version2", version),
        ("DeleteVersionsRequest", "versions", versions(0)),
        ("VersionsRequest", "versions", versions(1)),
        (
            "UpdateMetadataRequest",
            "max_versions",
            json!({"minimum": 1, "maximum": MAX_MAX_VERSIONS}),
        ),
        // Seconds, or numbers with s, m, h, d (at most 10 years: the
        // server says so with a 422).
        (
            "UpdateMetadataRequest",
            "delete_version_after",
            json!({"pattern": "^[0-9smhd]{1,32}$"}),
        ),
        (
            "UpdateMetadataRequest",
            "custom_metadata",
            json!({
                "maxProperties": MAX_CUSTOM_METADATA,
                "propertyNames": required_text(limits::SECRET_METADATA_KEY),
                "additionalProperties": string(optional_text(limits::SECRET_METADATA_VALUE)),
            }),
        ),
    ]
}

fn kms_analytics_fields() -> Vec<(&'static str, &'static str, Value)> {
    use palisade_domain::key::policy::{policy, Category};
    use palisade_domain::key::Algorithm;
    let name = required_text(limits::KMS_NAME);
    let key = json!({"type": "string", "minLength": 1, "maxLength": limits::KEY_NAME.max_chars, "pattern": "^[A-Za-z0-9._-]+$"});
    let keys = json!({"maxItems": MAX_LIST_ITEMS, "items": key.clone()});
    let nullable = |mut schema: Value, kind: &str| {
        if let Some(object) = schema.as_object_mut() {
            object.insert("type".into(), json!([kind, "null"]));
        }
        schema
    };
    let mut severities: Vec<Value> = severities().into_iter().map(Value::from).collect();
    severities.push(Value::Null);
    let of = |category: Category| {
        let mut values: Vec<Value> = Algorithm::ALL
            .iter()
            .filter(|a| policy(**a).category == category)
            .map(|a| Value::from(a.as_str()))
            .collect();
        values.push(Value::Null);
        json!({"enum": values})
    };
    let algorithms = json!({"type": "array", "minItems": 1, "maxItems": MAX_LIST_ITEMS, "items": {"type": "string", "enum": strings(Algorithm::ALL.iter().map(Algorithm::as_str))}});
    let plan_keys =
        json!({"type": "array", "minItems": 1, "maxItems": MAX_LIST_ITEMS, "items": key});
    let mut statuses: Vec<Value> = palisade_domain::kms::PlanStatus::ALL
        .iter()
        .map(|s| Value::from(s.as_str()))
        .collect();
    statuses.push(Value::Null);
    vec![
        ("CreateAlertRuleRequest", "name", string(name.clone())),
        ("CreateAlertRuleRequest", "key_ids", keys.clone()),
        (
            "CreateAlertRuleRequest",
            "severity",
            json!({"enum": severities.clone()}),
        ),
        (
            "UpdateAlertRuleRequest",
            "name",
            nullable(name.clone(), "string"),
        ),
        ("UpdateAlertRuleRequest", "key_ids", nullable(keys, "array")),
        (
            "UpdateAlertRuleRequest",
            "severity",
            json!({"enum": severities}),
        ),
        (
            "ConditionRequest",
            "metric",
            enum_of(strings(
                palisade_domain::kms::Metric::ALL.iter().map(|m| m.as_str()),
            )),
        ),
        ("ConditionRequest", "operator", enum_of(vec!["gt", "lt"])),
        ("ConditionRequest", "window", enum_of(vec!["1h", "24h"])),
        (
            "ConditionRequest",
            "threshold",
            json!({"minimum": 0, "maximum": 1e15}),
        ),
        ("TargetAlgorithmsRequest", "signing", of(Category::Signing)),
        (
            "TargetAlgorithmsRequest",
            "encryption",
            of(Category::Encryption),
        ),
        (
            "TargetAlgorithmsRequest",
            "key_exchange",
            of(Category::KeyExchange),
        ),
        ("PlanScopeRequest", "key_ids", plan_keys),
        ("PlanScopeRequest", "algorithms", algorithms),
        ("CreateMigrationPlanRequest", "name", string(name.clone())),
        (
            "UpdateMigrationPlanRequest",
            "name",
            nullable(name, "string"),
        ),
        (
            "UpdateMigrationPlanRequest",
            "status",
            json!({"enum": statuses}),
        ),
    ]
}

/// The KMS request fields (`app::keys`).
fn kms_fields() -> Vec<(&'static str, &'static str, Value)> {
    use crate::app::keys::{MAX_BATCH, MAX_CONTEXT_PAIRS, MAX_MESSAGE, MAX_PLAINTEXT};
    use palisade_domain::key::{Algorithm, PENDING_WINDOW_DAYS, ROTATION_PERIOD_DAYS};
    let context = json!({
        "type": ["object", "null"],
        "maxProperties": MAX_CONTEXT_PAIRS,
        "propertyNames": {"minLength": 1, "maxLength": 256, "pattern": format!("^[^{CONTROL}]+$")},
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": format!("^[^{CONTROL}]+$")},
    });
    let ciphertext = json!({
        "type": "string",
        "maxLength": 4 * MAX_PLAINTEXT,
        "pattern": "^pal:v[1-9][0-9]{0,8}:(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
    });
    let version = json!({"minimum": 1, "maximum": u32::MAX});
    let rotation =
        json!({"minimum": ROTATION_PERIOD_DAYS.start(), "maximum": ROTATION_PERIOD_DAYS.end()});
    let tags = json!({"maxItems": MAX_LIST_ITEMS, "items": string(required_text(limits::TAG))});
    let batch = json!({"minItems": 1, "maxItems": MAX_BATCH});
    vec![
        (
            "CreateKeyRequest",
            "name",
            json!({"minLength": 1, "maxLength": limits::KEY_NAME.max_chars, "pattern": "^[A-Za-z0-9._-]+$"}),
        ),
        (
            "CreateKeyRequest",
            "algorithm",
            enum_of(strings(Algorithm::ALL.iter().map(Algorithm::as_str))),
        ),
        (
            "CreateKeyRequest",
            "description",
            optional_text(limits::KEY_DESCRIPTION),
        ),
        ("CreateKeyRequest", "tags", tags.clone()),
        ("CreateKeyRequest", "rotation_period_days", rotation.clone()),
        (
            "UpdateKeyRequest",
            "description",
            optional_text(limits::KEY_DESCRIPTION),
        ),
        ("UpdateKeyRequest", "tags", tags),
        ("UpdateKeyRequest", "rotation_period_days", rotation),
        (
            "UpdateKeyRequest",
            "min_decryption_version",
            version.clone(),
        ),
        (
            "UpdateKeyRequest",
            "replaced_by",
            json!({"type": ["string", "null"], "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9._-]+$"}),
        ),
        (
            "ScheduleDeletionRequest",
            "pending_window_days",
            json!({"minimum": PENDING_WINDOW_DAYS.start(), "maximum": PENDING_WINDOW_DAYS.end()}),
        ),
        ("EncryptRequest", "plaintext", base64_of(MAX_PLAINTEXT)),
        ("EncryptRequest", "context", context.clone()),
        ("EncryptRequest", "batch", batch.clone()),
        ("EncryptItem", "plaintext", base64_of(MAX_PLAINTEXT)),
        ("EncryptItem", "context", context.clone()),
        ("CiphertextRequest", "ciphertext", ciphertext.clone()),
        ("CiphertextRequest", "context", context.clone()),
        ("CiphertextRequest", "batch", batch),
        ("CiphertextItem", "ciphertext", ciphertext),
        ("CiphertextItem", "context", context.clone()),
        ("DataKeyRequest", "bytes", json!({"enum": [16, 32, 64]})),
        ("DataKeyRequest", "context", context),
        ("SignRequest", "message", base64_of(MAX_MESSAGE)),
        (
            "SignRequest",
            "digest",
            json!({"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"}),
        ),
        ("VerifyRequest", "message", base64_of(MAX_MESSAGE)),
        (
            "VerifyRequest",
            "digest",
            json!({"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"}),
        ),
        ("VerifyRequest", "signature", base64_of(8 * 1024)),
        ("VerifyRequest", "key_version", version.clone()),
        ("MacRequest", "message", base64_of(MAX_MESSAGE)),
        ("MacVerifyRequest", "message", base64_of(MAX_MESSAGE)),
        ("MacVerifyRequest", "mac", base64_of(64)),
        ("MacVerifyRequest", "key_version", version.clone()),
        ("DecapsulateRequest", "ciphertext", base64_of(4096)),
        ("DecapsulateRequest", "key_version", version),
    ]
}

/// Constraints on whole request schemas: the bodies that take exactly one
/// of two fields.
fn schema_constraints() -> Vec<(&'static str, Value)> {
    let one_of = |a: &str, b: &str| json!({"oneOf": [{"required": [a], "not": {"required": [b]}}, {"required": [b], "not": {"required": [a]}}]});
    let named =
        |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
    vec![
        ("PlanScopeRequest", one_of("key_ids", "algorithms")),
        (
            "TargetAlgorithmsRequest",
            json!({"anyOf": [named("signing"), named("encryption"), named("key_exchange")]}),
        ),
        (
            "ConditionRequest",
            json!({"if": {"properties": {"metric": {"const": "error_rate"}}}, "then": {"properties": {"threshold": {"maximum": 1}}}}),
        ),
        (
            "AutoApproveRequest",
            json!({"anyOf": [
                {"required": ["time_window"], "properties": {"time_window": {"type": "object"}}},
                {"required": ["max_asset_risk"], "properties": {"max_asset_risk": {"type": "number"}}},
            ]}),
        ),
        ("EncryptRequest", one_of("plaintext", "batch")),
        ("CiphertextRequest", one_of("ciphertext", "batch")),
        ("SignRequest", one_of("message", "digest")),
        ("VerifyRequest", one_of("message", "digest")),
    ]
}
