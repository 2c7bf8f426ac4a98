//! Post-quantum migration plans (`KmsMigrationPlan`): which keys move to
//! which algorithms, and where the plan stands (`draft → active →
//! completed | cancelled`).
//!
//! A plan names its scope (some keys, or every key on some algorithms)
//! and a target algorithm per category. A key in scope is *migrated* when
//! it is destroyed, or when its `replaced_by` key is on the plan's target
//! for the key's category ([`PlanTerms::migrated`]); progress is counted
//! over the keys view, so a plan never has to be told about a key.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::{valid_name, KmsError};
use crate::key::policy::{policy, Category};
use crate::key::{Algorithm, KeyState};
use crate::text::FieldProblem;
use crate::{Environment, KeyId, MigrationPlanId, TenantId, MAX_LIST_ITEMS};

/// The algorithm each category migrates to; at least one is named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetAlgorithms {
    pub signing: Option<Algorithm>,
    pub encryption: Option<Algorithm>,
    pub key_exchange: Option<Algorithm>,
}

impl TargetAlgorithms {
    pub fn for_category(&self, category: Category) -> Option<Algorithm> {
        match category {
            Category::Signing => self.signing,
            Category::Encryption => self.encryption,
            Category::KeyExchange => self.key_exchange,
            Category::Mac => None,
        }
    }

    fn check(&self, problems: &mut Vec<FieldProblem>) {
        let targets = [
            ("signing", Category::Signing, self.signing),
            ("encryption", Category::Encryption, self.encryption),
            ("key_exchange", Category::KeyExchange, self.key_exchange),
        ];
        if targets.iter().all(|(_, _, target)| target.is_none()) {
            problems.push(FieldProblem::new(
                "target_algorithms",
                "name at least one of signing, encryption, key_exchange",
            ));
        }
        for (field, category, target) in targets {
            if let Some(algorithm) = target {
                if policy(algorithm).category != category {
                    problems.push(FieldProblem::new(
                        &format!("target_algorithms.{field}"),
                        format!("{algorithm} is not a {} algorithm", category.as_str()),
                    ));
                }
            }
        }
    }
}

/// The keys a plan covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanScope {
    KeyIds(Vec<KeyId>),
    Algorithms(Vec<Algorithm>),
}

impl PlanScope {
    fn normalised(self, problems: &mut Vec<FieldProblem>) -> Self {
        let (field, len) = match &self {
            PlanScope::KeyIds(keys) => ("scope.key_ids", keys.len()),
            PlanScope::Algorithms(algorithms) => ("scope.algorithms", algorithms.len()),
        };
        if len == 0 || len > MAX_LIST_ITEMS {
            problems.push(FieldProblem::new(
                field,
                format!("name 1 to {MAX_LIST_ITEMS}"),
            ));
        }
        match self {
            PlanScope::KeyIds(mut keys) => {
                keys.sort();
                keys.dedup();
                PlanScope::KeyIds(keys)
            }
            PlanScope::Algorithms(mut algorithms) => {
                algorithms.sort();
                algorithms.dedup();
                PlanScope::Algorithms(algorithms)
            }
        }
    }
}

/// What a plan covers and where it leads: the part of a plan that
/// progress and the hygiene rules read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub target_algorithms: TargetAlgorithms,
    pub scope: PlanScope,
}

impl PlanTerms {
    /// Whether the key is in the plan's scope.
    pub fn covers(&self, key_id: &KeyId, algorithm: Algorithm) -> bool {
        match &self.scope {
            PlanScope::KeyIds(keys) => keys.contains(key_id),
            PlanScope::Algorithms(algorithms) => algorithms.contains(&algorithm),
        }
    }

    /// Whether a key in scope has moved: destroyed, or replaced by a key
    /// on the target of its category. A key already on its target counts
    /// as migrated too.
    pub fn migrated(
        &self,
        algorithm: Algorithm,
        state: KeyState,
        replacement: Option<Algorithm>,
    ) -> bool {
        if state == KeyState::Destroyed {
            return true;
        }
        let Some(target) = self
            .target_algorithms
            .for_category(policy(algorithm).category)
        else {
            return false;
        };
        algorithm == target || replacement == Some(target)
    }
}

/// Where a plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Draft,
    Active,
    Completed,
    Cancelled,
}

impl PlanStatus {
    pub const ALL: [PlanStatus; 4] = [
        PlanStatus::Draft,
        PlanStatus::Active,
        PlanStatus::Completed,
        PlanStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            PlanStatus::Draft => "draft",
            PlanStatus::Active => "active",
            PlanStatus::Completed => "completed",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewMigrationPlan {
    pub plan_id: MigrationPlanId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub name: String,
    pub terms: PlanTerms,
}

/// A change to a plan's terms; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanUpdate {
    pub name: Option<String>,
    pub target_algorithms: Option<TargetAlgorithms>,
    pub scope: Option<PlanScope>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlanCommand {
    Create {
        plan: Box<NewMigrationPlan>,
        at: DateTime<Utc>,
    },
    /// A draft's or an active plan's terms.
    Update {
        update: PlanUpdate,
        at: DateTime<Utc>,
    },
    /// Moves to `status`: draft → active → completed, draft or active →
    /// cancelled. Asking for the status it has records nothing.
    Move {
        status: PlanStatus,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PlanEvent {
    MigrationPlanCreated {
        plan_id: MigrationPlanId,
        tenant_id: TenantId,
        environment: Environment,
        name: String,
        terms: PlanTerms,
        created_at: DateTime<Utc>,
    },
    /// The plan's new name and terms, whole.
    MigrationPlanUpdated {
        plan_id: MigrationPlanId,
        name: String,
        terms: PlanTerms,
        updated_at: DateTime<Utc>,
    },
    MigrationPlanActivated {
        plan_id: MigrationPlanId,
        activated_at: DateTime<Utc>,
    },
    MigrationPlanCompleted {
        plan_id: MigrationPlanId,
        completed_at: DateTime<Utc>,
    },
    MigrationPlanCancelled {
        plan_id: MigrationPlanId,
        cancelled_at: DateTime<Utc>,
    },
}

impl DomainEvent for PlanEvent {
    fn event_type(&self) -> String {
        match self {
            PlanEvent::MigrationPlanCreated { .. } => "MigrationPlanCreated",
            PlanEvent::MigrationPlanUpdated { .. } => "MigrationPlanUpdated",
            PlanEvent::MigrationPlanActivated { .. } => "MigrationPlanActivated",
            PlanEvent::MigrationPlanCompleted { .. } => "MigrationPlanCompleted",
            PlanEvent::MigrationPlanCancelled { .. } => "MigrationPlanCancelled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PlanState {
    id: MigrationPlanId,
    name: String,
    terms: PlanTerms,
    status: PlanStatus,
}

/// A migration plan's decision state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationPlan {
    state: Option<PlanState>,
}

fn valid_terms(problems: &mut Vec<FieldProblem>, terms: PlanTerms) -> PlanTerms {
    terms.target_algorithms.check(problems);
    PlanTerms {
        target_algorithms: terms.target_algorithms,
        scope: terms.scope.normalised(problems),
    }
}

impl MigrationPlan {
    pub fn decide(&self, command: PlanCommand) -> Result<Vec<PlanEvent>, KmsError> {
        let mut problems = Vec::new();
        if let PlanCommand::Create { plan, at } = command {
            if self.state.is_some() {
                return Err(KmsError::AlreadyExists);
            }
            let plan = *plan;
            let name = valid_name(&mut problems, &plan.name);
            let terms = valid_terms(&mut problems, plan.terms);
            if !problems.is_empty() {
                return Err(KmsError::Invalid(problems));
            }
            return Ok(vec![PlanEvent::MigrationPlanCreated {
                plan_id: plan.plan_id,
                tenant_id: plan.tenant_id,
                environment: plan.environment,
                name,
                terms,
                created_at: at,
            }]);
        }
        let plan = self.state.as_ref().ok_or(KmsError::NotFound)?;
        let refuse = |action| KmsError::InvalidTransition {
            action,
            subject: "migration plan",
            state: plan.status.as_str(),
        };
        let plan_id = plan.id;
        Ok(match command {
            PlanCommand::Create { .. } => unreachable!("handled above"),
            PlanCommand::Update { update, at } => {
                if !matches!(plan.status, PlanStatus::Draft | PlanStatus::Active) {
                    return Err(refuse("change"));
                }
                let name = match &update.name {
                    Some(name) => valid_name(&mut problems, name),
                    None => plan.name.clone(),
                };
                let terms = valid_terms(
                    &mut problems,
                    PlanTerms {
                        target_algorithms: update
                            .target_algorithms
                            .unwrap_or(plan.terms.target_algorithms),
                        scope: update.scope.unwrap_or_else(|| plan.terms.scope.clone()),
                    },
                );
                if !problems.is_empty() {
                    return Err(KmsError::Invalid(problems));
                }
                if name == plan.name && terms == plan.terms {
                    return Ok(Vec::new());
                }
                vec![PlanEvent::MigrationPlanUpdated {
                    plan_id,
                    name,
                    terms,
                    updated_at: at,
                }]
            }
            PlanCommand::Move { status, at } => {
                use PlanStatus::*;
                match (plan.status, status) {
                    (from, to) if from == to => Vec::new(),
                    (Draft, Active) => vec![PlanEvent::MigrationPlanActivated {
                        plan_id,
                        activated_at: at,
                    }],
                    (Active, Completed) => vec![PlanEvent::MigrationPlanCompleted {
                        plan_id,
                        completed_at: at,
                    }],
                    (Draft | Active, Cancelled) => vec![PlanEvent::MigrationPlanCancelled {
                        plan_id,
                        cancelled_at: at,
                    }],
                    (_, Active) => return Err(refuse("activate")),
                    (_, Completed) => return Err(refuse("complete")),
                    (_, Cancelled) => return Err(refuse("cancel")),
                    (_, Draft) => return Err(refuse("return to draft")),
                }
            }
        })
    }
}

impl Aggregate for MigrationPlan {
    const TYPE: &'static str = "KmsMigrationPlan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = KmsError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlanEvent::MigrationPlanCreated {
                plan_id,
                name,
                terms,
                ..
            } => {
                self.state = Some(PlanState {
                    id: plan_id,
                    name,
                    terms,
                    status: PlanStatus::Draft,
                });
            }
            PlanEvent::MigrationPlanUpdated { name, terms, .. } => {
                if let Some(plan) = self.state.as_mut() {
                    plan.name = name;
                    plan.terms = terms;
                }
            }
            PlanEvent::MigrationPlanActivated { .. } => self.set(PlanStatus::Active),
            PlanEvent::MigrationPlanCompleted { .. } => self.set(PlanStatus::Completed),
            PlanEvent::MigrationPlanCancelled { .. } => self.set(PlanStatus::Cancelled),
        }
    }
}

impl MigrationPlan {
    fn set(&mut self, status: PlanStatus) {
        if let Some(plan) = self.state.as_mut() {
            plan.status = status;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    type PlanTest = TestFramework<MigrationPlan>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn plan_id() -> MigrationPlanId {
        MigrationPlanId::from_uuid(Uuid::from_u128(1))
    }

    fn terms() -> PlanTerms {
        PlanTerms {
            target_algorithms: TargetAlgorithms {
                signing: Some(Algorithm::MlDsa65),
                ..TargetAlgorithms::default()
            },
            scope: PlanScope::Algorithms(vec![Algorithm::EcdsaP256, Algorithm::Ed25519]),
        }
    }

    fn create(terms: PlanTerms) -> PlanCommand {
        PlanCommand::Create {
            plan: Box::new(NewMigrationPlan {
                plan_id: plan_id(),
                tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
                environment: Environment::Live,
                name: " pqc 2030 ".into(),
                terms,
            }),
            at: t0(),
        }
    }

    fn created() -> PlanEvent {
        PlanEvent::MigrationPlanCreated {
            plan_id: plan_id(),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            name: "pqc 2030".into(),
            terms: PlanTerms {
                scope: PlanScope::Algorithms(vec![Algorithm::Ed25519, Algorithm::EcdsaP256]),
                ..terms()
            },
            created_at: t0(),
        }
    }

    fn moved(status: PlanStatus) -> PlanCommand {
        PlanCommand::Move { status, at: t0() }
    }

    fn activated() -> PlanEvent {
        PlanEvent::MigrationPlanActivated {
            plan_id: plan_id(),
            activated_at: t0(),
        }
    }

    #[test]
    fn given_nothing_when_a_plan_is_created_then_it_is_a_draft_with_sorted_scope() {
        PlanTest::with(())
            .given_no_previous_events()
            .when(create(terms()))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_plan_needs_targets_of_the_right_category_and_a_scope() {
        let fields = |terms| match MigrationPlan::default().decide(create(terms)) {
            Err(KmsError::Invalid(problems)) => {
                problems.into_iter().map(|p| p.field).collect::<Vec<_>>()
            }
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(
            fields(PlanTerms {
                target_algorithms: TargetAlgorithms {
                    signing: Some(Algorithm::MlKem768),
                    ..TargetAlgorithms::default()
                },
                scope: PlanScope::KeyIds(Vec::new()),
            }),
            vec!["target_algorithms.signing", "scope.key_ids"]
        );
        assert_eq!(
            fields(PlanTerms {
                target_algorithms: TargetAlgorithms::default(),
                ..terms()
            }),
            vec!["target_algorithms"]
        );
    }

    #[test]
    fn given_a_plan_when_it_moves_then_only_the_lifecycle_transitions_are_allowed() {
        PlanTest::with(())
            .given(vec![created()])
            .when(moved(PlanStatus::Active))
            .then_expect_events(vec![activated()]);
        PlanTest::with(())
            .given(vec![created(), activated()])
            .when(moved(PlanStatus::Completed))
            .then_expect_events(vec![PlanEvent::MigrationPlanCompleted {
                plan_id: plan_id(),
                completed_at: t0(),
            }]);
        PlanTest::with(())
            .given(vec![created()])
            .when(moved(PlanStatus::Cancelled))
            .then_expect_events(vec![PlanEvent::MigrationPlanCancelled {
                plan_id: plan_id(),
                cancelled_at: t0(),
            }]);
        PlanTest::with(())
            .given(vec![created(), activated()])
            .when(moved(PlanStatus::Active))
            .then_expect_events(Vec::new());
        PlanTest::with(())
            .given(vec![created()])
            .when(moved(PlanStatus::Completed))
            .then_expect_error(KmsError::InvalidTransition {
                action: "complete",
                subject: "migration plan",
                state: "draft",
            });
        let cancelled = PlanEvent::MigrationPlanCancelled {
            plan_id: plan_id(),
            cancelled_at: t0(),
        };
        PlanTest::with(())
            .given(vec![created(), cancelled.clone()])
            .when(moved(PlanStatus::Active))
            .then_expect_error(KmsError::InvalidTransition {
                action: "activate",
                subject: "migration plan",
                state: "cancelled",
            });
        PlanTest::with(())
            .given(vec![created(), cancelled])
            .when(PlanCommand::Update {
                update: PlanUpdate {
                    name: Some("x".into()),
                    ..PlanUpdate::default()
                },
                at: t0(),
            })
            .then_expect_error(KmsError::InvalidTransition {
                action: "change",
                subject: "migration plan",
                state: "cancelled",
            });
    }

    #[test]
    fn a_key_in_scope_is_migrated_when_destroyed_or_replaced_by_the_target() {
        let terms = terms();
        let key = KeyId::from_uuid(Uuid::from_u128(9));
        assert!(terms.covers(&key, Algorithm::EcdsaP256));
        assert!(!terms.covers(&key, Algorithm::Aes256Gcm));
        let ecdsa = Algorithm::EcdsaP256;
        assert!(!terms.migrated(ecdsa, KeyState::Enabled, None));
        assert!(!terms.migrated(ecdsa, KeyState::Enabled, Some(Algorithm::Ed25519)));
        assert!(terms.migrated(ecdsa, KeyState::Enabled, Some(Algorithm::MlDsa65)));
        assert!(terms.migrated(ecdsa, KeyState::Destroyed, None));
        let by_key = PlanTerms {
            scope: PlanScope::KeyIds(vec![key]),
            ..terms
        };
        assert!(by_key.covers(&key, Algorithm::Aes256Gcm));
    }
}
