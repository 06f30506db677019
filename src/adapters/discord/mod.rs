//! Discord: `/wa` application commands and preview buttons over HTTP
//! interactions (Ed25519-signed), answered within 3 seconds: inline when no
//! provider call is needed, otherwise a deferred response that is edited when
//! the result is ready.

pub mod gateway;
pub mod outbound;
pub mod register;
pub mod render;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{routing, Json, Router};
use ed25519_dalek::VerifyingKey;
use serenity::all::{
    CommandDataOptionValue, CommandInteraction, ComponentInteraction, CreateInteractionResponse,
    CreateInteractionResponseMessage, Interaction, Member, User,
};

use crate::commands;
use crate::core::reply::{ButtonAction, Visibility};
use crate::core::{messages, ChannelRef, CommandId, Context, Invocation, Platform, Principal, Progress, Reply};
use crate::http::HeadersAndBody;
use crate::workers::Workers;
use outbound::DiscordClient;

/// Most progress edits per command.
const MAX_PROGRESS_EDITS: usize = 3;
/// Least time between two progress edits.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

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

/// What an interaction is answered with, or why it is refused (HTTP status and text).
pub type Answer = Result<CreateInteractionResponse, (StatusCode, String)>;

/// An inline answer (a message) with the rendered reply.
fn inline(reply: &Reply) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(render::message(reply).response())
}

/// "Thinking…": the result follows as an edit of this response.
fn deferred(ephemeral: bool) -> CreateInteractionResponse {
    let message = CreateInteractionResponseMessage::new();
    CreateInteractionResponse::Defer(if ephemeral { message.ephemeral(true) } else { message })
}

async fn interaction(State(d): State<Arc<Discord>>, HeadersAndBody(headers, body): HeadersAndBody) -> Response {
    let Some(key) = &d.key else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    if let Err(e) = verify::verify(key, &headers, &body, d.ctx.clock.now().as_second()) {
        tracing::warn!(reason = %e, "Discord request refused");
        return (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response();
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed interaction: {e}\n")).into_response(),
    };
    let request_id = crate::http::request_id(&headers);
    match handle(d, interaction, request_id).await {
        Ok(response) => Json(response).into_response(),
        Err((status, text)) => (status, text).into_response(),
    }
}

/// Answers one verified interaction; the HTTP route and the gateway share it.
pub(crate) async fn handle(d: Arc<Discord>, interaction: Interaction, request_id: String) -> Answer {
    let guild = match &interaction {
        Interaction::Command(c) => Some(c.guild_id),
        Interaction::Component(c) => Some(c.guild_id),
        _ => None,
    };
    if let Some(guild) = guild.map(|g| g.map(|g| g.to_string())) {
        if !d.ctx.settings.discord.guild_allowed(guild.as_deref()) {
            tracing::warn!(
                guild = guild.as_deref().unwrap_or("-"),
                "Discord interaction refused: server not in discord.guild_ids"
            );
            return Ok(inline(&messages::place_not_served("server")));
        }
    }
    match interaction {
        Interaction::Ping(_) => Ok(CreateInteractionResponse::Pong),
        Interaction::Command(command) => {
            d.client.learn_application_id(command.application_id);
            application_command(d, command, request_id).await
        }
        Interaction::Component(click) => {
            d.client.learn_application_id(click.application_id);
            component(d, click, request_id).await
        }
        _ => Err((StatusCode::BAD_REQUEST, "unsupported interaction type\n".into())),
    }
}

/// The caller's principals: user id and, in a guild, its roles.
fn principals(user: &User, member: Option<&Member>) -> Vec<Principal> {
    let principal = |kind: &str, id: String| Principal::from_string(format!("discord:{kind}:{id}")).ok();
    let mut list: Vec<Principal> = principal("user", user.id.to_string()).into_iter().collect();
    if let Some(member) = member {
        list.extend(member.roles.iter().filter_map(|r| principal("role", r.to_string())));
    }
    list
}

async fn application_command(d: Arc<Discord>, interaction: CommandInteraction, request_id: String) -> Answer {
    let dm = interaction.guild_id.is_none();
    if dm && !d.ctx.settings.discord.allow_dms {
        return Ok(inline(
            &Reply::user_error("waops answers in server channels only").footer("Run /wa in a channel of your server."),
        ));
    }
    let Some((sub, CommandDataOptionValue::SubCommand(options))) =
        interaction.data.options.first().map(|o| (o.name.as_str(), &o.value))
    else {
        return Ok(inline(&messages::usage_error(&crate::core::parser::UsageError {
            message: "missing subcommand".into(),
            usage: Some("/wa <subcommand> (try /wa help)".into()),
            command: None,
        })));
    };
    let inv = Arc::new(Invocation {
        platform: Platform::Discord,
        principals: principals(&interaction.user, interaction.member.as_deref()),
        channel: ChannelRef::new(Platform::Discord, &interaction.channel_id.to_string()),
        text: register::to_text(sub, |name| options.iter().find(|o| o.name == name).map(|o| &o.value)),
        request_id,
        applied: false,
        approved_by: None,
    });
    let later = match commands::answer_without_provider(&d.ctx, &inv).await {
        commands::Ack::Answered(reply) => return Ok(inline(&reply)),
        commands::Ack::Later(later) => later,
    };
    // The deferred response fixes the visibility of the original message: join, add,
    // invite and history results follow `display.results`, everything else is for the
    // caller only; an error after a public deferral moves to an ephemeral follow-up.
    let to_channel = matches!(
        sub.parse::<CommandId>(),
        Ok(CommandId::Join | CommandId::Add | CommandId::Invite | CommandId::History)
    );
    let ephemeral = !to_channel || d.ctx.settings.display.results == crate::settings::ResultVisibility::Ephemeral;
    let token: Arc<str> = interaction.token.into();
    let task = d.clone();
    let task_inv = inv.clone();
    let task_token = token.clone();
    let interrupted = {
        let (d, inv, token) = (d.clone(), inv.clone(), token.clone());
        async move {
            deliver(&d.client, &token, messages::interrupted(&inv.request_id), ephemeral).await;
            commands::record_interrupted(&d.ctx, &inv).await;
        }
    };
    let delivery = Some(("discord:interaction", interaction.id.to_string()));
    let started = super::start_follow_up(
        &d.ctx,
        &d.workers,
        delivery,
        async move {
            let progress = edits(&task.client, &task_token);
            let reply = commands::run_later(&task.ctx, &task_inv, later, Some(&progress as &dyn Progress)).await;
            progress.finish().await;
            deliver(&task.client, &task_token, reply, ephemeral).await;
        },
        interrupted,
    );
    if !started {
        commands::record_busy(&d.ctx, &inv);
        return Ok(inline(&messages::busy()));
    }
    Ok(deferred(ephemeral))
}

/// Progress of a long command as edits of the deferred response.
fn edits(client: &Arc<DiscordClient>, token: &Arc<str>) -> super::progress::ProgressUpdates {
    let (client, token) = (client.clone(), token.clone());
    super::progress::ProgressUpdates::start(
        move |reply: Reply| {
            let (client, token) = (client.clone(), token.clone());
            async move {
                if let Err(e) = client.edit_original(&token, &render::message(&reply).edit()).await {
                    tracing::warn!(error = %e, "progress could not be shown in Discord");
                }
            }
        },
        MAX_PROGRESS_EDITS,
        PROGRESS_EVERY,
    )
}

/// Puts the result where the user sees it: an edit of the deferred response, or,
/// when an ephemeral reply meets a public deferral, a delete and an ephemeral follow-up.
async fn deliver(client: &DiscordClient, token: &str, reply: Reply, deferred_ephemeral: bool) {
    let mut pages = render::messages(&reply).into_iter();
    let Some(first) = pages.next() else { return };
    let mut result = if reply.visibility == Visibility::Ephemeral && !deferred_ephemeral {
        let _ = client.delete_original(token).await;
        client.follow_up(token, &first.follow_up()).await
    } else {
        client.edit_original(token, &first.edit()).await
    };
    // Long results continue in follow-up messages, in order.
    for page in pages {
        if result.is_err() {
            break;
        }
        result = client.follow_up(token, &page.follow_up()).await;
    }
    if let Err(e) = result {
        tracing::error!(error = %e, "result could not be posted to Discord");
    }
}

async fn follow_up(client: &DiscordClient, token: &str, reply: &Reply) {
    if let Err(e) = client.follow_up(token, &render::message(reply).follow_up()).await {
        tracing::error!(error = %e, "answer could not be posted to Discord");
    }
}

async fn component(d: Arc<Discord>, interaction: ComponentInteraction, request_id: String) -> Answer {
    // A button's repeat is caught here; a command's when its follow-up starts.
    if !super::first_delivery(&d.ctx, "discord:interaction", &interaction.id.to_string()).await {
        return Ok(CreateInteractionResponse::Acknowledge);
    }
    let Some((action, value)) = interaction.data.custom_id.split_once(':') else {
        return Ok(CreateInteractionResponse::Acknowledge);
    };
    let Some(action) = ButtonAction::from_id(action) else {
        return Ok(CreateInteractionResponse::Acknowledge);
    };
    let value = value.to_string();
    let principals = principals(&interaction.user, interaction.member.as_ref());
    let token = interaction.token;
    let task = d.clone();
    let started = d.workers.try_spawn(async move {
        let d = task;
        let edit = |reply: Reply| {
            let d = d.clone();
            let token = token.clone();
            async move {
                let _ = d.client.edit_original(&token, &render::message(&reply).edit()).await;
            }
        };
        let inv = match action {
            ButtonAction::Apply | ButtonAction::Cancel => {
                let apply = action == ButtonAction::Apply;
                match commands::confirm(&d.ctx, &value, &principals[0], apply, &request_id).await {
                    commands::Confirmed::Gone(reply) => return follow_up(&d.client, &token, &reply).await,
                    commands::Confirmed::Cancelled(reply) => return edit(reply).await,
                    commands::Confirmed::Apply { channel, text } => Invocation {
                        platform: Platform::Discord,
                        principals,
                        channel,
                        text,
                        request_id,
                        applied: true,
                        approved_by: None,
                    },
                }
            }
            ButtonAction::RequestApproval => {
                match commands::approval::request(&d.ctx, &value, &principals, &request_id).await {
                    commands::approval::Requested::Gone(reply) => follow_up(&d.client, &token, &reply).await,
                    commands::approval::Requested::Posted { request, to_requester } => {
                        edit(to_requester).await;
                        follow_up(&d.client, &token, &request).await;
                    }
                }
                return;
            }
            ButtonAction::Approve | ButtonAction::Reject => {
                let approve = action == ButtonAction::Approve;
                match commands::approval::decide(&d.ctx, &value, &principals, approve, Platform::Discord, &request_id)
                    .await
                {
                    commands::approval::Decided::Refused(reply) => return follow_up(&d.client, &token, &reply).await,
                    commands::approval::Decided::Rejected(reply) => return edit(reply).await,
                    commands::approval::Decided::Approved(inv) => inv,
                }
            }
        };
        edit(messages::working()).await;
        let reply = commands::dispatch(&d.ctx, &inv).await;
        deliver(&d.client, &token, reply, true).await;
    });
    if !started {
        return Ok(inline(&messages::busy()));
    }
    // Deferred update: the message with the buttons is edited when the work is done.
    Ok(CreateInteractionResponse::Acknowledge)
}
