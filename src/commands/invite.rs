//! `invite <group> [--reset]`: show (or renew) the group's invite link.

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::core::reply::Reply;
use crate::core::CommandId;
use crate::group_ref::GroupInfo;

/// The spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Invite,
    args: "<group>",
    summary: "show the group's invite link",
    options: &[OptionSpec {
        name: "reset",
        value: None,
        help: "revoke the current link and show the new one",
    }],
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

/// Shows or resets the link.
pub async fn run(call: &mut Call<'_>, args: Args, group: GroupInfo) -> Result<Reply, CommandError> {
    let provider = &call.ctx.provider;
    let visibility = call.result_visibility();
    if args.reset {
        if !provider.capabilities().invite_reset {
            return Err(CommandError::User(messages::reset_unsupported(provider.kind())));
        }
        let code = provider.reset_invite(&group.id).await?;
        return Ok(messages::invite_reset(&group, &code, visibility));
    }
    let code = provider.invite_code(&group.id).await?;
    Ok(messages::invite_link(&group, &code, visibility))
}

#[cfg(test)]
mod tests {
    use crate::commands::Command;

    #[test]
    fn parses() {
        assert_eq!(
            Command::parse("invite sales --reset").unwrap(),
            Command::Invite(super::Args {
                group: "sales".into(),
                reset: true
            })
        );
        assert_eq!(
            Command::parse("invite \"Sales Team\"").unwrap(),
            Command::Invite(super::Args {
                group: "Sales Team".into(),
                reset: false
            })
        );
        assert_eq!(Command::parse("invite --reset").unwrap_err().message, "missing <group>");
        assert_eq!(
            Command::parse("invite Sales Team").unwrap_err().message,
            "unexpected `Team`; put group names with spaces in double quotes"
        );
    }
}
