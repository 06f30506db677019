//! The port for messages waops posts on its own schedule (digests): the core
//! decides what and when, a `ChatPoster` per platform puts it in a channel.

use async_trait::async_trait;
use jiff::Timestamp;

use crate::Reply;

/// Which scheduled post this is: the same on every attempt, on every replica,
/// so a platform can recognise a repeat (Discord's nonce, Slack's metadata).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostKey {
    /// The subscription's id.
    pub subscription: String,
    /// The window the post is for.
    pub window_start: Timestamp,
    /// Its end: a repeat is looked for among messages after it.
    pub window_end: Timestamp,
}

/// Why a post did not go out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The platform said no: nothing was posted.
    #[error("{0}")]
    Refused(String),
    /// No answer: it may or may not have been posted.
    #[error("{0}")]
    Unknown(String),
}

/// Posts scheduled messages to one chat platform's channels.
#[async_trait]
pub trait ChatPoster: Send + Sync {
    /// Posts `reply` to `channel` (the platform's own channel id) as the post
    /// `key`; returns the platform's reference to the message.
    async fn post(&self, channel: &str, reply: &Reply, key: &PostKey) -> Result<String, PostError>;

    /// After an attempt that ended without an answer: the message it may have
    /// posted, where the platform needs waops to look (the default: it does
    /// not, because a repeated post with the same key is not duplicated).
    async fn find_earlier(&self, _channel: &str, _key: &PostKey) -> Result<Option<String>, PostError> {
        Ok(None)
    }
}
