//! KMS keys over GraphQL: `keys`, `key` (with versions and usage) and the
//! lifecycle mutations (`app::keys`). Scope `keys:admin`. The
//! cryptographic operations stay REST (and batch), as the design says.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{ComplexObject, Context, Enum, InputObject, Object};
use chrono::{DateTime, Utc};
use palisade_domain::key::{Algorithm, KeyState};
use palisade_infra::readmodel::{KeyFilter, KeySort};

use super::error::{graphql_error, GraphqlResult as _};
use super::kms::KmsGranularity;
use super::types::{list_cost, page_connection, parsed, window, SortOrder, Total};
use super::{app, authorized};
use crate::app::auth::KeysAdmin;
use crate::app::keys::{
    self, CreateKeyRequest, KeyQuery, ScheduleDeletionRequest, UpdateKeyRequest,
};
use crate::app::Error;
use crate::views::keys::{KeyVersionView, KeyView};
use crate::views::kms::UsageAnalytics;

/// What `keys` may sort by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Default)]
pub enum KeySortField {
    #[default]
    CreatedAt,
    Name,
    LastUsedAt,
}

#[derive(Default)]
pub struct KeysQuery;

#[Object]
impl KeysQuery {
    /// The caller's keys (never their material). Scope `keys:admin`.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "list_cost(first, child_complexity)")]
    async fn keys(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "`enabled`, `disabled`, `pending_deletion`, `destroyed`")] state: Option<
            Vec<String>,
        >,
        #[graphql(desc = "Algorithm names, e.g. `ml-dsa-65`")] algorithm: Option<Vec<String>>,
        tag: Option<String>,
        search: Option<String>,
        sort: Option<KeySortField>,
        order: Option<SortOrder>,
    ) -> async_graphql::Result<Connection<String, KeyView, Total, EmptyFields>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let window = window(first, after)?;
        let query = KeyQuery {
            filter: KeyFilter {
                state: parsed::<KeyState>("state", state)?,
                algorithm: parsed::<Algorithm>("algorithm", algorithm)?,
                tag,
                search,
            },
            sort: match sort.unwrap_or_default() {
                KeySortField::CreatedAt => KeySort::CreatedAt,
                KeySortField::Name => KeySort::Name,
                KeySortField::LastUsedAt => KeySort::LastUsedAt,
            },
            order: order.unwrap_or_default().into(),
        };
        let page = keys::list(app(ctx), &caller, &query, window)
            .await
            .graphql()?;
        Ok(page_connection(window, page))
    }

    /// One key by id or name, with its versions; null when unknown. Scope
    /// `keys:admin`.
    async fn key(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<KeyView>> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        match keys::get(app(ctx), &caller, &id).await {
            Ok(found) => Ok(Some(found.into())),
            Err(Error::NotFound(_)) => Ok(None),
            Err(error) => Err(graphql_error(error)),
        }
    }
}

/// One query per key: usage costs this much in the complexity limit.
const USAGE_COST: usize = 20;

#[ComplexObject]
impl KeyView {
    /// The key's versions, oldest first. One query per key in a list.
    #[graphql(complexity = "USAGE_COST + child_complexity")]
    async fn versions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<KeyVersionView>> {
        if let Some(versions) = &self.versions {
            return Ok(versions.clone());
        }
        let caller = authorized::<KeysAdmin>(ctx)?;
        let found = keys::get(app(ctx), &caller, &self.id).await.graphql()?;
        Ok(KeyView::from(found).versions.unwrap_or_default())
    }

    /// Operations per bucket and operation (from `KeyUsageRecorded`):
    /// `kmsUsage` for this key. `since` defaults to 7 days before `until`,
    /// `until` to now.
    #[graphql(complexity = "USAGE_COST + child_complexity")]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        granularity: Option<KmsGranularity>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<UsageAnalytics> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let bucketing = granularity.unwrap_or_default().into();
        let usage = keys::usage(app(ctx), &caller, &self.id, bucketing, since, until)
            .await
            .graphql()?;
        Ok(usage.into())
    }
}

#[derive(InputObject)]
pub struct CreateKeyInput {
    pub name: String,
    /// `aes-256-gcm`, `chacha20-poly1305`, `hmac-sha256`, `ed25519`,
    /// `ecdsa-p256`, `ml-dsa-65` or `ml-kem-768`.
    pub algorithm: String,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    /// 90–2560; absent for no automatic rotation.
    pub rotation_period_days: Option<u32>,
}

#[derive(InputObject)]
pub struct UpdateKeyInput {
    pub id: String,
    /// Absent leaves it; null clears it.
    pub description: async_graphql::MaybeUndefined<String>,
    pub tags: Option<Vec<String>>,
    /// Absent leaves it; null turns automatic rotation off.
    pub rotation_period_days: async_graphql::MaybeUndefined<u32>,
    pub min_decryption_version: Option<u32>,
    /// The key (id or name) that replaces this one; absent leaves it, null
    /// removes the link.
    pub replaced_by: async_graphql::MaybeUndefined<String>,
}

fn maybe<T>(value: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(value) => Some(Some(value)),
    }
}

#[derive(Default)]
pub struct KeysMutation;

#[Object]
impl KeysMutation {
    /// Creates a key with version 1. Scope `keys:admin`.
    async fn create_key(
        &self,
        ctx: &Context<'_>,
        input: CreateKeyInput,
    ) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = CreateKeyRequest {
            name: input.name,
            algorithm: input.algorithm,
            description: input.description,
            tags: input.tags.unwrap_or_default(),
            rotation_period_days: input.rotation_period_days,
        };
        Ok(keys::create(app(ctx), &caller, request)
            .await
            .graphql()?
            .into())
    }

    /// Changes a key's settings. Scope `keys:admin`.
    async fn update_key(
        &self,
        ctx: &Context<'_>,
        input: UpdateKeyInput,
    ) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = UpdateKeyRequest {
            description: maybe(input.description),
            tags: input.tags,
            rotation_period_days: maybe(input.rotation_period_days),
            min_decryption_version: input.min_decryption_version,
            replaced_by: maybe(input.replaced_by),
        };
        Ok(keys::update(app(ctx), &caller, &input.id, request, None)
            .await
            .graphql()?
            .into())
    }

    /// Adds the next version. Scope `keys:admin`.
    async fn rotate_key(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(keys::rotate(app(ctx), &caller, &id).await.graphql()?.into())
    }

    /// Scope `keys:admin`.
    async fn disable_key(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(keys::disable(app(ctx), &caller, &id, None)
            .await
            .graphql()?
            .into())
    }

    /// Scope `keys:admin`.
    async fn enable_key(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(keys::enable(app(ctx), &caller, &id, None)
            .await
            .graphql()?
            .into())
    }

    /// The key is unusable at once and destroyed when the window (7–30
    /// days, default 30) ends. Scope `keys:admin`.
    async fn schedule_key_deletion(
        &self,
        ctx: &Context<'_>,
        id: String,
        pending_window_days: Option<u32>,
    ) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        let request = ScheduleDeletionRequest {
            pending_window_days,
        };
        Ok(
            keys::schedule_deletion(app(ctx), &caller, &id, request, None)
                .await
                .graphql()?
                .into(),
        )
    }

    /// The key becomes disabled. Scope `keys:admin`.
    async fn cancel_key_deletion(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<KeyView> {
        let caller = authorized::<KeysAdmin>(ctx)?;
        Ok(keys::cancel_deletion(app(ctx), &caller, &id, None)
            .await
            .graphql()?
            .into())
    }
}
