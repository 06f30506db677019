//! What the providers' webhook parsers share: reading ids, times and texts
//! out of loosely typed JSON, and making journal entries. Each provider's own
//! parser lives with its client (`periskope::webhook_events`, ...).

use jiff::Timestamp;
use serde_json::Value;

use crate::core::values::EventKind;
use crate::settings::ProviderKind;
use crate::store::JournalEntry;

pub(crate) fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("_serialized").and_then(Value::as_str).map(str::to_string),
        _ => None,
    })
}

/// ISO-8601 text, or Unix seconds or milliseconds; `now` when absent or unreadable.
pub(crate) fn time(v: Option<&Value>, now: Timestamp) -> Timestamp {
    match v {
        Some(Value::String(s)) => s.parse::<Timestamp>().unwrap_or(now),
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or_default();
            let ms = if n > 10_000_000_000 { n } else { n * 1000 };
            Timestamp::from_millisecond(ms).unwrap_or(now)
        }
        _ => now,
    }
}

/// Participant ids from a list of ids or of objects (`{id, pn?, role}`, WAHA's:
/// an `@lid` id carries the phone in `pn`), or from an object keyed by
/// position (`{"0": "…@c.us"}`, Wawp's examples).
pub(crate) fn ids(v: Option<&Value>) -> Vec<String> {
    let one = |p: &Value| match p {
        Value::String(s) => Some(s.clone()),
        other => {
            let id = text(other, &["id", "jid", "JID"]);
            match (id, text(other, &["pn"])) {
                (Some(id), Some(pn)) if id.ends_with("@lid") => Some(pn),
                (Some(id), _) => Some(id),
                (None, pn) => pn,
            }
        }
    };
    match v {
        Some(Value::Array(list)) => list.iter().filter_map(one).collect(),
        Some(Value::Object(map)) => map.values().filter_map(one).collect(),
        _ => Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn entry(
    provider: ProviderKind,
    id: String,
    group: String,
    kind: EventKind,
    actor: Option<String>,
    subjects: Vec<String>,
    detail: Option<String>,
    at: Timestamp,
    now: Timestamp,
) -> JournalEntry {
    JournalEntry {
        provider: provider.as_str().into(),
        event_id: id,
        group_id: group,
        kind: kind.as_str().into(),
        actor,
        subjects,
        detail,
        at,
        received_at: now,
    }
}
