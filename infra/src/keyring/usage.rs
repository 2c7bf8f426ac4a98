//! Key usage without an event per operation: each operation is counted in
//! memory per key, minute, version, operation and application, and each
//! key's minute is flushed as one `KeyUsageRecorded` event (every
//! [`FLUSH_EVERY`] for the minutes that have ended, all of them at
//! shutdown, and on demand before a usage read). So usage is in the event
//! log, the audit trail and SSE, survives a rebuild, and the hot path
//! appends nothing. A crash loses at most the counts not yet flushed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use palisade_domain::key::{Key, KeyCommand, KeyUsage, Operation};
use palisade_domain::{ActorType, Environment, EventMetadata};

use crate::{CommandError, Commands};

/// How often ended minutes are flushed.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often a flush that lost a race to another command is tried again
/// (usage commutes with every key command).
const ATTEMPTS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Bucket {
    key_id: String,
    minute: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Pending {
    tenant_id: String,
    environment: Environment,
    counts: BTreeMap<(u32, Operation, String), (u64, u64, u64)>,
}

/// One operation to count.
pub struct UsedKey<'a> {
    pub key_id: &'a str,
    pub tenant_id: &'a str,
    pub environment: Environment,
    pub version: u32,
    pub operation: Operation,
    pub application: &'a str,
}

/// The operations counted on this replica and not yet flushed.
#[derive(Default)]
pub struct KeyUsageBuffer {
    pending: Mutex<HashMap<Bucket, Pending>>,
}

impl KeyUsageBuffer {
    /// Counts one operation at `at`: a success with `bytes` of input, or
    /// an error.
    pub fn record(&self, used: UsedKey<'_>, ok: bool, bytes: u64, at: DateTime<Utc>) {
        let minute = at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at);
        let mut pending = self.lock();
        let entry = pending
            .entry(Bucket {
                key_id: used.key_id.to_string(),
                minute,
            })
            .or_insert_with(|| Pending {
                tenant_id: used.tenant_id.to_string(),
                environment: used.environment,
                counts: BTreeMap::new(),
            });
        let counts = entry
            .counts
            .entry((used.version, used.operation, used.application.to_string()))
            .or_insert((0, 0, 0));
        if ok {
            counts.0 += 1;
            counts.2 = counts.2.saturating_add(bytes);
        } else {
            counts.1 += 1;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Bucket, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Flushes the minutes before `before` (all, with `None`): one event
    /// per key and minute. What cannot be written is kept for the next
    /// flush. Returns the keys whose usage was written.
    pub async fn flush(
        &self,
        commands: &Commands,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<(String, usize)>, String> {
        let taken: Vec<(Bucket, Pending)> = {
            let mut pending = self.lock();
            let due: Vec<Bucket> = pending
                .keys()
                .filter(|bucket| before.is_none_or(|before| bucket.minute < before))
                .cloned()
                .collect();
            due.into_iter()
                .filter_map(|bucket| pending.remove(&bucket).map(|p| (bucket, p)))
                .collect()
        };
        let mut written = Vec::new();
        let mut failure = None;
        for (bucket, pending) in taken {
            match write(commands, &bucket, &pending).await {
                Ok(version) => written.push((bucket.key_id.clone(), version)),
                Err(error) => {
                    failure = Some(error);
                    self.restore(bucket, pending);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(written),
        }
    }

    fn restore(&self, bucket: Bucket, pending: Pending) {
        let mut all = self.lock();
        let entry = all.entry(bucket).or_insert_with(|| Pending {
            tenant_id: pending.tenant_id.clone(),
            environment: pending.environment,
            counts: BTreeMap::new(),
        });
        for (key, (count, errors, bytes)) in pending.counts {
            let kept = entry.counts.entry(key).or_insert((0, 0, 0));
            kept.0 += count;
            kept.1 += errors;
            kept.2 = kept.2.saturating_add(bytes);
        }
    }

    /// Flushes the minutes that have ended every [`FLUSH_EVERY`] until
    /// shutdown, then everything.
    pub fn flush_every(
        self: Arc<Self>,
        commands: Commands,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let stopping = tokio::select! {
                    _ = tokio::time::sleep(FLUSH_EVERY) => false,
                    _ = shutdown.changed() => true,
                };
                let stopping = stopping || *shutdown.borrow();
                let before = if stopping {
                    None
                } else {
                    Utc::now().duration_trunc(TimeDelta::minutes(1)).ok()
                };
                if let Err(error) = self.flush(&commands, before).await {
                    tracing::warn!(%error, "cannot record key usage; kept for the next flush");
                }
                if stopping {
                    return;
                }
            }
        })
    }
}

async fn write(commands: &Commands, bucket: &Bucket, pending: &Pending) -> Result<usize, String> {
    let usage: Vec<KeyUsage> = pending
        .counts
        .iter()
        .map(
            |((version, operation, application), (count, errors, bytes))| KeyUsage {
                version: *version,
                operation: *operation,
                application: application.clone(),
                count: *count,
                errors: *errors,
                bytes: *bytes,
            },
        )
        .collect();
    let metadata = EventMetadata {
        tenant_id: pending.tenant_id.clone(),
        environment: pending.environment,
        actor: "kms".into(),
        actor_type: ActorType::System,
        api_key_id: None,
        request_id: None,
        correlation_id: None,
        causation_id: None,
        occurred_at: Utc::now(),
    };
    for _ in 0..ATTEMPTS {
        let command = KeyCommand::RecordUsage {
            minute: bucket.minute,
            usage: usage.clone(),
        };
        match commands
            .execute::<Key>(&bucket.key_id, command, (), &metadata)
            .await
        {
            Ok(version) => return Ok(version),
            Err(CommandError::Conflict) => tokio::task::yield_now().await,
            Err(other) => return Err(other.to_string()),
        }
    }
    Err("the key was changed by many commands at once".into())
}
