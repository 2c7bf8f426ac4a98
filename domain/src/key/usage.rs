//! A key's usage log: one aggregate per key and minute (`KeyUsage`,
//! id `<key id>@<minute>`), each holding the `KeyUsageRecorded` events
//! that replicas flushed for that minute. Usage is thus in the event log,
//! the audit trail and SSE without touching the Key aggregate: a flush never
//! races a rotation, never lengthens the key's stream, and never changes the
//! key's version (its `ETag`).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::{KeyError, KeyUsage, KeyUsageEvent};
use crate::KeyId;

/// The usage log of one key's minute.
pub fn key_usage_id(key_id: &KeyId, minute: DateTime<Utc>) -> String {
    format!("{key_id}@{}", minute.format("%Y-%m-%dT%H:%MZ"))
}

/// Records one replica's counts for one key's minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsageCommand {
    pub key_id: KeyId,
    pub minute: DateTime<Utc>,
    pub usage: Vec<KeyUsage>,
}

/// One key's minute of usage: no rule but that it is non-empty, and about
/// the key the log is named after.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyUsageMinute {
    key_id: Option<KeyId>,
}

impl KeyUsageMinute {
    pub fn decide(&self, command: KeyUsageCommand) -> Result<Vec<KeyUsageEvent>, KeyError> {
        if self.key_id.is_some_and(|key_id| key_id != command.key_id) {
            return Err(KeyError::Invalid(vec![crate::FieldProblem::new(
                "key_id",
                "this usage log belongs to another key",
            )]));
        }
        if command.usage.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![KeyUsageEvent::KeyUsageRecorded {
            key_id: command.key_id,
            minute: command.minute,
            usage: command.usage,
        }])
    }
}

impl Aggregate for KeyUsageMinute {
    const TYPE: &'static str = "KeyUsage";
    type Command = KeyUsageCommand;
    type Event = KeyUsageEvent;
    type Error = KeyError;
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
        let KeyUsageEvent::KeyUsageRecorded { key_id, .. } = event;
        self.key_id = Some(key_id);
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;
    use crate::key::Operation;

    type UsageTest = TestFramework<KeyUsageMinute>;

    fn minute() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 9, 30, 0).unwrap()
    }

    fn key(n: u128) -> KeyId {
        KeyId::from_uuid(Uuid::from_u128(n))
    }

    fn usage() -> Vec<KeyUsage> {
        vec![KeyUsage {
            version: 1,
            operation: Operation::Encrypt,
            application: "billing".into(),
            count: 3,
            errors: 1,
            bytes: 3072,
        }]
    }

    fn recorded(n: u128) -> KeyUsageEvent {
        KeyUsageEvent::KeyUsageRecorded {
            key_id: key(n),
            minute: minute(),
            usage: usage(),
        }
    }

    #[test]
    fn given_a_minute_when_usage_is_recorded_then_it_is_kept_and_a_second_flush_adds_to_it() {
        let command = |n| KeyUsageCommand {
            key_id: key(n),
            minute: minute(),
            usage: usage(),
        };
        UsageTest::with(())
            .given_no_previous_events()
            .when(command(1))
            .then_expect_events(vec![recorded(1)]);
        UsageTest::with(())
            .given(vec![recorded(1)])
            .when(command(1))
            .then_expect_events(vec![recorded(1)]);
        UsageTest::with(())
            .given_no_previous_events()
            .when(KeyUsageCommand {
                usage: Vec::new(),
                ..command(1)
            })
            .then_expect_events(Vec::new());
    }

    #[test]
    fn given_a_keys_log_when_another_keys_usage_arrives_then_it_is_refused() {
        let mut log = KeyUsageMinute::default();
        log.apply(recorded(1));
        let refused = log.decide(KeyUsageCommand {
            key_id: key(2),
            minute: minute(),
            usage: usage(),
        });
        assert!(matches!(refused, Err(KeyError::Invalid(_))));
    }

    #[test]
    fn each_key_and_minute_has_its_own_log() {
        assert_ne!(
            key_usage_id(&key(1), minute()),
            key_usage_id(&key(2), minute())
        );
        assert_eq!(
            key_usage_id(&key(1), minute()),
            format!("{}@2026-01-01T09:30Z", key(1))
        );
    }
}
