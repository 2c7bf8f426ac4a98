//! The yardstick `scripts/bench` measures Palisade's ingest against: the
//! framework Palisade builds on, used the way its documentation shows.
//! cqrs-es with postgres-es, one small aggregate (an account that is
//! opened), one `GenericQuery` view (a `PostgresViewRepository`) updated
//! synchronously by the framework after each commit, and an axum route per
//! command. No authentication, no rate limits, no usage, no audit trail, no
//! feed and no other read model: what a request does here is load the
//! aggregate, append one event in a transaction, then load and save its
//! view.
//!
//! `palisade-bench-peer <database-url>` creates its tables in that (fresh)
//! database, listens on 127.0.0.1 on a free port and prints
//! `listening on <address>` once it accepts requests.
//! `POST /accounts/{id}/open` with `{"owner": "..."}` answers 201, or 409
//! when the account exists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::GenericQuery;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventEnvelope, View};
use postgres_es::{PostgresCqrs, PostgresViewRepository};
use serde::{Deserialize, Serialize};
use sqlx::Executor;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    opened: bool,
}

#[derive(Debug, Deserialize)]
struct OpenAccount {
    owner: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum AccountEvent {
    AccountOpened { account_id: String, owner: String },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        "AccountOpened".into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug)]
struct AlreadyOpen;

impl std::fmt::Display for AlreadyOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the account is already open")
    }
}

impl std::error::Error for AlreadyOpen {}

/// The command carries the id the route names.
struct Open {
    account_id: String,
    owner: String,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = Open;
    type Event = AccountEvent;
    type Error = AlreadyOpen;
    type Services = ();

    async fn handle(
        &mut self,
        command: Open,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AlreadyOpen> {
        if self.opened {
            return Err(AlreadyOpen);
        }
        let event = AccountEvent::AccountOpened {
            account_id: command.account_id,
            owner: command.owner,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened { .. } => self.opened = true,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AccountView {
    account_id: String,
    owner: String,
}

impl View<Account> for AccountView {
    fn update(&mut self, event: &EventEnvelope<Account>) {
        match &event.payload {
            AccountEvent::AccountOpened { account_id, owner } => {
                self.account_id = account_id.clone();
                self.owner = owner.clone();
            }
        }
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);
CREATE TABLE IF NOT EXISTS account_query (
    view_id text NOT NULL,
    version bigint CHECK (version >= 0) NOT NULL,
    payload json NOT NULL,
    PRIMARY KEY (view_id)
);";

async fn open(
    State(cqrs): State<Arc<PostgresCqrs<Account>>>,
    Path(id): Path<String>,
    Json(body): Json<OpenAccount>,
) -> StatusCode {
    let command = Open {
        account_id: id.clone(),
        owner: body.owner,
    };
    match cqrs.execute(&id, command).await {
        Ok(()) => StatusCode::CREATED,
        Err(AggregateError::UserError(_)) | Err(AggregateError::AggregateConflict) => {
            StatusCode::CONFLICT
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .expect("usage: palisade-bench-peer <database-url>");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(32)
        .connect(&url)
        .await
        .expect("the peer's database");
    pool.execute(SCHEMA).await.expect("the peer's schema");
    let view = Arc::new(PostgresViewRepository::<AccountView, Account>::new(
        "account_query",
        pool.clone(),
    ));
    let query = GenericQuery::new(view);
    let cqrs = Arc::new(postgres_es::postgres_cqrs(pool, vec![Box::new(query)], ()));
    let app = Router::new()
        .route("/accounts/{id}/open", post(open))
        .with_state(cqrs);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
