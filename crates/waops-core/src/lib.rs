//! waops' platform-neutral core: who asked (`Invocation`), what they asked
//! (`command::Command`, parsed against the one command table), whether they
//! may (`permissions`), and what they see (`Reply`, every sentence in
//! `messages`). The ports to the outside are traits: `provider::Provider` for
//! WhatsApp providers, `ChatPoster` for posting to a chat channel.
//!
//! This crate depends on no chat platform, HTTP, store or provider client
//! crate, so an import from it to an adapter cannot compile.

pub mod chat;
pub mod command;
pub mod group_ref;
pub mod invite_link;
pub mod messages;
pub mod parser;
pub mod permissions;
pub mod phone;
pub mod provider;
pub mod reply;
pub mod schedule;
pub mod subscription;
pub mod values;

use std::fmt;
use std::str::FromStr;

pub use chat::{ChatPoster, PostError, PostKey};
pub use reply::{Reply, Status, Visibility};

/// Where a command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// `waops exec`.
    Console,
    /// Slack slash commands.
    Slack,
    /// Discord application commands.
    Discord,
}

impl Platform {
    /// The platform's name in principals, channels and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Console => "console",
            Platform::Slack => "slack",
            Platform::Discord => "discord",
        }
    }
}

/// An identity that roles are bound to: `console`, `slack:user:<id>`,
/// `slack:usergroup:<id>`, `discord:user:<id>`, `discord:role:<id>`, or `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// The local CLI.
    pub fn console() -> Self {
        Principal("console".into())
    }

    /// Parses and checks a principal.
    pub fn parse(text: &str) -> Result<Principal, String> {
        Self::check(text)?;
        Ok(Principal(text.into()))
    }

    /// As [`Principal::parse`], keeping the string it is given: the adapters
    /// build `platform:kind:id` and would otherwise copy it once more per request.
    pub fn from_string(text: String) -> Result<Principal, String> {
        Self::check(&text)?;
        Ok(Principal(text))
    }

    fn check(text: &str) -> Result<(), String> {
        let malformed = || {
            format!(
                "malformed principal `{text}` (expected console, *, slack:user:<id>, slack:usergroup:<id>, discord:user:<id> or discord:role:<id>)"
            )
        };
        if text == "console" || text == "*" {
            return Ok(());
        }
        let mut parts = text.splitn(3, ':');
        let (platform, kind, id) = (parts.next(), parts.next(), parts.next());
        let id_ok = |id: &str| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        match (platform, kind, id) {
            (Some("slack"), Some("user" | "usergroup"), Some(id)) if id_ok(id) => Ok(()),
            (Some("discord"), Some("user" | "role"), Some(id))
                if id_ok(id) && id.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(())
            }
            _ => Err(malformed()),
        }
    }

    /// The principal's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when this binding entry covers `other`.
    pub fn covers(&self, other: &Principal) -> bool {
        self.0 == "*" || self == other
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel, as `platform:id` (`slack:C0SALES`, `discord:123`, `console:local`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChannelRef(String);

impl ChannelRef {
    /// Builds `platform:id`.
    pub fn new(platform: Platform, id: &str) -> Self {
        ChannelRef(format!("{}:{id}", platform.as_str()))
    }

    /// A channel given as text: kept when it already names a platform, else a console channel.
    pub fn from_text(text: &str) -> Self {
        if text.contains(':') {
            ChannelRef(text.to_string())
        } else {
            ChannelRef::new(Platform::Console, text)
        }
    }

    /// `platform:id`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ten command ids, used in permissions, audit and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CommandId {
    /// `join`
    Join,
    /// `add`
    Add,
    /// `remove`
    Remove,
    /// `promote`
    Promote,
    /// `demote`
    Demote,
    /// `members`
    Members,
    /// `audit`
    Audit,
    /// `approve`: a permission for the Approve button, not a typed command.
    Approve,
    /// `invite`
    Invite,
    /// `history`
    History,
    /// `groups`
    Groups,
    /// `subscribe`
    Subscribe,
    /// `unsubscribe`
    Unsubscribe,
    /// `subscriptions`
    Subscriptions,
    /// `help`
    Help,
    /// `whoami`
    Whoami,
}

impl CommandId {
    /// All ids, in help order.
    pub const ALL: [CommandId; 16] = [
        CommandId::Join,
        CommandId::Add,
        CommandId::Remove,
        CommandId::Promote,
        CommandId::Demote,
        CommandId::Members,
        CommandId::Invite,
        CommandId::History,
        CommandId::Groups,
        CommandId::Subscribe,
        CommandId::Unsubscribe,
        CommandId::Subscriptions,
        CommandId::Audit,
        CommandId::Approve,
        CommandId::Help,
        CommandId::Whoami,
    ];

    /// The id's text.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandId::Join => "join",
            CommandId::Add => "add",
            CommandId::Remove => "remove",
            CommandId::Promote => "promote",
            CommandId::Demote => "demote",
            CommandId::Members => "members",
            CommandId::Audit => "audit",
            CommandId::Approve => "approve",
            CommandId::Invite => "invite",
            CommandId::History => "history",
            CommandId::Groups => "groups",
            CommandId::Subscribe => "subscribe",
            CommandId::Unsubscribe => "unsubscribe",
            CommandId::Subscriptions => "subscriptions",
            CommandId::Help => "help",
            CommandId::Whoami => "whoami",
        }
    }

    /// Commands every caller may run: they show only the caller's own identity
    /// and permissions, and an unbound user needs them to ask for a role.
    pub fn always_allowed(self) -> bool {
        matches!(self, CommandId::Help | CommandId::Whoami)
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        CommandId::ALL.into_iter().find(|c| c.as_str() == s).ok_or(())
    }
}

/// One request from any frontend, converted at the edge.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Where it came from.
    pub platform: Platform,
    /// Every principal the caller has (user id, usergroups, roles); the first is the caller.
    pub principals: Vec<Principal>,
    /// The channel it was typed in.
    pub channel: ChannelRef,
    /// The command text after `/wa`.
    pub text: String,
    /// Correlates logs, audit rows and the "ref" users see.
    pub request_id: String,
    /// The text is a preview's command that its caller applied (the Apply
    /// button), not something typed: its `--yes` is waops' own.
    pub applied: bool,
    /// Who approved it under the two-person rule, when it is an approved request.
    pub approved_by: Option<Principal>,
}

impl Invocation {
    /// The caller's own principal.
    pub fn caller(&self) -> &Principal {
        &self.principals[0]
    }
}

/// Receives progress of long commands (bulk adds in several chunks).
pub trait Progress: Send + Sync {
    /// `done` of `total` items are finished.
    fn update(&self, done: usize, total: usize);
}

/// A fresh request id.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        for ok in [
            "console",
            "*",
            "slack:user:U024BE7LH",
            "slack:usergroup:S0SALES",
            "discord:user:81234567890",
            "discord:role:998877665544",
        ] {
            assert_eq!(Principal::parse(ok).unwrap().as_str(), ok);
            assert_eq!(Principal::from_string(ok.to_string()).unwrap().as_str(), ok);
        }
        for bad in [
            "",
            "slack",
            "slack:U1",
            "slack:user:",
            "slack:bot:B1",
            "discord:user:abc",
            "discord:role:1:2",
            "teams:user:1",
            "slack:user:U 1",
            "Console",
        ] {
            assert!(
                Principal::parse(bad).unwrap_err().starts_with("malformed principal"),
                "{bad}"
            );
            assert_eq!(Principal::from_string(bad.to_string()), Principal::parse(bad), "{bad}");
        }
        let star = Principal::parse("*").unwrap();
        assert!(star.covers(&Principal::console()));
        assert!(!Principal::console().covers(&star));
    }

    #[test]
    fn channels() {
        assert_eq!(ChannelRef::from_text("ops").as_str(), "console:ops");
        assert_eq!(ChannelRef::from_text("slack:C0SALES").as_str(), "slack:C0SALES");
    }

    #[test]
    fn command_ids_round_trip() {
        for id in CommandId::ALL {
            assert_eq!(id.as_str().parse::<CommandId>(), Ok(id));
        }
        assert!("ad".parse::<CommandId>().is_err());
    }
}
