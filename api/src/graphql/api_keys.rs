//! API keys over GraphQL: `apiKeys`, `apiKey`, `issueApiKey` and
//! `revokeApiKey` (`app::api_keys`). Scope `tenant:admin`.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputObject, Object};
use chrono::{DateTime, Utc};

use super::error::GraphqlResult as _;
use super::types::{list_cost, page_connection, window, Environment, Total};
use super::{app, authorized};
use crate::app::api_keys::{self, IssueApiKeyRequest};
use crate::app::auth::TenantAdmin;
use crate::views::tenants::{ApiKeyView, IssuedApiKey};

#[derive(Default)]
pub struct ApiKeysQuery;

#[Object]
impl ApiKeysQuery {
    /// The tenant's API keys, newest first (never their values). Scope
    /// `tenant:admin`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn api_keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, ApiKeyView, Total, EmptyFields>> {
        let caller = authorized::<TenantAdmin>(ctx)?;
        let window = window(first, after)?;
        let page = api_keys::list(app(ctx), &caller, window).await.graphql()?;
        Ok(page_connection(window, page))
    }

    /// One of the tenant's API keys; null when unknown. Scope `tenant:admin`.
    async fn api_key(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<Option<ApiKeyView>> {
        let caller = authorized::<TenantAdmin>(ctx)?;
        let key = api_keys::find(app(ctx), &caller, &id).await.graphql()?;
        Ok(key.map(ApiKeyView::from))
    }
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
pub struct RevokeApiKeyInput {
    pub id: String,
}

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Issues an API key; its value is in this answer only. Scope `tenant:admin`.
    async fn issue_api_key(
        &self,
        ctx: &Context<'_>,
        input: IssueApiKeyInput,
    ) -> async_graphql::Result<IssuedApiKey> {
        let caller = authorized::<TenantAdmin>(ctx)?;
        let request = IssueApiKeyRequest {
            name: input.name,
            principal: input.principal,
            scopes: input.scopes,
            environment: input
                .environment
                .map(|e| palisade_domain::Environment::from(e).as_str().to_string()),
            expires_at: input.expires_at,
        };
        let (issued, _) = api_keys::issue(app(ctx), &caller, request, None)
            .await
            .graphql()?;
        // Shown once: an idempotent retry's replay shows it redacted.
        if let Ok(secrets) = ctx.data::<super::SecretSink>() {
            secrets.push(&issued.value);
        }
        Ok(issued.into())
    }

    /// Revokes an API key; it fails from the next request on. Scope `tenant:admin`.
    async fn revoke_api_key(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiKeyInput,
    ) -> async_graphql::Result<ApiKeyView> {
        let caller = authorized::<TenantAdmin>(ctx)?;
        let (key, _) = api_keys::revoke(app(ctx), &caller, &input.id, None)
            .await
            .graphql()?;
        Ok(key.into())
    }
}
