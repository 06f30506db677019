//! Calls from waops to Discord's REST API through serenity's `Http` client:
//! editing and following up on interactions (interaction token), channel
//! messages and command registration (bot token).
//!
//! serenity's own rate limiter is off: it sends to discord.com whatever the
//! client's `proxy` (the configurable base URL that tests point at their
//! fakes), and it waits whatever `Retry-After` says. 429 and 5xx answers and
//! connection failures are retried here instead, a bounded number of times
//! with a bounded backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serenity::all::{
    ApplicationId, ChannelId, Command, CreateCommand, CreateInteractionResponse, CreateInteractionResponseFollowup,
    CreateMessage, EditInteractionResponse, GuildId, InteractionId,
};
use serenity::http::{Http, HttpBuilder};

use crate::settings::DiscordSettings;

/// Attempts per call.
const ATTEMPTS: u32 = 3;

/// A Discord call that failed. Never carries the request's URL: an
/// interaction's path holds its token.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// A non-2xx status after retries, with Discord's error message if any.
    #[error("Discord answered HTTP {0}: {1}")]
    Status(u16, String),
    /// The request did not get through.
    #[error("cannot reach Discord: {0}")]
    Transport(String),
    /// A bad id, a missing application id, or an answer serenity could not read.
    #[error("Discord call not made: {0}")]
    Invalid(String),
}

impl DiscordError {
    fn from_serenity(e: serenity::Error) -> Self {
        use serenity::http::HttpError;
        match e {
            serenity::Error::Http(HttpError::UnsuccessfulRequest(r)) => {
                DiscordError::Status(r.status_code.as_u16(), r.error.message)
            }
            serenity::Error::Http(HttpError::Request(e)) => DiscordError::Transport(if e.is_timeout() {
                "timed out".into()
            } else {
                "connection failed".into()
            }),
            serenity::Error::Http(HttpError::ApplicationIdMissing) => {
                DiscordError::Invalid("no application id (set discord.application_id)".into())
            }
            other => DiscordError::Invalid(other.to_string()),
        }
    }

    fn retryable(&self) -> bool {
        match self {
            DiscordError::Status(status, _) => *status == 429 || *status >= 500,
            DiscordError::Transport(_) => true,
            DiscordError::Invalid(_) => false,
        }
    }
}

/// The base URL serenity's `proxy` setting takes: `discord.api_url` without
/// the `/api` or `/api/v10` suffix serenity adds itself.
fn proxy_base(api_url: &str) -> String {
    let url = api_url.trim().trim_end_matches('/');
    let url = url
        .strip_suffix("/api/v10")
        .or_else(|| url.strip_suffix("/api"))
        .unwrap_or(url);
    url.to_string()
}

/// A Discord snowflake from text.
fn snowflake(text: &str, what: &str) -> Result<u64, DiscordError> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| DiscordError::Invalid(format!("`{text}` is not a Discord {what} id")))
}

/// The Discord REST client.
pub struct DiscordClient {
    http: Arc<Http>,
}

impl DiscordClient {
    /// Builds the client from settings.
    pub fn new(settings: &DiscordSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let mut builder = HttpBuilder::new(settings.bot_token.expose())
            .client(client)
            .ratelimiter_disabled(true);
        let base = proxy_base(&settings.api_url);
        if base != "https://discord.com" {
            builder = builder.proxy(base);
        }
        if let Ok(id) = snowflake(&settings.application_id, "application") {
            builder = builder.application_id(ApplicationId::new(id));
        }
        Ok(DiscordClient {
            http: Arc::new(builder.build()),
        })
    }

    /// Takes the application id from an interaction when the settings had
    /// none: interaction webhooks are addressed by it.
    pub fn learn_application_id(&self, id: ApplicationId) {
        if self.http.application_id().is_none() {
            self.http.set_application_id(id);
        }
    }

    /// Answers an interaction that arrived over the gateway (the HTTP route answers in its response).
    pub async fn callback(
        &self,
        interaction: InteractionId,
        token: &str,
        response: &CreateInteractionResponse,
    ) -> Result<(), DiscordError> {
        self.retried(|| {
            self.http
                .create_interaction_response(interaction, token, response, Vec::new())
        })
        .await
    }

    /// Replaces the interaction's original response.
    pub async fn edit_original(&self, token: &str, edit: &EditInteractionResponse) -> Result<(), DiscordError> {
        self.retried(|| async {
            self.http
                .edit_original_interaction_response(token, edit, Vec::new())
                .await
                .map(|_| ())
        })
        .await
    }

    /// Deletes the interaction's original response.
    pub async fn delete_original(&self, token: &str) -> Result<(), DiscordError> {
        self.retried(|| self.http.delete_original_interaction_response(token))
            .await
    }

    /// Sends a follow-up message for the interaction.
    pub async fn follow_up(
        &self,
        token: &str,
        follow_up: &CreateInteractionResponseFollowup,
    ) -> Result<(), DiscordError> {
        self.retried(|| async {
            self.http
                .create_followup_message(token, follow_up, Vec::new())
                .await
                .map(|_| ())
        })
        .await
    }

    /// Posts a message to a channel with the bot token; returns its id.
    pub async fn channel_message(&self, channel: &str, message: &CreateMessage) -> Result<String, DiscordError> {
        let channel = ChannelId::new(snowflake(channel, "channel")?);
        let posted = self
            .retried(|| self.http.send_message(channel, Vec::new(), message))
            .await?;
        Ok(posted.id.to_string())
    }

    /// Overwrites the application's commands (globally, or in one guild);
    /// returns how many Discord now has.
    pub async fn register_commands(
        &self,
        guild: Option<&str>,
        commands: Vec<CreateCommand>,
    ) -> Result<usize, DiscordError> {
        let registered = match guild {
            Some(g) => {
                let guild = GuildId::new(snowflake(g, "guild")?);
                guild.set_commands(&self.http, commands).await
            }
            None => Command::set_global_commands(&self.http, commands).await,
        };
        registered.map(|c| c.len()).map_err(DiscordError::from_serenity)
    }

    /// Runs `call` until it succeeds, fails for good, or `ATTEMPTS` are spent.
    async fn retried<T, F, Fut>(&self, call: F) -> Result<T, DiscordError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = serenity::Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match call().await.map_err(DiscordError::from_serenity) {
                Ok(value) => return Ok(value),
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    tracing::info!(error = %e, attempt, "Discord call failed; retrying");
                    // 0.5 s, then 1 s: Discord's interaction and message limits
                    // are per second.
                    tokio::time::sleep(Duration::from_millis(500 << (attempt - 1))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A Discord nonce for a scheduled post: stable, at most 25 characters.
pub fn nonce(key: &crate::core::PostKey) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("{}:{}", key.subscription, key.window_start.as_millisecond()));
    hex::encode(digest)[..25].to_string()
}

/// Digests in Discord: a channel message with a nonce derived from the
/// window and `enforce_nonce`, so Discord answers a repeat with the first
/// message instead of posting it twice.
#[async_trait::async_trait]
impl crate::core::ChatPoster for DiscordClient {
    async fn post(
        &self,
        channel: &str,
        reply: &crate::core::Reply,
        key: &crate::core::PostKey,
    ) -> Result<String, crate::core::PostError> {
        use crate::core::PostError;
        let message = super::render::message(reply)
            .channel()
            .nonce(serenity::all::Nonce::String(nonce(key)))
            .enforce_nonce(true);
        self.channel_message(channel, &message).await.map_err(|e| match e {
            DiscordError::Status(s, _) if s < 500 && s != 429 => PostError::Refused(e.to_string()),
            DiscordError::Invalid(_) => PostError::Refused(e.to_string()),
            _ => PostError::Unknown(e.to_string()),
        })
    }
}
