//! Calls from waops to Slack: `response_url` posts (results, progress), the Web
//! API's `usergroups.users.list`, `chat.postMessage` and `conversations.history`,
//! all with 429/5xx handling. Requests and answers are slack-morphism's Web API
//! models, sent with our reqwest client (slack-morphism's own client would add a
//! second HTTP stack).

use std::time::Duration;

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;
use slack_morphism::prelude::{
    SlackApiChatPostMessageRequest, SlackApiChatPostMessageResponse, SlackApiConversationsHistoryRequest,
    SlackApiConversationsHistoryResponse, SlackApiUserGroupsUsersListRequest, SlackApiUserGroupsUsersListResponse,
    SlackMessageContent, SlackMessageMetadata,
};

use super::render::ResponseUrlMessage;
use crate::providers::http::wait_hint;
use crate::settings::{Secret, SlackSettings};

/// Attempts per call (Slack allows 5 posts per `response_url`).
const ATTEMPTS: u32 = 3;
/// The longest a `Retry-After` is waited for.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// A Slack call that failed.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// `{"ok": false, "error": …}` from the Web API.
    #[error("Slack API error: {0}")]
    Api(String),
    /// A non-2xx status after retries.
    #[error("Slack answered HTTP {0}")]
    Status(u16),
    /// The request did not get through.
    #[error("cannot reach Slack: {0}")]
    Transport(String),
}

/// The Slack client (bot token for the Web API).
pub struct SlackClient {
    http: reqwest::Client,
    api_url: String,
    bot_token: Secret,
}

impl SlackClient {
    /// Builds the client from settings.
    pub fn new(settings: &SlackSettings) -> anyhow::Result<Self> {
        // No redirects: a response_url is trusted by its prefix, and a redirect
        // would take the post elsewhere.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(SlackClient {
            http,
            api_url: settings.api_url.trim_end_matches('/').to_string(),
            bot_token: settings.bot_token.clone(),
        })
    }

    /// Posts a message to a `response_url`.
    pub async fn respond(&self, response_url: &str, message: &ResponseUrlMessage) -> Result<(), SlackError> {
        self.send(|| self.http.post(response_url).json(message))
            .await
            .map(|_| ())
    }

    /// Members of a user group (`usergroups.users.list`).
    pub async fn usergroup_members(&self, usergroup: &str) -> Result<Vec<String>, SlackError> {
        let url = format!("{}/usergroups.users.list", self.api_url);
        let request = SlackApiUserGroupsUsersListRequest::new(usergroup.into());
        let answer = self
            .send(|| self.http.get(&url).bearer_auth(self.bot_token.expose()).query(&request))
            .await?;
        let answer: SlackApiUserGroupsUsersListResponse =
            serde_json::from_value(answer).map_err(|e| SlackError::Api(format!("unreadable answer: {e}")))?;
        Ok(answer.users.into_iter().map(|u| u.0).collect())
    }

    /// Posts a message to a channel (`chat.postMessage`); returns its `ts`.
    pub async fn post_message(&self, channel: &str, content: SlackMessageContent) -> Result<String, SlackError> {
        let url = format!("{}/chat.postMessage", self.api_url);
        let request = SlackApiChatPostMessageRequest::new(channel.into(), content);
        let answer = self
            .send(|| self.http.post(&url).bearer_auth(self.bot_token.expose()).json(&request))
            .await?;
        let answer: SlackApiChatPostMessageResponse =
            serde_json::from_value(answer).map_err(|e| SlackError::Api(format!("unreadable answer: {e}")))?;
        Ok(answer.ts.0)
    }

    /// The `ts` of a recent channel message (posted after `after`) whose metadata
    /// has `event_type` and a payload `matches` accepts (`conversations.history`
    /// with `include_all_metadata`; needs the `channels:history` scope).
    pub async fn find_message_with_metadata(
        &self,
        channel: &str,
        after: jiff::Timestamp,
        event_type: &str,
        matches: impl Fn(&HashMap<String, String>) -> bool,
    ) -> Result<Option<String>, SlackError> {
        let url = format!("{}/conversations.history", self.api_url);
        let request = SlackApiConversationsHistoryRequest::new()
            .with_channel(channel.into())
            .with_oldest(format!("{}.000000", after.as_second()).into())
            .with_include_all_metadata(true)
            .with_limit(200);
        let answer = self
            .send(|| self.http.get(&url).bearer_auth(self.bot_token.expose()).query(&request))
            .await?;
        let answer: SlackApiConversationsHistoryResponse =
            serde_json::from_value(answer).map_err(|e| SlackError::Api(format!("unreadable answer: {e}")))?;
        Ok(answer.messages.into_iter().find_map(|m| {
            let metadata = m.content.metadata?;
            (metadata.event_type == event_type && metadata.event_payload.as_ref().is_some_and(&matches))
                .then_some(m.origin.ts.0)
        }))
    }

    /// Sends with retries on 429 (honouring Retry-After), 5xx and connect errors;
    /// Web API `ok: false` answers become `Api` errors.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> Result<Value, SlackError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            let response = match build().send().await {
                Ok(r) => r,
                Err(e) if e.is_connect() && !last => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    continue;
                }
                Err(e) => {
                    return Err(SlackError::Transport(if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    }))
                }
            };
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                let wait = wait_hint(response.headers(), jiff::Timestamp::now())
                    .unwrap_or(Duration::from_millis(500 * u64::from(attempt)));
                if !last && wait <= MAX_WAIT {
                    tracing::info!(
                        status = status.as_u16(),
                        wait_ms = wait.as_millis() as u64,
                        "Slack busy; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(SlackError::Status(status.as_u16()));
            }
            if !status.is_success() {
                return Err(SlackError::Status(status.as_u16()));
            }
            let text = response
                .text()
                .await
                .map_err(|_| SlackError::Transport("body not read".into()))?;
            // response_url answers plain "ok"; the Web API answers JSON with `ok`.
            let Ok(json) = serde_json::from_str::<Value>(&text) else {
                return Ok(Value::Null);
            };
            if json.get("ok") == Some(&Value::Bool(false)) {
                let error = json
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string();
                if error == "ratelimited" && !last {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
                return Err(SlackError::Api(error));
            }
            return Ok(json);
        }
    }
}

/// The Slack message metadata type of digests.
pub const DIGEST_EVENT_TYPE: &str = "waops_digest";

/// Digests in Slack: `chat.postMessage` with metadata naming the window, and a
/// window whose earlier attempt ended without an answer is looked for in the
/// channel's history by that metadata (Slack has no idempotency key).
#[async_trait::async_trait]
impl crate::core::ChatPoster for SlackClient {
    async fn post(
        &self,
        channel: &str,
        reply: &crate::core::Reply,
        key: &crate::core::PostKey,
    ) -> Result<String, crate::core::PostError> {
        use crate::core::PostError;
        let payload = HashMap::from([
            ("subscription".to_string(), key.subscription.clone()),
            (
                "window_start".to_string(),
                key.window_start.as_millisecond().to_string(),
            ),
        ]);
        let content = super::render::content(reply).with_metadata(SlackMessageMetadata {
            event_type: DIGEST_EVENT_TYPE.to_string(),
            event_payload: Some(payload),
        });
        self.post_message(channel, content).await.map_err(|e| match e {
            SlackError::Api(_) => PostError::Refused(e.to_string()),
            SlackError::Status(s) if s < 500 => PostError::Refused(e.to_string()),
            _ => PostError::Unknown(e.to_string()),
        })
    }

    async fn find_earlier(
        &self,
        channel: &str,
        key: &crate::core::PostKey,
    ) -> Result<Option<String>, crate::core::PostError> {
        let window = key.window_start.as_millisecond().to_string();
        self.find_message_with_metadata(channel, key.window_end, DIGEST_EVENT_TYPE, |p| {
            p.get("subscription") == Some(&key.subscription) && p.get("window_start") == Some(&window)
        })
        .await
        .map_err(|e| crate::core::PostError::Unknown(e.to_string()))
    }
}
