//! A channel's digest subscription, as stored and shown.

use jiff::Timestamp;

/// A channel's digest subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Random id.
    pub id: String,
    /// console, slack, discord.
    pub platform: String,
    /// `platform:id` of the channel.
    pub channel: String,
    /// A group id, or `*`.
    pub group_ref: String,
    /// The group's name when subscribed (or `all groups`).
    pub group_name: String,
    /// Window length in seconds.
    pub every_s: i64,
    /// `HH:MM` alignment, if any.
    pub at_time: Option<String>,
    /// IANA time zone.
    pub tz: String,
    /// Who subscribed.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// Live alerts (each change within seconds, by arrival) rather than a digest.
    pub live: bool,
}

/// How long live alerts gather changes before posting them in one message.
pub const LIVE_BATCH_S: i64 = 10;

impl Subscription {
    /// When its windows begin and end.
    pub fn schedule(&self) -> crate::schedule::Schedule {
        crate::schedule::Schedule::from_stored(self.every_s, self.at_time.as_deref(), &self.tz)
    }
}
