//! `join <invite>`: join the group behind an invite link or code.

pub use waops_core::command::join::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::providers::JoinOutcome;

/// Joins.
pub async fn run(call: &Call<'_>, args: Args) -> Result<Reply, CommandError> {
    let visibility = call.result_visibility();
    let account = call.account();
    let outcome = account.provider.join(&args.invite).await?;
    account.groups.invalidate().await;
    match outcome {
        JoinOutcome::Joined(group) => Ok(messages::joined(&group, visibility)),
        JoinOutcome::PendingApproval(id) => {
            // Not a member yet, so the group list cannot name it: show the id.
            let group = id.map(|id| crate::group_ref::GroupInfo::new(id.clone(), id.to_string()));
            Ok(messages::join_pending(group.as_ref(), visibility))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::Command;

    #[test]
    fn parses_links_and_codes() {
        for text in [
            "join https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx",
            "join EUKdz8Sdy9T2UWPnOKGkx",
            "JOIN chat.whatsapp.com/invite/EUKdz8Sdy9T2UWPnOKGkx/",
        ] {
            match Command::parse(text).unwrap() {
                Command::Join(a) => assert_eq!(a.invite.as_str(), "EUKdz8Sdy9T2UWPnOKGkx"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn errors_name_what_was_expected() {
        let e = Command::parse("join").unwrap_err();
        assert_eq!(
            e.message,
            "missing <invite> (a https://chat.whatsapp.com/… link or its code)"
        );
        assert_eq!(e.usage.as_deref(), Some("/wa join <invite> [--account NAME]"));
        let e = Command::parse("join https://evil.example/EUKdz8Sdy9T2UWPnOKGkx").unwrap_err();
        assert_eq!(
            e.message,
            "`evil.example` is not a WhatsApp invite host (expected chat.whatsapp.com)"
        );
        assert_eq!(
            Command::parse("join a b").unwrap_err().message,
            "an invite code has 16 to 32 letters and digits; this one has 1"
        );
        assert_eq!(
            Command::parse("join EUKdz8Sdy9T2UWPnOKGkx extra").unwrap_err().message,
            "unexpected `extra`"
        );
    }
}
