//! GraphQL at `/graphql` (POST; GET serves GraphiQL) and subscriptions over
//! `graphql-transport-ws` at `/graphql/ws`, with async-graphql.
//!
//! - Same API keys as REST: the POST route sits behind the same middleware
//!   (authentication, rate limits, quota); a websocket authenticates with its
//!   upgrade request's header or `connection_init` payload `{"apiKey": …}`
//!   (within [`CONNECTION_INIT_TIMEOUT`]), and each operation on it is
//!   authorised again exactly as an HTTP request would be: the key is read
//!   afresh (revoked, expired, tenant suspended or plan changed), then
//!   counted against the limits. A refusal of the key closes the socket
//!   with 4401 `invalid_api_key` or 4403 `tenant_suspended`.
//! - Scopes are checked per field; another tenant's ids resolve to null.
//! - Errors carry `extensions.code`, the REST error codes.
//! - Depth is limited to [`MAX_DEPTH`], complexity to [`MAX_COMPLEXITY`]
//!   (lists cost their items, a chain walk [`audit::AUDIT_VERIFICATION_COST`]),
//!   root fields (aliases included) to [`MAX_ROOT_FIELDS`], and every
//!   mutation root field counts as one request against the rate limits and
//!   quota. Bodies and websocket messages are at most [`BODY_LIMIT`]; one
//!   operation per request (a batched array is refused).
//! - The SDL is committed at `api/schema.graphql`; a test fails on drift.

mod access;
mod api_keys;
mod assets;
mod audit;
mod census;
mod error;
mod findings;
mod ingestion;
mod keys;
mod kms;
mod risk;
mod secrets;
mod tenants;
mod timeline;
mod types;
mod webhooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_graphql::dataloader::DataLoader;
use async_graphql::http::{
    WebSocket as ProtocolStream, WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS,
};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, MergedObject, MergedSubscription, Pos, Schema, ServerError};
use async_graphql_axum::GraphQLResponse;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use futures_util::stream::{self, BoxStream, StreamExt};
use futures_util::SinkExt;
use tokio::sync::{mpsc, watch};

use error::{close_code, GraphqlResult as _};
pub(crate) use error::{graphql_error, http_error};

use crate::app::auth::{authenticate_key, ScopeName};
use crate::app::{self as application, App, Authorized, Origin, RequestContext};
use crate::rest::ApiError;
use crate::state::AppState;

// Every query field, one object per resource (each in its own file);
// plain comments, so that the SDL keeps no description here.
#[derive(MergedObject, Default)]
pub struct Query(
    tenants::TenantsQuery,
    api_keys::ApiKeysQuery,
    findings::FindingsQuery,
    assets::AssetsQuery,
    risk::RiskQuery,
    timeline::TimelineQuery,
    audit::AuditQuery,
    keys::KeysQuery,
    kms::KmsQuery,
    kms::KmsAlertsQuery,
    secrets::SecretsQuery,
    access::AccessQuery,
    ingestion::IngestionQuery,
    tenants::ProjectionsQuery,
    webhooks::WebhooksQuery,
);

// Every mutation, one object per resource.
#[derive(MergedObject, Default)]
pub struct Mutation(
    findings::FindingsMutation,
    risk::RiskMutation,
    api_keys::ApiKeysMutation,
    keys::KeysMutation,
    kms::KmsMutation,
    secrets::SecretsMutation,
    access::AccessMutation,
    webhooks::WebhooksMutation,
);

// Every subscription, one object per resource.
#[derive(MergedSubscription, Default)]
pub struct Subscription(audit::AuditSubscription);

pub type PalisadeSchema = Schema<Query, Mutation, Subscription>;

/// Deepest selection a document may have.
pub const MAX_DEPTH: usize = 10;
/// Most fields (weighted by list sizes) one document may select.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Most root fields (aliases included) one operation may select.
pub const MAX_ROOT_FIELDS: usize = 20;
/// The largest request body, and the largest websocket message.
pub const BODY_LIMIT: usize = crate::rest::BODY_LIMIT;
/// How long a websocket may stay open without `connection_init`.
pub const CONNECTION_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema with its limits; `app` and `draining` are what resolvers
/// reach (absent when only the SDL is wanted).
pub fn schema(services: Option<(App, watch::Receiver<bool>)>) -> PalisadeSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
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

/// The request's context; `missing_api_key` when it has none.
pub(crate) fn context<'a>(
    ctx: &'a async_graphql::Context<'_>,
) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<RequestContext>().map_err(|_| {
        graphql_error(application::Error::MissingApiKey(
            "Send an API key in X-API-Key or Authorization: Bearer (or connection_init {\"apiKey\": …})".into(),
        ))
    })
}

/// The caller's proof that it holds scope `S`; `forbidden` otherwise.
pub(crate) fn authorized<S: ScopeName>(
    ctx: &async_graphql::Context<'_>,
) -> async_graphql::Result<Authorized<S>> {
    context(ctx)?.authorize::<S>().graphql()
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

/// The secrets a GraphQL response carries (a new API key's value), as the
/// resolvers that produce them note them: never kept by idempotency.
#[derive(Clone, Default)]
pub(crate) struct SecretSink(Arc<Mutex<Vec<String>>>);

impl SecretSink {
    pub(crate) fn push(&self, value: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value.to_string());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// `POST /graphql`, behind API-key authentication (which counted the
/// request once). The body is read up to [`BODY_LIMIT`] (413 beyond), must
/// be one JSON request (a batched array is 400 `batch_not_supported`),
/// and each mutation root field past the first counts once more.
pub async fn execute(
    State(state): State<AppState>,
    Extension(schema): Extension<PalisadeSchema>,
    context: RequestContext,
    body: Body,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::payload_too_large(BODY_LIMIT).into_response();
    };
    let mut request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let weight = match operation_weight(&mut request) {
        Ok(weight) => weight,
        Err(error) => return error.into_response(),
    };
    if weight > 1 {
        let now = chrono::Utc::now();
        let caller = &context.principal;
        match application::auth::admit(&state.app, caller, weight - 1, now).await {
            Ok(admission) => {
                if let Some(refusal) = admission.refusal {
                    return ApiError::from(refusal).into_response();
                }
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
        application::auth::record_usage(&state.app, caller, "graphql", weight - 1, now);
    }
    let secrets = SecretSink::default();
    let request = for_caller(request, &state.app, context).data(secrets.clone());
    let mut response =
        GraphQLResponse::from(with_codes(schema.execute(request).await)).into_response();
    let secrets = secrets.take();
    if !secrets.is_empty() {
        response
            .extensions_mut()
            .insert(crate::rest::idempotency::Secrets(secrets));
    }
    response
}

/// One GraphQL request from a JSON body; the envelope's 400 otherwise.
fn parse_request(bytes: &[u8]) -> Result<async_graphql::Request, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Malformed JSON: {e}")))?;
    if value.is_array() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "batch_not_supported",
            "Batched GraphQL requests are not supported; send one operation per request",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("Not a GraphQL request: {e}")))
}

/// How many requests the operation counts as: one, or one per mutation
/// root field. Refused with 400 before async-graphql validates it: more
/// than [`MAX_ROOT_FIELDS`] root fields (`too_many_root_fields`), more than
/// [`MAX_COMPLEXITY`] fields once fragments are expanded, a fragment cycle
/// or fragments nested too deeply (`bad_request`). A document that does not
/// parse counts once (execution reports why).
fn operation_weight(request: &mut async_graphql::Request) -> Result<u64, ApiError> {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return Ok(1);
    };
    let census = census::census(document, name.as_deref()).map_err(|refusal| match refusal {
        census::Refusal::Cycle(fragment) => {
            ApiError::bad_request(format!("The fragment '{fragment}' spreads itself"))
        }
        census::Refusal::TooDeep => ApiError::bad_request(format!(
            "Fragments nest more than {} deep",
            census::MAX_NESTING
        )),
    })?;
    if census.expanded_fields > MAX_COMPLEXITY {
        return Err(ApiError::bad_request(format!(
            "The document selects {} fields once its fragments are expanded; at most {MAX_COMPLEXITY}",
            census.expanded_fields
        )));
    }
    let fields = census.root_fields;
    if fields > MAX_ROOT_FIELDS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_root_fields",
            format!(
                "An operation may select at most {MAX_ROOT_FIELDS} root fields (aliases included); this one selects {fields}"
            ),
        ));
    }
    Ok(match census.operation {
        Some(OperationType::Mutation) => u64::try_from(fields).unwrap_or(u64::MAX).max(1),
        _ => 1,
    })
}

/// A request in its caller's context: the context, and a DataLoader of its
/// own (loaders cache, so they never outlive one request).
fn for_caller(
    request: async_graphql::Request,
    app: &App,
    context: RequestContext,
) -> async_graphql::Request {
    request.data(context.clone()).data(DataLoader::new(
        types::AssetLoader {
            app: app.clone(),
            context,
        },
        tokio::spawn,
    ))
}

/// A refusal as the answer to one websocket operation.
fn refused(error: async_graphql::Error) -> async_graphql::Response {
    let error = error.into_server_error(Pos::default());
    async_graphql::Response::from_errors(vec![error])
}

/// Runs the operations of one websocket. Each `subscribe` is a request of
/// the connection's key, as a `POST /graphql` would be: the key is read
/// again (a refused key closes the socket), the operation is counted
/// against the rate limits and quota (refused with the REST codes) and
/// recorded in usage, and it gets the caller and a DataLoader of its own.
#[derive(Clone)]
struct WebsocketExecutor {
    state: AppState,
    schema: PalisadeSchema,
    /// Set once the connection authenticates (upgrade header or
    /// `connection_init`).
    caller: Arc<OnceLock<application::Principal>>,
    /// Asks the socket's loop to close with a code and reason.
    close: mpsc::UnboundedSender<(u16, String)>,
}

impl WebsocketExecutor {
    /// The operation made ready to run, or the answer that refuses it.
    async fn admit(
        &self,
        mut request: async_graphql::Request,
    ) -> Result<async_graphql::Request, async_graphql::Response> {
        let Some(first) = self.caller.get() else {
            // Resolvers refuse it: no key.
            return Ok(request);
        };
        let app = &self.state.app;
        let caller = match application::auth::reauthenticate(app, &first.key_id).await {
            Ok(caller) => caller,
            Err(error) => {
                if let Some(code) = close_code(&error) {
                    let _ = self.close.send((code, error.code().to_string()));
                }
                return Err(refused(graphql_error(error)));
            }
        };
        let weight = operation_weight(&mut request).map_err(|e| refused(http_error(e)))?;
        let now = chrono::Utc::now();
        let refusal = match application::auth::admit(app, &caller, weight, now).await {
            Ok(admission) => admission.refusal,
            Err(error) => Some(error),
        };
        if let Some(error) = refusal {
            return Err(refused(graphql_error(error)));
        }
        application::auth::record_usage(app, &caller, "graphql", weight, now);
        let context = RequestContext::new(caller, Origin::default());
        Ok(for_caller(request, app, context))
    }
}

impl async_graphql::Executor for WebsocketExecutor {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self.admit(request).await {
            Ok(request) => with_codes(self.schema.execute(request).await),
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
                Ok(request) => {
                    async_graphql::Executor::execute_stream(&this.schema, request, session_data)
                        .map(with_codes)
                        .boxed()
                }
                Err(refused) => stream::once(std::future::ready(refused)).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// The GraphQL routes: `POST /graphql` behind API-key authentication and
/// idempotency (as REST), `GET /graphql` (GraphiQL) and `GET /graphql/ws`.
/// The schema comes as an `Extension`.
pub fn routes(state: &AppState) -> axum::Router<AppState> {
    use axum::middleware::from_fn_with_state;
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/graphql",
            post(execute)
                .route_layer(from_fn_with_state(
                    state.clone(),
                    crate::rest::idempotency::layer,
                ))
                .route_layer(from_fn_with_state(
                    state.clone(),
                    crate::rest::auth::require_api_key,
                ))
                .get(graphiql),
        )
        .route("/graphql/ws", get(websocket))
}

/// `GET /graphql`: GraphiQL, which sends the key from its headers editor.
pub async fn graphiql() -> Html<&'static str> {
    Html(include_str!("graphiql.html"))
}

/// `GET /graphql/ws`: subscriptions over `graphql-transport-ws`.
pub async fn websocket(
    State(state): State<AppState>,
    Extension(schema): Extension<PalisadeSchema>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(rejection.status(), "bad_request", rejection.body_text())
                .into_response()
        }
    };
    let protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let Some(protocol) = protocol else {
        return ApiError::bad_request(
            "Sec-WebSocket-Protocol must name graphql-transport-ws (or graphql-ws)",
        )
        .into_response();
    };
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
    let (close, closing) = mpsc::unbounded_channel();
    let executor = WebsocketExecutor {
        state: state.clone(),
        schema,
        caller: Arc::default(),
        close,
    };
    // A key in the upgrade request is checked before upgrading.
    if let Some(key) = &header_key {
        match authenticate_key(&state.app, Some(key)).await {
            Ok(principal) => {
                let _ = executor.caller.set(principal);
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
    }
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(BODY_LIMIT)
        .max_frame_size(BODY_LIMIT)
        .on_upgrade(move |socket| serve_websocket(socket, executor, protocol, closing, state))
}

/// How long one message may take to reach a client that stopped reading
/// before its socket is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an open socket's key is checked again, operations or not. An
/// idle socket closes at the third check that refuses its key: within 15 s
/// of the revocation, expiry or suspension.
const RECHECK: Duration = Duration::from_secs(5);

/// Pumps one websocket through the protocol, and closes it when its key is
/// refused (at an operation at once, or by the checks every [`RECHECK`]), when
/// `connection_init` does not come within [`CONNECTION_INIT_TIMEOUT`]
/// (4408, as graphql-transport-ws says), or when the client stops reading
/// for [`SEND_TIMEOUT`].
async fn serve_websocket(
    socket: WebSocket,
    executor: WebsocketExecutor,
    protocol: WebSocketProtocols,
    mut closing: mpsc::UnboundedReceiver<(u16, String)>,
    state: AppState,
) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| std::future::ready(message.is_ok()))
        .filter_map(|message| {
            std::future::ready(match message {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });
    let initialised = Arc::new(AtomicBool::new(false));
    let caller = executor.caller.clone();
    let checked = executor.caller.clone();
    let marked = initialised.clone();
    let app = state.app.clone();
    let messages = ProtocolStream::new(executor, input, protocol).on_connection_init(
        move |payload| async move {
            if caller.get().is_none() {
                let key = payload
                    .get("apiKey")
                    .or_else(|| payload.get("api_key"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                let principal = authenticate_key(&state.app, key.as_deref())
                    .await
                    .graphql()?;
                let _ = caller.set(principal);
            }
            marked.store(true, Ordering::Release);
            Ok(Data::default())
        },
    );
    futures_util::pin_mut!(messages);
    let init_deadline = tokio::time::sleep(CONNECTION_INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let mut recheck = tokio::time::interval(RECHECK);
    let mut refused_checks = 0u8;
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        let (outgoing, last) = tokio::select! {
            // Answers first: a refused operation's error goes out before
            // the close it caused.
            biased;
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => (Message::Text(text.into()), false),
                Some(WsMessage::Close(code, reason)) => (close(code, reason), true),
                None => break,
            },
            Some((code, reason)) = closing.recv() => (close(code, reason), true),
            () = &mut init_deadline, if !initialised.load(Ordering::Acquire) => {
                (close(4408, "Connection initialisation timeout".to_string()), true)
            }
            _ = recheck.tick() => {
                let Some(first) = checked.get() else { continue };
                match application::auth::reauthenticate(&app, &first.key_id).await {
                    Ok(_) => {
                        refused_checks = 0;
                        continue;
                    }
                    Err(error) => match close_code(&error) {
                        // Subscriptions check their key as often, and end
                        // with the refusal then `complete`: give them two
                        // checks' time to say so before the socket closes.
                        Some(code) if refused_checks >= 2 => {
                            (close(code, error.code().to_string()), true)
                        }
                        Some(_) => {
                            refused_checks += 1;
                            continue;
                        }
                        // Not a refusal (the database is away): look again later.
                        None => continue,
                    },
                }
            }
        };
        let sent = tokio::time::timeout(SEND_TIMEOUT, sink.send(outgoing)).await;
        if last || !matches!(sent, Ok(Ok(()))) {
            break;
        }
    }
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
