//! Who is calling, and what they may do: authenticating an API key,
//! re-checking it for long-lived connections, the scope proofs that use
//! cases demand, and admission against the tenant's rate limits and quota.
//!
//! A use case that needs a scope takes an [`Authorized<S>`]: a proof that
//! the caller's key holds the scope `S` names, which only
//! [`RequestContext::authorize`] makes. An adapter therefore cannot call the
//! use case without the check.

use std::marker::PhantomData;
use std::ops::Deref;

use chrono::{DateTime, Utc};
use palisade_domain::tenant::{Period, Plan, TenantStatus};
use palisade_domain::{ActorType, ApiKeyId, Environment, EventMetadata, Scope, TenantId};
use palisade_infra::crypto::api_key::parse_environment;
use palisade_infra::readmodel::{ApiKeyOwner, Partition};
use palisade_infra::usage::{count_request, reserve_quota, tenant_subject, WindowCount};

use super::{App, Error, Result};

/// The authenticated caller: an API key of an active tenant.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub environment: Environment,
    pub plan: Plan,
    /// Every secret write in this key's environment needs check-and-set
    /// (the tenant's default).
    pub secrets_cas_required: bool,
}

impl Principal {
    /// `forbidden`, naming the scope, unless the key has it.
    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(&scope) {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "This API key lacks the scope '{scope}'"
        )))
    }

    /// The data this key may read: its tenant's, in its environment.
    pub fn partition(&self) -> Partition {
        Partition {
            tenant_id: self.tenant_id.to_string(),
            environment: self.environment,
        }
    }
}

/// What a request carries beyond its credential, for the events it causes:
/// its request id and, for an idempotent request, the token its events
/// carry as `correlation_id` (see `rest::idempotency`).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub request_id: Option<String>,
    pub idempotency_token: Option<String>,
    /// The application the caller names (`X-Palisade-Application`), as
    /// sent; [`RequestContext::application`] checks it.
    pub application: Option<String>,
}

/// One request by an API key: the caller and where the request came from.
/// Adapters build it (REST from the request's extensions, GraphQL per
/// operation) and hand it to the use cases.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    pub origin: Origin,
}

impl RequestContext {
    pub fn new(principal: Principal, origin: Origin) -> Self {
        Self { principal, origin }
    }

    /// The proof that this caller holds scope `S`, or `forbidden`.
    pub fn authorize<S: ScopeName>(&self) -> Result<Authorized<S>> {
        self.principal.require(S::SCOPE)?;
        Ok(Authorized {
            context: self.clone(),
            scope: PhantomData,
        })
    }

    /// The application this request's KMS usage is counted under: the one
    /// it names, when that keeps to the text rule (one line of at most 200
    /// characters), else the API key's principal.
    pub fn application(&self) -> String {
        self.origin
            .application
            .as_deref()
            .and_then(|name| {
                palisade_domain::required_text(
                    "application",
                    name,
                    palisade_domain::limits::APPLICATION,
                )
                .ok()
            })
            .unwrap_or_else(|| self.principal.name.clone())
    }

    /// Metadata for the events this request causes.
    pub fn metadata(&self) -> EventMetadata {
        let caller = &self.principal;
        EventMetadata {
            tenant_id: caller.tenant_id.to_string(),
            environment: caller.environment,
            actor: caller.name.clone(),
            actor_type: ActorType::ApiKey,
            api_key_id: Some(caller.key_id.to_string()),
            request_id: self.origin.request_id.clone(),
            correlation_id: self.origin.idempotency_token.clone(),
            causation_id: None,
            occurred_at: Utc::now(),
        }
    }
}

impl Origin {
    /// Metadata for an administrator's command on one tenant.
    pub fn admin_metadata(&self, tenant_id: TenantId, actor: &str) -> EventMetadata {
        EventMetadata {
            tenant_id: tenant_id.to_string(),
            environment: Environment::Live,
            actor: actor.to_string(),
            actor_type: ActorType::Admin,
            api_key_id: None,
            request_id: self.request_id.clone(),
            correlation_id: self.idempotency_token.clone(),
            causation_id: None,
            occurred_at: Utc::now(),
        }
    }
}

/// A scope as a type, so that a use case can demand it in its signature.
pub trait ScopeName: Send + Sync + 'static {
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($(#[$doc:meta])* $name:ident => $scope:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl ScopeName for $name {
            const SCOPE: Scope = Scope::$scope;
        }
    )*};
}

scopes! {
    /// `findings:read`
    FindingsRead => FindingsRead,
    /// `findings:write`
    FindingsWrite => FindingsWrite,
    /// `audit:read`
    AuditRead => AuditRead,
    /// `keys:admin`: the KMS key lifecycle.
    KeysAdmin => KeysAdmin,
    /// `keys:use`: encrypt, decrypt, sign and the other operations.
    KeysUse => KeysUse,
    /// `secrets:read`: values, metadata and history.
    SecretsRead => SecretsRead,
    /// `secrets:write`: every change to a secret.
    SecretsWrite => SecretsWrite,
    /// `tenant:admin`
    TenantAdmin => TenantAdmin,
    /// `access:request`: ask for access, withdraw one's own requests.
    AccessRequester => AccessRequest,
    /// `access:approve`: review, revoke, and see every request.
    AccessApprover => AccessApprove,
    /// `webhooks:manage`: endpoints, their secrets and deliveries.
    WebhooksManage => WebhooksManage,
}

/// A request whose caller holds the scope `S` names.
#[derive(Debug, Clone)]
pub struct Authorized<S: ScopeName> {
    context: RequestContext,
    scope: PhantomData<S>,
}

impl<S: ScopeName> Deref for Authorized<S> {
    type Target = RequestContext;

    fn deref(&self) -> &RequestContext {
        &self.context
    }
}

/// The caller as its key stands for it: tenant, key, principal, scopes,
/// environment and plan. Any valid key may ask; no read model is read.
pub fn whoami(context: &RequestContext) -> Principal {
    context.principal.clone()
}

/// Authenticates a key however it was presented (a header, or a GraphQL
/// websocket's `connection_init` payload).
pub async fn authenticate_key(app: &App, value: Option<&str>) -> Result<Principal> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Err(Error::MissingApiKey(
            "Send an API key in X-API-Key or Authorization: Bearer".into(),
        ));
    };
    // Shape and checksum first: a typo never costs a lookup.
    if parse_environment(value).is_none() {
        return Err(Error::InvalidApiKey);
    }
    let hash = app.hasher.hash(value);
    let found = app.keys.by_hash(app.store.read_pool(), &hash).await?;
    let Some(owner) = found.filter(|o| app.hasher.matches(value, &o.key.key_hash)) else {
        return Err(Error::InvalidApiKey);
    };
    principal_of(owner)
}

/// The caller an authenticated key stands for, once it is usable.
fn principal_of(owner: ApiKeyOwner) -> Result<Principal> {
    usable(&owner)?;
    let key = owner.key;
    Ok(Principal {
        tenant_id: TenantId::parse(&key.tenant_id).map_err(Error::internal)?,
        key_id: ApiKeyId::parse(&key.id).map_err(Error::internal)?,
        name: key.principal,
        scopes: key.scopes,
        environment: key.environment,
        plan: owner.plan,
        secrets_cas_required: owner.secrets_cas_required,
    })
}

/// Refuses a key that is revoked or expired, or whose tenant is suspended.
fn usable(owner: &ApiKeyOwner) -> Result<()> {
    let expired = owner.key.expires_at.is_some_and(|at| at <= Utc::now());
    if owner.key.revoked_at.is_some() || expired {
        return Err(Error::InvalidApiKey);
    }
    if owner.tenant_status == TenantStatus::Suspended {
        return Err(Error::TenantSuspended);
    }
    Ok(())
}

/// Authenticates an already authenticated key again, as the tenants view
/// shows it now (through the key cache, which drops a tenant's keys when
/// the view applies a change to it):
/// the caller as it is now (its tenant's plan may have changed), or the
/// refusal a request with this key would get now (revoked, expired, tenant
/// suspended). Every operation on a GraphQL websocket does this.
pub async fn reauthenticate(app: &App, key_id: &ApiKeyId) -> Result<Principal> {
    let found = app
        .keys
        .by_id(app.store.read_pool(), &key_id.to_string())
        .await?;
    principal_of(found.ok_or(Error::InvalidApiKey)?)
}

/// Checks again that an authenticated key may still be used: what a
/// long-lived stream asks now and then, so that revoking its key, letting
/// it expire or suspending its tenant ends the stream too.
pub async fn still_usable(app: &App, key_id: &ApiKeyId) -> Result<()> {
    reauthenticate(app, key_id).await.map(|_| ())
}

/// A request counted against its tenant's rate limits and quota: the
/// windows' counts, and the refusal if it is over either.
pub struct Admission {
    pub counts: Vec<WindowCount>,
    pub refusal: Option<Error>,
}

fn capitalised(period: Period) -> &'static str {
    match period {
        Period::Minute => "Minute",
        Period::Hour => "Hour",
        Period::Day => "Day",
    }
}

/// Counts `weight` requests of `principal` against its tenant's rate
/// limits (every key of the tenant in its environment shares them) and
/// reserves them from the tenant's monthly quota (live keys only). Every
/// request does this: REST and GraphQL over HTTP, each operation on a
/// GraphQL websocket, and each further mutation root field of a GraphQL
/// document (`weight` > 1).
pub async fn admit(
    app: &App,
    principal: &Principal,
    weight: u64,
    now: DateTime<Utc>,
) -> Result<Admission> {
    let counts = match principal.plan.rate_limits() {
        Some(limits) => {
            let subject = tenant_subject(&principal.tenant_id.to_string(), principal.environment);
            count_request(&app.store, &subject, &limits, weight, now)
                .await
                .map_err(Error::internal)?
        }
        None => Vec::new(),
    };
    let refusal = if let Some(over) = counts
        .iter()
        .filter(|c| c.exceeded())
        .max_by_key(|c| c.resets_at)
    {
        let retry_after = u64::try_from(over.resets_at - now.timestamp())
            .unwrap_or(1)
            .max(1);
        Some(Error::RateLimited {
            message: format!("{} rate limit exceeded", capitalised(over.period)),
            retry_after,
        })
    } else {
        reserve(app, principal, weight, now).await.err()
    };
    Ok(Admission { counts, refusal })
}

/// Reserves `weight` requests of a live key's monthly quota; refused once
/// it is spent (the reservation and the check are one statement).
async fn reserve(app: &App, principal: &Principal, weight: u64, now: DateTime<Utc>) -> Result<()> {
    let Some(quota) = principal.plan.monthly_quota() else {
        return Ok(());
    };
    if principal.environment == Environment::Test {
        return Ok(());
    }
    let tenant = principal.tenant_id.to_string();
    let reserved = reserve_quota(&app.store, &tenant, quota, weight, now)
        .await
        .map_err(Error::internal)?;
    if !reserved {
        return Err(Error::QuotaExceeded(format!(
            "This month's quota of {quota} requests is spent; it renews on the 1st (UTC) or with a larger plan"
        )));
    }
    Ok(())
}

/// Records `weight` admitted requests in the tenant's usage, under `group`
/// (in memory; written within a second, see [`UsageBuffer`]).
///
/// [`UsageBuffer`]: palisade_infra::usage::UsageBuffer
pub fn record_usage(
    app: &App,
    principal: &Principal,
    group: &str,
    weight: u64,
    now: DateTime<Utc>,
) {
    let tenant = principal.tenant_id.to_string();
    app.usage
        .record(&tenant, principal.environment, group, weight, now);
}
