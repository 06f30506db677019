//! `help [command]`: usage from the spec table, filtered to what the caller may
//! run here, with notes on what the configured provider cannot do.

use crate::parser::{suggest, CommandSpec, Parts, UsageError};
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Help,
    args: "[command]",
    summary: "usage of the commands you may run",
    options: &[],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// One command to explain.
    pub command: Option<CommandId>,
}

/// Parses `help`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let Some(token) = parts.next_arg() else {
        return Ok(Args { command: None });
    };
    let name = token.text.trim_start_matches("/wa ").to_lowercase();
    match name.parse::<CommandId>() {
        Ok(id) => Ok(Args { command: Some(id) }),
        Err(()) => {
            let names: Vec<&str> = CommandId::ALL.iter().map(|c| c.as_str()).collect();
            Err(parts.error(match suggest(&name, &names) {
                Some(s) => format!("no command `{}`; did you mean `{s}`?", token.text),
                None => format!("no command `{}` (commands: {})", token.text, names.join(", ")),
            }))
        }
    }
}
