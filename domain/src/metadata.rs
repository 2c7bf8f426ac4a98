//! The metadata every event carries (`docs/event-store.md`): who caused it, for which
//! tenant and environment, under which request, and when.
//!
//! cqrs-es stores metadata as a string map; [`EventMetadata`] is its typed
//! form, converted at the edge with [`EventMetadata::to_map`] and
//! [`EventMetadata::from_map`].

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Live data or the tenant's sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Live,
    Test,
}

/// What kind of principal caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    ApiKey,
    Admin,
    System,
}

macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} '{other}'", stringify!($name))),
                }
            }
        }
    };
}

text_enum!(Environment { Live => "live", Test => "test" });
text_enum!(ActorType { ApiKey => "api_key", Admin => "admin", System => "system" });

/// A metadata map that cannot be read back into [`EventMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event metadata field '{field}': {message}")]
pub struct MetadataError {
    pub field: &'static str,
    pub message: String,
}

/// Typed event metadata. `tenant_id` is text so that events about the
/// platform itself (no tenant yet) and every aggregate share one shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    pub tenant_id: String,
    pub environment: Environment,
    pub actor: String,
    pub actor_type: ActorType,
    pub api_key_id: Option<String>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

impl EventMetadata {
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            ("tenant_id".to_string(), self.tenant_id.clone()),
            ("environment".to_string(), self.environment.to_string()),
            ("actor".to_string(), self.actor.clone()),
            ("actor_type".to_string(), self.actor_type.to_string()),
            (
                "occurred_at".to_string(),
                self.occurred_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
        ]);
        let optional = [
            ("api_key_id", &self.api_key_id),
            ("request_id", &self.request_id),
            ("correlation_id", &self.correlation_id),
            ("causation_id", &self.causation_id),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                map.insert(key.to_string(), value.clone());
            }
        }
        map
    }

    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, MetadataError> {
        fn required<'a>(
            map: &'a HashMap<String, String>,
            field: &'static str,
        ) -> Result<&'a str, MetadataError> {
            map.get(field).map(String::as_str).ok_or(MetadataError {
                field,
                message: "missing".to_string(),
            })
        }
        fn parsed<T: FromStr>(
            map: &HashMap<String, String>,
            field: &'static str,
        ) -> Result<T, MetadataError>
        where
            T::Err: fmt::Display,
        {
            required(map, field)?
                .parse()
                .map_err(|e: T::Err| MetadataError {
                    field,
                    message: e.to_string(),
                })
        }
        Ok(Self {
            tenant_id: required(map, "tenant_id")?.to_string(),
            environment: parsed(map, "environment")?,
            actor: required(map, "actor")?.to_string(),
            actor_type: parsed(map, "actor_type")?,
            api_key_id: map.get("api_key_id").cloned(),
            request_id: map.get("request_id").cloned(),
            correlation_id: map.get("correlation_id").cloned(),
            causation_id: map.get("causation_id").cloned(),
            occurred_at: parsed(map, "occurred_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_survives_the_string_map_that_cqrs_es_stores() {
        let metadata = EventMetadata {
            tenant_id: "ten_0123456789abcdef0123456789abcdef".into(),
            environment: Environment::Test,
            actor: "owner".into(),
            actor_type: ActorType::ApiKey,
            api_key_id: Some("key_1".into()),
            request_id: Some("req_1".into()),
            correlation_id: None,
            causation_id: None,
            occurred_at: DateTime::parse_from_rfc3339("2026-11-23T10:00:00.123456Z")
                .map(|t| t.with_timezone(&Utc))
                .expect("valid timestamp"),
        };
        assert_eq!(EventMetadata::from_map(&metadata.to_map()), Ok(metadata));
    }

    #[test]
    fn metadata_without_an_actor_is_refused() {
        let map = HashMap::from([("tenant_id".to_string(), "t".to_string())]);
        let error = EventMetadata::from_map(&map).expect_err("incomplete metadata");
        assert_eq!(error.field, "environment");
    }
}
