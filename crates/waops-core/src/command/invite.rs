//! `invite <group> [--reset]`: show (or renew) the group's invite link.

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Invite,
    args: "<group>",
    summary: "show the group's invite link",
    options: &[
        OptionSpec {
            name: "reset",
            value: None,
            help: "revoke the current link and show the new one",
        },
        crate::parser::ACCOUNT,
    ],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The group reference.
    pub group: String,
    /// Revoke and renew.
    pub reset: bool,
}

/// Parses `invite`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    Ok(Args {
        group: parts.required("<group>")?.text,
        reset: parts.flag("reset"),
    })
}
