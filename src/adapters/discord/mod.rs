//! Discord: `/wa` application commands and preview buttons over HTTP
//! interactions (Ed25519-signed), answered within 3 seconds: inline when no
//! provider call is needed, otherwise a deferred response that is edited when
//! the result is ready.

pub mod gateway;
pub mod outbound;
pub mod register;
pub mod render;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{routing, Json, Router};
use ed25519_dalek::VerifyingKey;
use serde_json::{json, Value};

use crate::commands;
use crate::core::reply::Visibility;
use crate::core::{messages, ChannelRef, CommandId, Context, Invocation, Platform, Principal, Reply};
use crate::http::HeadersAndBody;
use crate::workers::Workers;
use outbound::DiscordClient;
pub(crate) use wire::Interaction;

/// Shared state of the Discord route.
pub struct Discord {
    ctx: Context,
    key: Option<VerifyingKey>,
    client: Arc<DiscordClient>,
    workers: Workers,
}

impl Discord {
    /// The shared state; `None` when neither HTTP interactions (public key) nor
    /// the gateway (mode and bot token) are configured.
    pub fn new(ctx: Context, workers: Workers) -> anyhow::Result<Option<Arc<Discord>>> {
        let settings = &ctx.settings.discord;
        let key = match settings.public_key.trim() {
            "" => None,
            hex => Some(verify::public_key(hex).map_err(anyhow::Error::msg)?),
        };
        let gateway = settings.mode == crate::settings::DiscordMode::Gateway && settings.bot_token.is_set();
        if key.is_none() && !gateway {
            return Ok(None);
        }
        Ok(Some(Arc::new(Discord {
            client: Arc::new(DiscordClient::new(settings)?),
            key,
            ctx,
            workers,
        })))
    }
}

/// The Discord route, when a public key is configured.
pub fn router(discord: Option<Arc<Discord>>) -> Option<Router> {
    let discord = discord.filter(|d| d.key.is_some())?;
    Some(
        Router::new()
            .route("/discord/interactions", routing::post(interaction))
            .with_state(discord),
    )
}

/// An interaction response: a fixed one (pong, the deferrals) as its JSON text,
/// or a message (type 4) with rendered content.
///
/// The fixed ones are most acks: written out once, they cost the ack path no
/// JSON tree to build, serialise and free (docs/benchmarks.md, "Eighteenth pass").
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    Fixed(&'static str),
    Message(Value),
}

impl Callback {
    /// Type 1: the answer to Discord's ping.
    pub const PONG: Callback = Callback::Fixed(r#"{"type":1}"#);
    /// Type 5: a deferred message, in the channel.
    pub const DEFERRED: Callback = Callback::Fixed(r#"{"type":5}"#);
    /// Type 5 with the ephemeral flag (64, `render::EPHEMERAL`): for the caller only.
    pub const DEFERRED_EPHEMERAL: Callback = Callback::Fixed(r#"{"type":5,"data":{"flags":64}}"#);
    /// Type 6: a deferred update of the message with the buttons.
    pub const DEFERRED_UPDATE: Callback = Callback::Fixed(r#"{"type":6}"#);

    /// The response as a JSON value, as the gateway's callback sends it.
    pub fn to_json(&self) -> Value {
        match self {
            Callback::Fixed(text) => serde_json::from_str(text).expect("the fixed callbacks are JSON"),
            Callback::Message(value) => value.clone(),
        }
    }

    fn into_http(self) -> Response {
        match self {
            Callback::Fixed(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
            Callback::Message(value) => Json(value).into_response(),
        }
    }
}

/// What an interaction is answered with, or why it is refused (HTTP status and text).
pub type Answer = Result<Callback, (StatusCode, String)>;

/// An inline answer (type 4) with the rendered reply.
fn inline(reply: &Reply) -> Callback {
    Callback::Message(json!({ "type": 4, "data": render::message(reply) }))
}

async fn interaction(State(d): State<Arc<Discord>>, HeadersAndBody(headers, body): HeadersAndBody) -> Response {
    let Some(key) = &d.key else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if let Err(e) = verify::verify(key, &headers, &body) {
        tracing::warn!(reason = %e, "Discord request refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed interaction: {e}\n")).into_response(),
    };
    let request_id = crate::http::request_id(&headers);
    match handle(d, interaction, request_id).await {
        Ok(callback) => callback.into_http(),
        Err((status, text)) => (status, text).into_response(),
    }
}

/// Answers one verified interaction; the HTTP route and the gateway share it.
pub(crate) async fn handle(d: Arc<Discord>, interaction: Interaction<'_>, request_id: String) -> Answer {
    // A button's repeat is caught here; a command's when its follow-up starts.
    if interaction.kind == 3 {
        if let Some(id) = &interaction.id {
            if !super::first_delivery(&d.ctx, "discord:interaction", id).await {
                // Already being answered: acknowledge without a second run.
                return Ok(Callback::DEFERRED_UPDATE);
            }
        }
    }
    match interaction.kind {
        1 => Ok(Callback::PONG),
        2 => application_command(d, interaction, request_id).await,
        3 => component(d, interaction, request_id).await,
        _ => Err((StatusCode::BAD_REQUEST, "unsupported interaction type\n".into())),
    }
}

/// The caller's principals: user id and, in a guild, its roles.
fn principals(interaction: &Interaction<'_>) -> Option<(Vec<Principal>, bool)> {
    let principal = |kind: &str, id: &str| Principal::from_string(format!("discord:{kind}:{id}")).ok();
    if let Some(member) = &interaction.member {
        let mut list = Vec::with_capacity(1 + member.roles.len());
        list.push(principal("user", &member.user.id)?);
        list.extend(member.roles.iter().filter_map(|r| principal("role", r)));
        return Some((list, false));
    }
    let user = interaction.user.as_ref()?;
    Some((vec![principal("user", &user.id)?], true))
}

async fn application_command(d: Arc<Discord>, interaction: Interaction<'_>, request_id: String) -> Answer {
    // The token is shared by the follow-up and its interruption: one allocation.
    let (Some((principals, dm)), Some(token), Some(data)) = (
        principals(&interaction),
        interaction.token.as_deref().map(Arc::<str>::from),
        interaction.data.as_ref(),
    ) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "interaction without user, token or data\n".into(),
        ));
    };
    if dm && !d.ctx.settings.discord.allow_dms {
        return Ok(inline(
            &Reply::user_error("waops answers in server channels only").footer("Run /wa in a channel of your server."),
        ));
    }
    let Some(sub) = data.options.first() else {
        return Ok(inline(&messages::usage_error(&crate::core::parser::UsageError {
            message: "missing subcommand".into(),
            usage: Some("/wa <subcommand> (try /wa help)".into()),
            command: None,
        })));
    };
    // Shared with the task and its interruption: one allocation where two
    // clones made ten, each freed on another thread.
    let inv = Arc::new(Invocation {
        platform: Platform::Discord,
        principals,
        channel: ChannelRef::new(Platform::Discord, interaction.channel_id.as_deref().unwrap_or("dm")),
        text: register::to_text(&sub.name, |name| {
            sub.options.iter().find(|o| *o.name == *name).map(|o| &o.value)
        }),
        request_id,
    });
    let later = match commands::answer_without_provider(&d.ctx, &inv).await {
        commands::Ack::Answered(reply) => return Ok(inline(&reply)),
        commands::Ack::Later(later) => later,
    };
    // The deferred response fixes the visibility of the original message: join, add,
    // invite and history results follow `display.results`, everything else is for the
    // caller only; an error after a public deferral moves to an ephemeral follow-up.
    // The subcommand's name is the command's id: no second parse of the text
    // (an add's numbers) on the ack path.
    let to_channel = matches!(
        sub.name.parse::<CommandId>(),
        Ok(CommandId::Join | CommandId::Add | CommandId::Invite | CommandId::History)
    );
    let ephemeral = !to_channel || d.ctx.settings.display.results == crate::settings::ResultVisibility::Ephemeral;
    let task = d.clone();
    let task_inv = inv.clone();
    let interrupted = {
        let (d, inv, token) = (d.clone(), inv.clone(), token.clone());
        async move {
            deliver(&d.client, &token, messages::interrupted(&inv.request_id), ephemeral).await;
            commands::record_interrupted(&d.ctx, &inv).await;
        }
    };
    let delivery = interaction.id.as_deref().map(|id| ("discord:interaction", id.to_string()));
    let started = super::start_follow_up(
        &d.ctx,
        &d.workers,
        delivery,
        async move {
            let reply = commands::run_later(&task.ctx, &task_inv, later, None).await;
            deliver(&task.client, &token, reply, ephemeral).await;
        },
        interrupted,
    );
    if !started {
        commands::record_busy(&d.ctx, &inv);
        return Ok(inline(&messages::busy()));
    }
    Ok(if ephemeral {
        Callback::DEFERRED_EPHEMERAL
    } else {
        Callback::DEFERRED
    })
}

/// Puts the result where the user sees it: an edit of the deferred response, or,
/// when an ephemeral reply meets a public deferral, a delete and an ephemeral follow-up.
async fn deliver(client: &DiscordClient, token: &str, reply: Reply, deferred_ephemeral: bool) {
    let mut pages = render::messages(&reply).into_iter();
    let Some(first) = pages.next() else { return };
    let result = if reply.visibility == Visibility::Ephemeral && !deferred_ephemeral {
        let _ = client.delete_original(token).await;
        client.follow_up(token, &first).await
    } else {
        client.edit_original(token, &first).await
    };
    // Long results continue in follow-up messages, in order.
    let mut result = result;
    for page in pages {
        if result.is_err() {
            break;
        }
        result = client.follow_up(token, &page).await;
    }
    if let Err(e) = result {
        tracing::error!(error = %e, "result could not be posted to Discord");
    }
}

async fn follow_up(client: &DiscordClient, token: &str, reply: &Reply) {
    if let Err(e) = client.follow_up(token, &render::message(reply)).await {
        tracing::error!(error = %e, "answer could not be posted to Discord");
    }
}

async fn component(d: Arc<Discord>, interaction: Interaction<'_>, request_id: String) -> Answer {
    let (Some((principals, _)), Some(token)) = (
        principals(&interaction),
        interaction.token.as_deref().map(str::to_owned),
    ) else {
        return Err((StatusCode::BAD_REQUEST, "interaction without user or token\n".into()));
    };
    let custom_id = interaction
        .data
        .as_ref()
        .and_then(|d| d.custom_id.as_deref())
        .unwrap_or_default();
    let Some((action, confirmation)) = custom_id.split_once(':') else {
        return Ok(Callback::DEFERRED_UPDATE);
    };
    if !matches!(action, "apply" | "cancel") {
        return Ok(Callback::DEFERRED_UPDATE);
    }
    let apply = action == "apply";
    let confirmation = confirmation.to_string();
    let task = d.clone();
    let started = d.workers.try_spawn(async move {
        let d = task;
        let caller = principals[0].to_string();
        let now = d.ctx.clock.now();
        let taken = match d.ctx.store.consume_confirmation(&confirmation, &caller, now).await {
            Ok(Some(taken)) => taken,
            Ok(None) => return follow_up(&d.client, &token, &messages::confirmation_gone()).await,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "confirmation lookup failed");
                return follow_up(&d.client, &token, &messages::internal(&request_id)).await;
            }
        };
        if !apply {
            let _ = d
                .client
                .edit_original(&token, &render::message(&messages::cancelled()))
                .await;
            return;
        }
        let inv = Invocation {
            platform: Platform::Discord,
            principals,
            channel: ChannelRef::from_text(&taken.channel),
            text: taken.command_text,
            request_id,
        };
        let _ = d
            .client
            .edit_original(&token, &render::message(&messages::working()))
            .await;
        let reply = commands::dispatch(&d.ctx, &inv).await;
        deliver(&d.client, &token, reply, true).await;
    });
    if !started {
        return Ok(inline(&messages::busy()));
    }
    // Deferred update: the message with the buttons is edited when the work is done.
    Ok(Callback::DEFERRED_UPDATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_callbacks_are_the_json_they_stand_for() {
        for (fixed, value) in [
            (Callback::PONG, json!({"type": 1})),
            (Callback::DEFERRED, json!({"type": 5})),
            (
                Callback::DEFERRED_EPHEMERAL,
                json!({"type": 5, "data": {"flags": render::EPHEMERAL}}),
            ),
            (Callback::DEFERRED_UPDATE, json!({"type": 6})),
        ] {
            assert_eq!(fixed.to_json(), value);
        }
    }
}
