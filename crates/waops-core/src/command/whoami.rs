//! `whoami`: the caller's identity, roles, and the commands and groups they may
//! use here. Answers without a provider call.

use crate::parser::CommandSpec;
use crate::CommandId;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Whoami,
    args: "",
    summary: "your identity, roles, and what you may use",
    options: &[],
};
