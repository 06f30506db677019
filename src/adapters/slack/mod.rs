//! Slack: `/wa` slash commands and preview buttons over signed HTTP.
//!
//! Every request is verified on its raw bytes first. Commands that need no
//! provider call are answered in the HTTP response; the others get an ephemeral
//! "Working on it…" at once and their result is posted to `response_url` by a
//! bounded background worker, with progress for long adds.

pub mod outbound;
pub mod render;
pub mod usergroups;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing;
use axum::{Json, Router};
use serde::Deserialize;
use slack_morphism::prelude::{SlackCommandEvent, SlackInteractionEvent};

use crate::commands::{self, approval};
use crate::core::reply::{ButtonAction, Visibility};
use crate::core::{messages, ChannelRef, Context, Invocation, Platform, Principal, Progress, Reply};
use crate::http::HeadersAndBody;
use crate::settings::Secret;
use crate::workers::Workers;
use outbound::SlackClient;
use usergroups::Usergroups;

/// How long the ack path waits for user groups it does not know yet before
/// answering "Working on it…" and deciding in the follow-up: well inside
/// Slack's 3-second deadline.
const COLD_USERGROUPS_WAIT: Duration = Duration::from_secs(1);
/// Most progress posts per command (Slack allows 5 posts per `response_url`; the result is one).
const MAX_PROGRESS_POSTS: usize = 3;
/// Least time between two progress posts.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Shared state of the Slack routes.
pub struct Slack {
    ctx: Context,
    secret: Secret,
    client: Arc<SlackClient>,
    workers: Workers,
    usergroups: Arc<Usergroups>,
}

/// An interaction arrives as a form with one field, the JSON payload.
#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

/// The Slack routes, or `None` when `slack.signing_secret` is not set.
pub fn router(ctx: Context, workers: Workers) -> anyhow::Result<Option<Router>> {
    let settings = &ctx.settings.slack;
    if !settings.signing_secret.is_set() {
        return Ok(None);
    }
    let usergroups = Usergroups::new(
        ctx.permissions
            .bound_principals()
            .filter_map(|p| p.as_str().strip_prefix("slack:usergroup:").map(str::to_string))
            .collect(),
    );
    let slack = Arc::new(Slack {
        secret: settings.signing_secret.clone(),
        client: Arc::new(SlackClient::new(settings)?),
        ctx,
        workers,
        usergroups: Arc::new(usergroups),
    });
    Ok(Some(
        Router::new()
            .route("/slack/commands", routing::post(slash_command))
            .route("/slack/interactions", routing::post(interaction))
            .with_state(slack),
    ))
}

/// Checks the signature; logs why a request was refused.
fn verified(slack: &Slack, headers: &HeaderMap, body: &[u8]) -> bool {
    let now = slack.ctx.clock.now().as_second();
    match verify::verify(&slack.secret, headers, body, now) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(reason = %e, "Slack request refused");
            false
        }
    }
}

/// The refusal (400) of a request whose `response_url` is outside
/// `slack.response_url_prefixes`: waops posts only to URLs it trusts.
fn response_url_refusal(slack: &Slack, url: &str) -> Option<Response> {
    if slack.ctx.settings.slack.response_url_allowed(url) {
        return None;
    }
    tracing::warn!("Slack request refused: response_url outside slack.response_url_prefixes");
    Some((StatusCode::BAD_REQUEST, "response_url not allowed\n").into_response())
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "invalid request signature\n").into_response()
}

fn inline(reply: &Reply) -> Response {
    Json(render::inline(reply)).into_response()
}

/// The "working on it" ack of every command answered later.
fn working() -> Response {
    inline(&messages::working())
}

async fn slash_command(State(slack): State<Arc<Slack>>, HeadersAndBody(headers, body): HeadersAndBody) -> Response {
    if !verified(&slack, &headers, &body) {
        return unauthorized();
    }
    let form: SlackCommandEvent = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed slash command: {e}\n")).into_response(),
    };
    if let Some(refusal) = response_url_refusal(&slack, form.response_url.0.as_str()) {
        return refusal;
    }
    if !slack.ctx.settings.slack.team_allowed(&form.team_id.0) {
        tracing::warn!(team = %form.team_id.0, "Slack command refused: workspace not in slack.team_ids");
        return inline(&messages::place_not_served("workspace"));
    }
    let user_id = form.user_id.0;
    let Ok(caller) = Principal::from_string(format!("slack:user:{user_id}")) else {
        return (StatusCode::BAD_REQUEST, "malformed user id\n").into_response();
    };
    let mut inv = Invocation {
        platform: Platform::Slack,
        principals: vec![caller],
        channel: ChannelRef::new(Platform::Slack, &form.channel_id.0),
        text: form.text.unwrap_or_default(),
        request_id: crate::http::request_id(&headers),
        applied: false,
        approved_by: None,
    };
    // The caller's user groups: known, fetched within a second, or decided
    // in the follow-up. Text that does not parse is answered at once whatever
    // they are: no role changes a usage error.
    let groups = match slack.usergroups.principals_cached(&slack.client, &user_id) {
        Some(groups) => Some(groups),
        None if commands::Command::parse(&inv.text).is_err() => Some(Vec::new()),
        None => {
            let fetch = slack.usergroups.principals(&slack.client, &user_id);
            match tokio::time::timeout(COLD_USERGROUPS_WAIT, fetch).await {
                Ok(Ok(groups)) => Some(groups),
                Ok(Err(_)) => {
                    commands::record_not_run(&slack.ctx, &inv, "usergroups_unavailable");
                    return inline(&messages::usergroups_unavailable());
                }
                Err(_) => None,
            }
        }
    };
    let mut later = commands::Later::default();
    if let Some(groups) = groups {
        inv.principals.extend(groups);
        match commands::answer_without_provider(&slack.ctx, &inv).await {
            commands::Ack::Answered(reply) => return inline(&reply),
            commands::Ack::Later(decided) => later = decided,
        }
    }
    let response_url = form.response_url.0.to_string();
    let task_slack = slack.clone();
    // Shared with the task and its interruption: one allocation where two
    // clones made ten, each freed on another thread.
    let inv = Arc::new(inv);
    let task_inv = inv.clone();
    let interrupted = {
        let (slack, inv, url) = (slack.clone(), inv.clone(), response_url.clone());
        async move {
            post(&slack.client, &url, &messages::interrupted(&inv.request_id), false).await;
            commands::record_interrupted(&slack.ctx, &inv).await;
        }
    };
    let delivery = Some(form.trigger_id.0)
        .filter(|t| !t.is_empty())
        .map(|t| ("slack:trigger", t));
    let started = super::start_follow_up(
        &slack.ctx,
        &slack.workers,
        delivery,
        async move {
            let slack = task_slack;
            let mut inv = task_inv;
            // Decided on the ack path with user groups that were fresh then;
            // otherwise fetch them now, and decide here.
            if !later.is_decided() {
                let own = Arc::make_mut(&mut inv);
                own.principals.truncate(1);
                match slack.usergroups.principals(&slack.client, &user_id).await {
                    Ok(groups) => own.principals.extend(groups),
                    Err(_) => {
                        post(&slack.client, &response_url, &messages::usergroups_unavailable(), true).await;
                        commands::record_not_run(&slack.ctx, &inv, "usergroups_unavailable");
                        return;
                    }
                }
            }
            let poster = ResponsePoster::start(slack.client.clone(), response_url, inv.request_id.clone());
            let reply = Box::pin(commands::run_later(&slack.ctx, &inv, later, Some(&poster))).await;
            Box::pin(poster.finish(reply)).await;
        },
        interrupted,
    );
    if !started {
        commands::record_busy(&slack.ctx, &inv);
        return inline(&messages::busy());
    }
    working()
}

async fn interaction(State(slack): State<Arc<Slack>>, HeadersAndBody(headers, body): HeadersAndBody) -> Response {
    if !verified(&slack, &headers, &body) {
        return unauthorized();
    }
    let payload: SlackInteractionEvent = match serde_urlencoded::from_bytes::<InteractionForm>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| serde_json::from_str(&f.payload).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("malformed interaction: {e}\n")).into_response(),
    };
    // Only a click on one of our buttons; anything else is acknowledged and ignored.
    let SlackInteractionEvent::BlockActions(event) = payload else {
        return StatusCode::OK.into_response();
    };
    let action = event.actions.as_ref().and_then(|a| a.first());
    let (Some(action), Some(response_url), Some(user)) = (action, event.response_url.as_ref(), event.user.as_ref())
    else {
        return StatusCode::OK.into_response();
    };
    let Some(action) = ButtonAction::from_id(action.action_id.0.as_str()).map(|a| (a, action)) else {
        return StatusCode::OK.into_response();
    };
    let (action, clicked) = action;
    if !slack.ctx.settings.slack.team_allowed(&event.team.id.0) {
        tracing::warn!(team = %event.team.id.0, "Slack click refused: workspace not in slack.team_ids");
        return inline(&messages::place_not_served("workspace"));
    }
    let value = clicked.value.clone().unwrap_or_default();
    let user_id = user.id.0.clone();
    let response_url = response_url.0.to_string();
    if let Some(refusal) = response_url_refusal(&slack, &response_url) {
        return refusal;
    }
    let request_id = crate::http::request_id(&headers);
    let task_slack = slack.clone();
    let task_url = response_url.clone();
    // The preview or request is consumed inside the task, so a full pool never eats a click.
    let started = slack.workers.try_spawn(async move {
        let slack = task_slack;
        let Ok(caller) = Principal::parse(&format!("slack:user:{user_id}")) else {
            return;
        };
        if matches!(action, ButtonAction::Cancel) {
            if let commands::Confirmed::Gone(reply) | commands::Confirmed::Cancelled(reply) =
                commands::confirm(&slack.ctx, &value, &caller, false, &request_id).await
            {
                return post(&slack.client, &task_url, &reply, true).await;
            }
            return;
        }
        // Everything else acts with the clicker's rights: their user groups too.
        let mut principals = vec![caller.clone()];
        match slack.usergroups.principals(&slack.client, &user_id).await {
            Ok(groups) => principals.extend(groups),
            Err(_) => {
                post(&slack.client, &task_url, &messages::usergroups_unavailable(), false).await;
                return;
            }
        }
        let inv = match action {
            ButtonAction::Apply => {
                let (channel, text) = match commands::confirm(&slack.ctx, &value, &caller, true, &request_id).await {
                    commands::Confirmed::Apply { channel, text } => (channel, text),
                    commands::Confirmed::Gone(reply) | commands::Confirmed::Cancelled(reply) => {
                        return post(&slack.client, &task_url, &reply, false).await
                    }
                };
                Invocation {
                    platform: Platform::Slack,
                    principals,
                    channel,
                    text,
                    request_id,
                    applied: true,
                    approved_by: None,
                }
            }
            ButtonAction::RequestApproval => {
                match approval::request(&slack.ctx, &value, &principals, &request_id).await {
                    approval::Requested::Gone(reply) => post(&slack.client, &task_url, &reply, false).await,
                    approval::Requested::Posted { request, to_requester } => {
                        post(&slack.client, &task_url, &to_requester, true).await;
                        post(&slack.client, &task_url, &request, false).await;
                    }
                }
                return;
            }
            ButtonAction::Approve | ButtonAction::Reject => {
                let approve = action == ButtonAction::Approve;
                match approval::decide(&slack.ctx, &value, &principals, approve, Platform::Slack, &request_id).await {
                    approval::Decided::Refused(reply) => return post(&slack.client, &task_url, &reply, false).await,
                    approval::Decided::Rejected(reply) => return post(&slack.client, &task_url, &reply, true).await,
                    approval::Decided::Approved(inv) => inv,
                }
            }
            ButtonAction::Cancel => return,
        };
        let poster = ResponsePoster::start(slack.client.clone(), task_url, inv.request_id.clone());
        poster.update_now(&messages::working());
        let reply = commands::dispatch_with_progress(&slack.ctx, &inv, Some(&poster)).await;
        poster.finish(reply).await;
    });
    if !started {
        let client = slack.client.clone();
        tokio::spawn(async move { post(&client, &response_url, &messages::busy(), false).await });
    }
    StatusCode::OK.into_response()
}

/// Posts one reply to a `response_url`; failures can only be logged.
async fn post(client: &SlackClient, response_url: &str, reply: &Reply, replace_original: bool) {
    let message = render::response_url_message(reply, replace_original);
    if let Err(e) = client.respond(response_url, &message).await {
        tracing::error!(error = %e, "result could not be posted to Slack");
    }
}

/// Progress updates replace the "Working on it…" message; the result is
/// posted after the last of them.
struct ResponsePoster {
    client: Arc<SlackClient>,
    response_url: String,
    request_id: String,
    progress: super::progress::ProgressUpdates,
}

impl ResponsePoster {
    fn start(client: Arc<SlackClient>, response_url: String, request_id: String) -> Self {
        let (send_client, url) = (client.clone(), response_url.clone());
        let progress = super::progress::ProgressUpdates::start(
            move |reply: Reply| {
                let (client, url) = (send_client.clone(), url.clone());
                async move { post(&client, &url, &reply, true).await }
            },
            MAX_PROGRESS_POSTS,
            PROGRESS_EVERY,
        );
        ResponsePoster {
            client,
            response_url,
            request_id,
            progress,
        }
    }

    fn update_now(&self, reply: &Reply) {
        self.progress.update_now(reply);
    }

    async fn finish(self, reply: Reply) {
        self.progress.finish().await;
        // An ephemeral result replaces "Working on it…"; a channel result is a
        // new message (Slack cannot make an ephemeral message public).
        let replace = reply.visibility == Visibility::Ephemeral;
        post(&self.client, &self.response_url, &reply, replace).await;
        tracing::debug!(request_id = %self.request_id, "result posted to Slack");
    }
}

impl Progress for ResponsePoster {
    fn update(&self, done: usize, total: usize) {
        self.progress.update(done, total);
    }
}
