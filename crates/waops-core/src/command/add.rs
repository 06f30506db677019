//! `add <group> <numbers…> [--dry-run] [--yes]`: add people to a group.

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError, NEWLINE};
use crate::phone::NumberToken;
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Add,
    args: "<group> <numbers…>",
    summary: "add people to a group",
    options: &[
        OptionSpec {
            name: "dry-run",
            value: None,
            help: "check and show what would be sent; send nothing",
        },
        OptionSpec {
            name: "yes",
            value: None,
            help: "apply a large add without a preview",
        },
        crate::parser::ACCOUNT,
    ],
};

/// Typed arguments. Numbers stay as typed: validating them needs the configured region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The group reference.
    pub group: String,
    /// The number list as typed.
    pub numbers: Vec<NumberToken>,
    /// Validate only.
    pub dry_run: bool,
    /// Skip the confirmation preview.
    pub yes: bool,
}

/// Parses `add`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let group = parts.required("<group>")?.text;
    Ok(Args {
        group,
        numbers: numbers(parts)?,
        dry_run: parts.flag("dry-run"),
        yes: parts.flag("yes"),
    })
}

/// The numbers after the group (add, remove, promote, demote): line breaks
/// separate them like commas.
pub fn numbers(parts: &mut Parts) -> Result<Vec<NumberToken>, UsageError> {
    let numbers: Vec<NumberToken> = parts
        .rest()
        .into_iter()
        .map(|t| NumberToken {
            text: if t.text == NEWLINE && !t.quoted {
                ",".into()
            } else {
                t.text
            },
            quoted: t.quoted,
        })
        .collect();
    if numbers.iter().all(|n| n.text == ",") {
        return Err(parts.error("missing <numbers…>"));
    }
    Ok(numbers)
}
