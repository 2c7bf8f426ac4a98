//! Findings over GraphQL: `findings` and `finding`, ingest and the triage
//! mutations, through the same use cases as REST (`app::findings`).

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};
use palisade_domain::finding::FindingCommand;
use palisade_infra::readmodel::{FindingFilter as Filter, FindingSort};

use super::error::argument_names;
use super::error::GraphqlResult as _;
use super::types::{
    consistent, distinct, list_cost, page_connection, window, Consistency, FindingStatus,
    SeverityLevel, SortOrder, Total,
};
use super::{app, authorized};
use crate::app::auth::{FindingsRead, FindingsWrite};
use crate::app::findings::{self, IngestFindingRequest};
use crate::views::findings::{FindingView, IngestedFinding};

/// The filters of `GET /v1/findings`; lists for the multi-value ones. Text
/// filters take at most 200 characters (a validation error beyond).
#[derive(InputObject, Default)]
pub struct FindingFilter {
    pub product: Option<String>,
    pub category: Option<String>,
    pub severity: Option<Vec<SeverityLevel>>,
    pub status: Option<Vec<FindingStatus>>,
    /// Asset id (`ast_…`) or identifier.
    pub asset: Option<String>,
    pub cve: Option<String>,
    pub assignee: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive substring of title or description.
    pub search: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// 0–100.
    pub min_risk: Option<f64>,
}

impl From<FindingFilter> for Filter {
    /// As given; the use case checks it, as for REST.
    fn from(f: FindingFilter) -> Self {
        Filter {
            product: f.product,
            category: f.category,
            severities: distinct(f.severity),
            statuses: distinct(f.status),
            asset: f.asset,
            cve: f.cve,
            assignee: f.assignee,
            tag: f.tag,
            search: f.search,
            created_after: f.created_after,
            created_before: f.created_before,
            min_risk: f.min_risk,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum FindingSortField {
    #[default]
    CreatedAt,
    UpdatedAt,
    Severity,
    Risk,
    Title,
}

impl From<FindingSortField> for FindingSort {
    fn from(field: FindingSortField) -> Self {
        match field {
            FindingSortField::CreatedAt => FindingSort::CreatedAt,
            FindingSortField::UpdatedAt => FindingSort::UpdatedAt,
            FindingSortField::Severity => FindingSort::Severity,
            FindingSortField::Risk => FindingSort::Risk,
            FindingSortField::Title => FindingSort::Title,
        }
    }
}

#[derive(InputObject, Default)]
pub struct FindingSortInput {
    #[graphql(default)]
    pub field: FindingSortField,
    #[graphql(default)]
    pub order: SortOrder,
}

#[derive(Default)]
pub struct FindingsQuery;

#[Object]
impl FindingsQuery {
    /// Findings, filtered and sorted as `GET /v1/findings`. Scope `findings:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn findings(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<FindingFilter>,
        sort: Option<FindingSortInput>,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Connection<String, FindingView, Total, EmptyFields>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        let window = window(first, after)?;
        let sort = sort.unwrap_or_default();
        consistent(ctx, consistency).await?;
        let filter = filter.unwrap_or_default().into();
        let page = findings::list(
            app(ctx),
            &caller,
            filter,
            sort.field.into(),
            sort.order.into(),
            window,
        )
        .await
        .map_err(argument_names)
        .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One finding; null when unknown or another tenant's. Scope `findings:read`.
    async fn finding(
        &self,
        ctx: &Context<'_>,
        id: String,
        consistency: Option<Consistency>,
    ) -> async_graphql::Result<Option<FindingView>> {
        let caller = authorized::<FindingsRead>(ctx)?;
        consistent(ctx, consistency).await?;
        let row = findings::find(app(ctx), &caller, &id).await.graphql()?;
        Ok(row.map(FindingView::from))
    }
}

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

impl From<IngestFindingInput> for IngestFindingRequest {
    fn from(input: IngestFindingInput) -> Self {
        let severity: palisade_domain::finding::Severity = input.severity.into();
        IngestFindingRequest {
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
        }
    }
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
    let caller = authorized::<FindingsWrite>(ctx)?;
    let row = findings::triage(app(ctx), &caller, id, command, version(expected_version))
        .await
        .graphql()?;
    Ok(row.into())
}

#[derive(Default)]
pub struct FindingsMutation;

#[Object]
impl FindingsMutation {
    /// Ingests a finding, or re-observes the one with its fingerprint.
    async fn ingest_finding(
        &self,
        ctx: &Context<'_>,
        input: IngestFindingInput,
    ) -> async_graphql::Result<IngestedFinding> {
        let caller = authorized::<FindingsWrite>(ctx)?;
        let ingested = findings::ingest(app(ctx), &caller, input.into())
            .await
            .graphql()?;
        Ok(ingested.into())
    }

    /// open → confirmed.
    async fn confirm_finding(
        &self,
        ctx: &Context<'_>,
        input: FindingInput,
    ) -> async_graphql::Result<FindingView> {
        let command = FindingCommand::Confirm { at: Utc::now() };
        triage(ctx, &input.id, input.expected_version, command).await
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
        let command = FindingCommand::Remediate { at: Utc::now() };
        triage(ctx, &input.id, input.expected_version, command).await
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
        let command = findings::comment(input.body);
        triage(ctx, &input.id, input.expected_version, command).await
    }
}
