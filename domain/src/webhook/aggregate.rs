//! The Webhook aggregate's commands, events and decisions.
//!
//! ```text
//! (none) ──Create──▶ enabled ◀──Enable── disabled
//!                      │  └──Disable (manual | gone | failing)──▶ disabled
//!                      └─ Update, RotateSecret, SendTest (SendTest: enabled only)
//! enabled | disabled ──Delete──▶ deleted (then every command: not found)
//! ```
//!
//! Idempotent where a retry must not be a second change: disabling a
//! disabled endpoint, enabling an enabled one and an update that changes
//! nothing record nothing. A rotation always records one (each names a
//! new secret).

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::address::{check_url, UrlProblem};
use super::WebhookEventType;
use crate::finding::Severity;
use crate::text::{limits, optional_text, required_text, FieldProblem, MAX_LIST_ITEMS};
use crate::WebhookId;

/// Highest `rate_limit_per_second` an endpoint may ask for.
pub const MAX_RATE_LIMIT_PER_SECOND: u32 = 1_000;

/// How long the previous secret keeps signing after a rotation.
pub const SECRET_GRACE_HOURS: i64 = 24;

/// Which messages of the subscribed types an endpoint wants: a message
/// passes when each non-empty list holds its value (findings only; other
/// messages have no severity or product and pass).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub product: Vec<String>,
}

impl WebhookFilter {
    pub fn is_empty(&self) -> bool {
        self.severity.is_empty() && self.product.is_empty()
    }
}

/// What an endpoint is: where it points and what it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSpec {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Empty: every type, including types added later.
    #[serde(default)]
    pub event_types: Vec<WebhookEventType>,
    #[serde(default, skip_serializing_if = "WebhookFilter::is_empty")]
    pub filter: WebhookFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
}

impl WebhookSpec {
    /// Whether a message of `event_type` is one this endpoint subscribes to
    /// (the filter is applied to the message's data by the dispatcher).
    pub fn subscribes_to(&self, event_type: WebhookEventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&event_type)
    }

    /// The spec as it is kept: text trimmed, lists without repeats, the
    /// URL normalised; every problem at once, or the URL's unsafety.
    fn validated(mut self, allow_private: bool) -> Result<Self, WebhookError> {
        let mut problems = Vec::new();
        match check_url(&self.url, allow_private) {
            Ok(url) => self.url = url.to_string(),
            Err(UrlProblem::Invalid(problem)) => problems.push(problem),
            Err(UrlProblem::Unsafe(reason)) => return Err(WebhookError::UnsafeUrl(reason)),
        }
        match optional_text(
            "description",
            self.description.as_deref(),
            limits::WEBHOOK_DESCRIPTION,
        ) {
            Ok(description) => self.description = description,
            Err(problem) => problems.push(problem),
        }
        dedup(&mut self.event_types);
        dedup(&mut self.filter.severity);
        if self.filter.product.len() > MAX_LIST_ITEMS {
            problems.push(FieldProblem::new(
                "filter.product",
                format!("at most {MAX_LIST_ITEMS} products"),
            ));
        } else {
            let mut products = Vec::with_capacity(self.filter.product.len());
            for (i, product) in self.filter.product.iter().enumerate() {
                match required_text(&format!("filter.product[{i}]"), product, limits::PRODUCT) {
                    Ok(product) => products.push(product),
                    Err(problem) => problems.push(problem),
                }
            }
            dedup(&mut products);
            self.filter.product = products;
        }
        if let Some(rate) = self.rate_limit_per_second {
            if !(1..=MAX_RATE_LIMIT_PER_SECOND).contains(&rate) {
                problems.push(FieldProblem::new(
                    "rate_limit_per_second",
                    format!("must be between 1 and {MAX_RATE_LIMIT_PER_SECOND}"),
                ));
            }
        }
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(WebhookError::Invalid(problems))
        }
    }
}

/// Removes repeats, keeping each value's first place.
fn dedup<T: PartialEq + Clone>(values: &mut Vec<T>) {
    let mut kept: Vec<T> = Vec::with_capacity(values.len());
    for value in values.drain(..) {
        if !kept.contains(&value) {
            kept.push(value);
        }
    }
    *values = kept;
}

/// A change to some of an endpoint's fields (`PATCH`): None leaves a field
/// as it is; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<WebhookEventType>>,
    pub filter: Option<WebhookFilter>,
    pub rate_limit_per_second: Option<Option<u32>>,
}

/// Why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum DisableCause {
    /// A user disabled it.
    Manual,
    /// It answered 410 Gone.
    Gone,
    /// Every attempt to it failed since `since` (5 days).
    Failing { since: DateTime<Utc> },
}

impl DisableCause {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisableCause::Manual => "manual",
            DisableCause::Gone => "gone",
            DisableCause::Failing { .. } => "failing",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Enabled,
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            WebhookStatus::Enabled => "enabled",
            WebhookStatus::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhookCommand {
    /// Registers an endpoint. `secret_id` names its first signing secret,
    /// already sealed by the caller; `allow_private` is the configuration's
    /// `PALISADE_WEBHOOKS_ALLOW_PRIVATE`.
    Create {
        webhook_id: WebhookId,
        spec: WebhookSpec,
        secret_id: String,
        allow_private: bool,
        at: DateTime<Utc>,
    },
    Update {
        update: WebhookUpdate,
        allow_private: bool,
        at: DateTime<Utc>,
    },
    /// A new signing secret (sealed by the caller as `secret_id`); the
    /// current one keeps signing for [`SECRET_GRACE_HOURS`].
    RotateSecret {
        secret_id: String,
        at: DateTime<Utc>,
    },
    Disable {
        cause: DisableCause,
        at: DateTime<Utc>,
    },
    Enable {
        at: DateTime<Utc>,
    },
    /// Sends a `webhook.test` message with this id.
    SendTest {
        message_id: String,
        at: DateTime<Utc>,
    },
    Delete {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WebhookEvent {
    WebhookCreated {
        webhook_id: WebhookId,
        spec: WebhookSpec,
        secret_id: String,
        at: DateTime<Utc>,
    },
    /// The spec after the change, and the names of the fields it changed.
    WebhookUpdated {
        spec: WebhookSpec,
        changed: Vec<String>,
        at: DateTime<Utc>,
    },
    WebhookSecretRotated {
        secret_id: String,
        previous_secret_id: String,
        previous_valid_until: DateTime<Utc>,
        /// The secret before the previous one, no longer used: its row is
        /// to be deleted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retired_secret_id: Option<String>,
        at: DateTime<Utc>,
    },
    WebhookDisabled {
        #[serde(flatten)]
        cause: DisableCause,
        at: DateTime<Utc>,
    },
    WebhookEnabled {
        at: DateTime<Utc>,
    },
    WebhookTestRequested {
        message_id: String,
        at: DateTime<Utc>,
    },
    /// The endpoint is gone; `secret_ids` are the rows to delete.
    WebhookDeleted {
        secret_ids: Vec<String>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for WebhookEvent {
    fn event_type(&self) -> String {
        match self {
            WebhookEvent::WebhookCreated { .. } => "WebhookCreated",
            WebhookEvent::WebhookUpdated { .. } => "WebhookUpdated",
            WebhookEvent::WebhookSecretRotated { .. } => "WebhookSecretRotated",
            WebhookEvent::WebhookDisabled { .. } => "WebhookDisabled",
            WebhookEvent::WebhookEnabled { .. } => "WebhookEnabled",
            WebhookEvent::WebhookTestRequested { .. } => "WebhookTestRequested",
            WebhookEvent::WebhookDeleted { .. } => "WebhookDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Every event type of the aggregate (the audit projection's list).
pub const EVENT_TYPES: [&str; 7] = [
    "WebhookCreated",
    "WebhookUpdated",
    "WebhookSecretRotated",
    "WebhookDisabled",
    "WebhookEnabled",
    "WebhookTestRequested",
    "WebhookDeleted",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook not found")]
    NotFound,
    #[error("webhook already exists")]
    AlreadyExists,
    #[error("the webhook is {0}")]
    InvalidState(&'static str),
    #[error("invalid webhook: {}", .0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldProblem>),
    /// The URL points at an address webhooks may not reach.
    #[error("unsafe webhook URL: {0}")]
    UnsafeUrl(String),
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    state: Option<State>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct State {
    spec: WebhookSpec,
    status: WebhookStatus,
    disabled_by: Option<DisableCause>,
    secret_id: String,
    previous: Option<(String, DateTime<Utc>)>,
    deleted: bool,
}

impl Webhook {
    fn live(&self) -> Option<&State> {
        self.state.as_ref().filter(|s| !s.deleted)
    }

    pub fn status(&self) -> Option<WebhookStatus> {
        self.live().map(|s| s.status)
    }

    pub fn spec(&self) -> Option<&WebhookSpec> {
        self.live().map(|s| &s.spec)
    }

    pub fn disabled_by(&self) -> Option<DisableCause> {
        self.live().and_then(|s| s.disabled_by)
    }

    /// The secrets that sign a message sent at `at`: the current one, then
    /// the previous one while its grace lasts.
    pub fn signing_secret_ids(&self, at: DateTime<Utc>) -> Vec<&str> {
        let Some(state) = self.live() else {
            return Vec::new();
        };
        let mut ids = vec![state.secret_id.as_str()];
        if let Some((previous, until)) = &state.previous {
            if at < *until {
                ids.push(previous.as_str());
            }
        }
        ids
    }

    fn decide(&self, command: WebhookCommand) -> Result<Vec<WebhookEvent>, WebhookError> {
        use WebhookCommand as C;
        use WebhookEvent as E;
        if let C::Create {
            webhook_id,
            spec,
            secret_id,
            allow_private,
            at,
        } = command
        {
            if self.state.is_some() {
                return Err(WebhookError::AlreadyExists);
            }
            let spec = spec.validated(allow_private)?;
            return Ok(vec![E::WebhookCreated {
                webhook_id,
                spec,
                secret_id: secret_ref(secret_id)?,
                at,
            }]);
        }
        let state = self.live().ok_or(WebhookError::NotFound)?;
        Ok(match command {
            C::Create { .. } => unreachable!("handled above"),
            C::Update {
                update,
                allow_private,
                at,
            } => {
                let mut spec = state.spec.clone();
                if let Some(url) = update.url {
                    spec.url = url;
                }
                if let Some(description) = update.description {
                    spec.description = description;
                }
                if let Some(event_types) = update.event_types {
                    spec.event_types = event_types;
                }
                if let Some(filter) = update.filter {
                    spec.filter = filter;
                }
                if let Some(rate) = update.rate_limit_per_second {
                    spec.rate_limit_per_second = rate;
                }
                let spec = spec.validated(allow_private)?;
                let old = &state.spec;
                let changed: Vec<String> = [
                    ("url", spec.url != old.url),
                    ("description", spec.description != old.description),
                    ("event_types", spec.event_types != old.event_types),
                    ("filter", spec.filter != old.filter),
                    (
                        "rate_limit_per_second",
                        spec.rate_limit_per_second != old.rate_limit_per_second,
                    ),
                ]
                .into_iter()
                .filter(|(_, differs)| *differs)
                .map(|(name, _)| name.to_string())
                .collect();
                if changed.is_empty() {
                    vec![]
                } else {
                    vec![E::WebhookUpdated { spec, changed, at }]
                }
            }
            C::RotateSecret { secret_id, at } => {
                let secret_id = secret_ref(secret_id)?;
                if secret_id == state.secret_id
                    || state
                        .previous
                        .as_ref()
                        .is_some_and(|(p, _)| *p == secret_id)
                {
                    return Err(WebhookError::Invalid(vec![FieldProblem::new(
                        "secret_id",
                        "is already one of the webhook's secrets",
                    )]));
                }
                vec![E::WebhookSecretRotated {
                    secret_id,
                    previous_secret_id: state.secret_id.clone(),
                    previous_valid_until: at + Duration::hours(SECRET_GRACE_HOURS),
                    retired_secret_id: state.previous.as_ref().map(|(id, _)| id.clone()),
                    at,
                }]
            }
            C::Disable { cause, at } => match state.status {
                WebhookStatus::Disabled => vec![],
                WebhookStatus::Enabled => vec![E::WebhookDisabled { cause, at }],
            },
            C::Enable { at } => match state.status {
                WebhookStatus::Enabled => vec![],
                WebhookStatus::Disabled => vec![E::WebhookEnabled { at }],
            },
            C::SendTest { message_id, at } => {
                if state.status == WebhookStatus::Disabled {
                    return Err(WebhookError::InvalidState(
                        "disabled; enable it to send a test message",
                    ));
                }
                let message_id = required_text("message_id", &message_id, limits::FILTER)
                    .map_err(|p| WebhookError::Invalid(vec![p]))?;
                vec![E::WebhookTestRequested { message_id, at }]
            }
            C::Delete { at } => {
                let mut secret_ids = vec![state.secret_id.clone()];
                secret_ids.extend(state.previous.as_ref().map(|(id, _)| id.clone()));
                vec![E::WebhookDeleted { secret_ids, at }]
            }
        })
    }
}

/// A secret's row id as the caller made it: 1 to 64 ASCII letters,
/// digits, `_` or `-`.
fn secret_ref(secret_id: String) -> Result<String, WebhookError> {
    let ok = (1..=64).contains(&secret_id.len())
        && secret_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(secret_id)
    } else {
        Err(WebhookError::Invalid(vec![FieldProblem::new(
            "secret_id",
            "must be 1 to 64 letters, digits, '_' or '-'",
        )]))
    }
}

impl Aggregate for Webhook {
    const TYPE: &'static str = "Webhook";
    type Command = WebhookCommand;
    type Event = WebhookEvent;
    type Error = WebhookError;
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
        use WebhookEvent as E;
        if let E::WebhookCreated {
            spec, secret_id, ..
        } = event
        {
            self.state = Some(State {
                spec,
                status: WebhookStatus::Enabled,
                disabled_by: None,
                secret_id,
                previous: None,
                deleted: false,
            });
            return;
        }
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match event {
            E::WebhookCreated { .. } | E::WebhookTestRequested { .. } => {}
            E::WebhookUpdated { spec, .. } => state.spec = spec,
            E::WebhookSecretRotated {
                secret_id,
                previous_secret_id,
                previous_valid_until,
                ..
            } => {
                state.secret_id = secret_id;
                state.previous = Some((previous_secret_id, previous_valid_until));
            }
            E::WebhookDisabled { cause, .. } => {
                state.status = WebhookStatus::Disabled;
                state.disabled_by = Some(cause);
            }
            E::WebhookEnabled { .. } => {
                state.status = WebhookStatus::Enabled;
                state.disabled_by = None;
            }
            E::WebhookDeleted { .. } => state.deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    type Given = TestFramework<Webhook>;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap()
    }

    fn id() -> WebhookId {
        WebhookId::from_uuid(Uuid::from_u128(20))
    }

    fn spec() -> WebhookSpec {
        WebhookSpec {
            url: "https://hooks.example.com/palisade".into(),
            description: Some("SIEM".into()),
            event_types: vec![WebhookEventType::FindingCreated],
            filter: WebhookFilter::default(),
            rate_limit_per_second: None,
        }
    }

    fn create(spec: WebhookSpec) -> WebhookCommand {
        WebhookCommand::Create {
            webhook_id: id(),
            spec,
            secret_id: "s1".into(),
            allow_private: false,
            at: t0(),
        }
    }

    fn created() -> WebhookEvent {
        WebhookEvent::WebhookCreated {
            webhook_id: id(),
            spec: spec(),
            secret_id: "s1".into(),
            at: t0(),
        }
    }

    fn fold(events: Vec<WebhookEvent>) -> Webhook {
        let mut webhook = Webhook::default();
        for event in events {
            webhook.apply(event);
        }
        webhook
    }

    fn problems(result: Result<Vec<WebhookEvent>, WebhookError>) -> Vec<String> {
        match result {
            Err(WebhookError::Invalid(problems)) => problems.into_iter().map(|p| p.field).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn an_endpoint_is_created_with_its_spec_normalised() {
        let mut messy = spec();
        messy.url = " HTTPS://Hooks.Example.com:443/palisade ".into();
        messy.description = Some("  SIEM ".into());
        messy.event_types = vec![
            WebhookEventType::FindingCreated,
            WebhookEventType::FindingCreated,
        ];
        Given::with(())
            .given_no_previous_events()
            .when(create(messy))
            .then_expect_events(vec![created()]);
    }

    #[test]
    fn a_second_create_is_refused() {
        Given::with(())
            .given(vec![created()])
            .when(create(spec()))
            .then_expect_error(WebhookError::AlreadyExists);
    }

    #[test]
    fn a_private_address_is_unsafe_unless_allowed() {
        let mut private = spec();
        private.url = "http://169.254.169.254/latest/meta-data".into();
        let refused = Webhook::default().decide(create(private.clone()));
        assert!(
            matches!(refused, Err(WebhookError::UnsafeUrl(_))),
            "{refused:?}"
        );
        let allowed = Webhook::default().decide(WebhookCommand::Create {
            webhook_id: id(),
            spec: private,
            secret_id: "s1".into(),
            allow_private: true,
            at: t0(),
        });
        assert!(allowed.is_ok());
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = WebhookSpec {
            url: "ftp://example.com".into(),
            description: Some("x".repeat(501)),
            event_types: vec![],
            filter: WebhookFilter {
                severity: vec![],
                product: vec!["".into(), "ok".into()],
            },
            rate_limit_per_second: Some(0),
        };
        assert_eq!(
            problems(Webhook::default().decide(create(bad))),
            vec![
                "url",
                "description",
                "filter.product[0]",
                "rate_limit_per_second"
            ]
        );
        let mut many = spec();
        many.filter.product = (0..=MAX_LIST_ITEMS).map(|i| format!("p{i}")).collect();
        assert_eq!(
            problems(Webhook::default().decide(create(many))),
            vec!["filter.product"]
        );
    }

    #[test]
    fn an_update_records_what_it_changed_and_nothing_when_nothing_did() {
        let mut after = spec();
        after.event_types = vec![];
        after.rate_limit_per_second = Some(50);
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::Update {
                update: WebhookUpdate {
                    event_types: Some(vec![]),
                    rate_limit_per_second: Some(Some(50)),
                    url: Some("https://hooks.example.com/palisade".into()),
                    ..WebhookUpdate::default()
                },
                allow_private: false,
                at: t0(),
            })
            .then_expect_events(vec![WebhookEvent::WebhookUpdated {
                spec: after,
                changed: vec!["event_types".into(), "rate_limit_per_second".into()],
                at: t0(),
            }]);
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::Update {
                update: WebhookUpdate {
                    description: Some(Some("SIEM".into())),
                    ..WebhookUpdate::default()
                },
                allow_private: false,
                at: t0(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn an_update_to_an_unsafe_url_is_refused() {
        let result = fold(vec![created()]).decide(WebhookCommand::Update {
            update: WebhookUpdate {
                url: Some("http://[::1]:8080/".into()),
                ..WebhookUpdate::default()
            },
            allow_private: false,
            at: t0(),
        });
        assert!(matches!(result, Err(WebhookError::UnsafeUrl(_))));
    }

    #[test]
    fn a_rotation_keeps_the_previous_secret_for_24_hours() {
        let rotated = WebhookEvent::WebhookSecretRotated {
            secret_id: "s2".into(),
            previous_secret_id: "s1".into(),
            previous_valid_until: t0() + Duration::hours(24),
            retired_secret_id: None,
            at: t0(),
        };
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::RotateSecret {
                secret_id: "s2".into(),
                at: t0(),
            })
            .then_expect_events(vec![rotated.clone()]);
        let webhook = fold(vec![created(), rotated.clone()]);
        assert_eq!(webhook.signing_secret_ids(t0()), vec!["s2", "s1"]);
        assert_eq!(
            webhook.signing_secret_ids(t0() + Duration::hours(24) - Duration::seconds(1)),
            vec!["s2", "s1"]
        );
        assert_eq!(
            webhook.signing_secret_ids(t0() + Duration::hours(24)),
            vec!["s2"]
        );
        // A second rotation retires the oldest: never more than two.
        let later = t0() + Duration::hours(1);
        Given::with(())
            .given(vec![created(), rotated])
            .when(WebhookCommand::RotateSecret {
                secret_id: "s3".into(),
                at: later,
            })
            .then_expect_events(vec![WebhookEvent::WebhookSecretRotated {
                secret_id: "s3".into(),
                previous_secret_id: "s2".into(),
                previous_valid_until: later + Duration::hours(24),
                retired_secret_id: Some("s1".into()),
                at: later,
            }]);
    }

    #[test]
    fn a_rotation_to_a_secret_in_use_or_a_bad_reference_is_refused() {
        let webhook = fold(vec![created()]);
        for secret_id in ["s1", "", "has space", &"x".repeat(65)] {
            let result = webhook.decide(WebhookCommand::RotateSecret {
                secret_id: secret_id.into(),
                at: t0(),
            });
            assert_eq!(problems(result), vec!["secret_id"], "{secret_id:?}");
        }
    }

    #[test]
    fn disabling_and_enabling_are_idempotent_and_keep_the_cause() {
        let gone = WebhookEvent::WebhookDisabled {
            cause: DisableCause::Gone,
            at: t0(),
        };
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::Disable {
                cause: DisableCause::Gone,
                at: t0(),
            })
            .then_expect_events(vec![gone.clone()]);
        Given::with(())
            .given(vec![created(), gone.clone()])
            .when(WebhookCommand::Disable {
                cause: DisableCause::Manual,
                at: t0(),
            })
            .then_expect_events(vec![]);
        let webhook = fold(vec![created(), gone.clone()]);
        assert_eq!(webhook.status(), Some(WebhookStatus::Disabled));
        assert_eq!(webhook.disabled_by(), Some(DisableCause::Gone));
        Given::with(())
            .given(vec![created(), gone])
            .when(WebhookCommand::Enable { at: t0() })
            .then_expect_events(vec![WebhookEvent::WebhookEnabled { at: t0() }]);
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::Enable { at: t0() })
            .then_expect_events(vec![]);
    }

    #[test]
    fn a_test_message_needs_an_enabled_endpoint() {
        Given::with(())
            .given(vec![created()])
            .when(WebhookCommand::SendTest {
                message_id: "msg_1".into(),
                at: t0(),
            })
            .then_expect_events(vec![WebhookEvent::WebhookTestRequested {
                message_id: "msg_1".into(),
                at: t0(),
            }]);
        Given::with(())
            .given(vec![
                created(),
                WebhookEvent::WebhookDisabled {
                    cause: DisableCause::Manual,
                    at: t0(),
                },
            ])
            .when(WebhookCommand::SendTest {
                message_id: "msg_1".into(),
                at: t0(),
            })
            .then_expect_error(WebhookError::InvalidState(
                "disabled; enable it to send a test message",
            ));
    }

    #[test]
    fn a_deleted_endpoint_names_its_secrets_and_is_then_not_found() {
        let rotated = WebhookEvent::WebhookSecretRotated {
            secret_id: "s2".into(),
            previous_secret_id: "s1".into(),
            previous_valid_until: t0() + Duration::hours(24),
            retired_secret_id: None,
            at: t0(),
        };
        let deleted = WebhookEvent::WebhookDeleted {
            secret_ids: vec!["s2".into(), "s1".into()],
            at: t0(),
        };
        Given::with(())
            .given(vec![created(), rotated.clone()])
            .when(WebhookCommand::Delete { at: t0() })
            .then_expect_events(vec![deleted.clone()]);
        let webhook = fold(vec![created(), rotated.clone(), deleted.clone()]);
        assert_eq!(webhook.status(), None);
        assert!(webhook.signing_secret_ids(t0()).is_empty());
        Given::with(())
            .given(vec![created(), rotated.clone(), deleted.clone()])
            .when(WebhookCommand::Enable { at: t0() })
            .then_expect_error(WebhookError::NotFound);
        // The id stays taken: a create under it is refused.
        Given::with(())
            .given(vec![created(), rotated, deleted])
            .when(create(spec()))
            .then_expect_error(WebhookError::AlreadyExists);
        Given::with(())
            .given_no_previous_events()
            .when(WebhookCommand::Delete { at: t0() })
            .then_expect_error(WebhookError::NotFound);
    }

    #[test]
    fn events_serialise_without_any_secret_and_read_back() {
        let events = vec![
            created(),
            WebhookEvent::WebhookDisabled {
                cause: DisableCause::Failing { since: t0() },
                at: t0(),
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            assert!(!json.contains("whsec_"));
            assert_eq!(serde_json::from_str::<WebhookEvent>(&json).unwrap(), event);
        }
        let disabled = serde_json::to_value(WebhookEvent::WebhookDisabled {
            cause: DisableCause::Failing { since: t0() },
            at: t0(),
        })
        .unwrap();
        assert_eq!(disabled["WebhookDisabled"]["cause"], "failing");
    }

    #[test]
    fn subscription_to_types() {
        let mut all = spec();
        all.event_types = vec![];
        assert!(all.subscribes_to(WebhookEventType::KeyRotated));
        assert!(spec().subscribes_to(WebhookEventType::FindingCreated));
        assert!(!spec().subscribes_to(WebhookEventType::KeyRotated));
    }
}
