//! The secret store over GraphQL: `secrets`, `secret` (metadata and
//! versions, never values), `leakageIncidents`, and mutations for writes
//! and state changes (`app::secrets`, `app::leakage`). Values are read over
//! REST only (`GET /v1/secrets/data/{path}`), where each read is recorded.
//! Reads need `secrets:read`, changes `secrets:write`.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, InputObject, Object};
use chrono::{DateTime, Utc};
use palisade_domain::finding::Severity;
use palisade_domain::secret::IncidentStatus;
use zeroize::Zeroizing;

use super::error::{graphql_error, GraphqlResult as _};
use super::types::{list_cost, page_connection, parsed, window, Total};
use super::{app, authorized};
use crate::app::auth::{SecretsRead, SecretsWrite};
use crate::app::leakage::{self, IncidentQuery, ReportIncidentRequest, UpdateIncidentRequest};
use crate::app::secrets::{
    self, RollbackRequest, UpdateMetadataRequest, VersionRequest, VersionsAction, WriteOptions,
    WriteSecretRequest,
};
use crate::app::Error;
use crate::views::secrets::{IncidentView, SecretGraph, SecretSummaryView, SecretWrittenView};

#[derive(Default)]
pub struct SecretsQuery;

#[Object]
impl SecretsQuery {
    /// The caller's secrets whose path starts with `prefix`, by path.
    /// Scope `secrets:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn secrets(
        &self,
        ctx: &Context<'_>,
        prefix: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, SecretSummaryView, Total, EmptyFields>> {
        let caller = authorized::<SecretsRead>(ctx)?;
        let window = window(first, after)?;
        let page = secrets::list(app(ctx), &caller, prefix.as_deref(), window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One secret's metadata and versions (never values); null when there
    /// is none. Scope `secrets:read`.
    async fn secret(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> async_graphql::Result<Option<SecretGraph>> {
        let caller = authorized::<SecretsRead>(ctx)?;
        match secrets::metadata(app(ctx), &caller, &path).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(graphql_error(error)),
        }
    }

    /// Reported leaks, newest first. Scope `secrets:read`.
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn leakage_incidents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "`open`, `investigating`, `resolved`, `false_positive`")] status: Option<
            Vec<String>,
        >,
        #[graphql(desc = "`critical`, `high`, `medium`, `low`, `info`")] severity: Option<
            Vec<String>,
        >,
        since: Option<DateTime<Utc>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, IncidentView, Total, EmptyFields>> {
        let caller = authorized::<SecretsRead>(ctx)?;
        let window = window(first, after)?;
        let query = IncidentQuery {
            status: parsed::<IncidentStatus>("status", status)?,
            severity: parsed::<Severity>("severity", severity)?,
            since,
        };
        let page = leakage::incidents(app(ctx), &caller, query, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }
}

#[derive(InputObject)]
pub struct WriteSecretInput {
    pub path: String,
    /// The value (at most 1 MiB); sealed, never in events or logs.
    pub value: String,
    /// Check-and-set: the version expected to be current (0: must not exist).
    pub cas: Option<u32>,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateSecretMetadataInput {
    pub path: String,
    pub max_versions: Option<u32>,
    pub cas_required: Option<bool>,
    /// Seconds or a duration (`768h`); `0s` turns it off.
    pub delete_version_after: Option<String>,
}

#[derive(InputObject)]
pub struct ReportLeakInput {
    pub path: String,
    pub source: String,
    pub location: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    pub details: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateLeakageIncidentInput {
    pub id: String,
    /// `investigating`, `resolved` or `false_positive`.
    pub status: Option<String>,
    pub resolution: Option<String>,
    pub notes: Option<String>,
}

#[derive(Default)]
pub struct SecretsMutation;

#[Object]
impl SecretsMutation {
    /// Writes the next version. Scope `secrets:write`.
    async fn write_secret(
        &self,
        ctx: &Context<'_>,
        input: WriteSecretInput,
    ) -> async_graphql::Result<SecretWrittenView> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = WriteSecretRequest {
            value: Zeroizing::new(input.value),
            cas: input.cas,
            metadata: Some(WriteOptions {
                reason: input.reason,
            }),
        };
        Ok(secrets::write(app(ctx), &caller, &input.path, request)
            .await
            .graphql()?
            .into())
    }

    /// Changes a secret's metadata. Scope `secrets:write`.
    async fn update_secret_metadata(
        &self,
        ctx: &Context<'_>,
        input: UpdateSecretMetadataInput,
    ) -> async_graphql::Result<SecretGraph> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = UpdateMetadataRequest {
            max_versions: input.max_versions,
            cas_required: input.cas_required,
            delete_version_after: input.delete_version_after,
            custom_metadata: None,
        };
        Ok(
            secrets::update_metadata(app(ctx), &caller, &input.path, request, None)
                .await
                .graphql()?
                .into(),
        )
    }

    /// Soft-deletes versions (the current one when none is named).
    /// Scope `secrets:write`.
    async fn delete_secret_versions(
        &self,
        ctx: &Context<'_>,
        path: String,
        versions: Option<Vec<u32>>,
    ) -> async_graphql::Result<SecretGraph> {
        versions_command(ctx, path, VersionsAction::Delete, versions).await
    }

    /// Restores soft-deleted versions. Scope `secrets:write`.
    async fn undelete_secret_versions(
        &self,
        ctx: &Context<'_>,
        path: String,
        versions: Vec<u32>,
    ) -> async_graphql::Result<SecretGraph> {
        versions_command(ctx, path, VersionsAction::Undelete, Some(versions)).await
    }

    /// Destroys versions for good. Scope `secrets:write`.
    async fn destroy_secret_versions(
        &self,
        ctx: &Context<'_>,
        path: String,
        versions: Vec<u32>,
    ) -> async_graphql::Result<SecretGraph> {
        versions_command(ctx, path, VersionsAction::Destroy, Some(versions)).await
    }

    /// Writes a new version with the value of `version`. Scope `secrets:write`.
    async fn rollback_secret(
        &self,
        ctx: &Context<'_>,
        path: String,
        version: u32,
        cas: Option<u32>,
        reason: Option<String>,
    ) -> async_graphql::Result<SecretWrittenView> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = RollbackRequest {
            version,
            cas,
            reason,
        };
        Ok(secrets::rollback(app(ctx), &caller, &path, request)
            .await
            .graphql()?
            .into())
    }

    /// Flags a version as deprecated. Scope `secrets:write`.
    async fn deprecate_secret_version(
        &self,
        ctx: &Context<'_>,
        path: String,
        version: u32,
        reason: Option<String>,
    ) -> async_graphql::Result<SecretGraph> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = VersionRequest { version, reason };
        Ok(secrets::deprecate(app(ctx), &caller, &path, request)
            .await
            .graphql()?
            .into())
    }

    /// Destroys every version and removes the metadata; answers the secret
    /// as it was. Scope `secrets:write`.
    async fn delete_secret(
        &self,
        ctx: &Context<'_>,
        path: String,
    ) -> async_graphql::Result<SecretGraph> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let was = secrets::delete_all(app(ctx), &caller, &path)
            .await
            .graphql()?;
        Ok(crate::app::secrets::SecretDetail {
            found: was,
            leaked: false,
        }
        .into())
    }

    /// Reports a leak. Scope `secrets:write`.
    async fn report_leak(
        &self,
        ctx: &Context<'_>,
        input: ReportLeakInput,
    ) -> async_graphql::Result<IncidentView> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = ReportIncidentRequest {
            path: input.path,
            source: input.source,
            location: input.location,
            severity: input.severity,
            details: input.details,
        };
        Ok(leakage::report_incident(app(ctx), &caller, request)
            .await
            .graphql()?
            .into())
    }

    /// Investigates or closes an incident. Scope `secrets:write`.
    async fn update_leakage_incident(
        &self,
        ctx: &Context<'_>,
        input: UpdateLeakageIncidentInput,
    ) -> async_graphql::Result<IncidentView> {
        let caller = authorized::<SecretsWrite>(ctx)?;
        let request = UpdateIncidentRequest {
            status: input.status,
            resolution: input.resolution,
            notes: input.notes,
        };
        Ok(
            leakage::update_incident(app(ctx), &caller, &input.id, request)
                .await
                .graphql()?
                .into(),
        )
    }
}

async fn versions_command(
    ctx: &Context<'_>,
    path: String,
    action: VersionsAction,
    versions: Option<Vec<u32>>,
) -> async_graphql::Result<SecretGraph> {
    let caller = authorized::<SecretsWrite>(ctx)?;
    Ok(secrets::change_versions(
        app(ctx),
        &caller,
        &path,
        action,
        versions.unwrap_or_default(),
    )
    .await
    .graphql()?
    .into())
}
