//! A value read, as its own aggregate (`SecretRead`, one per read): the
//! audit trail answers "who read this secret when" from these events, and
//! since each read is a new stream it never races another read or the
//! secret's own writes.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::events::SecretReadEvent;
use crate::{Environment, SecretId, TenantId};

/// A read to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRead {
    pub secret_id: SecretId,
    pub tenant_id: TenantId,
    pub environment: Environment,
    pub path: String,
    pub version: u32,
    pub actor: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretReadError {
    #[error("this read is recorded")]
    AlreadyRecorded,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRead {
    recorded: bool,
}

impl Aggregate for SecretRead {
    const TYPE: &'static str = "SecretRead";
    type Command = RecordRead;
    type Event = SecretReadEvent;
    type Error = SecretReadError;
    type Services = ();

    async fn handle(
        &mut self,
        read: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if self.recorded {
            return Err(SecretReadError::AlreadyRecorded);
        }
        let event = SecretReadEvent::SecretRead {
            secret_id: read.secret_id,
            tenant_id: read.tenant_id,
            environment: read.environment,
            path: read.path,
            version: read.version,
            actor: read.actor,
            request_id: read.request_id,
            read_at: read.at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.recorded = true;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    fn read() -> RecordRead {
        RecordRead {
            secret_id: SecretId::from_uuid(Uuid::from_u128(1)),
            tenant_id: TenantId::from_uuid(Uuid::from_u128(2)),
            environment: Environment::Live,
            path: "app/db".into(),
            version: 3,
            actor: "deployer".into(),
            request_id: "req-1".into(),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn recorded() -> SecretReadEvent {
        let read = read();
        SecretReadEvent::SecretRead {
            secret_id: read.secret_id,
            tenant_id: read.tenant_id,
            environment: read.environment,
            path: read.path,
            version: read.version,
            actor: read.actor,
            request_id: read.request_id,
            read_at: read.at,
        }
    }

    #[test]
    fn given_a_read_when_recorded_then_it_is_one_event_and_only_once() {
        TestFramework::<SecretRead>::with(())
            .given_no_previous_events()
            .when(read())
            .then_expect_events(vec![recorded()]);
        TestFramework::<SecretRead>::with(())
            .given(vec![recorded()])
            .when(read())
            .then_expect_error(SecretReadError::AlreadyRecorded);
    }
}
