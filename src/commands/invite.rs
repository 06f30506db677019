//! `invite <group> [--reset]`: show (or renew) the group's invite link.

pub use waops_core::command::invite::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::group_ref::GroupInfo;

/// Shows or resets the link.
pub async fn run(call: &Call<'_>, args: Args, group: GroupInfo) -> Result<Reply, CommandError> {
    let provider = &call.ctx.accounts.of(&group).provider;
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
