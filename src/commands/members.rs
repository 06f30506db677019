//! `members <group> [FILTER]`: a group's participants, admins first, numbers
//! masked per `display.mask_numbers`.

pub use waops_core::command::members::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::group_ref::GroupInfo;
use crate::providers::Party;

/// Lists the members.
pub async fn run(call: &Call<'_>, args: Args, group: GroupInfo) -> Result<Reply, CommandError> {
    let ctx = call.ctx;
    let mut list = ctx.accounts.of(&group).provider.members(&group.id).await?.members;
    if let Some(filter) = &args.filter {
        let needle = filter.to_lowercase();
        let digits: String = filter.chars().filter(char::is_ascii_digit).collect();
        list.retain(|m| {
            let name = m.name.as_deref().is_some_and(|n| n.to_lowercase().contains(&needle));
            let number = !digits.is_empty()
                && match &m.party {
                    Party::Number(n) => n.digits().contains(&digits),
                    Party::Other(id) => id.contains(&digits),
                };
            name || number
        });
    }
    // Admins first, then by number.
    let key = |p: &Party| match p {
        Party::Number(n) => n.as_str().to_string(),
        Party::Other(id) => id.clone(),
    };
    list.sort_by_key(|m| (m.role, key(&m.party)));
    Ok(messages::members(
        &group,
        &list,
        args.filter.as_deref(),
        ctx.settings.display.mask_numbers,
        call.result_visibility(),
    ))
}
