//! Palisade's API: the axum REST server, GraphQL (`graphql`), the audit
//! stream over SSE (`audit`, `rest::audit`), Prometheus metrics, the CLI
//! (`palisade serve`, `migrate`, `projections`, `tenant create`), and the
//! glue that starts the projection runner beside the server and stops both
//! gracefully.
//!
//! Handlers stay thin: they parse input into domain types, call one
//! command or query, and shape the envelope. Decisions live in the domain,
//! storage in `palisade-infra`.
#![forbid(unsafe_code)]

pub mod admin_token;
pub mod api_keys;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod findings;
pub mod fuzzing;
pub mod graphql;
pub mod idempotency;
pub mod metrics;
pub mod rest;
pub mod server;
pub mod telemetry;
pub mod tenants;
