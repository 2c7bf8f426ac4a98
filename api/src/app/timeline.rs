//! The timeline: every change, newest first, paged by an opaque cursor
//! (hex of the last entry's time, sequence and id).

use chrono::{Duration, Utc};
use palisade_infra::readmodel::{get_asset, list_timeline, timeline_timestamp, TimelineFilter};
use palisade_projections::TimelineEntry;

use super::auth::FindingsRead;
use super::input::{filter_text, filter_values};
use super::{App, Authorized, Error, Result};

/// What to show.
#[derive(Debug, Default)]
pub struct TimelineQuery {
    /// How far back, 1 to 365.
    pub days: u32,
    /// Only this asset's entries: id (`ast_…`) or identifier.
    pub asset: Option<String>,
    /// Only this finding's entries.
    pub finding: Option<String>,
    /// Only these event types.
    pub types: Vec<String>,
    /// Where the previous page ended ([`TimelinePage::next_cursor`]).
    pub cursor: Option<String>,
    /// At most this many entries.
    pub limit: u32,
}

/// A page of the timeline and where the next one starts.
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    /// Pass as `cursor` for older entries; None on the last page.
    pub next_cursor: Option<String>,
}

impl TimelinePage {
    /// Each entry's cursor: where the page after it starts.
    pub fn cursors(&self) -> Vec<String> {
        self.entries.iter().map(encode_cursor).collect()
    }
}

fn encode_cursor(entry: &TimelineEntry) -> String {
    hex::encode(format!(
        "{}\n{}\n{}",
        timeline_timestamp(&entry.occurred_at),
        entry.sequence,
        entry.id
    ))
}

fn decode_cursor(cursor: &str) -> Result<(String, i64, String)> {
    let invalid = || Error::invalid("cursor", "is not a cursor this API issued");
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\n');
    let (Some(at), Some(sequence), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let sequence = sequence.parse::<i64>().map_err(|_| invalid())?;
    Ok((at.to_string(), sequence, id.to_string()))
}

/// A page of the caller's timeline. An unknown `asset` is not found.
pub async fn list(
    app: &App,
    context: &Authorized<FindingsRead>,
    query: TimelineQuery,
) -> Result<TimelinePage> {
    let pool = app.store.read_pool();
    let partition = context.principal.partition();
    let finding_id = filter_text("finding", query.finding.as_deref())?;
    let types = filter_values("types", query.types.iter().map(String::as_str))?;
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let asset_id = match filter_text("asset", query.asset.as_deref())? {
        Some(asset) => match get_asset(pool, &partition, &asset).await? {
            Some(asset) => Some(asset.id),
            None => return Err(Error::not_found("Asset not found")),
        },
        None => None,
    };
    let filter = TimelineFilter {
        since: Some(Utc::now() - Duration::days(i64::from(query.days))),
        asset_id,
        finding_id,
        types,
        after,
        hidden: hidden_events(&context.principal.scopes),
    };
    let limit = query.limit;
    let mut entries = list_timeline(pool, &partition, &filter, limit + 1).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_cursor = more.then(|| entries.last().map(encode_cursor)).flatten();
    Ok(TimelinePage {
        entries,
        next_cursor,
    })
}

/// The event types a caller does not see on the timeline: secret and leak
/// events (they name paths and sources) without `secrets:read`; access
/// events (who asked for what, and why) without `access:approve`.
fn hidden_events(scopes: &[palisade_domain::Scope]) -> Vec<&'static str> {
    use palisade_domain::Scope;
    let mut hidden = Vec::new();
    if !scopes.contains(&Scope::SecretsRead) {
        hidden.extend(palisade_domain::secret::EVENT_TYPES);
    }
    if !scopes.contains(&Scope::AccessApprove) {
        hidden.extend(palisade_domain::grant::EVENT_TYPES);
    }
    hidden
}
