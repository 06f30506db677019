//! `history <group> [--limit N] [--since DURATION] [--type KINDS]`: membership
//! changes, newest first.

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::values::{parse_duration, parse_kinds, parse_limit, EventKind};
use crate::CommandId;

/// Events shown when `--limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;

/// The largest `--limit`.
pub const MAX_LIMIT: usize = 200;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::History,
    args: "<group>",
    summary: "membership changes, newest first",
    options: &[
        OptionSpec {
            name: "limit",
            value: Some("N"),
            help: "show at most N events (default 20, at most 200)",
        },
        OptionSpec {
            name: "since",
            value: Some("DURATION"),
            help: "only events within this long ago (30m, 6h, 7d, 2w)",
        },
        OptionSpec {
            name: "type",
            value: Some("KINDS"),
            help: "comma list of joined,left,added,removed,promoted,demoted,settings,other",
        },
        crate::parser::ACCOUNT,
    ],
};

/// Typed arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// The group reference.
    pub group: String,
    /// How many events.
    pub limit: usize,
    /// How far back.
    pub since: Option<std::time::Duration>,
    /// Which kinds; `None` = all.
    pub kinds: Option<Vec<EventKind>>,
}

/// Parses `history`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let group = parts.required("<group>")?.text;
    let limit = parts
        .parsed("limit", |v| parse_limit(v, MAX_LIMIT))?
        .unwrap_or(DEFAULT_LIMIT);
    let since = parts.parsed("since", parse_duration)?;
    let kinds = parts.parsed("type", parse_kinds)?;
    Ok(Args {
        group,
        limit,
        since,
        kinds,
    })
}
