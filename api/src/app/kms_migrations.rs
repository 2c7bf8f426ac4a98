//! Post-quantum migration plans and readiness
//! (`docs/crypto-policy.md`), scope `keys:admin`. A plan's progress and
//! the readiness score are counted over the keys view at read time.

use std::collections::HashMap;

use chrono::Utc;
use palisade_domain::key::policy::{policy, Category, PolicyStatus, QuantumRisk};
use palisade_domain::key::{Algorithm, KeyState};
use palisade_domain::kms::hygiene;
use palisade_domain::kms::{
    MigrationPlan, NewMigrationPlan, PlanCommand, PlanScope, PlanStatus, PlanTerms, PlanUpdate,
    TargetAlgorithms,
};
use palisade_domain::{KeyId, MigrationPlanId};
use palisade_infra::readmodel::kms::{get_migration_plan, list_migration_plans};
use palisade_infra::readmodel::{get_key, partition_keys, Page, Partition, Window};
use palisade_projections::{KeyRow, MigrationPlanRow};
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::KeysAdmin;
use super::{App, Authorized, Error, Result};

/// Keys counted per tenant environment (progress and readiness).
const MAX_KEYS: u32 = 10_000;

/// The algorithm each category migrates to (at least one).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetAlgorithmsRequest {
    #[serde(default)]
    pub signing: Option<String>,
    #[serde(default)]
    pub encryption: Option<String>,
    #[serde(default)]
    pub key_exchange: Option<String>,
}

/// The keys a plan covers: `key_ids` or `algorithms`, not both (a list,
/// never null).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanScopeRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub key_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub algorithms: Option<Vec<String>>,
}

/// A field that, when present, is a value (`null` is refused).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The body of `POST /v1/kms/crypto-agility/migration-plans`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMigrationPlanRequest {
    pub name: String,
    pub target_algorithms: TargetAlgorithmsRequest,
    pub scope: PlanScopeRequest,
}

/// The body of `PATCH /v1/kms/crypto-agility/migration-plans/{id}`:
/// absent fields are left as they are; `status` moves the plan (`active`,
/// `completed`, `cancelled`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMigrationPlanRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub target_algorithms: Option<TargetAlgorithmsRequest>,
    #[serde(default)]
    pub scope: Option<PlanScopeRequest>,
    #[serde(default)]
    pub status: Option<String>,
}

/// How far a plan has come.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanProgress {
    pub total_keys: usize,
    pub migrated_keys: usize,
    pub pending_keys: usize,
    /// migrated / total, 0–100 (100 for a plan that covers no key).
    pub percent_complete: f64,
}

#[derive(Debug, Clone)]
pub struct PlanWithProgress {
    pub plan: MigrationPlanRow,
    pub progress: PlanProgress,
}

/// `GET …/migration-readiness`.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationReadiness {
    /// 0–100: see [`readiness`].
    pub overall_score: u32,
    pub total: usize,
    pub migrated: usize,
    pub pending_migration: usize,
    /// The three parts of the score, each 0–1.
    pub migration: f64,
    pub pqc_coverage: f64,
    pub algorithm_hygiene: f64,
    pub active_plans: usize,
}

fn algorithm(field: &str, text: &str) -> Result<Algorithm> {
    text.trim()
        .parse::<Algorithm>()
        .map_err(|message| Error::invalid(field, message))
}

fn targets(request: &TargetAlgorithmsRequest) -> Result<TargetAlgorithms> {
    let parse = |field: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|text| algorithm(&format!("target_algorithms.{field}"), text))
            .transpose()
    };
    Ok(TargetAlgorithms {
        signing: parse("signing", &request.signing)?,
        encryption: parse("encryption", &request.encryption)?,
        key_exchange: parse("key_exchange", &request.key_exchange)?,
    })
}

async fn scope(app: &App, partition: &Partition, request: &PlanScopeRequest) -> Result<PlanScope> {
    let limit = palisade_domain::MAX_LIST_ITEMS;
    match (&request.key_ids, &request.algorithms) {
        (Some(keys), None) => {
            if keys.len() > limit {
                return Err(Error::invalid(
                    "scope.key_ids",
                    format!("name 1 to {limit}"),
                ));
            }
            let mut ids = Vec::with_capacity(keys.len());
            for (i, key) in keys.iter().enumerate() {
                let unknown = || {
                    Error::invalid(
                        &format!("scope.key_ids[{i}]"),
                        "names no key of this environment",
                    )
                };
                let id = super::keys::resolve(partition, key).map_err(|_| unknown())?;
                if get_key(app.store.read_pool(), partition, &id)
                    .await?
                    .is_none()
                {
                    return Err(unknown());
                }
                ids.push(KeyId::parse(&id).map_err(|_| unknown())?);
            }
            Ok(PlanScope::KeyIds(ids))
        }
        (None, Some(algorithms)) => {
            if algorithms.len() > limit {
                return Err(Error::invalid(
                    "scope.algorithms",
                    format!("name 1 to {limit}"),
                ));
            }
            let parsed = algorithms
                .iter()
                .enumerate()
                .map(|(i, text)| algorithm(&format!("scope.algorithms[{i}]"), text))
                .collect::<Result<Vec<_>>>()?;
            Ok(PlanScope::Algorithms(parsed))
        }
        _ => Err(Error::invalid("scope", "give either key_ids or algorithms")),
    }
}

fn status(text: &str) -> Result<PlanStatus> {
    PlanStatus::parse(text.trim())
        .ok_or_else(|| Error::invalid("status", "must be draft, active, completed or cancelled"))
}

async fn keys_by_id(app: &App, partition: &Partition) -> Result<HashMap<String, KeyRow>> {
    Ok(partition_keys(app.store.read_pool(), partition, MAX_KEYS)
        .await?
        .into_iter()
        .map(|key| (key.id.clone(), key))
        .collect())
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Counts the plan's keys: in scope, and migrated of those.
pub fn progress(plan: &PlanTerms, keys: &HashMap<String, KeyRow>) -> PlanProgress {
    let (mut total, mut migrated) = (0, 0);
    for key in keys.values() {
        let Ok(id) = KeyId::parse(&key.id) else {
            continue;
        };
        if !plan.covers(&id, key.algorithm) {
            continue;
        }
        total += 1;
        let replacement = key
            .replaced_by
            .as_ref()
            .and_then(|other| keys.get(other))
            .filter(|other| matches!(other.state, KeyState::Enabled | KeyState::Disabled))
            .map(|other| other.algorithm);
        if plan.migrated(key.algorithm, key.state, replacement) {
            migrated += 1;
        }
    }
    PlanProgress {
        total_keys: total,
        migrated_keys: migrated,
        pending_keys: total - migrated,
        percent_complete: ratio(migrated, total) * 100.0,
    }
}

async fn with_progress(
    app: &App,
    partition: &Partition,
    plan: MigrationPlanRow,
) -> Result<PlanWithProgress> {
    let keys = keys_by_id(app, partition).await?;
    Ok(PlanWithProgress {
        progress: progress(&plan.terms, &keys),
        plan,
    })
}

async fn view_plan(app: &App, partition: &Partition, id: &str) -> Result<MigrationPlanRow> {
    get_migration_plan(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Migration plan not found"))
}

pub async fn create_plan(
    app: &App,
    context: &Authorized<KeysAdmin>,
    request: CreateMigrationPlanRequest,
) -> Result<PlanWithProgress> {
    let partition = context.principal.partition();
    let terms = PlanTerms {
        target_algorithms: targets(&request.target_algorithms)?,
        scope: scope(app, &partition, &request.scope).await?,
    };
    let plan_id = MigrationPlanId::from_uuid(uuid::Uuid::new_v4());
    let command = PlanCommand::Create {
        plan: Box::new(NewMigrationPlan {
            plan_id,
            tenant_id: context.principal.tenant_id,
            environment: context.principal.environment,
            name: request.name,
            terms,
        }),
        at: Utc::now(),
    };
    let id = plan_id.to_string();
    let version = app
        .commands
        .execute::<MigrationPlan>(&id, command, (), &context.metadata())
        .await?;
    super::kms_alerts::settle(app, "KmsMigrationPlan", &id, version).await?;
    let plan = view_plan(app, &partition, &id).await?;
    with_progress(app, &partition, plan).await
}

pub async fn get_plan(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id: &str,
) -> Result<PlanWithProgress> {
    let partition = context.principal.partition();
    let plan = view_plan(app, &partition, id).await?;
    with_progress(app, &partition, plan).await
}

pub async fn list_plans(
    app: &App,
    context: &Authorized<KeysAdmin>,
    statuses: &Option<String>,
    window: impl Into<Window>,
) -> Result<Page<PlanWithProgress>> {
    let partition = context.principal.partition();
    let statuses =
        super::input::filter_values("status", statuses.as_deref().unwrap_or("").split(','))?
            .iter()
            .map(|s| status(s))
            .collect::<Result<Vec<_>>>()?;
    let page = list_migration_plans(app.store.read_pool(), &partition, &statuses, window).await?;
    let keys = keys_by_id(app, &partition).await?;
    Ok(Page {
        total: page.total,
        total_exact: page.total_exact,
        items: page
            .items
            .into_iter()
            .map(|plan| PlanWithProgress {
                progress: progress(&plan.terms, &keys),
                plan,
            })
            .collect(),
    })
}

pub async fn update_plan(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id: &str,
    request: UpdateMigrationPlanRequest,
) -> Result<PlanWithProgress> {
    let partition = context.principal.partition();
    view_plan(app, &partition, id).await?;
    let update = PlanUpdate {
        name: request.name,
        target_algorithms: request
            .target_algorithms
            .as_ref()
            .map(targets)
            .transpose()?,
        scope: match &request.scope {
            Some(requested) => Some(scope(app, &partition, requested).await?),
            None => None,
        },
    };
    let moved = request.status.as_deref().map(status).transpose()?;
    let metadata = context.metadata();
    let changes = update != PlanUpdate::default();
    if let (true, Some(status)) = (changes, moved) {
        // Both: the move is judged first, so a refused move writes nothing.
        let (current, _) = app.commands.load::<MigrationPlan>(id).await?;
        current.decide(PlanCommand::Move {
            status,
            at: Utc::now(),
        })?;
    }
    let mut version = 0;
    if changes {
        let command = PlanCommand::Update {
            update,
            at: Utc::now(),
        };
        version = app
            .commands
            .execute::<MigrationPlan>(id, command, (), &metadata)
            .await?;
    }
    if let Some(status) = moved {
        let command = PlanCommand::Move {
            status,
            at: Utc::now(),
        };
        version = app
            .commands
            .execute::<MigrationPlan>(id, command, (), &metadata)
            .await?;
    }
    super::kms_alerts::settle(app, "KmsMigrationPlan", id, version).await?;
    let plan = view_plan(app, &partition, id).await?;
    with_progress(app, &partition, plan).await
}

/// How ready the tenant environment is for a cryptographically relevant
/// quantum computer, 0–100:
///
/// - **migration** (60 %): of the keys ever made on quantum-vulnerable
///   algorithms, the share destroyed or replaced by a key on an algorithm
///   of low quantum risk in the same category (1 when there are none);
/// - **PQC coverage** (25 %): of the live (not destroyed) signing and
///   key-exchange keys, the share on post-quantum algorithms (1 when none);
/// - **algorithm hygiene** (15 %): of the live keys, the share not on a
///   `deprecated` or `forbidden` algorithm (1 when none).
///
/// `overall_score` = round(100 × (0.6 migration + 0.25 coverage + 0.15
/// hygiene)).
pub async fn readiness(app: &App, context: &Authorized<KeysAdmin>) -> Result<MigrationReadiness> {
    let partition = context.principal.partition();
    let keys = keys_by_id(app, &partition).await?;
    let active_plans = list_migration_plans(
        app.store.read_pool(),
        &partition,
        &[PlanStatus::Active],
        Window {
            offset: 0,
            limit: 1,
        },
    )
    .await?
    .total as usize;
    Ok(score(&keys, active_plans))
}

/// [`readiness`] over a set of keys.
pub fn score(keys: &HashMap<String, KeyRow>, active_plans: usize) -> MigrationReadiness {
    let (mut total, mut migrated) = (0, 0);
    let (mut asymmetric, mut post_quantum) = (0, 0);
    let (mut live, mut weak) = (0, 0);
    for key in keys.values() {
        let row = policy(key.algorithm);
        let alive = key.state != KeyState::Destroyed;
        if alive {
            live += 1;
            if matches!(
                row.status,
                PolicyStatus::Deprecated | PolicyStatus::Forbidden
            ) {
                weak += 1;
            }
            if matches!(row.category, Category::Signing | Category::KeyExchange) {
                asymmetric += 1;
                if row.post_quantum {
                    post_quantum += 1;
                }
            }
        }
        if row.quantum_risk == QuantumRisk::High {
            total += 1;
            let replaced = key
                .replaced_by
                .as_ref()
                .and_then(|other| keys.get(other))
                .is_some_and(|other| {
                    hygiene::replaces(key.algorithm, other.algorithm, other.state)
                });
            if !alive || replaced {
                migrated += 1;
            }
        }
    }
    let migration = ratio(migrated, total);
    let pqc_coverage = ratio(post_quantum, asymmetric);
    let algorithm_hygiene = ratio(live - weak, live);
    let overall = 100.0 * (0.6 * migration + 0.25 * pqc_coverage + 0.15 * algorithm_hygiene);
    MigrationReadiness {
        overall_score: overall.round().clamp(0.0, 100.0) as u32,
        total,
        migrated,
        pending_migration: total - migrated,
        migration,
        pqc_coverage,
        algorithm_hygiene,
        active_plans,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use palisade_domain::Environment;

    use super::*;

    fn key(n: u128, algorithm: Algorithm, state: KeyState, replaced_by: Option<u128>) -> KeyRow {
        let id = |n| KeyId::from_uuid(uuid::Uuid::from_u128(n)).to_string();
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        KeyRow {
            id: id(n),
            tenant_id: "t".into(),
            environment: Environment::Live,
            name: format!("k{n}"),
            algorithm,
            state,
            description: None,
            tags: Vec::new(),
            rotation_period_days: None,
            latest_version: 1,
            min_decryption_version: 1,
            last_rotated_at: at,
            next_rotation_at: None,
            deletion_date: None,
            created_at: at,
            updated_at: at,
            last_used_at: None,
            replaced_by: replaced_by.map(id),
            rotation_overdue: false,
            rotation_due_at: None,
            version: 1,
        }
    }

    fn keyed(rows: Vec<KeyRow>) -> HashMap<String, KeyRow> {
        rows.into_iter().map(|k| (k.id.clone(), k)).collect()
    }

    #[test]
    fn readiness_weighs_migration_coverage_and_hygiene() {
        let enabled = KeyState::Enabled;
        // Nothing at all: fully ready.
        assert_eq!(score(&HashMap::new(), 0).overall_score, 100);
        // Two ECDSA keys, one replaced by ML-DSA; one AES key.
        let keys = keyed(vec![
            key(1, Algorithm::EcdsaP256, enabled, Some(3)),
            key(2, Algorithm::EcdsaP256, enabled, None),
            key(3, Algorithm::MlDsa65, enabled, None),
            key(4, Algorithm::Aes256Gcm, enabled, None),
        ]);
        let readiness = score(&keys, 1);
        assert_eq!((readiness.total, readiness.migrated), (2, 1));
        assert_eq!(readiness.migration, 0.5);
        assert_eq!(readiness.pqc_coverage, 0.3333);
        assert_eq!(readiness.algorithm_hygiene, 1.0);
        // 100 × (0.6 × 0.5 + 0.25 × 0.3333 + 0.15) = 53.3
        assert_eq!(readiness.overall_score, 53);
    }

    #[test]
    fn a_plans_progress_counts_keys_in_scope_replaced_by_the_target_or_destroyed() {
        let terms = PlanTerms {
            target_algorithms: TargetAlgorithms {
                signing: Some(Algorithm::MlDsa65),
                ..TargetAlgorithms::default()
            },
            scope: PlanScope::Algorithms(vec![Algorithm::EcdsaP256, Algorithm::Ed25519]),
        };
        let keys = keyed(vec![
            key(1, Algorithm::EcdsaP256, KeyState::Enabled, Some(3)),
            key(2, Algorithm::Ed25519, KeyState::Destroyed, None),
            key(3, Algorithm::MlDsa65, KeyState::Enabled, None),
            key(5, Algorithm::Ed25519, KeyState::Enabled, Some(6)),
            key(6, Algorithm::Ed25519, KeyState::Enabled, None),
        ]);
        let progress = progress(&terms, &keys);
        assert_eq!(
            (
                progress.total_keys,
                progress.migrated_keys,
                progress.pending_keys
            ),
            (4, 2, 2)
        );
        assert_eq!(progress.percent_complete, 50.0);
    }
}
