//! `POST /webhooks/{provider}`: provider events that feed the history journal.
//! Verified before parsing (Periskope: `x-periskope-signature`, hex HMAC-SHA256
//! of the raw body; others: the shared secret in `X-Waops-Token` or in the path),
//! deduplicated on the provider's event id. Unknown events are acknowledged and
//! ignored; bad input gets a 4xx, never a 5xx.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing, Json, Router};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::core::values::EventKind;
use crate::core::Context;
use crate::http::HeadersAndBody;
use crate::settings::{ProviderKind, Secret};
use crate::store::JournalEntry;

/// The webhook routes, when `provider.webhook_secret` is set for a real provider.
pub fn router(ctx: Context) -> Option<Router> {
    let p = &ctx.settings.provider;
    if !p.webhook_secret.is_set() || p.kind == ProviderKind::Sandbox {
        return None;
    }
    Some(
        Router::new()
            .route("/webhooks/{provider}", routing::post(receive))
            .route("/webhooks/{provider}/{secret}", routing::post(receive_with_secret))
            .with_state(ctx),
    )
}

async fn receive(
    State(ctx): State<Context>,
    Path(provider): Path<String>,
    HeadersAndBody(headers, body): HeadersAndBody,
) -> Response {
    handle(ctx, provider, None, headers, body).await
}

async fn receive_with_secret(
    State(ctx): State<Context>,
    Path((provider, secret)): Path<(String, String)>,
    HeadersAndBody(headers, body): HeadersAndBody,
) -> Response {
    handle(ctx, provider, Some(secret), headers, body).await
}

/// Compares without leaking where two secrets differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the request against the configured secret.
pub fn verified(
    kind: ProviderKind,
    secret: &Secret,
    path_secret: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if kind == ProviderKind::Periskope {
        let Some(signature) = header("x-periskope-signature").and_then(|s| hex::decode(s.trim()).ok()) else {
            return false;
        };
        let check = |bytes: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("any key length");
            mac.update(bytes);
            mac.verify_slice(&signature).is_ok()
        };
        // Some senders sign the compact JSON rather than the bytes on the wire.
        return check(body)
            || serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| serde_json::to_vec(&v).ok())
                .is_some_and(|c| check(&c));
    }
    let given = path_secret.or_else(|| header("x-waops-token")).unwrap_or_default();
    same(given.as_bytes(), secret.expose().as_bytes())
}

async fn handle(
    ctx: Context,
    provider: String,
    path_secret: Option<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = ctx.settings.provider.kind;
    if provider != kind.as_str() {
        return (
            StatusCode::NOT_FOUND,
            format!("no webhook for `{provider}` (configured: {})\n", kind.as_str()),
        )
            .into_response();
    }
    if !verified(
        kind,
        &ctx.settings.provider.webhook_secret,
        path_secret.as_deref(),
        &headers,
        &body,
    ) {
        tracing::warn!(provider = kind.as_str(), "webhook refused: bad signature or secret");
        return (StatusCode::UNAUTHORIZED, "invalid webhook signature\n").into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed JSON\n").into_response();
    };
    let now = ctx.clock.now();
    let fallback_id = hex::encode(Sha256::digest(&body));
    let entries = match kind {
        ProviderKind::Periskope => periskope(&event, now),
        ProviderKind::Wuts => wuts(&event, &fallback_id, now),
        ProviderKind::Wawp => wawp(&event, &fallback_id, now),
        ProviderKind::Sandbox => Vec::new(),
    };
    let (mut new, mut seen) = (0, 0);
    for entry in &entries {
        match ctx.store.record_event(entry).await {
            Ok(true) => new += 1,
            Ok(false) => seen += 1,
            Err(e) => {
                // The provider retries on 5xx: this is the one case where that helps.
                tracing::error!(error = format!("{e:#}"), "journal write failed");
                return (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable; retry later\n").into_response();
            }
        }
    }
    Json(json!({"accepted": new, "duplicates": seen})).into_response()
}

fn text(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("_serialized").and_then(Value::as_str).map(str::to_string),
        _ => None,
    })
}

/// ISO-8601 text, or Unix seconds or milliseconds; `now` when absent or unreadable.
fn time(v: Option<&Value>, now: Timestamp) -> Timestamp {
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

fn ids(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.clone()),
                    other => text(other, &["id", "jid", "JID"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn entry(
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

/// Periskope `chat.notification.created` (the envelope's key is `event`, some senders use `event_type`).
pub fn periskope(event: &Value, now: Timestamp) -> Vec<JournalEntry> {
    if text(event, &["event", "event_type"]).as_deref() != Some("chat.notification.created") {
        return Vec::new();
    }
    let data = &event["data"];
    let (Some(id), Some(group), Some(kind)) = (
        text(data, &["notification_id"]),
        text(data, &["chat_id"]),
        text(data, &["type"]),
    ) else {
        return Vec::new();
    };
    if !group.ends_with("@g.us") {
        return Vec::new();
    }
    let actor = text(data, &["author"]);
    let subjects = ids(data.get("recipientids"));
    let (kind, detail) = crate::providers::periskope::kind_of(&kind, actor.as_deref(), &subjects);
    vec![entry(
        ProviderKind::Periskope,
        id,
        group,
        kind,
        actor,
        subjects,
        detail,
        time(data.get("timestamp"), now),
        now,
    )]
}

/// WUTS `group.info` (whatsmeow's GroupInfo: lists of who joined, left, was promoted
/// or demoted, and setting changes) and `group.joined` (waops' number joined).
pub fn wuts(event: &Value, fallback_id: &str, now: Timestamp) -> Vec<JournalEntry> {
    let name = text(event, &["event", "type"]).unwrap_or_default();
    let data = event.get("data").or_else(|| event.get("payload")).unwrap_or(event);
    let base = text(event, &["id", "event_id"]).unwrap_or_else(|| fallback_id.to_string());
    let Some(group) = text(data, &["jid", "JID", "group_jid", "chat_jid"]).filter(|g| g.ends_with("@g.us")) else {
        return Vec::new();
    };
    let at = time(
        data.get("timestamp")
            .or_else(|| data.get("Timestamp"))
            .or_else(|| event.get("timestamp")),
        now,
    );
    let actor = text(data, &["sender", "Sender"]);
    match name.as_str() {
        "group.joined" => vec![entry(
            ProviderKind::Wuts,
            base,
            group,
            EventKind::Joined,
            None,
            Vec::new(),
            Some("waops' number joined".into()),
            at,
            now,
        )],
        "group.info" => {
            let mut out = Vec::new();
            for (keys, kind) in [
                (["join", "Join"], EventKind::Joined),
                (["leave", "Leave"], EventKind::Left),
                (["promote", "Promote"], EventKind::Promoted),
                (["demote", "Demote"], EventKind::Demoted),
            ] {
                let who: Vec<String> = keys.iter().flat_map(|k| ids(data.get(*k))).collect();
                if !who.is_empty() {
                    out.push(entry(
                        ProviderKind::Wuts,
                        format!("{base}:{kind}"),
                        group.clone(),
                        kind,
                        actor.clone(),
                        who,
                        None,
                        at,
                        now,
                    ));
                }
            }
            for (keys, what) in [
                (["name", "Name"], "changed the name"),
                (["topic", "Topic"], "changed the description"),
                (["locked", "Locked"], "changed who may edit group info"),
                (["announce", "Announce"], "changed who may send messages"),
            ] {
                if keys.iter().any(|k| data.get(*k).is_some_and(|v| !v.is_null())) {
                    out.push(entry(
                        ProviderKind::Wuts,
                        format!("{base}:{what}"),
                        group.clone(),
                        EventKind::Settings,
                        actor.clone(),
                        Vec::new(),
                        Some(what.into()),
                        at,
                        now,
                    ));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// Wawp (WAHA) `group.v2.join`, `group.v2.leave`, `group.v2.participants`, `group.v2.update`.
pub fn wawp(event: &Value, fallback_id: &str, now: Timestamp) -> Vec<JournalEntry> {
    let name = text(event, &["event"]).unwrap_or_default();
    let payload = &event["payload"];
    let id = text(event, &["id"]).unwrap_or_else(|| fallback_id.to_string());
    let group = text(payload, &["chatId"]).or_else(|| payload.get("group").and_then(|g| text(g, &["id"])));
    let Some(group) = group.filter(|g| g.ends_with("@g.us")) else {
        return Vec::new();
    };
    let at = time(payload.get("timestamp").or_else(|| event.get("timestamp")), now);
    let subjects = ids(payload.get("participants"));
    let (kind, detail) = match name.as_str() {
        "group.v2.join" => (EventKind::Joined, Some("waops' number joined".to_string())),
        "group.v2.leave" => (EventKind::Left, None),
        "group.v2.update" => (EventKind::Settings, Some("changed group settings".to_string())),
        "group.v2.participants" => match text(payload, &["type", "action"]).as_deref() {
            Some("join" | "add") => (EventKind::Added, None),
            Some("leave" | "remove") => (EventKind::Left, None),
            Some("promote") => (EventKind::Promoted, None),
            Some("demote") => (EventKind::Demoted, None),
            other => (EventKind::Other, other.map(str::to_string)),
        },
        _ => return Vec::new(),
    };
    vec![entry(
        ProviderKind::Wawp,
        id,
        group,
        kind,
        None,
        subjects,
        detail,
        at,
        now,
    )]
}
