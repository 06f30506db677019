//! `POST /webhooks/{source}`: provider events that feed the history journal.
//! `source` is an account's: `[provider]`'s kind (`/webhooks/periskope`), or
//! an `[accounts.<name>]` name (`/webhooks/<name>`).
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
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::core::Context;
use crate::http::HeadersAndBody;
use crate::settings::{ProviderKind, Secret};

/// The webhook routes, when some real provider's account has a `webhook_secret`.
pub fn router(ctx: Context) -> Option<Router> {
    ctx.accounts.all().iter().find(|a| a.receives_webhooks())?;
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
    let Some(account) = ctx.accounts.by_source(&provider).filter(|a| a.receives_webhooks()) else {
        return (StatusCode::NOT_FOUND, format!("no webhook for `{provider}`\n")).into_response();
    };
    let kind = account.settings.kind;
    if !verified(
        kind,
        &account.settings.webhook_secret,
        path_secret.as_deref(),
        &headers,
        &body,
    ) {
        tracing::warn!(account = %account.name, "webhook refused: bad signature or secret");
        return (StatusCode::UNAUTHORIZED, "invalid webhook signature\n").into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed JSON\n").into_response();
    };
    let now = ctx.clock.now();
    let fallback_id = hex::encode(Sha256::digest(&body));
    let mut entries = match kind {
        ProviderKind::Periskope => crate::providers::periskope::webhook_events(&event, now),
        ProviderKind::Wuts => crate::providers::wuts::webhook_events(&event, &fallback_id, now),
        ProviderKind::Wawp => crate::providers::wawp::webhook_events(&event, &fallback_id, now),
        ProviderKind::Sandbox => Vec::new(),
    };
    // Journaled under the account's source, which history and digests read.
    for entry in &mut entries {
        entry.provider.clone_from(&account.source);
    }
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
