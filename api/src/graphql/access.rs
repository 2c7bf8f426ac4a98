//! Just-in-time access over GraphQL (`app::access`): `accessPolicies`,
//! `accessRequests`, `accessRequest`, `accessStats`, and mutations to
//! request, review, withdraw and revoke. The check stays REST
//! (`POST /v1/access/check`), the hot path of the systems that enforce it.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputObject, Object};
use palisade_domain::grant::RequestStatus;

use super::error::{graphql_error, GraphqlResult as _};
use super::types::{list_cost, page_connection, parsed, window, Total};
use super::{app, authorized, context};
use crate::app::access::{self, CreateAccessRequest, RequestQuery, ReviewRequest, RevokeRequest};
use crate::app::auth::{AccessApprover, AccessRequester, TenantAdmin};
use crate::app::input::filter_text;
use crate::app::Error;
use crate::views::access::{AccessRequestView, PolicyView, StatsView};

/// What `accessRequests` filters by.
#[derive(InputObject, Default)]
pub struct AccessRequestFilter {
    /// `pending`, `approved`, `denied`, `withdrawn`, `expired`, `ended`,
    /// `revoked` (as of now).
    pub status: Option<Vec<String>>,
    /// Only one's own without `access:approve`.
    pub requester: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

#[derive(Default)]
pub struct AccessQuery;

#[Object]
impl AccessQuery {
    /// The environment's access policies, oldest first. Scope
    /// `tenant:admin`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn access_policies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, PolicyView, Total, EmptyFields>> {
        let caller = authorized::<TenantAdmin>(ctx)?;
        let window = window(first, after)?;
        let page = access::list_access_policies(app(ctx), &caller, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// Access requests, newest first. Scope `access:approve` (every
    /// principal) or `access:request` (one's own).
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn access_requests(
        &self,
        ctx: &Context<'_>,
        filter: Option<AccessRequestFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, AccessRequestView, Total, EmptyFields>> {
        let reader = access::reader(context(ctx)?).graphql()?;
        let filter = filter.unwrap_or_default();
        let query = RequestQuery {
            statuses: parsed::<RequestStatus>("status", filter.status)?,
            requester: filter_text("requester", filter.requester.as_deref()).graphql()?,
            resource_type: filter_text("resourceType", filter.resource_type.as_deref())
                .graphql()?,
            resource_id: filter_text("resourceId", filter.resource_id.as_deref()).graphql()?,
        };
        let window = window(first, after)?;
        let page = access::requests(app(ctx), &reader, query, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One request with its reviews; null when there is none (or it is
    /// another principal's and the key lacks `access:approve`).
    async fn access_request(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<AccessRequestView>> {
        let reader = access::reader(context(ctx)?).graphql()?;
        match access::access_request(app(ctx), &reader, &id).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(graphql_error(error)),
        }
    }

    /// Requests made in the period (`24h`, `7d`, `30d`) and the grants
    /// active now. Scope `access:approve`.
    async fn access_stats(
        &self,
        ctx: &Context<'_>,
        period: Option<String>,
    ) -> async_graphql::Result<StatsView> {
        let caller = authorized::<AccessApprover>(ctx)?;
        let name = period.as_deref().unwrap_or("24h").to_string();
        let span = access::period(Some(&name)).graphql()?;
        let figures = access::stats(app(ctx), &caller, span).await.graphql()?;
        Ok(StatsView::of(&name, figures))
    }
}

#[derive(InputObject)]
pub struct RequestAccessInput {
    pub resource_type: String,
    pub resource_id: String,
    pub permissions: Vec<String>,
    pub justification: String,
    pub duration_minutes: u32,
    pub ticket_reference: Option<String>,
}

#[derive(InputObject)]
pub struct ReviewAccessInput {
    pub id: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub reason: Option<String>,
    /// Minutes, 1 to the requested duration.
    pub modified_duration: Option<u32>,
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Asks for access for the key's principal. Scope `access:request`.
    async fn request_access(
        &self,
        ctx: &Context<'_>,
        input: RequestAccessInput,
    ) -> async_graphql::Result<AccessRequestView> {
        let caller = authorized::<AccessRequester>(ctx)?;
        let request = CreateAccessRequest {
            resource_type: input.resource_type,
            resource_id: input.resource_id,
            permissions: input.permissions,
            justification: input.justification,
            duration_minutes: input.duration_minutes,
            ticket_reference: input.ticket_reference,
        };
        Ok(access::request_access(app(ctx), &caller, request)
            .await
            .graphql()?
            .into())
    }

    /// Approves or denies a request. Scope `access:approve`.
    async fn review_access_request(
        &self,
        ctx: &Context<'_>,
        input: ReviewAccessInput,
    ) -> async_graphql::Result<AccessRequestView> {
        let caller = authorized::<AccessApprover>(ctx)?;
        let request = ReviewRequest {
            decision: input.decision,
            reason: input.reason,
            modified_duration: input.modified_duration,
        };
        Ok(access::review(app(ctx), &caller, &input.id, request)
            .await
            .graphql()?
            .into())
    }

    /// The requester withdraws a pending request. Scope `access:request`.
    async fn withdraw_access_request(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<AccessRequestView> {
        let caller = authorized::<AccessRequester>(ctx)?;
        Ok(access::withdraw(app(ctx), &caller, &id)
            .await
            .graphql()?
            .into())
    }

    /// Ends an active grant at once. Scope `access:approve`.
    async fn revoke_access(
        &self,
        ctx: &Context<'_>,
        id: String,
        reason: String,
    ) -> async_graphql::Result<AccessRequestView> {
        let caller = authorized::<AccessApprover>(ctx)?;
        Ok(
            access::revoke(app(ctx), &caller, &id, RevokeRequest { reason })
                .await
                .graphql()?
                .into(),
        )
    }
}
