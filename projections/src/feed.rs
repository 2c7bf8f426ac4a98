use std::collections::HashMap;
use std::fmt;

use palisade_domain::EventMetadata;
use serde::{Deserialize, Serialize};

/// A place in the global feed. Feed order is `(tx, position)`: on PostgreSQL
/// `tx` is the writing transaction's id (the gap-safe order; `docs/event-store.md`); on
/// SQLite, which has one writer, it is always 0 and `position` alone orders.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FeedPosition {
    pub tx: i64,
    pub position: i64,
}

impl FeedPosition {
    pub const START: FeedPosition = FeedPosition { tx: 0, position: 0 };
}

impl fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)
    }
}

/// One committed event as the feed delivers it to projections, SSE and webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    pub position: FeedPosition,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: HashMap<String, String>,
    /// When the store recorded the event, in Unix milliseconds.
    pub recorded_at_ms: i64,
}

impl FeedEvent {
    /// The event's typed metadata (who, which tenant and environment, when).
    pub fn typed_metadata(&self) -> Result<EventMetadata, crate::ProjectionError> {
        EventMetadata::from_map(&self.metadata).map_err(|e| crate::ProjectionError::Decode {
            position: self.position,
            event_type: self.event_type.clone(),
            message: e.to_string(),
        })
    }

    /// Decodes the payload as one aggregate's event enum (reading the
    /// payload in place: each projection decodes every event, and a copy
    /// of the JSON tree per decode was a good part of their allocations).
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, crate::ProjectionError> {
        E::deserialize(&self.payload).map_err(|e| crate::ProjectionError::Decode {
            position: self.position,
            event_type: self.event_type.clone(),
            message: e.to_string(),
        })
    }
}
