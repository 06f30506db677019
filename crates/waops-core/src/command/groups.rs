//! `groups [FILTER]`: the groups the connected number is in, with ids, limited
//! to those the caller's roles cover.

use crate::parser::{CommandSpec, Parts, UsageError};
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Groups,
    args: "[FILTER]",
    summary: "groups the connected number is in, with ids",
    options: &[crate::parser::ACCOUNT],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Case-insensitive text to look for in names and ids.
    pub filter: Option<String>,
}

/// Parses `groups`; the filter may be several words.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let words: Vec<String> = std::iter::from_fn(|| parts.next_arg()).map(|t| t.text).collect();
    Ok(Args {
        filter: (!words.is_empty()).then(|| words.join(" ")),
    })
}
