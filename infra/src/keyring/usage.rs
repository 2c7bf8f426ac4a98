//! Key usage without an event per operation: each operation is counted in
//! memory per key, minute, version, operation and application, and each
//! key's minute is flushed as one `KeyUsageRecorded` event, in the key's
//! usage log (`KeyUsageMinute`, one stream per key and minute) (every
//! [`FLUSH_EVERY`] for the minutes that have ended, all of them at
//! shutdown, and on demand before a usage read). So usage is in the event
//! log, the audit trail and SSE, survives a rebuild, and the hot path
//! appends nothing. A crash loses at most the counts not yet flushed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use palisade_domain::key::{key_usage_id, KeyUsage, KeyUsageCommand, KeyUsageMinute, Operation};
use palisade_domain::{ActorType, Environment, EventMetadata, KeyId};

use crate::{CommandError, Commands};

/// How often ended minutes are flushed.
pub const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How often a flush that lost a race to another replica's flush of the
/// same minute is tried again (flushes commute).
const ATTEMPTS: usize = 50;

/// The most applications counted apart per key and minute; the rest are
/// counted together under [`OTHER_APPLICATIONS`], so that a caller naming a
/// new application on every request cannot grow the buffer or the event.
pub const MAX_APPLICATIONS: usize = 100;
pub const OTHER_APPLICATIONS: &str = "(other)";

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

/// Which pending counts a flush writes.
#[derive(Debug, Clone, Copy)]
pub enum FlushScope<'a> {
    All,
    /// One tenant environment's keys.
    Partition(&'a str, Environment),
    /// One key's.
    Key(&'a str),
}

impl FlushScope<'_> {
    fn covers(&self, bucket: &Bucket, pending: &Pending) -> bool {
        match self {
            FlushScope::All => true,
            FlushScope::Partition(tenant, environment) => {
                pending.tenant_id == *tenant && pending.environment == *environment
            }
            FlushScope::Key(key_id) => bucket.key_id == *key_id,
        }
    }
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
    /// One flush at a time: a flush that returns has every count taken
    /// before it written (or kept), so a usage read that flushes and then
    /// waits for the feed head sees them all.
    flushing: tokio::sync::Mutex<()>,
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
        let known = entry
            .counts
            .keys()
            .any(|(_, _, application)| application == used.application);
        let distinct = || {
            let names: std::collections::HashSet<&String> =
                entry.counts.keys().map(|(_, _, a)| a).collect();
            names.len()
        };
        let application = if known || distinct() < MAX_APPLICATIONS {
            used.application.to_string()
        } else {
            OTHER_APPLICATIONS.to_string()
        };
        let counts = entry
            .counts
            .entry((used.version, used.operation, application))
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

    /// Flushes the minutes before `before` (all, with `None`) of the keys
    /// `scope` covers: one event per key and minute. What cannot be written
    /// is kept for the next flush. Returns the usage logs written: (log id,
    /// its version).
    pub async fn flush(
        &self,
        commands: &Commands,
        before: Option<DateTime<Utc>>,
        scope: FlushScope<'_>,
    ) -> Result<Vec<(String, usize)>, String> {
        let _one_at_a_time = self.flushing.lock().await;
        let taken: Vec<(Bucket, Pending)> = {
            let mut pending = self.lock();
            let due: Vec<Bucket> = pending
                .iter()
                .filter(|(bucket, _)| before.is_none_or(|before| bucket.minute < before))
                .filter(|(bucket, counts)| scope.covers(bucket, counts))
                .map(|(bucket, _)| bucket.clone())
                .collect();
            due.into_iter()
                .filter_map(|bucket| pending.remove(&bucket).map(|p| (bucket, p)))
                .collect()
        };
        let mut written = Vec::new();
        let mut failure = None;
        for (bucket, pending) in taken {
            match write(commands, &bucket, &pending).await {
                Ok(written_log) => written.push(written_log),
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
                if let Err(error) = self.flush(&commands, before, FlushScope::All).await {
                    tracing::warn!(%error, "cannot record key usage; kept for the next flush");
                }
                if stopping {
                    return;
                }
            }
        })
    }
}

/// Appends one key's minute to its usage log; the log's id and version.
/// (A write whose outcome is unknown, such as a connection lost at commit,
/// is kept and written again: its counts may then be counted twice.)
async fn write(
    commands: &Commands,
    bucket: &Bucket,
    pending: &Pending,
) -> Result<(String, usize), String> {
    let key_id = KeyId::parse(&bucket.key_id).map_err(|e| e.to_string())?;
    let log = key_usage_id(&key_id, bucket.minute);
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
        let command = KeyUsageCommand {
            key_id,
            minute: bucket.minute,
            usage: usage.clone(),
        };
        match commands
            .execute::<KeyUsageMinute>(&log, command, (), &metadata)
            .await
        {
            Ok(version) => return Ok((log, version)),
            Err(CommandError::Conflict) => tokio::task::yield_now().await,
            Err(other) => return Err(other.to_string()),
        }
    }
    Err("the key's usage log was written by many replicas at once".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_new_applications_count_together() {
        let buffer = KeyUsageBuffer::default();
        let at = Utc::now();
        for n in 0..150 {
            let application = format!("app-{n}");
            buffer.record(
                UsedKey {
                    key_id: "key_1",
                    tenant_id: "ten_1",
                    environment: Environment::Live,
                    version: 1,
                    operation: Operation::Encrypt,
                    application: &application,
                },
                true,
                10,
                at,
            );
        }
        let pending = buffer.lock();
        let counts = &pending.values().next().unwrap().counts;
        assert_eq!(counts.len(), MAX_APPLICATIONS + 1);
        let other = counts
            .iter()
            .find(|((_, _, application), _)| application == OTHER_APPLICATIONS)
            .map(|(_, c)| *c);
        assert_eq!(other, Some((50, 0, 500)));
        let total: u64 = counts.values().map(|c| c.0).sum();
        assert_eq!(total, 150, "nothing is lost");
    }
}
