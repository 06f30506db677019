//! `remove <group|*> <numbers…>`, `promote <group> <numbers…>` and
//! `demote <group> <numbers…>` (each with `[--dry-run] [--yes]`): changes to
//! existing members. `remove *` is offboarding: every group in the caller's
//! scope where the number is a member.

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::phone::NumberToken;
use crate::provider::MemberChange;
use crate::CommandId;

const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "dry-run",
        value: None,
        help: "check and show what would be sent; send nothing",
    },
    OptionSpec {
        name: "yes",
        value: None,
        help: "apply a large change without a preview",
    },
    crate::parser::ACCOUNT,
];

/// The spec row of `remove`.
pub const REMOVE_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Remove,
    args: "<group|*> <numbers…>",
    summary: "remove people from a group; * = from every group you may use (offboarding)",
    options: OPTIONS,
};

/// The spec row of `promote`.
pub const PROMOTE_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Promote,
    args: "<group> <numbers…>",
    summary: "make members group admins",
    options: OPTIONS,
};

/// The spec row of `demote`.
pub const DEMOTE_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Demote,
    args: "<group> <numbers…>",
    summary: "take admin rights away from members",
    options: OPTIONS,
};

/// Which groups a change acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Groups {
    /// One group, as typed.
    One(String),
    /// `*`: every group in the caller's scope (remove only).
    All,
}

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Remove, promote or demote.
    pub change: MemberChange,
    /// The group(s).
    pub groups: Groups,
    /// The number list as typed.
    pub numbers: Vec<NumberToken>,
    /// Validate only.
    pub dry_run: bool,
    /// Skip the confirmation preview (console only).
    pub yes: bool,
}

/// Parses `remove`, `promote` or `demote`.
pub fn parse(parts: &mut Parts, change: MemberChange) -> Result<Args, UsageError> {
    let group = parts.required("<group>")?;
    let groups = if group.text == "*" && !group.quoted {
        if change != MemberChange::Remove {
            return Err(parts.error(format!(
                "`{}` takes one group; `*` is for `remove` only",
                change.command().as_str()
            )));
        }
        Groups::All
    } else {
        Groups::One(group.text)
    };
    Ok(Args {
        change,
        groups,
        numbers: super::add::numbers(parts)?,
        dry_run: parts.flag("dry-run"),
        yes: parts.flag("yes"),
    })
}
