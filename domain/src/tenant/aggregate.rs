use std::collections::BTreeMap;

use chrono::Duration;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::NewApiKey;
use super::{Plan, TenantCommand, TenantEvent, TenantStatus};
use crate::text::{limits, optional_text, required_text, TextLimit};
use crate::{ApiKeyId, TenantId};

/// The longest a key may be issued for: `expires_at` at most this many
/// days (10 years) after issue, so every stored time stays readable.
pub const MAX_KEY_LIFETIME_DAYS: i64 = 3653;

/// Why a tenant command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    /// 404 not_found: no tenant has this id.
    #[error("tenant not found")]
    NotFound,
    /// 409 conflict: the id is taken.
    #[error("tenant already exists")]
    AlreadyExists,
    /// 422 validation_error on `name`.
    #[error("invalid tenant name: {0}")]
    InvalidName(String),
    /// 422 validation_error on the named field (of an API key, or a
    /// suspension's reason).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 409 conflict: an API key with this id exists.
    #[error("API key already exists")]
    ApiKeyExists,
    /// 404 not_found: the tenant has no API key with this id.
    #[error("API key not found")]
    UnknownApiKey,
    /// 403 tenant_suspended.
    #[error("tenant is suspended")]
    Suspended,
}

/// The tenant's decision state: only what commands need to decide.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    created: Option<CreatedTenant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CreatedTenant {
    id: TenantId,
    plan: Plan,
    status: TenantStatus,
    /// Every key ever issued, and whether it is revoked.
    api_keys: BTreeMap<ApiKeyId, bool>,
    /// The environments whose secret writes all need check-and-set.
    #[serde(default)]
    secrets_cas_required: Vec<crate::Environment>,
}

impl Tenant {
    pub fn id(&self) -> Option<TenantId> {
        self.created.as_ref().map(|t| t.id)
    }

    pub fn plan(&self) -> Option<Plan> {
        self.created.as_ref().map(|t| t.plan)
    }

    pub fn status(&self) -> Option<TenantStatus> {
        self.created.as_ref().map(|t| t.status)
    }

    fn existing(&self) -> Result<&CreatedTenant, TenantError> {
        self.created.as_ref().ok_or(TenantError::NotFound)
    }
}

/// The rule for text ([`crate::text`]), refusing as a tenant does.
fn required(field: &'static str, value: &str, limit: TextLimit) -> Result<String, TenantError> {
    required_text(field, value, limit).map_err(|problem| TenantError::Invalid {
        field,
        message: problem.message,
    })
}

fn issue_api_key(
    tenant: &CreatedTenant,
    key: NewApiKey,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<TenantEvent, TenantError> {
    if tenant.status == TenantStatus::Suspended {
        return Err(TenantError::Suspended);
    }
    if tenant.api_keys.contains_key(&key.key_id) {
        return Err(TenantError::ApiKeyExists);
    }
    validated_key(tenant.id, key, at)
}

fn validated_key(
    tenant_id: TenantId,
    key: NewApiKey,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<TenantEvent, TenantError> {
    let name = required("name", &key.name, limits::API_KEY_NAME)?;
    let principal = required("principal", &key.principal, limits::PRINCIPAL)?;
    let mut scopes = key.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(TenantError::Invalid {
            field: "scopes",
            message: "must name at least one scope".into(),
        });
    }
    if key.expires_at.is_some_and(|expires| expires <= at) {
        return Err(TenantError::Invalid {
            field: "expires_at",
            message: "must be in the future".into(),
        });
    }
    if key
        .expires_at
        .is_some_and(|expires| expires > at + Duration::days(MAX_KEY_LIFETIME_DAYS))
    {
        return Err(TenantError::Invalid {
            field: "expires_at",
            message: "must be within 10 years".into(),
        });
    }
    Ok(TenantEvent::ApiKeyIssued {
        tenant_id,
        key_id: key.key_id,
        name,
        principal,
        scopes,
        environment: key.environment,
        prefix: key.prefix,
        key_hash: key.key_hash,
        expires_at: key.expires_at,
        issued_at: at,
    })
}

impl Tenant {
    /// The events a command produces; empty when it changes nothing.
    fn decide(&self, command: TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        if let TenantCommand::CreateTenant {
            tenant_id,
            name,
            plan,
            owner_key,
            created_at,
        } = command
        {
            if self.created.is_some() {
                return Err(TenantError::AlreadyExists);
            }
            let owner_key = validated_key(tenant_id, owner_key, created_at)?;
            return Ok(vec![
                TenantEvent::TenantCreated {
                    tenant_id,
                    name: name.into(),
                    plan,
                    created_at,
                },
                owner_key,
            ]);
        }
        let tenant = self.existing()?;
        let tenant_id = tenant.id;
        let events = match command {
            TenantCommand::CreateTenant { .. } => unreachable!("handled above"),
            TenantCommand::ChangePlan { plan, .. } if plan == tenant.plan => vec![],
            TenantCommand::ChangePlan { plan, at } => vec![TenantEvent::TenantPlanChanged {
                tenant_id,
                from: tenant.plan,
                to: plan,
                changed_at: at,
            }],
            TenantCommand::Suspend { reason, at } => {
                let reason = optional_text("reason", reason.as_deref(), limits::REASON).map_err(
                    |problem| TenantError::Invalid {
                        field: "reason",
                        message: problem.message,
                    },
                )?;
                if tenant.status == TenantStatus::Suspended {
                    vec![]
                } else {
                    vec![TenantEvent::TenantSuspended {
                        tenant_id,
                        reason,
                        suspended_at: at,
                    }]
                }
            }
            TenantCommand::Reactivate { .. } if tenant.status == TenantStatus::Active => vec![],
            TenantCommand::Reactivate { at } => vec![TenantEvent::TenantReactivated {
                tenant_id,
                reactivated_at: at,
            }],
            TenantCommand::IssueApiKey { key, at } => vec![issue_api_key(tenant, key, at)?],
            TenantCommand::RevokeApiKey { key_id, at } => match tenant.api_keys.get(&key_id) {
                None => return Err(TenantError::UnknownApiKey),
                Some(true) => vec![],
                Some(false) => vec![TenantEvent::ApiKeyRevoked {
                    tenant_id,
                    key_id,
                    revoked_at: at,
                }],
            },
            TenantCommand::ConfigureSecrets {
                environment,
                cas_required,
                at,
            } => {
                if tenant.secrets_cas_required.contains(&environment) == cas_required {
                    vec![]
                } else {
                    vec![TenantEvent::TenantSecretsConfigured {
                        tenant_id,
                        environment,
                        cas_required,
                        configured_at: at,
                    }]
                }
            }
        };
        Ok(events)
    }
}

impl Aggregate for Tenant {
    const TYPE: &'static str = "Tenant";
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;
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
        if let TenantEvent::TenantCreated {
            tenant_id, plan, ..
        } = event
        {
            self.created = Some(CreatedTenant {
                id: tenant_id,
                plan,
                status: TenantStatus::Active,
                api_keys: BTreeMap::new(),
                secrets_cas_required: Vec::new(),
            });
            return;
        }
        let Some(tenant) = self.created.as_mut() else {
            return;
        };
        match event {
            TenantEvent::TenantCreated { .. } => {}
            TenantEvent::TenantPlanChanged { to, .. } => tenant.plan = to,
            TenantEvent::TenantSuspended { .. } => tenant.status = TenantStatus::Suspended,
            TenantEvent::TenantReactivated { .. } => tenant.status = TenantStatus::Active,
            TenantEvent::ApiKeyIssued { key_id, .. } => {
                tenant.api_keys.insert(key_id, false);
            }
            TenantEvent::ApiKeyRevoked { key_id, .. } => {
                tenant.api_keys.insert(key_id, true);
            }
            TenantEvent::TenantSecretsConfigured {
                environment,
                cas_required,
                ..
            } => {
                tenant.secrets_cas_required.retain(|e| *e != environment);
                if cas_required {
                    tenant.secrets_cas_required.push(environment);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::tenant::TenantName;
    use crate::{Environment, Scope};

    type TenantTest = TestFramework<Tenant>;

    fn tenant_id() -> TenantId {
        TenantId::from_uuid(Uuid::from_u128(7))
    }

    fn key_id(n: u128) -> ApiKeyId {
        ApiKeyId::from_uuid(Uuid::from_u128(n))
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
    }

    fn create(name: &str) -> TenantCommand {
        TenantCommand::CreateTenant {
            tenant_id: tenant_id(),
            name: TenantName::parse(name).expect("valid name"),
            plan: Plan::Pro,
            owner_key: new_key(1),
            created_at: now(),
        }
    }

    fn created(name: &str) -> TenantEvent {
        TenantEvent::TenantCreated {
            tenant_id: tenant_id(),
            name: name.to_string(),
            plan: Plan::Pro,
            created_at: now(),
        }
    }

    fn new_key(n: u128) -> NewApiKey {
        NewApiKey {
            key_id: key_id(n),
            name: " CI ".into(),
            principal: "ci-bot".into(),
            scopes: vec![
                Scope::FindingsWrite,
                Scope::FindingsRead,
                Scope::FindingsWrite,
            ],
            environment: Environment::Live,
            prefix: "pal_live_abcd".into(),
            key_hash: "hash".into(),
            expires_at: None,
        }
    }

    fn issued(n: u128) -> TenantEvent {
        TenantEvent::ApiKeyIssued {
            tenant_id: tenant_id(),
            key_id: key_id(n),
            name: "CI".into(),
            principal: "ci-bot".into(),
            scopes: vec![Scope::FindingsRead, Scope::FindingsWrite],
            environment: Environment::Live,
            prefix: "pal_live_abcd".into(),
            key_hash: "hash".into(),
            expires_at: None,
            issued_at: now(),
        }
    }

    fn suspended() -> TenantEvent {
        TenantEvent::TenantSuspended {
            tenant_id: tenant_id(),
            reason: None,
            suspended_at: now(),
        }
    }

    async fn given_when(
        given: Vec<TenantEvent>,
        when: TenantCommand,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        TenantTest::with(())
            .given(given)
            .when_async(when)
            .await
            .inspect_result()
    }

    #[tokio::test]
    async fn creating_a_tenant_records_it_with_its_owner_key() {
        TenantTest::with(())
            .given_no_previous_events()
            .when_async(create("Acme"))
            .await
            .then_expect_events(vec![created("Acme"), issued(1)]);
    }

    #[tokio::test]
    async fn a_tenant_is_not_created_with_an_invalid_owner_key() {
        let TenantCommand::CreateTenant {
            tenant_id,
            name,
            plan,
            created_at,
            ..
        } = create("Acme")
        else {
            unreachable!()
        };
        let owner_key = NewApiKey {
            scopes: vec![],
            ..new_key(1)
        };
        let command = TenantCommand::CreateTenant {
            tenant_id,
            name,
            plan,
            owner_key,
            created_at,
        };
        assert!(matches!(
            given_when(vec![], command).await,
            Err(TenantError::Invalid {
                field: "scopes",
                ..
            })
        ));
    }

    #[tokio::test]
    async fn a_tenant_cannot_be_created_twice() {
        TenantTest::with(())
            .given(vec![created("Acme")])
            .when_async(create("Other"))
            .await
            .then_expect_error(TenantError::AlreadyExists);
    }

    #[tokio::test]
    async fn commands_to_a_tenant_that_does_not_exist_are_not_found() {
        let result = given_when(vec![], TenantCommand::Reactivate { at: now() }).await;
        assert_eq!(result, Err(TenantError::NotFound));
    }

    #[tokio::test]
    async fn changing_the_plan_records_both_plans_and_the_same_plan_records_nothing() {
        let change = |plan| TenantCommand::ChangePlan { plan, at: now() };
        assert_eq!(
            given_when(vec![created("Acme")], change(Plan::Business)).await,
            Ok(vec![TenantEvent::TenantPlanChanged {
                tenant_id: tenant_id(),
                from: Plan::Pro,
                to: Plan::Business,
                changed_at: now(),
            }])
        );
        assert_eq!(
            given_when(vec![created("Acme")], change(Plan::Pro)).await,
            Ok(vec![])
        );
    }

    #[tokio::test]
    async fn suspend_and_reactivate_are_idempotent() {
        let suspend = || TenantCommand::Suspend {
            reason: None,
            at: now(),
        };
        assert_eq!(
            given_when(vec![created("Acme")], suspend()).await,
            Ok(vec![suspended()])
        );
        assert_eq!(
            given_when(vec![created("Acme"), suspended()], suspend()).await,
            Ok(vec![])
        );
        assert_eq!(
            given_when(
                vec![created("Acme")],
                TenantCommand::Reactivate { at: now() }
            )
            .await,
            Ok(vec![])
        );
        assert_eq!(
            given_when(
                vec![created("Acme"), suspended()],
                TenantCommand::Reactivate { at: now() }
            )
            .await,
            Ok(vec![TenantEvent::TenantReactivated {
                tenant_id: tenant_id(),
                reactivated_at: now()
            }])
        );
    }

    #[tokio::test]
    async fn an_issued_key_has_trimmed_names_and_sorted_distinct_scopes() {
        let issue = TenantCommand::IssueApiKey {
            key: new_key(1),
            at: now(),
        };
        assert_eq!(
            given_when(vec![created("Acme")], issue).await,
            Ok(vec![issued(1)])
        );
    }

    #[tokio::test]
    async fn a_suspended_tenant_cannot_issue_keys() {
        let issue = TenantCommand::IssueApiKey {
            key: new_key(1),
            at: now(),
        };
        assert_eq!(
            given_when(vec![created("Acme"), suspended()], issue).await,
            Err(TenantError::Suspended)
        );
    }

    #[tokio::test]
    async fn a_key_id_is_issued_once() {
        let issue = TenantCommand::IssueApiKey {
            key: new_key(1),
            at: now(),
        };
        assert_eq!(
            given_when(vec![created("Acme"), issued(1)], issue).await,
            Err(TenantError::ApiKeyExists)
        );
    }

    #[tokio::test]
    async fn keys_need_scopes_a_principal_and_a_future_expiry() {
        let invalid = |key: NewApiKey| async move {
            match given_when(
                vec![created("Acme")],
                TenantCommand::IssueApiKey { key, at: now() },
            )
            .await
            {
                Err(TenantError::Invalid { field, .. }) => field,
                other => panic!("expected a validation error, got {other:?}"),
            }
        };
        assert_eq!(
            invalid(NewApiKey {
                scopes: vec![],
                ..new_key(1)
            })
            .await,
            "scopes"
        );
        assert_eq!(
            invalid(NewApiKey {
                principal: "  ".into(),
                ..new_key(1)
            })
            .await,
            "principal"
        );
        assert_eq!(
            invalid(NewApiKey {
                name: "x".repeat(101),
                ..new_key(1)
            })
            .await,
            "name"
        );
        assert_eq!(
            invalid(NewApiKey {
                expires_at: Some(now()),
                ..new_key(1)
            })
            .await,
            "expires_at"
        );
        assert_eq!(
            invalid(NewApiKey {
                expires_at: Some(now() + Duration::days(3654)),
                ..new_key(1)
            })
            .await,
            "expires_at"
        );
        let later = NewApiKey {
            expires_at: Some(now() + Duration::days(1)),
            ..new_key(1)
        };
        let result = given_when(
            vec![created("Acme")],
            TenantCommand::IssueApiKey {
                key: later,
                at: now(),
            },
        )
        .await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn revoking_records_once_and_unknown_keys_are_not_found() {
        let revoke = |n| TenantCommand::RevokeApiKey {
            key_id: key_id(n),
            at: now(),
        };
        let revoked = TenantEvent::ApiKeyRevoked {
            tenant_id: tenant_id(),
            key_id: key_id(1),
            revoked_at: now(),
        };
        assert_eq!(
            given_when(vec![created("Acme"), issued(1)], revoke(1)).await,
            Ok(vec![revoked.clone()])
        );
        assert_eq!(
            given_when(vec![created("Acme"), issued(1), revoked], revoke(1)).await,
            Ok(vec![])
        );
        assert_eq!(
            given_when(vec![created("Acme")], revoke(2)).await,
            Err(TenantError::UnknownApiKey)
        );
    }

    #[tokio::test]
    async fn given_a_tenant_when_a_suspension_reason_or_key_text_breaks_the_text_rule_then_it_is_refused(
    ) {
        let suspend = |reason: String| TenantCommand::Suspend {
            reason: Some(reason),
            at: now(),
        };
        for reason in ["a\0b".to_string(), "x".repeat(2_001)] {
            assert!(matches!(
                given_when(vec![created("Acme")], suspend(reason)).await,
                Err(TenantError::Invalid {
                    field: "reason",
                    ..
                })
            ));
        }
        let issue = |key: NewApiKey| TenantCommand::IssueApiKey { key, at: now() };
        for (key, field) in [
            (
                NewApiKey {
                    name: "ci\0".into(),
                    ..new_key(1)
                },
                "name",
            ),
            (
                NewApiKey {
                    principal: "bot\u{9b}".into(),
                    ..new_key(1)
                },
                "principal",
            ),
        ] {
            match given_when(vec![created("Acme")], issue(key)).await {
                Err(TenantError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("expected {field} refused, got {other:?}"),
            }
        }
        assert!(TenantName::parse("Ac\0me").is_err());
    }

    #[test]
    fn tenant_names_are_trimmed_and_bounded() {
        assert_eq!(
            TenantName::parse("  Acme ").map(String::from),
            Ok("Acme".to_string())
        );
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"x".repeat(101)).is_err());
        assert!(TenantName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn plans_parse_from_their_names_only() {
        assert_eq!("pro".parse::<Plan>(), Ok(Plan::Pro));
        assert!("gold"
            .parse::<Plan>()
            .unwrap_err()
            .contains("expected one of free"));
    }
}
