//! `join <invite>`: join the group behind an invite link or code.

use crate::invite_link::{self, InviteCode};
use crate::parser::{CommandSpec, Parts, UsageError};
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Join,
    args: "<invite>",
    summary: "join the group behind an invite link or code",
    options: &[crate::parser::ACCOUNT],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The invite code.
    pub invite: InviteCode,
}

/// Parses `join <invite>`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let token = parts.required("<invite> (a https://chat.whatsapp.com/… link or its code)")?;
    let invite = invite_link::parse(&token.text).map_err(|e| parts.error(e.to_string()))?;
    Ok(Args { invite })
}
