//! `members <group> [FILTER]`: a group's participants with their admin flags.

use crate::parser::{CommandSpec, Parts, UsageError};
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Members,
    args: "<group> [FILTER]",
    summary: "a group's members, admins first",
    options: &[crate::parser::ACCOUNT],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The group reference.
    pub group: String,
    /// Text to look for in names and digits.
    pub filter: Option<String>,
}

/// Parses `members`; the filter may be several words.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let group = parts.required("<group>")?.text;
    let words: Vec<String> = std::iter::from_fn(|| parts.next_arg()).map(|t| t.text).collect();
    Ok(Args {
        group,
        filter: (!words.is_empty()).then(|| words.join(" ")),
    })
}
