//! Calls from waops to Discord's REST API: editing and following up on
//! interactions (interaction token), channel messages and command registration
//! (bot token), with 429 handling.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::settings::{DiscordSettings, Secret};

/// Attempts per call.
const ATTEMPTS: u32 = 3;
/// The longest a rate-limit wait is honoured.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A Discord call that failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    /// A non-2xx status after retries, with Discord's error code text if any.
    #[error("Discord answered HTTP {0}: {1}")]
    Status(u16, String),
    /// The request did not get through.
    #[error("cannot reach Discord: {0}")]
    Transport(String),
}

/// The Discord REST client.
pub struct DiscordClient {
    http: reqwest::Client,
    api_url: String,
    application_id: String,
    bot_token: Secret,
}

impl DiscordClient {
    /// Builds the client from settings.
    pub fn new(settings: &DiscordSettings) -> anyhow::Result<Self> {
        Ok(DiscordClient {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            api_url: settings.api_url.trim_end_matches('/').to_string(),
            application_id: settings.application_id.clone(),
            bot_token: settings.bot_token.clone(),
        })
    }

    /// Answers an interaction that arrived over the gateway (the HTTP route answers in its response).
    pub async fn callback(&self, interaction_id: &str, token: &str, body: &Value) -> Result<(), DiscordError> {
        let url = format!("{}/interactions/{interaction_id}/{token}/callback", self.api_url);
        self.send(Method::POST, &url, Some(body), false).await.map(|_| ())
    }

    /// Replaces the interaction's original response.
    pub async fn edit_original(&self, token: &str, body: &Value) -> Result<(), DiscordError> {
        let url = format!(
            "{}/webhooks/{}/{token}/messages/@original",
            self.api_url, self.application_id
        );
        self.send(Method::PATCH, &url, Some(body), false).await.map(|_| ())
    }

    /// Deletes the interaction's original response.
    pub async fn delete_original(&self, token: &str) -> Result<(), DiscordError> {
        let url = format!(
            "{}/webhooks/{}/{token}/messages/@original",
            self.api_url, self.application_id
        );
        self.send(Method::DELETE, &url, None, false).await.map(|_| ())
    }

    /// Sends a follow-up message for the interaction.
    pub async fn follow_up(&self, token: &str, body: &Value) -> Result<(), DiscordError> {
        let url = format!("{}/webhooks/{}/{token}", self.api_url, self.application_id);
        self.send(Method::POST, &url, Some(body), false).await.map(|_| ())
    }

    /// Posts a message to a channel with the bot token; returns its id.
    pub async fn channel_message(&self, channel: &str, body: &Value) -> Result<String, DiscordError> {
        let url = format!("{}/channels/{channel}/messages", self.api_url);
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("flags");
        }
        let answer = self.send(Method::POST, &url, Some(&body), true).await?;
        Ok(answer.get("id").and_then(Value::as_str).unwrap_or_default().to_string())
    }

    /// Overwrites the application's commands (globally, or in one guild).
    pub async fn register_commands(&self, guild: Option<&str>, commands: &Value) -> Result<Value, DiscordError> {
        let url = match guild {
            Some(g) => format!(
                "{}/applications/{}/guilds/{g}/commands",
                self.api_url, self.application_id
            ),
            None => format!("{}/applications/{}/commands", self.api_url, self.application_id),
        };
        self.send(Method::PUT, &url, Some(commands), true).await
    }

    async fn send(&self, method: Method, url: &str, body: Option<&Value>, bot: bool) -> Result<Value, DiscordError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            let mut request = self.http.request(method.clone(), url);
            if bot {
                request = request.header("authorization", format!("Bot {}", self.bot_token.expose()));
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() && !last => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    continue;
                }
                Err(e) => {
                    return Err(DiscordError::Transport(if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    }))
                }
            };
            let status = response.status();
            let header_wait = crate::providers::http::wait_hint(response.headers(), jiff::Timestamp::now());
            let text = response.text().await.unwrap_or_default();
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                // Discord puts the wait in the body (`retry_after`, seconds) and in Retry-After.
                let wait = json
                    .get("retry_after")
                    .and_then(Value::as_f64)
                    .map(Duration::from_secs_f64)
                    .or(header_wait)
                    .unwrap_or(Duration::from_millis(500 * u64::from(attempt)));
                if !last && wait <= MAX_WAIT {
                    tracing::info!(
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "Discord busy; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            if !status.is_success() {
                let message = json
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                return Err(DiscordError::Status(status.as_u16(), message));
            }
            return Ok(json);
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
        let mut body = super::render::message(reply);
        body["nonce"] = Value::String(nonce(key));
        body["enforce_nonce"] = Value::Bool(true);
        self.channel_message(channel, &body).await.map_err(|e| match e {
            DiscordError::Status(s, _) if s < 500 && s != 429 => PostError::Refused(e.to_string()),
            _ => PostError::Unknown(e.to_string()),
        })
    }
}
