//! Key hygiene (`kms-hygiene`): after every batch that changes a key (or a
//! migration plan, which may change every key of its tenant environment),
//! each reason of `palisade_domain::kms::hygiene` is judged on the key as
//! the keys view has it, and the reason's finding is brought in line with
//! one ordinary Finding command as `system:kms-hygiene`: reported,
//! re-observed (a remediated one reopens as a regression) or remediated.
//! The finding's status is read from its aggregate, so a replay or a
//! second pass issues nothing new; a user's dismissal or risk acceptance
//! is left alone.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use palisade_domain::finding::{finding_id_for, Finding, FindingCommand, NewFinding, Status};
use palisade_domain::key::Algorithm;
use palisade_domain::kms::hygiene::{self, Action, KeyFacts, Reason};
use palisade_domain::KeyId;
use palisade_projections::{FeedEvent, KeyRow, KeysProjection, MigrationPlanRow};

use super::{await_views, failed, metadata, partition_of, scope_of};
use crate::projection::{FeedConsumer, RunnerError};
use crate::readmodel::kms::active_migration_plans;
use crate::readmodel::{get_key, keys_replaced_by, partition_keys, BatchTransaction, Partition};
use crate::{CommandError, Commands, Store};

/// Keys of one tenant environment judged after a plan changes.
const MAX_PARTITION_KEYS: u32 = 10_000;

pub struct KeyHygiene {
    store: Store,
    commands: Commands,
}

impl KeyHygiene {
    pub const NAME: &'static str = "kms-hygiene";

    pub fn new(store: Store, commands: Commands) -> Self {
        Self { store, commands }
    }

    /// Brings the key's findings in line with its reasons.
    async fn judge(
        &self,
        partition: &Partition,
        key: &KeyRow,
        plans: &[MigrationPlanRow],
        at: DateTime<Utc>,
        event: &FeedEvent,
    ) -> Result<(), RunnerError> {
        let Ok(key_id) = KeyId::parse(&key.id) else {
            return Err(failed(Self::NAME, event, format!("bad key id {}", key.id)));
        };
        let replacement = match &key.replaced_by {
            Some(other) => get_key(self.store.read_pool(), partition, other)
                .await
                .map_err(|e| RunnerError::Store(e.into()))?
                .map(|found| (found.key.algorithm, found.key.state)),
            None => None,
        };
        let facts = KeyFacts {
            key_id,
            name: key.name.clone(),
            algorithm: key.algorithm,
            state: key.state,
            rotation_overdue: key.rotation_overdue,
            replaced: replacement.is_some_and(|(algorithm, state)| {
                hygiene::replaces(key.algorithm, algorithm, state)
            }),
            awaiting_migration: awaiting_migration(plans, &key_id, key),
        };
        for reason in Reason::ALL {
            self.align(partition, &facts, reason, at, event).await?;
        }
        Ok(())
    }

    async fn align(
        &self,
        partition: &Partition,
        facts: &KeyFacts,
        reason: Reason,
        at: DateTime<Utc>,
        event: &FeedEvent,
    ) -> Result<(), RunnerError> {
        let fingerprint = hygiene::fingerprint(&facts.key_id, reason);
        let finding_id = finding_id_for(
            &partition.tenant_id,
            partition.environment,
            fingerprint.as_str(),
        )
        .to_string();
        let holds = hygiene::holds(reason, facts);
        // Decided against the finding as loaded, and appended only at that
        // version: a user's triage in between is never overridden, the
        // decision is made again on it.
        for _ in 0..ALIGN_ATTEMPTS {
            let (status, version) = match self.commands.load::<Finding>(&finding_id).await {
                Ok((finding, version)) => (finding.status(), version),
                Err(error) => {
                    return Err(failed(
                        Self::NAME,
                        event,
                        format!("loading finding {finding_id}: {error}"),
                    ))
                }
            };
            let Some(command) = command(reason, facts, holds, status, partition, at, event)? else {
                return Ok(());
            };
            let metadata = metadata(hygiene::ACTOR, partition, at);
            match self
                .commands
                .execute_if::<Finding>(&finding_id, command, (), &metadata, Some(version))
                .await
            {
                Ok(_) => return Ok(()),
                Err(CommandError::Conflict) | Err(CommandError::VersionMismatch { .. }) => continue,
                // Refused as it stands: judged again with the key's next
                // change.
                Err(CommandError::Rejected(_)) => return Ok(()),
                Err(error) => {
                    return Err(failed(
                        Self::NAME,
                        event,
                        format!("aligning finding {finding_id}: {error}"),
                    ))
                }
            }
        }
        Err(failed(
            Self::NAME,
            event,
            format!("finding {finding_id} kept changing; the batch is tried again"),
        ))
    }
}

/// Loads and decisions per finding before the batch is given up.
const ALIGN_ATTEMPTS: usize = 3;

/// The command that brings the finding in line with `holds`, if any.
fn command(
    reason: Reason,
    facts: &KeyFacts,
    holds: bool,
    status: Option<Status>,
    partition: &Partition,
    at: DateTime<Utc>,
    event: &FeedEvent,
) -> Result<Option<FindingCommand>, RunnerError> {
    Ok(Some(match hygiene::action(holds, status) {
        None => return Ok(None),
        Some(Action::Report) => {
            let details = hygiene::details(reason, facts).validated().map_err(|e| {
                failed(
                    KeyHygiene::NAME,
                    event,
                    format!("a hygiene finding is invalid: {e}"),
                )
            })?;
            FindingCommand::Ingest(Box::new(NewFinding::in_partition(
                &partition.tenant_id,
                partition.environment,
                details,
                hygiene::fingerprint(&facts.key_id, reason),
                at,
            )))
        }
        Some(Action::Reobserve) => FindingCommand::Reobserve { observed_at: at },
        Some(Action::Remediate) => FindingCommand::Remediate { at },
    }))
}

/// In the scope of an active plan that has not migrated it.
fn awaiting_migration(plans: &[MigrationPlanRow], key_id: &KeyId, key: &KeyRow) -> bool {
    plans.iter().any(|plan| {
        plan.terms.covers(key_id, key.algorithm)
            && !plan
                .terms
                .migrated(key.algorithm, key.state, None::<Algorithm>)
    })
}

#[async_trait]
impl FeedConsumer for KeyHygiene {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Key", "KmsMigrationPlan"])
    }

    async fn react(&self, batch: &[FeedEvent]) -> Result<(), RunnerError> {
        // Per tenant environment: the keys changed (or all of them, when a
        // plan changed), and the last event, whose time the commands carry.
        let mut touched: BTreeMap<String, (Partition, Option<Vec<String>>, &FeedEvent)> =
            BTreeMap::new();
        for event in batch {
            let whole = match event.aggregate_type.as_str() {
                "Key" => false,
                "KmsMigrationPlan" => true,
                _ => continue,
            };
            let Some(partition) = partition_of(event) else {
                continue;
            };
            let scope = scope_of(&partition);
            let entry = touched
                .entry(scope)
                .or_insert_with(|| (partition, Some(Vec::new()), event));
            entry.2 = event;
            match (&mut entry.1, whole) {
                (keys, true) => *keys = None,
                (Some(keys), false) => keys.push(event.aggregate_id.clone()),
                (None, false) => {}
            }
        }
        let Some(last) = touched
            .values()
            .map(|(_, _, event)| *event)
            .max_by_key(|e| e.position)
        else {
            return Ok(());
        };
        await_views(&self.store, Self::NAME, &[KeysProjection::NAME], last).await?;
        let pool = self.store.read_pool();
        let store_error = |e: sqlx::Error| RunnerError::Store(e.into());
        for (partition, keys, event) in touched.into_values() {
            let plans = active_migration_plans(pool, &partition)
                .await
                .map_err(store_error)?;
            let rows: Vec<KeyRow> = match keys {
                None => partition_keys(pool, &partition, MAX_PARTITION_KEYS)
                    .await
                    .map_err(store_error)?,
                Some(mut ids) => {
                    ids.sort();
                    ids.dedup();
                    let mut rows = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(found) =
                            get_key(pool, &partition, &id).await.map_err(store_error)?
                        {
                            rows.push(found.key);
                        }
                        // The keys it replaces are judged with it: whether
                        // it still replaces them depends on its state.
                        rows.extend(
                            keys_replaced_by(pool, &partition, &id)
                                .await
                                .map_err(store_error)?,
                        );
                    }
                    rows
                }
            };
            // The commands carry the time they are issued: a first run or a
            // rewind must not backdate a new finding (the decisions do not
            // depend on it).
            let at = Utc::now();
            let mut seen = HashMap::new();
            for key in rows {
                if seen.insert(key.id.clone(), ()).is_none() {
                    self.judge(&partition, &key, &plans, at, event).await?;
                }
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _batch: &[FeedEvent],
        tx: BatchTransaction,
    ) -> Result<BatchTransaction, RunnerError> {
        Ok(tx)
    }
}
