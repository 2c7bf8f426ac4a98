//! Process managers: feed consumers that turn events into commands.
//!
//! Each runs like a projection — its own checkpoint, one replica at a time
//! under its lock, rewound by a version change — but instead of writing
//! rows it issues ordinary commands, in [`FeedConsumer::react`], before its
//! checkpoint moves past the batch. So a command is never lost (a crash
//! hands the batch over again), and every command must be idempotent: the
//! managers here decide from the aggregate's or the views' current state
//! ("make this finding open"), and name what they create with derived ids.
//!
//! A manager that reads views first waits until they have applied the
//! batch ([`crate::projection::wait_until_applied`]); they may be further
//! along, which only brings the decision closer to the present.
//!
//! - [`KmsAlertEvaluator`] (`kms-alerts`): judges the alert rules as key
//!   usage arrives and records `KmsAlertTriggered`.
//! - [`KeyHygiene`] (`kms-hygiene`): keeps a finding open for each key
//!   that is overdue a rotation, on a weak algorithm, or quantum-vulnerable
//!   in an active migration plan, and remediates it when the cause goes.

mod kms_alerts;
mod kms_hygiene;

pub use kms_alerts::KmsAlertEvaluator;
pub use kms_hygiene::KeyHygiene;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use palisade_domain::{ActorType, Environment, EventMetadata};
use palisade_projections::{FeedEvent, ProjectionError};

use crate::projection::{FeedConsumer, RunnerError};
use crate::readmodel::Partition;
use crate::{Commands, Store};

/// Every process manager, as the runner runs them beside the projections.
pub fn process_managers(store: &Store) -> Vec<Arc<dyn FeedConsumer>> {
    let commands = Commands::new(store.clone());
    vec![
        Arc::new(KmsAlertEvaluator::new(store.clone(), commands.clone())),
        Arc::new(KeyHygiene::new(store.clone(), commands)),
    ]
}

/// How long a manager waits for the views it reads before it gives the
/// batch up (and the runner retries it with backoff).
const VIEW_PATIENCE: Duration = Duration::from_secs(30);

/// Waits until `views` have applied `event` (the last of a batch that the
/// manager acts on); an error when they do not in time (the batch is
/// handed over again later).
async fn await_views(
    store: &Store,
    manager: &'static str,
    views: &[&str],
    event: &FeedEvent,
) -> Result<(), RunnerError> {
    if crate::projection::wait_until_applied(store, views, event.position, VIEW_PATIENCE).await? {
        return Ok(());
    }
    Err(RunnerError::Projection {
        name: manager,
        position: event.position,
        source: ProjectionError::Failed(format!(
            "the views {views:?} did not apply the batch within {VIEW_PATIENCE:?}"
        )),
    })
}

/// The tenant environment an event belongs to, from its metadata.
fn partition_of(event: &FeedEvent) -> Option<Partition> {
    let tenant_id = event.metadata.get("tenant_id")?;
    let environment = event
        .metadata
        .get("environment")
        .and_then(|e| e.parse::<Environment>().ok())?;
    Some(Partition {
        tenant_id: tenant_id.clone(),
        environment,
    })
}

/// When the store recorded the event: the time a manager's commands carry,
/// so that a replay decides the same.
fn recorded_at(event: &FeedEvent) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(event.recorded_at_ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// The metadata of a command a manager issues for a tenant.
fn metadata(actor: &str, partition: &Partition, at: DateTime<Utc>) -> EventMetadata {
    EventMetadata {
        tenant_id: partition.tenant_id.clone(),
        environment: partition.environment,
        actor: actor.to_string(),
        actor_type: ActorType::System,
        api_key_id: None,
        request_id: None,
        correlation_id: None,
        causation_id: None,
        occurred_at: at,
    }
}

fn failed(manager: &'static str, event: &FeedEvent, message: String) -> RunnerError {
    RunnerError::Projection {
        name: manager,
        position: event.position,
        source: ProjectionError::Failed(message),
    }
}

/// A tenant environment as one map key (`<tenant>/<environment>`).
fn scope_of(partition: &Partition) -> String {
    format!("{}/{}", partition.tenant_id, partition.environment.as_str())
}
