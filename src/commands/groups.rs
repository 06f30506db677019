//! `groups [FILTER]`: the groups the connected number is in, with ids, limited
//! to those the caller's roles cover.

pub use waops_core::command::groups::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::core::CommandId;

/// Lists groups.
pub async fn run(call: &Call<'_>, args: Args) -> Result<Reply, CommandError> {
    // The list command always asks the providers, and refreshes the caches on the way.
    let mut groups = call.every_group().await?;
    if let Some(filter) = &args.filter {
        let needle = filter.to_lowercase();
        groups.retain(|g| g.name.to_lowercase().contains(&needle) || g.id.as_str().contains(&needle));
    }
    let before = groups.len();
    groups.retain(|g| call.may(CommandId::Groups, g));
    groups.sort_by_key(|g| (g.name.to_lowercase(), g.account.clone()));
    Ok(messages::groups(&groups, args.filter.as_deref(), before - groups.len()))
}

#[cfg(test)]
mod tests {
    use crate::commands::Command;

    #[test]
    fn parses() {
        assert_eq!(
            Command::parse("groups").unwrap(),
            Command::Groups(super::Args { filter: None })
        );
        assert_eq!(
            Command::parse("groups sales team").unwrap(),
            Command::Groups(super::Args {
                filter: Some("sales team".into())
            })
        );
        assert_eq!(
            Command::parse("groups --all").unwrap_err().message,
            "unknown option `--all`"
        );
    }
}
