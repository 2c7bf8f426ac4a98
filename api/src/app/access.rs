//! Just-in-time access (`docs/access.md`): policies (scope
//! `tenant:admin`), requests and their reviews, revocation, the check, the
//! grants of a principal, statistics and simulation.
//!
//! Who sees what: a key with `access:approve` sees and checks every
//! principal of its environment; a key with only `access:request` sees its
//! own principal's requests and grants, and checks only itself. Requester
//! and reviewer are API keys' principals, so "self-review" means the same
//! principal.
//!
//! The one place a command reads a read model: auto-approval with
//! `max_asset_risk` reads the asset's current risk score from the
//! findings view (after waiting for it to apply every earlier write), and
//! the answer is recorded in the request's events as the reason.

use chrono::{DateTime, Duration, Utc};
use palisade_domain::finding::asset_id_for;
use palisade_domain::grant::{
    AccessError, AccessPolicy, AccessRequest, AutoApprove, Decision, NewAccessRequest, NewPolicy,
    PolicyCommand, PolicyTerms, PolicyUpdate, RequestCommand, RequestStatus, TimeWindow,
    DEFAULT_REQUEST_TTL_MINUTES, MAX_DURATION_MINUTES,
};
use palisade_domain::{limits, required_text, AccessRequestId, PolicyId, Scope};
use palisade_infra::readmodel::access::{
    access_stats, check_access, get_access_request, get_policy, list_access_requests,
    list_policies, partition_policies, AccessQuestion, AccessRequestFilter, AccessStats,
    ActiveGrant, MAX_POLICIES,
};
use palisade_infra::readmodel::{get_asset, Page, Partition, Window};
use palisade_infra::CommandError;
use palisade_projections::{AccessProjection, AccessRequestRow, PolicyRow};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::{AccessApprover, AccessRequester, TenantAdmin};
use super::input::{json_optional_whole as optional_whole, json_whole as whole};
use super::keys::double_option;
use super::{App, Authorized, Error, RequestContext, Result};

// ---------------------------------------------------------------- requests

/// The time of a command or a check, in whole milliseconds: the API shows
/// times to the millisecond, so a grant's `expires_at` as shown is the
/// instant it ends, not up to a millisecond after.
fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(3)
}

/// Hours of the day in which requests approve themselves.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindowRequest {
    /// `HH:MM`, inclusive.
    #[schema(example = "09:00")]
    pub start: String,
    /// `HH:MM`, exclusive; before `start` for a window across midnight.
    #[schema(example = "17:00")]
    pub end: String,
    /// `UTC` (default) or an offset such as `+02:00`.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// When a request approves itself: every condition given must hold.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoApproveRequest {
    #[serde(default)]
    pub time_window: Option<TimeWindowRequest>,
    /// 0–100: the asset whose identifier is the request's `resource_id`
    /// has at most this risk score (no findings: 0).
    #[serde(default)]
    pub max_asset_risk: Option<f64>,
}

impl From<AutoApproveRequest> for AutoApprove {
    fn from(request: AutoApproveRequest) -> Self {
        AutoApprove {
            time_window: request.time_window.map(|window| TimeWindow {
                start: window.start,
                end: window.end,
                timezone: window.timezone.unwrap_or_else(|| "UTC".into()),
            }),
            max_asset_risk: request.max_asset_risk,
        }
    }
}

/// The body of `POST /v1/access/policies`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicyRequest {
    /// 1–100 characters.
    #[schema(example = "production databases")]
    pub name: String,
    /// The resource types it covers (1–50, each 1–64 of
    /// `a-z A-Z 0-9 . _ - : @ /`); an enabled type belongs to one enabled
    /// policy.
    #[schema(example = json!(["database"]))]
    pub resource_types: Vec<String>,
    /// 1 to 20160 (14 days).
    #[serde(deserialize_with = "whole")]
    #[schema(example = 60)]
    pub max_duration_minutes: u32,
    /// 1 to 10 distinct approvals (default 1).
    #[serde(default, deserialize_with = "optional_whole")]
    pub approvals_required: Option<u32>,
    /// Principals who may review.
    #[serde(default)]
    pub approver_principals: Vec<String>,
    /// Scopes whose keys may review. With neither list: keys with
    /// `access:approve`.
    #[serde(default)]
    pub approver_scopes: Vec<String>,
    /// 1 to 10080 (7 days) a request may wait; default 1440 (24 h).
    #[serde(default, deserialize_with = "optional_whole")]
    pub request_ttl_minutes: Option<u32>,
    #[serde(default)]
    pub auto_approve: Option<AutoApproveRequest>,
    /// `true` when absent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /v1/access/policies/{id}`: absent fields stay as
/// they are; `auto_approve: null` turns auto-approval off. Requests made
/// earlier keep the terms they were made under.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicyRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub resource_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub max_duration_minutes: Option<u32>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub approvals_required: Option<u32>,
    #[serde(default)]
    pub approver_principals: Option<Vec<String>>,
    #[serde(default)]
    pub approver_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "optional_whole")]
    pub request_ttl_minutes: Option<u32>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<AutoApproveRequest>)]
    pub auto_approve: Option<Option<AutoApproveRequest>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The body of `POST /v1/access/requests`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccessRequest {
    /// 1–64 characters; an enabled policy must cover it.
    #[schema(example = "database")]
    pub resource_type: String,
    /// 1–500 characters; for auto-approval by risk, the asset identifier.
    #[schema(example = "db-prod-1")]
    pub resource_id: String,
    /// 1–50 permissions, each 1–64 characters.
    #[schema(example = json!(["read"]))]
    pub permissions: Vec<String>,
    /// Why (1–2000 characters).
    #[schema(example = "INC-42: read the orders table")]
    pub justification: String,
    /// 1 to the policy's maximum.
    #[serde(deserialize_with = "whole")]
    #[schema(example = 30)]
    pub duration_minutes: u32,
    /// At most 200 characters.
    #[serde(default)]
    pub ticket_reference: Option<String>,
}

/// The body of `POST /v1/access/requests/{id}/review`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `approve` or `deny`.
    #[schema(example = "approve")]
    pub decision: String,
    /// At most 2000 characters.
    #[serde(default)]
    pub reason: Option<String>,
    /// Minutes, 1 to the requested duration: the grant lasts the shortest
    /// any approver gave.
    #[serde(default, deserialize_with = "optional_whole")]
    pub modified_duration: Option<u32>,
}

/// The body of `POST /v1/access/requests/{id}/revoke`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// 1–2000 characters.
    pub reason: String,
}

/// The body of `POST /v1/access/check`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// The principal acting (an API key's principal).
    #[schema(example = "alice")]
    pub principal: String,
    #[schema(example = "database")]
    pub resource_type: String,
    #[schema(example = "db-prod-1")]
    pub resource_id: String,
    #[schema(example = "read")]
    pub permission: String,
}

/// The body of `POST /v1/access/simulate`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    pub principal: String,
    pub resource_type: String,
    pub resource_id: String,
    /// 1–50 permissions.
    pub permissions: Vec<String>,
    #[serde(deserialize_with = "whole")]
    pub duration_minutes: u32,
}

// ------------------------------------------------------------------ errors

impl From<AccessError> for Error {
    fn from(error: AccessError) -> Self {
        let message = super::keys::capitalized(&error.to_string());
        match error {
            AccessError::NotFound => Error::not_found("Not found"),
            AccessError::AlreadyExists => Error::conflict("It exists already; retry"),
            AccessError::Invalid(problems) => Error::Validation(problems),
            AccessError::NoPolicy(_) => Error::NoPolicy(message),
            AccessError::SelfReview => Error::SelfReview(message),
            AccessError::NotApprover(_) | AccessError::NotRequester => Error::Forbidden(message),
            AccessError::AlreadyReviewed(_) => Error::conflict(message),
            AccessError::InvalidTransition { .. } => Error::InvalidTransition(message),
            AccessError::NotDue => Error::InvalidTransition(message),
        }
    }
}

impl From<CommandError<AccessError>> for Error {
    fn from(error: CommandError<AccessError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "access request"),
        }
    }
}

// ------------------------------------------------------------------ reader

/// A caller that may read access requests and ask checks: with
/// `access:approve` for the whole environment, with only
/// `access:request` for its own principal.
#[derive(Debug, Clone)]
pub struct AccessReader {
    pub context: RequestContext,
    /// Every principal of the environment (`access:approve`).
    pub everyone: bool,
}

/// The proof that the caller may read access, or `forbidden`.
pub fn reader(context: &RequestContext) -> Result<AccessReader> {
    let scopes = &context.principal.scopes;
    let everyone = scopes.contains(&Scope::AccessApprove);
    if !everyone && !scopes.contains(&Scope::AccessRequest) {
        return Err(Error::Forbidden(
            "This API key lacks the scope 'access:request' or 'access:approve'".into(),
        ));
    }
    Ok(AccessReader {
        context: context.clone(),
        everyone,
    })
}

impl AccessReader {
    fn partition(&self) -> Partition {
        self.context.principal.partition()
    }

    /// The principal a question about `principal` may name: any with
    /// `access:approve`, only itself otherwise.
    fn principal<'a>(&'a self, principal: Option<&'a str>) -> Result<&'a str> {
        let own = self.context.principal.name.as_str();
        match principal {
            None => Ok(own),
            Some(named) if named == own || self.everyone => Ok(named),
            Some(_) => Err(Error::Forbidden(
                "Without 'access:approve' a key may ask only about its own principal".into(),
            )),
        }
    }

    fn sees(&self, request: &AccessRequestRow) -> bool {
        self.everyone || request.requester == self.context.principal.name
    }
}

// ---------------------------------------------------------------- policies

fn scopes_of(field: &str, names: &[String]) -> Result<Vec<Scope>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            name.parse::<Scope>()
                .map_err(|message| Error::invalid(&format!("{field}[{i}]"), message))
        })
        .collect()
}

async fn view_policy(app: &App, partition: &Partition, id: &str) -> Result<PolicyRow> {
    get_policy(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Access policy not found"))
}

/// Waits until the access view shows the aggregate at `version`.
async fn settle(app: &App, aggregate_type: &str, id: &str, version: usize) -> Result<()> {
    app.await_in_effect(AccessProjection::NAME, aggregate_type, id, version)
        .await
}

/// 409 when another enabled policy already covers one of `types`.
async fn refuse_overlap(
    app: &App,
    partition: &Partition,
    types: &[String],
    except: Option<&str>,
) -> Result<()> {
    for policy in partition_policies(app.store.read_pool(), partition).await? {
        if Some(policy.id.as_str()) == except || !policy.spec.enabled {
            continue;
        }
        let trimmed: Vec<&str> = types.iter().map(|t| t.trim()).collect();
        if let Some(shared) = policy
            .spec
            .resource_types
            .iter()
            .find(|t| trimmed.contains(&t.as_str()))
        {
            return Err(Error::conflict(format!(
                "Resource type '{shared}' is covered by the enabled policy {} already; change or disable it first",
                policy.id
            )));
        }
    }
    Ok(())
}

pub async fn create_policy(
    app: &App,
    context: &Authorized<TenantAdmin>,
    request: CreatePolicyRequest,
) -> Result<PolicyRow> {
    let partition = context.principal.partition();
    let approver_scopes = scopes_of("approver_scopes", &request.approver_scopes)?;
    let enabled = request.enabled.unwrap_or(true);
    let existing = list_policies(
        app.store.read_pool(),
        &partition,
        Window {
            offset: 0,
            limit: 1,
        },
    )
    .await?;
    if existing.total >= i64::from(MAX_POLICIES) {
        return Err(Error::conflict(format!(
            "An environment holds at most {MAX_POLICIES} access policies; change or disable one"
        )));
    }
    if enabled {
        refuse_overlap(app, &partition, &request.resource_types, None).await?;
    }
    let policy_id = PolicyId::from_uuid(uuid::Uuid::now_v7());
    let command = PolicyCommand::Create {
        policy: Box::new(NewPolicy {
            policy_id,
            tenant_id: context.principal.tenant_id,
            environment: context.principal.environment,
            name: request.name,
            resource_types: request.resource_types,
            max_duration_minutes: request.max_duration_minutes,
            approvals_required: request.approvals_required.unwrap_or(1),
            approver_principals: request.approver_principals,
            approver_scopes,
            request_ttl_minutes: request
                .request_ttl_minutes
                .unwrap_or(DEFAULT_REQUEST_TTL_MINUTES),
            auto_approve: request.auto_approve.map(Into::into),
            enabled,
        }),
        at: now(),
    };
    let id = policy_id.to_string();
    let version = app
        .commands
        .execute::<AccessPolicy>(&id, command, (), &context.metadata())
        .await?;
    settle(app, "AccessPolicy", &id, version).await?;
    view_policy(app, &partition, &id).await
}

pub async fn list_access_policies(
    app: &App,
    context: &Authorized<TenantAdmin>,
    window: impl Into<Window>,
) -> Result<Page<PolicyRow>> {
    Ok(list_policies(
        app.store.read_pool(),
        &context.principal.partition(),
        window,
    )
    .await?)
}

pub async fn access_policy(
    app: &App,
    context: &Authorized<TenantAdmin>,
    id: &str,
) -> Result<PolicyRow> {
    view_policy(app, &context.principal.partition(), id).await
}

pub async fn update_policy(
    app: &App,
    context: &Authorized<TenantAdmin>,
    id: &str,
    request: UpdatePolicyRequest,
) -> Result<PolicyRow> {
    let partition = context.principal.partition();
    let current = view_policy(app, &partition, id).await?;
    let approver_scopes = request
        .approver_scopes
        .as_deref()
        .map(|names| scopes_of("approver_scopes", names))
        .transpose()?;
    let enabled = request.enabled.unwrap_or(current.spec.enabled);
    let types = request
        .resource_types
        .clone()
        .unwrap_or_else(|| current.spec.resource_types.clone());
    if enabled {
        refuse_overlap(app, &partition, &types, Some(id)).await?;
    }
    let command = PolicyCommand::Update {
        update: Box::new(PolicyUpdate {
            name: request.name,
            resource_types: request.resource_types,
            max_duration_minutes: request.max_duration_minutes,
            approvals_required: request.approvals_required,
            approver_principals: request.approver_principals,
            approver_scopes,
            request_ttl_minutes: request.request_ttl_minutes,
            auto_approve: request.auto_approve.map(|auto| auto.map(Into::into)),
            enabled: request.enabled,
        }),
        at: now(),
    };
    let version = app
        .commands
        .execute::<AccessPolicy>(id, command, (), &context.metadata())
        .await?;
    settle(app, "AccessPolicy", id, version).await?;
    view_policy(app, &partition, id).await
}

// ------------------------------------------------------------ auto-approval

/// The enabled policy covering `resource_type` (the oldest, should two
/// created concurrently both cover it). The view finds it; its terms come
/// from its own events, so a view that lags (or is being rebuilt) never
/// hands a request the terms of an older version of the policy, nor a
/// policy disabled since.
async fn covering_policy(
    app: &App,
    partition: &Partition,
    resource_type: &str,
) -> Result<Option<PolicyRow>> {
    let covers = |spec: &palisade_domain::grant::PolicySpec| {
        spec.enabled
            && spec
                .resource_types
                .iter()
                .any(|t| t == resource_type.trim())
    };
    let policies = partition_policies(app.store.read_pool(), partition).await?;
    for mut policy in policies.into_iter().filter(|policy| covers(&policy.spec)) {
        let (aggregate, _) = app
            .commands
            .load::<AccessPolicy>(&policy.id)
            .await
            .map_err(Error::from)?;
        match aggregate.spec() {
            Some(spec) if covers(spec) => {
                policy.spec = spec.clone();
                return Ok(Some(policy));
            }
            _ => continue,
        }
    }
    Ok(None)
}

fn terms_of(policy: &PolicyRow) -> Result<PolicyTerms> {
    Ok(PolicyTerms {
        policy_id: PolicyId::parse(&policy.id).map_err(Error::internal)?,
        max_duration_minutes: policy.spec.max_duration_minutes,
        approvals_required: policy.spec.approvals_required,
        approver_principals: policy.spec.approver_principals.clone(),
        approver_scopes: policy.spec.approver_scopes.clone(),
        request_ttl_minutes: policy.spec.request_ttl_minutes,
    })
}

/// Whether the policy's auto-approval conditions hold for a request on
/// `resource_id` at `at`: `Ok(reason)` naming each condition that held,
/// `Err(reason)` naming the first that did not.
async fn auto_approval(
    app: &App,
    partition: &Partition,
    policy: &PolicyRow,
    resource_id: &str,
    at: DateTime<Utc>,
) -> Result<std::result::Result<String, String>> {
    let Some(auto) = &policy.spec.auto_approve else {
        return Ok(Err("the policy has no auto-approval".into()));
    };
    let mut held = Vec::new();
    if let Some(window) = &auto.time_window {
        if !window.contains(at) {
            return Ok(Err(format!(
                "outside the time window {}–{} {}",
                window.start, window.end, window.timezone
            )));
        }
        held.push(format!(
            "inside the time window {}–{} {}",
            window.start, window.end, window.timezone
        ));
    }
    if let Some(max) = auto.max_asset_risk {
        // The risk as of every write acknowledged so far; a view that does
        // not catch up in time approves nothing.
        if app.await_views(&["findings"]).await.is_err() {
            return Ok(Err(
                "the findings view did not catch up in time to judge the asset's risk".into(),
            ));
        }
        let asset_id = asset_id_for(&partition.tenant_id, partition.environment, resource_id);
        let risk = get_asset(app.store.read_pool(), partition, &asset_id.to_string())
            .await?
            .map(|asset| asset.risk_score)
            .unwrap_or(0.0);
        // The score itself is not in the reason: a requester may lack
        // `findings:read`.
        if risk > max {
            return Ok(Err(format!(
                "the risk of asset '{resource_id}' is above the maximum {max}"
            )));
        }
        held.push(format!(
            "the risk of asset '{resource_id}' is at most {max}"
        ));
    }
    Ok(Ok(format!("auto-approved: {}", held.join("; "))))
}

// ---------------------------------------------------------------- requests

async fn view_request(app: &App, partition: &Partition, id: &str) -> Result<AccessRequestRow> {
    get_access_request(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Access request not found"))
}

pub async fn request_access(
    app: &App,
    context: &Authorized<AccessRequester>,
    request: CreateAccessRequest,
) -> Result<AccessRequestRow> {
    let partition = context.principal.partition();
    let now = now();
    let policy = covering_policy(app, &partition, &request.resource_type).await?;
    let auto = match &policy {
        Some(policy) if request.duration_minutes <= policy.spec.max_duration_minutes => {
            auto_approval(app, &partition, policy, request.resource_id.trim(), now)
                .await?
                .ok()
        }
        _ => None,
    };
    let request_id = AccessRequestId::from_uuid(uuid::Uuid::now_v7());
    let command = RequestCommand::Request {
        request: Box::new(NewAccessRequest {
            request_id,
            tenant_id: context.principal.tenant_id,
            environment: context.principal.environment,
            requester: context.principal.name.clone(),
            resource_type: request.resource_type,
            resource_id: request.resource_id,
            permissions: request.permissions,
            justification: request.justification,
            duration_minutes: request.duration_minutes,
            ticket_reference: request.ticket_reference,
            policy: policy.as_ref().map(terms_of).transpose()?,
            auto_approval: auto,
        }),
        at: now,
    };
    let id = request_id.to_string();
    let version = app
        .commands
        .execute::<AccessRequest>(&id, command, (), &context.metadata())
        .await?;
    settle(app, "AccessRequest", &id, version).await?;
    view_request(app, &partition, &id).await
}

/// The filters of `GET /v1/access/requests`.
#[derive(Debug, Clone, Default)]
pub struct RequestQuery {
    pub statuses: Vec<RequestStatus>,
    pub requester: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

pub async fn requests(
    app: &App,
    reader: &AccessReader,
    query: RequestQuery,
    window: impl Into<Window>,
) -> Result<Page<AccessRequestRow>> {
    let filter = AccessRequestFilter {
        statuses: query.statuses,
        requester: Some(reader.principal(query.requester.as_deref())?)
            .filter(|_| query.requester.is_some() || !reader.everyone)
            .map(str::to_string),
        resource_type: query.resource_type,
        resource_id: query.resource_id,
    };
    Ok(list_access_requests(
        app.store.read_pool(),
        &reader.partition(),
        &filter,
        now(),
        window,
    )
    .await?)
}

pub async fn access_request(
    app: &App,
    reader: &AccessReader,
    id: &str,
) -> Result<AccessRequestRow> {
    let request = view_request(app, &reader.partition(), id).await?;
    if !reader.sees(&request) {
        return Err(Error::not_found("Access request not found"));
    }
    Ok(request)
}

/// Runs a command on a request of the caller's partition and answers the
/// request as the view shows it afterwards. A concurrent command on the
/// same request is 409 (`conflict`): nothing was recorded.
async fn command_request(
    app: &App,
    context: &RequestContext,
    id: &str,
    command: RequestCommand,
) -> Result<AccessRequestRow> {
    let partition = context.principal.partition();
    view_request(app, &partition, id).await?;
    let version = app
        .commands
        .execute::<AccessRequest>(id, command, (), &context.metadata())
        .await?;
    settle(app, "AccessRequest", id, version).await?;
    view_request(app, &partition, id).await
}

pub async fn review(
    app: &App,
    context: &Authorized<AccessApprover>,
    id: &str,
    request: ReviewRequest,
) -> Result<AccessRequestRow> {
    let decision = match request.decision.as_str() {
        "approve" => Decision::Approve,
        "deny" => Decision::Deny,
        _ => return Err(Error::invalid("decision", "must be approve or deny")),
    };
    if context.principal.name.starts_with("system:") {
        return Err(Error::Forbidden(
            "Principals named system:… are Palisade's own; such a key cannot review".into(),
        ));
    }
    let command = RequestCommand::Review {
        reviewer: context.principal.name.clone(),
        reviewer_scopes: context.principal.scopes.clone(),
        decision,
        reason: request.reason,
        modified_duration_minutes: request.modified_duration,
        at: now(),
    };
    command_request(app, context, id, command).await
}

pub async fn withdraw(
    app: &App,
    context: &Authorized<AccessRequester>,
    id: &str,
) -> Result<AccessRequestRow> {
    // Another principal's request is not there for a key that cannot see it.
    let found = view_request(app, &context.principal.partition(), id).await?;
    if !reader(context)?.sees(&found) {
        return Err(Error::not_found("Access request not found"));
    }
    let command = RequestCommand::Withdraw {
        by: context.principal.name.clone(),
        at: now(),
    };
    command_request(app, context, id, command).await
}

pub async fn revoke(
    app: &App,
    context: &Authorized<AccessApprover>,
    id: &str,
    request: RevokeRequest,
) -> Result<AccessRequestRow> {
    let command = RequestCommand::Revoke {
        by: context.principal.name.clone(),
        reason: request.reason,
        at: now(),
    };
    command_request(app, context, id, command).await
}

// ------------------------------------------------------------------- check

fn term(field: &str, value: &str, limit: palisade_domain::TextLimit) -> Result<String> {
    Ok(required_text(field, value, limit)?)
}

/// The answer of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAnswer {
    pub grant: Option<ActiveGrant>,
}

/// Whether the principal may use the permission on the resource now: from
/// the access view's check index, `expires_at` compared with the clock
/// (never the event store).
pub async fn check(app: &App, reader: &AccessReader, request: CheckRequest) -> Result<CheckAnswer> {
    let principal = term("principal", &request.principal, limits::PRINCIPAL)?;
    let principal = reader.principal(Some(&principal))?.to_string();
    let resource_type = term("resource_type", &request.resource_type, limits::ACCESS_TERM)?;
    let resource_id = term("resource_id", &request.resource_id, limits::RESOURCE_ID)?;
    let permission = term("permission", &request.permission, limits::ACCESS_TERM)?;
    let question = AccessQuestion {
        principal: &principal,
        resource_type: &resource_type,
        resource_id: &resource_id,
        permission: &permission,
    };
    let grant = check_access(app.store.read_pool(), &reader.partition(), &question, now()).await?;
    Ok(CheckAnswer { grant })
}

/// The active grants of a principal (the caller's own without
/// `access:approve`), newest first.
pub async fn grants(
    app: &App,
    reader: &AccessReader,
    principal: Option<&str>,
    window: impl Into<Window>,
) -> Result<Page<AccessRequestRow>> {
    let principal = match principal {
        Some(named) => Some(term("principal", named, limits::PRINCIPAL)?),
        None => None,
    };
    let filter = AccessRequestFilter {
        statuses: vec![RequestStatus::Approved],
        requester: Some(reader.principal(principal.as_deref())?.to_string()),
        ..AccessRequestFilter::default()
    };
    Ok(list_access_requests(
        app.store.read_pool(),
        &reader.partition(),
        &filter,
        now(),
        window,
    )
    .await?)
}

/// `24h`, `7d` or `30d` back from now.
pub fn period(text: Option<&str>) -> Result<Duration> {
    match text.unwrap_or("24h") {
        "24h" => Ok(Duration::hours(24)),
        "7d" => Ok(Duration::days(7)),
        "30d" => Ok(Duration::days(30)),
        _ => Err(Error::invalid("period", "must be 24h, 7d or 30d")),
    }
}

pub async fn stats(
    app: &App,
    context: &Authorized<AccessApprover>,
    period: Duration,
) -> Result<AccessStats> {
    let now = now();
    Ok(access_stats(
        app.store.read_pool(),
        &context.principal.partition(),
        now - period,
        now,
    )
    .await?)
}

// ---------------------------------------------------------------- simulate

/// What a request would meet, recorded nowhere.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub policy: Option<PolicyRow>,
    /// Whether the request would be accepted at all (a policy covers it,
    /// the duration is within its maximum, the fields are valid).
    pub allowed: bool,
    pub auto_approved: bool,
    /// Why: which auto-approval conditions held or which did not, or why
    /// the request would be refused.
    pub reason: String,
    /// Whether the caller may see the whole policy (`tenant:admin`);
    /// others see its id and approvers only.
    pub policy_visible: bool,
}

pub async fn simulate(
    app: &App,
    reader: &AccessReader,
    request: SimulateRequest,
) -> Result<Simulation> {
    let principal = term("principal", &request.principal, limits::PRINCIPAL)?;
    let principal = reader.principal(Some(&principal))?.to_string();
    if !(1..=MAX_DURATION_MINUTES).contains(&request.duration_minutes) {
        return Err(Error::invalid(
            "duration_minutes",
            format!("must be 1 to {MAX_DURATION_MINUTES} (14 days)"),
        ));
    }
    let partition = reader.partition();
    let now = now();
    let policy_visible = reader
        .context
        .principal
        .scopes
        .contains(&Scope::TenantAdmin);
    let policy = covering_policy(app, &partition, &request.resource_type).await?;
    let resource_id = request.resource_id.clone();
    // The aggregate's own judgement, on a request that is never recorded.
    let trial = NewAccessRequest {
        request_id: AccessRequestId::from_uuid(uuid::Uuid::nil()),
        tenant_id: reader.context.principal.tenant_id,
        environment: reader.context.principal.environment,
        requester: principal,
        resource_type: request.resource_type,
        resource_id: request.resource_id,
        permissions: request.permissions,
        justification: "simulation".into(),
        duration_minutes: request.duration_minutes,
        ticket_reference: None,
        policy: policy.as_ref().map(terms_of).transpose()?,
        auto_approval: None,
    };
    if let Some(found) = &policy {
        if request.duration_minutes > found.spec.max_duration_minutes {
            let maximum = found.spec.max_duration_minutes;
            return Ok(Simulation {
                policy,
                policy_visible,
                allowed: false,
                auto_approved: false,
                reason: format!(
                    "{} minutes exceed the policy's maximum of {maximum}",
                    request.duration_minutes
                ),
            });
        }
    }
    let judged = AccessRequest::default().decide(RequestCommand::Request {
        request: Box::new(trial),
        at: now,
    });
    match (judged, &policy) {
        (Err(AccessError::Invalid(problems)), _) => Err(Error::Validation(problems)),
        (Err(error), _) => Ok(Simulation {
            policy,
            policy_visible,
            allowed: false,
            auto_approved: false,
            reason: super::keys::capitalized(&error.to_string()),
        }),
        (Ok(_), None) => Err(Error::internal("a request without a policy was accepted")),
        (Ok(_), Some(found)) => {
            let auto = auto_approval(app, &partition, found, resource_id.trim(), now).await?;
            let (auto_approved, reason) = match auto {
                Ok(reason) => (true, reason),
                Err(reason) => (false, format!("needs review: {reason}")),
            };
            Ok(Simulation {
                policy,
                policy_visible,
                allowed: true,
                auto_approved,
                reason,
            })
        }
    }
}
