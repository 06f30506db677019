//! The command table and the parsed commands: each command's module holds its
//! spec row (which the parser, usage and help all read), its typed arguments
//! and a pure `parse`. Running them is the service's business, not the core's.

pub mod add;
pub mod audit;
pub mod change;
pub mod groups;
pub mod help;
pub mod history;
pub mod invite;
pub mod join;
pub mod members;
pub mod subscribe;
pub mod whoami;

use crate::parser::{self, CommandSpec, UsageError};
use crate::provider::MemberChange;
use crate::CommandId;

/// A parsed command with typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `join <invite>`
    Join(join::Args),
    /// `add <group> <numbers…>`
    Add(add::Args),
    /// `remove|promote|demote <group> <numbers…>`
    Change(change::Args),
    /// `members <group> [FILTER]`
    Members(members::Args),
    /// `audit [--user …] [--command …] [--group …] [--since …] [--limit …]`
    Audit(audit::Args),
    /// `invite <group> [--reset]`
    Invite(invite::Args),
    /// `history <group> ...`
    History(history::Args),
    /// `groups [FILTER]`
    Groups(groups::Args),
    /// `subscribe <group|*> ...`
    Subscribe(subscribe::Args),
    /// `unsubscribe <group|*>`
    Unsubscribe(subscribe::UnsubscribeArgs),
    /// `subscriptions`
    Subscriptions,
    /// `help [command]`
    Help(help::Args),
    /// `whoami`
    Whoami,
}

/// The spec row of a command: the one table parser, usage and help read.
pub fn spec(id: CommandId) -> &'static CommandSpec {
    match id {
        CommandId::Join => &join::SPEC,
        CommandId::Add => &add::SPEC,
        CommandId::Remove => &change::REMOVE_SPEC,
        CommandId::Promote => &change::PROMOTE_SPEC,
        CommandId::Demote => &change::DEMOTE_SPEC,
        CommandId::Members => &members::SPEC,
        CommandId::Audit => &audit::SPEC,
        CommandId::Approve => &audit::APPROVE_SPEC,
        CommandId::Invite => &invite::SPEC,
        CommandId::History => &history::SPEC,
        CommandId::Groups => &groups::SPEC,
        CommandId::Subscribe => &subscribe::SPEC,
        CommandId::Unsubscribe => &subscribe::UNSUBSCRIBE_SPEC,
        CommandId::Subscriptions => &subscribe::SUBSCRIPTIONS_SPEC,
        CommandId::Help => &help::SPEC,
        CommandId::Whoami => &whoami::SPEC,
    }
}

/// What a command acts on, before resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetRef<'a> {
    /// No group.
    None,
    /// `*`
    All,
    /// A group reference as typed.
    Group(&'a str),
}

impl Command {
    /// Parses command text (the part after `/wa`).
    pub fn parse(text: &str) -> Result<Command, UsageError> {
        Parsed::parse(text).map(|p| p.command)
    }
}

/// A parsed command and the account it names (`--account`, which every group
/// command takes: kept beside the command rather than in each one's arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
    /// `--account NAME`, as typed.
    pub account: Option<String>,
}

impl Parsed {
    /// Parses command text (the part after `/wa`).
    pub fn parse(text: &str) -> Result<Parsed, UsageError> {
        let mut parts = parser::split(text)?;
        let account = parts.value("account").map(str::to_owned);
        let id = parts.command();
        let command = match id {
            CommandId::Join => Command::Join(join::parse(&mut parts)?),
            CommandId::Add => Command::Add(add::parse(&mut parts)?),
            CommandId::Remove => Command::Change(change::parse(&mut parts, MemberChange::Remove)?),
            CommandId::Promote => Command::Change(change::parse(&mut parts, MemberChange::Promote)?),
            CommandId::Demote => Command::Change(change::parse(&mut parts, MemberChange::Demote)?),
            CommandId::Members => Command::Members(members::parse(&mut parts)?),
            CommandId::Audit => Command::Audit(audit::parse(&mut parts)?),
            CommandId::Approve => {
                return Err(parts.error("`approve` is the Approve button on a request; there is nothing to type"))
            }
            CommandId::Invite => Command::Invite(invite::parse(&mut parts)?),
            CommandId::History => Command::History(history::parse(&mut parts)?),
            CommandId::Groups => Command::Groups(groups::parse(&mut parts)?),
            CommandId::Subscribe => Command::Subscribe(subscribe::parse(&mut parts)?),
            CommandId::Unsubscribe => Command::Unsubscribe(subscribe::parse_unsubscribe(&mut parts)?),
            CommandId::Subscriptions => Command::Subscriptions,
            CommandId::Help => Command::Help(help::parse(&mut parts)?),
            CommandId::Whoami => Command::Whoami,
        };
        parts.finish()?;
        Ok(Parsed { command, account })
    }
}

impl Command {
    /// The command's id.
    pub fn id(&self) -> CommandId {
        match self {
            Command::Join(_) => CommandId::Join,
            Command::Add(_) => CommandId::Add,
            Command::Change(a) => a.change.command(),
            Command::Members(_) => CommandId::Members,
            Command::Audit(_) => CommandId::Audit,
            Command::Invite(_) => CommandId::Invite,
            Command::History(_) => CommandId::History,
            Command::Groups(_) => CommandId::Groups,
            Command::Subscribe(_) => CommandId::Subscribe,
            Command::Unsubscribe(_) => CommandId::Unsubscribe,
            Command::Subscriptions => CommandId::Subscriptions,
            Command::Help(_) => CommandId::Help,
            Command::Whoami => CommandId::Whoami,
        }
    }

    /// The group the command acts on, as typed.
    pub fn target(&self) -> TargetRef<'_> {
        fn group_or_all(t: &subscribe::SubTarget) -> TargetRef<'_> {
            match t {
                subscribe::SubTarget::All => TargetRef::All,
                subscribe::SubTarget::Group(g) => TargetRef::Group(g),
            }
        }
        match self {
            Command::Add(a) => TargetRef::Group(&a.group),
            Command::Change(a) => match &a.groups {
                change::Groups::One(g) => TargetRef::Group(g),
                change::Groups::All => TargetRef::All,
            },
            Command::Members(a) => TargetRef::Group(&a.group),
            Command::Audit(a) => a.group.as_deref().map_or(TargetRef::None, TargetRef::Group),
            Command::Invite(a) => TargetRef::Group(&a.group),
            Command::History(a) => TargetRef::Group(&a.group),
            Command::Subscribe(a) => group_or_all(&a.target),
            Command::Unsubscribe(a) => group_or_all(&a.target),
            Command::Join(_) | Command::Groups(_) | Command::Subscriptions | Command::Help(_) | Command::Whoami => {
                TargetRef::None
            }
        }
    }
}
