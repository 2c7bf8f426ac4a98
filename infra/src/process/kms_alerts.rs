//! The alert evaluator (`kms-alerts`): for each key whose usage a batch
//! records, every enabled rule of its tenant environment that watches it
//! is judged over the window the usage falls in (`gt`) or the window
//! before it, once it has been over for a minute (`lt`), from the keys
//! view's `key_usage`; no rule judges a window that ended before the rule
//! was made. A rule
//! that holds records `KmsAlertTriggered` on the alert derived from (rule,
//! key, window): judged again, the same window records nothing more.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use palisade_domain::key::KeyUsageEvent;
use palisade_domain::kms::{
    alert_id_for, Alert, AlertCommand, Comparison, TriggeredAlert, UsageWindow, Window,
};
use palisade_domain::{AlertRuleId, KeyId, TenantId};
use palisade_projections::{AlertRuleRow, FeedEvent, KeysProjection};

use super::{await_views, failed, metadata, partition_of, recorded_at, scope_of};
use crate::projection::{FeedConsumer, RunnerError};
use crate::readmodel::kms::{partition_alert_rules, usage_window};
use crate::readmodel::{BatchTransaction, Partition};
use crate::{CommandError, Commands, Store};

/// The actor of the alerts it records.
pub const ACTOR: &str = "system:kms-alerts";

/// How long after a window ends an `lt` rule waits before judging it: the
/// replicas flush an ended minute within 10 s.
const LT_SETTLING: Duration = Duration::minutes(1);

pub struct KmsAlertEvaluator {
    store: Store,
    commands: Commands,
}

impl KmsAlertEvaluator {
    pub const NAME: &'static str = "kms-alerts";

    pub fn new(store: Store, commands: Commands) -> Self {
        Self { store, commands }
    }

    /// Judges one rule on one key's window; records the alert when it holds.
    #[allow(clippy::too_many_arguments)]
    async fn judge(
        &self,
        partition: &Partition,
        rule: &AlertRuleRow,
        key_id: &str,
        window_start: DateTime<Utc>,
        at: DateTime<Utc>,
        event: &FeedEvent,
        sums: &mut HashMap<(String, DateTime<Utc>, Window), UsageWindow>,
    ) -> Result<(), RunnerError> {
        let window = rule.condition.window;
        let cell = (key_id.to_string(), window_start, window);
        let usage = match sums.get(&cell) {
            Some(usage) => *usage,
            None => {
                let usage = usage_window(
                    self.store.read_pool(),
                    key_id,
                    window_start,
                    window_start + window.length(),
                )
                .await
                .map_err(|e| RunnerError::Store(e.into()))?;
                sums.insert(cell, usage);
                usage
            }
        };
        let judged = rule.condition.operator == Comparison::Gt || has_usage(&usage);
        if !judged || !rule.condition.holds(&usage) {
            return Ok(());
        }
        let bad = |what: &str| failed(Self::NAME, event, format!("{what} in the keys view"));
        let rule_id = AlertRuleId::parse(&rule.id).map_err(|_| bad("a bad rule id"))?;
        let key = KeyId::parse(key_id).map_err(|_| bad("a bad key id"))?;
        let tenant_id = TenantId::parse(&rule.tenant_id).map_err(|_| bad("a bad tenant id"))?;
        let alert_id = alert_id_for(&rule_id, &key, window, window_start);
        let command = AlertCommand::Trigger {
            alert: Box::new(TriggeredAlert {
                alert_id,
                rule_id,
                rule_name: rule.name.clone(),
                tenant_id,
                environment: rule.environment,
                key_id: key,
                condition: rule.condition,
                window_start,
                value: rule.condition.metric_value(&usage),
                severity: rule.severity,
            }),
            at,
        };
        match self
            .commands
            .execute::<Alert>(
                &alert_id.to_string(),
                command,
                (),
                &metadata(ACTOR, partition, at),
            )
            .await
        {
            // Recorded, or recorded before (nothing appended).
            Ok(_) => Ok(()),
            Err(CommandError::Conflict) => Ok(()),
            Err(error) => Err(failed(
                Self::NAME,
                event,
                format!("recording alert {alert_id} failed: {error}"),
            )),
        }
    }
}

fn has_usage(usage: &UsageWindow) -> bool {
    usage.succeeded > 0 || usage.errors > 0
}

#[async_trait]
impl FeedConsumer for KmsAlertEvaluator {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["KeyUsage"])
    }

    async fn react(&self, batch: &[FeedEvent]) -> Result<(), RunnerError> {
        // (partition, key, minute) of every usage flush in the batch, and
        // the last event of each, whose time the alert carries.
        let mut touched: BTreeSet<(String, String, DateTime<Utc>)> = BTreeSet::new();
        let mut partitions: HashMap<String, (Partition, &FeedEvent)> = HashMap::new();
        for event in batch.iter().filter(|e| e.aggregate_type == "KeyUsage") {
            let Some(partition) = partition_of(event) else {
                continue;
            };
            let KeyUsageEvent::KeyUsageRecorded { key_id, minute, .. } = event
                .decode::<KeyUsageEvent>()
                .map_err(|source| RunnerError::Projection {
                    name: Self::NAME,
                    position: event.position,
                    source,
                })?;
            let scope = scope_of(&partition);
            touched.insert((scope.clone(), key_id.to_string(), minute));
            partitions.insert(scope, (partition, event));
        }
        let Some(last) = batch.iter().rev().find(|e| e.aggregate_type == "KeyUsage") else {
            return Ok(());
        };
        await_views(&self.store, Self::NAME, &[KeysProjection::NAME], last).await?;
        let mut rules: HashMap<String, Vec<AlertRuleRow>> = HashMap::new();
        let mut judged: BTreeSet<(String, String, DateTime<Utc>)> = BTreeSet::new();
        // Each key's window is summed once per batch, whatever the rules.
        let mut sums = HashMap::new();
        for (scope, key_id, minute) in touched {
            let (partition, event) = &partitions[&scope];
            if !rules.contains_key(&scope) {
                let found = partition_alert_rules(self.store.read_pool(), partition)
                    .await
                    .map_err(|e| RunnerError::Store(e.into()))?;
                rules.insert(scope.clone(), found);
            }
            let at = recorded_at(event);
            for rule in rules[&scope]
                .iter()
                .filter(|r| r.enabled && r.watches(&key_id))
            {
                let window: Window = rule.condition.window;
                let start = window.start(minute);
                let start = match rule.condition.operator {
                    Comparison::Gt => start,
                    // The window before this usage's, once it has been
                    // over for LT_SETTLING (every replica has flushed it).
                    Comparison::Lt if at >= start + LT_SETTLING => start - window.length(),
                    Comparison::Lt => continue,
                };
                // A rule judges no window that ended before it existed (a
                // first run or a rewind replays old usage).
                if start + window.length() <= rule.created_at {
                    continue;
                }
                if judged.insert((rule.id.clone(), key_id.clone(), start)) {
                    self.judge(partition, rule, &key_id, start, at, event, &mut sums)
                        .await?;
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
