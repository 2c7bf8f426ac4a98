//! GraphQL at `/graphql` (POST; GET serves GraphiQL) and subscriptions over
//! `graphql-transport-ws` at `/graphql/ws`, with async-graphql.
//!
//! - Same API keys as REST: the POST route sits behind the same middleware
//!   (authentication, rate limits, quota); a websocket authenticates with its
//!   upgrade request's header or `connection_init` payload `{"apiKey": …}`,
//!   and each operation on it counts as a request of that key.
//! - Scopes are checked per field; another tenant's ids resolve to null.
//! - Errors carry `extensions.code`, the REST error codes.
//! - Depth is limited to [`MAX_DEPTH`], complexity to [`MAX_COMPLEXITY`].
//! - The SDL is committed at `api/schema.graphql`; a test fails on drift.

mod mutation;
mod query;
mod subscription;
mod types;

use std::sync::{Arc, OnceLock};

use async_graphql::dataloader::DataLoader;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, ErrorExtensions, Pos, Schema, ServerError};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
use palisade_domain::Scope;
use tokio::sync::watch;

use crate::app::App;
use crate::auth::Principal;
use crate::rest::ApiError;
use crate::server::AppState;

pub use mutation::Mutation;
pub use query::Query;
pub use subscription::Subscription;

pub type PalisadeSchema = Schema<Query, Mutation, Subscription>;

/// Deepest selection a document may have.
pub const MAX_DEPTH: usize = 10;
/// Most fields (weighted by list sizes) one document may select.
pub const MAX_COMPLEXITY: usize = 5_000;

/// The schema with its limits; `app` and `draining` are what resolvers
/// reach (absent when only the SDL is wanted).
pub fn schema(services: Option<(App, watch::Receiver<bool>)>) -> PalisadeSchema {
    let mut builder = Schema::build(Query, Mutation, Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    if let Some((app, draining)) = services {
        builder = builder.data(app).data(Draining(draining));
    }
    builder.finish()
}

/// The SDL as committed at `api/schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

/// Turns true when the server begins to shut down; subscriptions end.
#[derive(Clone)]
pub(crate) struct Draining(pub watch::Receiver<bool>);

/// A REST error as a GraphQL one: the message, and `extensions.code`
/// (plus `details` for validation errors).
pub(crate) fn graphql_error(error: ApiError) -> async_graphql::Error {
    let details: Vec<serde_json::Value> = error
        .details
        .iter()
        .map(|d| serde_json::json!({"field": d.field, "message": d.message}))
        .collect();
    let code = error.code;
    async_graphql::Error::new(error.message).extend_with(|_, extensions| {
        extensions.set("code", code);
        if !details.is_empty() {
            if let Ok(value) =
                async_graphql::Value::from_json(serde_json::Value::Array(details.clone()))
            {
                extensions.set("details", value);
            }
        }
    })
}

/// The caller, checked for `scope`.
pub(crate) fn caller<'a>(
    ctx: &'a async_graphql::Context<'_>,
    scope: Option<Scope>,
) -> async_graphql::Result<&'a Principal> {
    let principal = ctx
        .data::<Principal>()
        .map_err(|_| graphql_error(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "Send an API key in X-API-Key or Authorization: Bearer (or connection_init {\"apiKey\": …})",
        )))?;
    if let Some(scope) = scope {
        principal.require(scope).map_err(graphql_error)?;
    }
    Ok(principal)
}

pub(crate) fn app<'a>(ctx: &'a async_graphql::Context<'_>) -> &'a App {
    ctx.data_unchecked::<App>()
}

/// Errors async-graphql raises itself (parse, validation, limits) carry no
/// code; give them the REST one for a bad request.
fn with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    for error in &mut response.errors {
        add_code(error);
    }
    response
}

fn add_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", "bad_request");
    }
}

/// `POST /graphql`, behind API-key authentication.
pub async fn execute(
    State(state): State<AppState>,
    caller: Principal,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let request = for_caller(request.into_inner(), &state.app, caller);
    with_codes(state.graphql.execute(request).await).into()
}

/// A request as `caller` makes it: the caller, and a DataLoader of its own
/// (loaders cache, so they never outlive one request).
fn for_caller(
    request: async_graphql::Request,
    app: &App,
    caller: Principal,
) -> async_graphql::Request {
    request.data(caller.clone()).data(DataLoader::new(
        types::AssetLoader {
            app: app.clone(),
            caller,
        },
        tokio::spawn,
    ))
}

/// Runs the operations of one websocket. Each `subscribe` is a request of
/// the connection's key, as a `POST /graphql` would be: counted against its
/// rate limits and quota (refused with the REST codes), recorded in usage,
/// and given the caller and a DataLoader of its own.
#[derive(Clone)]
struct WebsocketExecutor {
    state: AppState,
    /// Set once the connection authenticates (upgrade header or
    /// `connection_init`).
    caller: Arc<OnceLock<Principal>>,
}

impl WebsocketExecutor {
    /// The operation made ready to run, or the answer that refuses it.
    async fn admit(
        &self,
        request: async_graphql::Request,
    ) -> Result<async_graphql::Request, async_graphql::Response> {
        let Some(caller) = self.caller.get().cloned() else {
            // Resolvers refuse it: no key.
            return Ok(request);
        };
        let now = chrono::Utc::now();
        let refusal = match crate::auth::admit(&self.state, &caller, now).await {
            Ok(admission) => admission.refusal,
            Err(error) => Some(error),
        };
        if let Some(error) = refusal {
            let error = graphql_error(error).into_server_error(Pos::default());
            return Err(async_graphql::Response::from_errors(vec![error]));
        }
        let group = crate::auth::endpoint_group("/graphql/ws");
        crate::auth::record_usage(&self.state, &caller, group, now).await;
        Ok(for_caller(request, &self.state.app, caller))
    }
}

impl async_graphql::Executor for WebsocketExecutor {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self.admit(request).await {
            Ok(request) => with_codes(self.state.graphql.execute(request).await),
            Err(refused) => refused,
        }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let this = self.clone();
        stream::once(async move {
            match this.admit(request).await {
                Ok(request) => async_graphql::Executor::execute_stream(
                    &this.state.graphql,
                    request,
                    session_data,
                )
                .map(with_codes)
                .boxed(),
                Err(refused) => stream::once(std::future::ready(refused)).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// `GET /graphql`: GraphiQL, which sends the key from its headers editor.
pub async fn graphiql() -> Html<&'static str> {
    Html(include_str!("graphiql.html"))
}

/// `GET /graphql/ws`: subscriptions over `graphql-transport-ws`.
pub async fn websocket(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
        .map(|v| v.trim().to_string());
    let executor = WebsocketExecutor {
        state: state.clone(),
        caller: Arc::default(),
    };
    // A key in the upgrade request is checked before upgrading.
    if let Some(key) = &header_key {
        match crate::auth::authenticate_key(Some(key), &state).await {
            Ok(principal) => {
                let _ = executor.caller.set(principal);
            }
            Err(error) => return error.into_response(),
        }
    }
    let caller = executor.caller.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            GraphQLWebSocket::new(socket, executor, protocol)
                .on_connection_init(move |payload| async move {
                    if caller.get().is_none() {
                        let key = payload
                            .get("apiKey")
                            .or_else(|| payload.get("api_key"))
                            .and_then(|v| v.as_str())
                            .map(str::to_string);
                        let principal = crate::auth::authenticate_key(key.as_deref(), &state)
                            .await
                            .map_err(graphql_error)?;
                        let _ = caller.set(principal);
                    }
                    Ok(Data::default())
                })
                .serve()
                .await
        })
}

#[cfg(test)]
mod tests {
    /// The committed SDL is what the code builds. To update it after a
    /// deliberate change: `PALISADE_WRITE_SCHEMA=1 cargo test -p palisade-api sdl`.
    #[test]
    fn the_committed_sdl_matches_the_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
        let built = super::sdl();
        if std::env::var_os("PALISADE_WRITE_SCHEMA").is_some() {
            std::fs::write(path, &built).expect("write api/schema.graphql");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == built,
            "api/schema.graphql differs from the schema the code builds; \
             rerun with PALISADE_WRITE_SCHEMA=1 to update it, and review the diff"
        );
    }
}
