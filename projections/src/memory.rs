//! An in-memory [`ReadModelStore`] for the projections' unit tests: one
//! struct that implements every view's store trait, and hands out whichever
//! a projection asks for.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use palisade_domain::finding::Severity;
use palisade_domain::tenant::{Plan, TenantStatus};
use palisade_domain::Environment;

use crate::{
    AccessRequestRow, AccessStore, AlertRow, AlertRuleRow, ApiKeyRow, AssetRow, AuditHead,
    AuditRecord, AuditStore, FindingRow, FindingsStore, IngestionJobRow, IngestionStore, KeyRow,
    KeyUsageRow, KeyVersionRow, KeysStore, MigrationPlanRow, PolicyRow, ReadModelStore,
    RiskSummaryRow, StoreError, TenantRow, TenantsStore, TimelineEntry, TimelineStore,
    TimelineSubject, ViewRef,
};

#[derive(Default)]
pub struct InMemory {
    pub tenants: HashMap<String, TenantRow>,
    pub api_keys: HashMap<String, ApiKeyRow>,
    pub findings: BTreeMap<String, FindingRow>,
    pub assets: BTreeMap<String, AssetRow>,
    pub summaries: BTreeMap<(String, Environment), RiskSummaryRow>,
    pub history: BTreeMap<(String, Environment, NaiveDate), f64>,
    pub timeline: Vec<TimelineEntry>,
    pub subjects: HashMap<String, TimelineSubject>,
    pub audit: Vec<AuditRecord>,
    pub keys: HashMap<String, KeyRow>,
    pub alert_rules: HashMap<String, AlertRuleRow>,
    pub alerts: HashMap<String, AlertRow>,
    pub migration_plans: HashMap<String, MigrationPlanRow>,
    pub key_versions: BTreeMap<(String, u32), KeyVersionRow>,
    pub key_usage: Vec<KeyUsageRow>,
    pub policies: HashMap<String, PolicyRow>,
    pub access_requests: HashMap<String, AccessRequestRow>,
    /// The check index: (request id, permission).
    pub grants: Vec<(String, String)>,
    pub jobs: HashMap<String, IngestionJobRow>,
}

impl ReadModelStore for InMemory {
    fn store_of(&mut self, store: TypeId) -> Result<ViewRef<'_>, StoreError> {
        Ok(if store == TypeId::of::<dyn TenantsStore>() {
            ViewRef::new(self, |s| s as &mut dyn TenantsStore)
        } else if store == TypeId::of::<dyn FindingsStore>() {
            ViewRef::new(self, |s| s as &mut dyn FindingsStore)
        } else if store == TypeId::of::<dyn TimelineStore>() {
            ViewRef::new(self, |s| s as &mut dyn TimelineStore)
        } else if store == TypeId::of::<dyn AuditStore>() {
            ViewRef::new(self, |s| s as &mut dyn AuditStore)
        } else if store == TypeId::of::<dyn KeysStore>() {
            ViewRef::new(self, |s| s as &mut dyn KeysStore)
        } else if store == TypeId::of::<dyn AccessStore>() {
            ViewRef::new(self, |s| s as &mut dyn AccessStore)
        } else if store == TypeId::of::<dyn IngestionStore>() {
            ViewRef::new(self, |s| s as &mut dyn IngestionStore)
        } else {
            return Err(crate::view::no_store_of(store));
        })
    }
}

#[async_trait]
impl AccessStore for InMemory {
    async fn policy(&mut self, id: &str) -> Result<Option<PolicyRow>, StoreError> {
        Ok(self.policies.get(id).cloned())
    }

    async fn save_policy(&mut self, policy: &PolicyRow) -> Result<(), StoreError> {
        self.policies.insert(policy.id.clone(), policy.clone());
        Ok(())
    }

    async fn access_request(&mut self, id: &str) -> Result<Option<AccessRequestRow>, StoreError> {
        Ok(self.access_requests.get(id).cloned())
    }

    async fn save_access_request(&mut self, request: &AccessRequestRow) -> Result<(), StoreError> {
        self.access_requests
            .insert(request.id.clone(), request.clone());
        Ok(())
    }

    async fn add_grant(&mut self, request: &AccessRequestRow) -> Result<(), StoreError> {
        for permission in &request.permissions {
            self.grants.push((request.id.clone(), permission.clone()));
        }
        Ok(())
    }

    async fn remove_grant(&mut self, request_id: &str) -> Result<(), StoreError> {
        self.grants.retain(|(id, _)| id != request_id);
        Ok(())
    }
}

#[async_trait]
impl IngestionStore for InMemory {
    async fn job(&mut self, id: &str) -> Result<Option<IngestionJobRow>, StoreError> {
        Ok(self.jobs.get(id).cloned())
    }

    async fn save_job(&mut self, job: &IngestionJobRow) -> Result<(), StoreError> {
        self.jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }
}

#[async_trait]
impl KeysStore for InMemory {
    async fn key(&mut self, id: &str) -> Result<Option<KeyRow>, StoreError> {
        Ok(self.keys.get(id).cloned())
    }

    async fn save_key(&mut self, key: &KeyRow) -> Result<(), StoreError> {
        self.keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn insert_key_version(&mut self, version: &KeyVersionRow) -> Result<(), StoreError> {
        self.key_versions
            .entry((version.key_id.clone(), version.version))
            .or_insert_with(|| version.clone());
        Ok(())
    }

    async fn add_key_usage(&mut self, usage: &[KeyUsageRow]) -> Result<(), StoreError> {
        self.key_usage.extend_from_slice(usage);
        Ok(())
    }

    async fn alert_rule(&mut self, id: &str) -> Result<Option<AlertRuleRow>, StoreError> {
        Ok(self.alert_rules.get(id).cloned())
    }

    async fn save_alert_rule(&mut self, rule: &AlertRuleRow) -> Result<(), StoreError> {
        self.alert_rules.insert(rule.id.clone(), rule.clone());
        Ok(())
    }

    async fn delete_alert_rule(&mut self, id: &str) -> Result<(), StoreError> {
        self.alert_rules.remove(id);
        Ok(())
    }

    async fn alert(&mut self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        Ok(self.alerts.get(id).cloned())
    }

    async fn save_alert(&mut self, alert: &AlertRow) -> Result<(), StoreError> {
        self.alerts.insert(alert.id.clone(), alert.clone());
        Ok(())
    }

    async fn migration_plan(&mut self, id: &str) -> Result<Option<MigrationPlanRow>, StoreError> {
        Ok(self.migration_plans.get(id).cloned())
    }

    async fn save_migration_plan(&mut self, plan: &MigrationPlanRow) -> Result<(), StoreError> {
        self.migration_plans.insert(plan.id.clone(), plan.clone());
        Ok(())
    }
}

#[async_trait]
impl TenantsStore for InMemory {
    async fn upsert_tenant(&mut self, tenant: &TenantRow) -> Result<(), StoreError> {
        self.tenants.insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn set_tenant_plan(
        &mut self,
        id: &str,
        plan: Plan,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(row) = self.tenants.get_mut(id) {
            row.plan = plan;
            row.updated_at = at;
        }
        Ok(())
    }

    async fn set_tenant_status(
        &mut self,
        id: &str,
        status: TenantStatus,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(row) = self.tenants.get_mut(id) {
            row.status = status.as_str().to_string();
            row.updated_at = at;
        }
        Ok(())
    }

    async fn set_tenant_version(&mut self, id: &str, version: i64) -> Result<(), StoreError> {
        if let Some(row) = self.tenants.get_mut(id) {
            row.version = version;
        }
        Ok(())
    }

    async fn insert_api_key(&mut self, key: &ApiKeyRow) -> Result<(), StoreError> {
        self.api_keys.insert(key.id.clone(), key.clone());
        Ok(())
    }

    async fn revoke_api_key(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(key) = self.api_keys.get_mut(id) {
            key.revoked_at = Some(at);
        }
        Ok(())
    }

    async fn set_secrets_cas_required(
        &mut self,
        _id: &str,
        _environment: palisade_domain::Environment,
        _cas_required: bool,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

#[async_trait]
impl FindingsStore for InMemory {
    async fn get_finding(&mut self, id: &str) -> Result<Option<FindingRow>, StoreError> {
        Ok(self.findings.get(id).cloned())
    }

    async fn save_finding(&mut self, finding: &FindingRow) -> Result<(), StoreError> {
        self.findings.insert(finding.id.clone(), finding.clone());
        Ok(())
    }

    async fn get_asset(&mut self, id: &str) -> Result<Option<AssetRow>, StoreError> {
        Ok(self.assets.get(id).cloned())
    }

    async fn save_asset(&mut self, asset: &AssetRow) -> Result<(), StoreError> {
        self.assets.insert(asset.id.clone(), asset.clone());
        Ok(())
    }

    async fn assets_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<AssetRow>, StoreError> {
        Ok(self
            .assets
            .values()
            .filter(|a| a.tenant_id == tenant_id && a.environment == environment)
            .cloned()
            .collect())
    }

    async fn counted_findings_of(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Vec<(String, f64, Severity)>, StoreError> {
        Ok(self
            .findings
            .values()
            .filter(|f| {
                f.tenant_id == tenant_id
                    && f.environment == environment
                    && f.status.counts_for_risk()
            })
            .map(|f| (f.asset_id.clone(), f.risk_score, f.details.severity))
            .collect())
    }

    async fn get_risk_summary(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<RiskSummaryRow>, StoreError> {
        Ok(self
            .summaries
            .get(&(tenant_id.to_string(), environment))
            .cloned())
    }

    async fn save_risk_summary(
        &mut self,
        summary: &RiskSummaryRow,
        day: NaiveDate,
    ) -> Result<(), StoreError> {
        let key = (summary.tenant_id.clone(), summary.environment);
        self.history
            .insert((key.0.clone(), key.1, day), summary.risk_score);
        self.summaries.insert(key, summary.clone());
        Ok(())
    }
}

#[async_trait]
impl TimelineStore for InMemory {
    async fn insert_timeline_entry(&mut self, entry: &TimelineEntry) -> Result<(), StoreError> {
        if !self.timeline.iter().any(|e| e.id == entry.id) {
            self.timeline.push(entry.clone());
        }
        Ok(())
    }

    async fn timeline_subject(
        &mut self,
        finding_id: &str,
    ) -> Result<Option<TimelineSubject>, StoreError> {
        Ok(self.subjects.get(finding_id).cloned())
    }

    async fn save_timeline_subject(
        &mut self,
        finding_id: &str,
        subject: &TimelineSubject,
    ) -> Result<(), StoreError> {
        self.subjects
            .insert(finding_id.to_string(), subject.clone());
        Ok(())
    }
}

#[async_trait]
impl AuditStore for InMemory {
    async fn audit_head(
        &mut self,
        tenant_id: &str,
        environment: Environment,
    ) -> Result<Option<AuditHead>, StoreError> {
        Ok(self
            .audit
            .iter()
            .filter(|r| r.tenant_id == tenant_id && r.environment == environment)
            .max_by_key(|r| r.seq)
            .map(|r| AuditHead {
                seq: r.seq,
                hash: r.hash.clone(),
            }))
    }

    async fn append_audit_record(&mut self, record: &AuditRecord) -> Result<(), StoreError> {
        self.audit.push(record.clone());
        Ok(())
    }
}
