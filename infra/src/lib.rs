//! Palisade's infrastructure: the event store backends behind one seam, the
//! global event feed, the projection runner with its checkpoints and locks,
//! the SQL read-model stores, migrations and configuration.
//!
//! Nothing here decides anything: decisions are the domain's, what an event
//! does to a view is `palisade-projections`'. This crate only moves data in
//! and out of the database, atomically and in order.
#![forbid(unsafe_code)]

pub mod commands;
pub mod config;
pub mod crypto;
pub mod idempotency;
pub mod ingest;
pub mod keyfile;
pub mod keyring;
pub mod process;
pub mod projection;
pub mod readmodel;
pub mod scheduler;
pub mod secrets;
pub mod store;
pub mod usage;
pub mod webhooks;

pub use commands::{CommandError, Commands, EventBatch, Executed, NewAggregate};
pub use config::{Config, ConfigError, LogFormat, Secret};
pub use projection::{ProjectionRunner, ProjectionStatus};
pub use scheduler::{Clock, ManualClock, Scheduler, SystemClock};
pub use store::{EventRepository, FeedSlice, Store, StoreError, StoreKind};
