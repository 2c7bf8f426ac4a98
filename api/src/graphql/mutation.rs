//! Mutations: one per command, each taking one `input` and returning the
//! changed object, through the same functions as REST.

use async_graphql::{Context, InputObject, Object};
use chrono::{DateTime, Utc};
use palisade_domain::finding::FindingCommand;
use palisade_domain::Scope;

use super::types::{Environment, SeverityLevel};
use super::{app, caller, graphql_error};
use crate::api_keys::IssueApiKeyRequest;
use crate::findings::{FindingView, IngestFindingRequest, IngestedFinding};
use crate::rest::risk::Recalculation;
use crate::tenants::{ApiKeyView, IssuedApiKey};

pub struct Mutation;

/// A finding to ingest: the body of `POST /v1/findings`.
#[derive(InputObject)]
pub struct IngestFindingInput {
    pub product: String,
    pub category: String,
    pub title: String,
    pub description: Option<String>,
    pub severity: SeverityLevel,
    pub asset_identifier: String,
    /// 0 to 1; the severity's default when absent.
    pub likelihood: Option<f64>,
    /// 0 to 1; the severity's default when absent.
    pub impact: Option<f64>,
    pub cve: Option<String>,
    pub cvss_score: Option<f64>,
    pub cwe: Option<String>,
    pub location: Option<String>,
    pub references: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// Deduplication key; derived when absent.
    pub fingerprint: Option<String>,
}

/// Which finding a command is for, and optionally the version it requires
/// (as REST's `If-Match`).
#[derive(InputObject)]
pub struct FindingInput {
    pub id: String,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct DismissFindingInput {
    pub id: String,
    pub reason: String,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct AcceptFindingRiskInput {
    pub id: String,
    pub reason: String,
    pub expires_at: DateTime<Utc>,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct ReopenFindingInput {
    pub id: String,
    pub reason: Option<String>,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct AssignFindingInput {
    pub id: String,
    /// Null unassigns.
    pub assignee: Option<String>,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct ChangeFindingSeverityInput {
    pub id: String,
    pub severity: SeverityLevel,
    pub reason: Option<String>,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct LinkFindingTicketInput {
    pub id: String,
    pub system: String,
    pub ticket_id: String,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct CommentOnFindingInput {
    pub id: String,
    pub body: String,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct IssueApiKeyInput {
    pub name: String,
    pub principal: String,
    /// Scope names, e.g. `findings:read`.
    pub scopes: Vec<String>,
    pub environment: Option<Environment>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct RecalculateRiskInput {
    /// Compute and compare only; record nothing.
    #[graphql(default)]
    pub dry_run: bool,
}

#[derive(InputObject)]
pub struct RevokeApiKeyInput {
    pub id: String,
}

fn version(expected: Option<i32>) -> Option<usize> {
    expected.map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// Runs one triage command for the caller (scope `findings:write`).
async fn triage(
    ctx: &Context<'_>,
    id: &str,
    expected_version: Option<i32>,
    command: FindingCommand,
) -> async_graphql::Result<FindingView> {
    let caller = caller(ctx, Some(Scope::FindingsWrite))?;
    let row = crate::findings::command(app(ctx), caller, id, command, version(expected_version))
        .await
        .map_err(graphql_error)?;
    Ok(row.into())
}

#[Object]
impl Mutation {
    /// Ingests a finding, or re-observes the one with its fingerprint.
    async fn ingest_finding(
        &self,
        ctx: &Context<'_>,
        input: IngestFindingInput,
    ) -> async_graphql::Result<IngestedFinding> {
        let caller = caller(ctx, Some(Scope::FindingsWrite))?;
        let severity: palisade_domain::finding::Severity = input.severity.into();
        let request = IngestFindingRequest {
            product: input.product,
            category: input.category,
            title: input.title,
            description: input.description,
            severity: severity.as_str().to_string(),
            asset_identifier: input.asset_identifier,
            likelihood: input.likelihood,
            impact: input.impact,
            cve: input.cve,
            cvss_score: input.cvss_score,
            cwe: input.cwe,
            location: input.location,
            references: input.references.unwrap_or_default(),
            tags: input.tags.unwrap_or_default(),
            fingerprint: input.fingerprint,
        };
        crate::findings::ingest(app(ctx), caller, request)
            .await
            .map_err(graphql_error)
    }

    /// open → confirmed.
    async fn confirm_finding(
        &self,
        ctx: &Context<'_>,
        input: FindingInput,
    ) -> async_graphql::Result<FindingView> {
        triage(
            ctx,
            &input.id,
            input.expected_version,
            FindingCommand::Confirm { at: Utc::now() },
        )
        .await
    }

    /// open or confirmed → dismissed.
    async fn dismiss_finding(
        &self,
        ctx: &Context<'_>,
        input: DismissFindingInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::Dismiss {
            reason: input.reason,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// open or confirmed → risk_accepted until `expiresAt`.
    async fn accept_finding_risk(
        &self,
        ctx: &Context<'_>,
        input: AcceptFindingRiskInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::AcceptRisk {
            reason: input.reason,
            expires_at: input.expires_at,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// open, confirmed or risk_accepted → remediated.
    async fn remediate_finding(
        &self,
        ctx: &Context<'_>,
        input: FindingInput,
    ) -> async_graphql::Result<FindingView> {
        triage(
            ctx,
            &input.id,
            input.expected_version,
            FindingCommand::Remediate { at: Utc::now() },
        )
        .await
    }

    /// dismissed, risk_accepted or remediated → open.
    async fn reopen_finding(
        &self,
        ctx: &Context<'_>,
        input: ReopenFindingInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::Reopen {
            reason: input.reason,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// Sets or clears the assignee.
    async fn assign_finding(
        &self,
        ctx: &Context<'_>,
        input: AssignFindingInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::Assign {
            assignee: input.assignee,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// Changes the severity (and with it the default risk).
    async fn change_finding_severity(
        &self,
        ctx: &Context<'_>,
        input: ChangeFindingSeverityInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::ChangeSeverity {
            severity: input.severity.into(),
            reason: input.reason,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// Links a ticket; linking it again changes nothing.
    async fn link_finding_ticket(
        &self,
        ctx: &Context<'_>,
        input: LinkFindingTicketInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::LinkTicket {
            system: input.system,
            ticket_id: input.ticket_id,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// Adds a comment, authored by the key's principal.
    async fn comment_on_finding(
        &self,
        ctx: &Context<'_>,
        input: CommentOnFindingInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::Comment {
            comment_id: format!("cmt_{}", uuid::Uuid::now_v7().simple()),
            body: input.body,
            at: Utc::now(),
        };
        triage(ctx, &input.id, input.expected_version, command).await
    }

    /// Recomputes the tenant's risk from its findings, from scratch; without
    /// `dryRun` records it and the views take the recomputed scores.
    async fn recalculate_risk(
        &self,
        ctx: &Context<'_>,
        input: RecalculateRiskInput,
    ) -> async_graphql::Result<Recalculation> {
        let caller = caller(ctx, None)?;
        crate::rest::risk::recalculate_risk(app(ctx), caller, input.dry_run)
            .await
            .map_err(graphql_error)
    }

    /// Issues an API key; its value is in this answer only. Scope `tenant:admin`.
    async fn issue_api_key(
        &self,
        ctx: &Context<'_>,
        input: IssueApiKeyInput,
    ) -> async_graphql::Result<IssuedApiKey> {
        let caller = caller(ctx, Some(Scope::TenantAdmin))?;
        let request = IssueApiKeyRequest {
            name: input.name,
            principal: input.principal,
            scopes: input.scopes,
            environment: input
                .environment
                .map(|e| palisade_domain::Environment::from(e).as_str().to_string()),
            expires_at: input.expires_at,
        };
        let (issued, _) = crate::api_keys::issue(app(ctx), caller, request, None)
            .await
            .map_err(graphql_error)?;
        // Shown once: an idempotent retry's replay shows it redacted.
        if let Ok(secrets) = ctx.data::<super::SecretSink>() {
            secrets.push(&issued.key);
        }
        Ok(issued)
    }

    /// Revokes an API key; it fails from the next request on. Scope `tenant:admin`.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<ApiKeyView> {
        let caller = caller(ctx, Some(Scope::TenantAdmin))?;
        let (key, _) = crate::api_keys::revoke(app(ctx), caller, &input.id, None)
            .await
            .map_err(graphql_error)?;
        Ok(key)
    }
}
