//! `whoami`: the caller's identity, roles, and the commands and groups they may
//! use here. Answers without a provider call.

pub use waops_core::command::whoami::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::permissions::GroupScope;
use crate::core::reply::Reply;
use crate::core::CommandId;

/// Shows who the caller is.
pub async fn run(call: &Call<'_>) -> Result<Reply, CommandError> {
    let inv = call.inv;
    let perms = &call.ctx.permissions;
    let roles = perms.roles_of(&inv.principals);
    let role_names: Vec<String> = roles
        .iter()
        .map(|r| match (&r.channels, r.max_numbers, &r.accounts) {
            (None, None, None) => r.name.clone(),
            (channels, max, accounts) => {
                let mut limits = Vec::new();
                if let Some(c) = channels {
                    limits.push(format!("only in {}", c.join(", ")));
                }
                if let Some(a) = accounts {
                    limits.push(format!("only accounts {}", a.join(", ")));
                }
                if let Some(m) = max {
                    limits.push(format!("at most {m} numbers per add"));
                }
                format!("{} ({})", r.name, limits.join("; "))
            }
        })
        .collect();
    let commands: Vec<&str> = CommandId::ALL
        .into_iter()
        .filter(|id| perms.may_run(&inv.principals, *id, &inv.channel).is_ok())
        .map(CommandId::as_str)
        .collect();
    let mut groups: Vec<String> = Vec::new();
    for scope in roles.iter().flat_map(|r| r.groups.iter()) {
        let text = match scope {
            GroupScope::Any => "all groups".to_string(),
            scope => scope.to_string(),
        };
        if !groups.contains(&text) {
            groups.push(text);
        }
    }
    let others: Vec<String> = inv.principals[1..].iter().map(ToString::to_string).collect();
    // With several numbers: the ones the caller's roles reach, and this channel's default.
    let ctx = call.ctx;
    let accounts = ctx.accounts.several().then(|| {
        let reachable: Vec<&str> = ctx
            .accounts
            .all()
            .iter()
            .map(|a| a.name.as_ref())
            .filter(|name| roles.iter().any(|r| r.covers_account(Some(name))))
            .collect();
        let mut text = if reachable.is_empty() {
            "none".to_string()
        } else {
            reachable.join(", ")
        };
        if let Some(default) = ctx.settings.channel_account(inv.channel.as_str()) {
            text.push_str(&format!(
                " (this channel uses {default} unless --account names another)"
            ));
        }
        text
    });
    Ok(messages::whoami(
        inv.caller().as_str(),
        &others,
        inv.channel.as_str(),
        &role_names,
        &commands,
        &groups,
        accounts.as_deref(),
    ))
}
