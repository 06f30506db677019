//! `help [command]`: usage from the spec table, filtered to what the caller may
//! run here, with notes on what the configured provider cannot do.

pub use waops_core::command::help::*;

use super::{spec, Call, CommandError};
use crate::core::messages;
use crate::core::parser::CommandSpec;
use crate::core::permissions::Refusal;
use crate::core::reply::Reply;
use crate::core::CommandId;
use crate::providers::{Capabilities, HistorySource};
use crate::settings::ProviderKind;

/// What the provider cannot do, for the commands in `ids`.
pub fn provider_notes(kind: ProviderKind, caps: Capabilities, ids: &[CommandId]) -> Vec<String> {
    let p = kind.as_str();
    let mut notes = Vec::new();
    if ids.contains(&CommandId::Invite) && !caps.invite_reset {
        notes.push(format!("invite --reset is not available on {p}."));
    }
    if ids.contains(&CommandId::History) && caps.history == HistorySource::Journal {
        notes.push(format!(
            "history on {p} comes from events waops has received, not from {p} itself."
        ));
    }
    if ids.contains(&CommandId::Remove) && !caps.connected_admin {
        notes.push(format!(
            "remove * on {p} cannot tell in advance where the connected number is not an admin: those groups fail when removing."
        ));
    }
    if ids.contains(&CommandId::Join) && !caps.pending_approval {
        notes.push(format!(
            "join on {p} cannot tell whether a request waits for admin approval."
        ));
    }
    notes
}

/// Shows help.
pub async fn run(call: &Call<'_>, args: Args) -> Result<Reply, CommandError> {
    let ctx = call.ctx;
    let may = |id: CommandId| ctx.permissions.may_run(&call.inv.principals, id, &call.inv.channel);
    // Notes per provider kind in use, then (with several) the accounts.
    let notes = |ids: &[CommandId]| {
        let mut notes: Vec<String> = Vec::new();
        for account in ctx.accounts.all() {
            let p = &account.provider;
            for note in provider_notes(p.kind(), p.capabilities(), ids) {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        if ctx.accounts.several() {
            notes.push(format!(
                "Accounts: {}. Group names resolve across them; --account NAME picks one.",
                ctx.settings.describe_accounts()
            ));
        }
        notes
    };
    if let Some(id) = args.command {
        return Ok(messages::help_command(spec(id), may(id).err(), &notes(&[id])));
    }
    let runnable: Vec<CommandId> = CommandId::ALL.into_iter().filter(|id| may(*id).is_ok()).collect();
    let specs: Vec<&CommandSpec> = runnable.iter().map(|id| spec(*id)).collect();
    // Tell an unbound caller why the list holds only help and whoami.
    let blocked: Option<Refusal> = runnable
        .iter()
        .all(|id| id.always_allowed())
        .then(|| may(CommandId::Groups).err())
        .flatten();
    Ok(messages::help_overview(&specs, &notes(&runnable), blocked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;

    #[test]
    fn parses() {
        assert_eq!(
            Command::parse("help add").unwrap(),
            Command::Help(Args {
                command: Some(CommandId::Add)
            })
        );
        assert_eq!(Command::parse("").unwrap(), Command::Help(Args { command: None }));
        assert_eq!(
            Command::parse("help ad").unwrap_err().message,
            "no command `ad`; did you mean `add`?"
        );
    }

    #[test]
    fn notes_name_missing_capabilities() {
        let caps = Capabilities {
            history: HistorySource::Journal,
            invite_reset: false,
            pending_approval: false,
            forced_add: false,
            connected_admin: false,
        };
        let notes = provider_notes(ProviderKind::Wuts, caps, &CommandId::ALL);
        assert_eq!(
            notes,
            [
                "invite --reset is not available on wuts.",
                "history on wuts comes from events waops has received, not from wuts itself.",
                "remove * on wuts cannot tell in advance where the connected number is not an admin: those groups fail when removing.",
                "join on wuts cannot tell whether a request waits for admin approval."
            ]
        );
        assert!(provider_notes(ProviderKind::Wuts, caps, &[CommandId::Add]).is_empty());
    }
}
