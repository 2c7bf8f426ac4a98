//! Palisade's integration tests, in one crate so that they link once:
//! the event-store contract suite on both backends, and black-box tests of
//! the real `palisade` binary.
#![allow(clippy::unwrap_used)]

mod access;
mod api_keys;
mod architecture;
mod audit;
mod concurrency;
mod crash;
mod event_store_contract;
mod findings;
mod graphql;
mod idempotency;
mod ingestion;
mod keyring;
mod keys;
mod kms;
mod kms_hygiene;
mod openapi;
mod outage;
mod rate_limits;
mod risk_property;
mod robustness;
mod scheduler;
mod secrets;
mod security;
mod security_input;
mod server;
mod webhooks;
