//! Palisade's API: the axum REST server, GraphQL (`graphql`), the audit
//! stream over SSE (`audit`, `rest::audit`), Prometheus metrics, the CLI
//! (`palisade serve`, `migrate`, `projections`, `tenant create`, and the
//! client `import`), and the
//! glue that starts the projection runner beside the server and stops both
//! gracefully.
//!
//! Layers (see `docs/architecture.md`): `app` holds the use cases, one
//! module per aggregate or read model, and knows nothing of HTTP or
//! GraphQL; `rest` and `graphql` are thin adapters over it, showing what
//! `views` shapes; `cli` is a third adapter. Decisions live in the domain,
//! storage in `palisade-infra`.
#![forbid(unsafe_code)]

pub mod admin_token;
pub mod app;
pub mod cli;
pub mod fuzzing;
pub mod graphql;
pub mod import;
pub mod metrics;
pub mod rest;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod views;
pub mod webhooks;
