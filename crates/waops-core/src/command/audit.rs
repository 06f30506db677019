//! `audit [--user PRINCIPAL] [--command ID] [--group G] [--since DURATION]
//! [--limit N]`: the audit log, newest first.

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::values::{parse_duration, parse_limit};
use crate::CommandId;

/// Rows shown when `--limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;

/// The largest `--limit`: a chat reply stays readable and within platform limits.
pub const MAX_LIMIT: usize = 100;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Audit,
    args: "",
    summary: "the audit log, newest first",
    options: &[
        OptionSpec {
            name: "user",
            value: Some("PRINCIPAL"),
            help: "only this caller, e.g. slack:user:U123",
        },
        OptionSpec {
            name: "command",
            value: Some("ID"),
            help: "only this command, e.g. add",
        },
        OptionSpec {
            name: "group",
            value: Some("G"),
            help: "only this group (id, alias or name)",
        },
        OptionSpec {
            name: "since",
            value: Some("DURATION"),
            help: "only rows within this long ago (30m, 6h, 7d, 2w)",
        },
        OptionSpec {
            name: "limit",
            value: Some("N"),
            help: "show at most N rows (default 20, at most 100)",
        },
    ],
};

/// The `approve` permission's row (help lists it; it is never parsed).
pub const APPROVE_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Approve,
    args: "",
    summary: "approve others' requests under the two-person rule (buttons only)",
    options: &[],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// Only this principal.
    pub user: Option<String>,
    /// Only this command.
    pub command: Option<CommandId>,
    /// Only this group, as typed.
    pub group: Option<String>,
    /// How far back.
    pub since: Option<std::time::Duration>,
    /// How many rows.
    pub limit: usize,
}

/// Parses `audit`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let command = parts.parsed("command", |v| {
        v.parse::<CommandId>().map_err(|()| {
            let ids: Vec<&str> = CommandId::ALL.iter().map(|c| c.as_str()).collect();
            format!("`{v}` is not a command ({})", ids.join(", "))
        })
    })?;
    let limit = parts
        .parsed("limit", |v| parse_limit(v, MAX_LIMIT))?
        .unwrap_or(DEFAULT_LIMIT);
    Ok(Args {
        user: parts.value("user").map(str::to_string),
        command,
        group: parts.value("group").map(str::to_string),
        since: parts.parsed("since", parse_duration)?,
        limit,
    })
}
