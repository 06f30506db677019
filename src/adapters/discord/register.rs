//! The `/wa` application command with one subcommand per command id and typed
//! options, built from the same spec table as the text parser, and the mapping
//! of typed options back to command text, so there is one grammar only.

use serenity::all::{CommandDataOptionValue, CommandOptionType, CreateCommand, CreateCommandOption};

use crate::commands::spec;
use crate::core::CommandId;

const STRING: CommandOptionType = CommandOptionType::String;
const INTEGER: CommandOptionType = CommandOptionType::Integer;
const BOOLEAN: CommandOptionType = CommandOptionType::Boolean;

/// (option name, type, required, description) per command.
fn options(id: CommandId) -> Vec<(&'static str, CommandOptionType, bool, &'static str)> {
    match id {
        CommandId::Join => vec![("invite", STRING, true, "invite link or code")],
        // Adds and member changes share their options.
        CommandId::Add | CommandId::Remove | CommandId::Promote | CommandId::Demote => vec![
            (
                "group",
                STRING,
                true,
                if id == CommandId::Remove {
                    "group id, alias or name, or * for every group you may use"
                } else {
                    "group id, alias or name"
                },
            ),
            (
                "numbers",
                STRING,
                true,
                "phone numbers, separated by spaces, commas or semicolons",
            ),
            (
                "dry_run",
                BOOLEAN,
                false,
                "check and show what would be sent; send nothing",
            ),
        ],
        CommandId::Members => vec![
            ("group", STRING, true, "group id, alias or name"),
            ("filter", STRING, false, "text in the name or number"),
        ],
        CommandId::Invite => vec![
            ("group", STRING, true, "group id, alias or name"),
            ("reset", BOOLEAN, false, "revoke the current link and show the new one"),
        ],
        CommandId::Audit => vec![
            ("user", STRING, false, "only this caller, e.g. discord:user:123"),
            ("command", STRING, false, "only this command, e.g. add"),
            ("group", STRING, false, "only this group (id, alias or name)"),
            ("since", STRING, false, "only this recent, e.g. 7d"),
            ("limit", INTEGER, false, "at most this many rows (1 to 100)"),
        ],
        CommandId::History => vec![
            ("group", STRING, true, "group id, alias or name"),
            ("limit", INTEGER, false, "at most this many events (1 to 200)"),
            ("since", STRING, false, "only this recent, e.g. 7d"),
            ("type", STRING, false, "kinds, e.g. joined,left"),
        ],
        CommandId::Groups => vec![("filter", STRING, false, "text in the name or id")],
        CommandId::Subscribe => vec![
            ("group", STRING, true, "group id, alias or name, or * for all"),
            (
                "live",
                BOOLEAN,
                false,
                "post each change within seconds instead of a digest",
            ),
            ("every", STRING, false, "how often, e.g. 1d"),
            ("at", STRING, false, "time of day, HH:MM"),
            ("tz", STRING, false, "time zone, e.g. Europe/Berlin"),
        ],
        CommandId::Unsubscribe => vec![("group", STRING, true, "group id, alias or name, or * for all")],
        CommandId::Help => vec![("command", STRING, false, "a command to explain")],
        CommandId::Subscriptions | CommandId::Whoami | CommandId::Approve => vec![],
    }
}

/// The options of `id`'s subcommand: its own, then `account` where the
/// command takes `--account` (every group command).
fn all_options(id: CommandId) -> Vec<(&'static str, CommandOptionType, bool, &'static str)> {
    let mut options = options(id);
    if spec(id).options.iter().any(|o| o.name == "account") {
        options.push((
            "account",
            STRING,
            false,
            "the account (connected number), when several are configured",
        ));
    }
    options
}

/// The one `/wa` command, a subcommand per command id with the spec table's
/// summary and typed options (registered as a bulk overwrite).
pub fn commands() -> Vec<CreateCommand> {
    // `approve` is a permission for a button, not something to type.
    let subcommands = CommandId::ALL.iter().filter(|id| **id != CommandId::Approve).map(|id| {
        let mut sub = CreateCommandOption::new(CommandOptionType::SubCommand, id.as_str(), spec(*id).summary);
        for (name, kind, required, description) in all_options(*id) {
            let mut option = CreateCommandOption::new(kind, name, description).required(required);
            if name == "limit" {
                let max = if *id == CommandId::Audit { 100 } else { 200 };
                option = option.min_int_value(1).max_int_value(max);
            }
            if *id == CommandId::Help && name == "command" {
                for c in CommandId::ALL {
                    option = option.add_string_choice(c.as_str(), c.as_str());
                }
            }
            sub = sub.add_sub_option(option);
        }
        sub
    });
    vec![CreateCommand::new("wa")
        .description("WhatsApp groups from Discord")
        .set_options(subcommands.collect())]
}

/// Appends a value as one token: quoted (so it is never read as an option),
/// quotes removed.
fn push_quoted(text: &mut String, value: &str) {
    text.push('"');
    text.extend(value.chars().filter(|c| !matches!(c, '"' | '“' | '”')));
    text.push('"');
}

/// Turns a subcommand and its typed options (`get` finds one by name) into
/// command text for the one parser, written into one string.
pub fn to_text<'v>(subcommand: &str, get: impl Fn(&str) -> Option<&'v CommandDataOptionValue>) -> String {
    let mut text = String::with_capacity(64);
    text.push_str(subcommand);
    // `audit` takes its filters as options; elsewhere these are the arguments.
    let options = subcommand == "audit";
    let positionals: &[&str] = if options {
        &[]
    } else {
        &["invite", "group", "filter", "command"]
    };
    for &positional in positionals {
        if let Some(v) = get(positional).and_then(CommandDataOptionValue::as_str) {
            text.push(' ');
            // `*` stays bare: it means "all groups" only unquoted.
            if v.trim() == "*" {
                text.push('*');
            } else {
                push_quoted(&mut text, v);
            }
        }
    }
    // Numbers stay unquoted (the parser splits them), except a word that
    // starts with `-`: quoted, it is a (bad) number, never an option.
    if let Some(v) = get("numbers").and_then(CommandDataOptionValue::as_str) {
        for word in v.split_whitespace() {
            text.push(' ');
            if word.starts_with('-') {
                push_quoted(&mut text, word);
            } else {
                text.push_str(word);
            }
        }
    }
    for (flag, option) in [("dry_run", " --dry-run"), ("reset", " --reset"), ("live", " --live")] {
        if get(flag).and_then(CommandDataOptionValue::as_bool) == Some(true) {
            text.push_str(option);
        }
    }
    if let Some(n) = get("limit").and_then(CommandDataOptionValue::as_i64) {
        text.push_str(" --limit ");
        text.push_str(&n.to_string());
    }
    let named: &[&str] = if options {
        &["user", "command", "group", "since"]
    } else {
        &["since", "type", "every", "at", "tz", "account"]
    };
    for &name in named {
        if let Some(v) = get(name).and_then(CommandDataOptionValue::as_str) {
            text.push_str(" --");
            text.push_str(name);
            text.push(' ');
            push_quoted(&mut text, v);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;
    use serde_json::{json, Value};

    /// The command text of typed options given as JSON values, read as Discord's are.
    fn to_text(subcommand: &str, pairs: &[(&str, Value)]) -> String {
        let values: Vec<(&str, CommandDataOptionValue)> = pairs
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => CommandDataOptionValue::String(s.clone()),
                    Value::Bool(b) => CommandDataOptionValue::Boolean(*b),
                    Value::Number(n) => CommandDataOptionValue::Integer(n.as_i64().unwrap()),
                    other => panic!("{other}"),
                };
                (*k, value)
            })
            .collect();
        super::to_text(subcommand, |name| {
            values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
        })
    }

    #[test]
    fn typed_options_parse_like_text() {
        let text = to_text(
            "add",
            &[
                ("group", json!("Sales Team")),
                ("numbers", json!("+49 151 1234 5678, 0151-1234-5679")),
                ("dry_run", json!(true)),
            ],
        );
        assert_eq!(text, "add \"Sales Team\" +49 151 1234 5678, 0151-1234-5679 --dry-run");
        assert_eq!(
            Command::parse(&text).unwrap(),
            Command::parse("add \"Sales Team\" +49 151 1234 5678, 0151-1234-5679 --dry-run").unwrap()
        );
        let text = to_text(
            "history",
            &[
                ("group", json!("sales")),
                ("limit", json!(5)),
                ("since", json!("7d")),
                ("type", json!("joined,left")),
            ],
        );
        assert_eq!(
            text,
            "history \"sales\" --limit 5 --since \"7d\" --type \"joined,left\""
        );
        assert!(Command::parse(&text).is_ok(), "{text}");
        // Quotes inside a value are dropped, straight or curly, so it stays one token.
        assert_eq!(
            to_text(
                "invite",
                &[("group", json!("Sales \"EU\" “north”")), ("reset", json!(true))]
            ),
            "invite \"Sales EU north\" --reset"
        );
        assert_eq!(
            to_text("subscribe", &[("group", json!("*")), ("every", json!("1d"))]),
            "subscribe * --every \"1d\""
        );
        // A group option cannot smuggle in a flag, nor can the numbers.
        let text = to_text("invite", &[("group", json!("sales --reset"))]);
        assert_eq!(text, "invite \"sales --reset\"");
        let text = to_text(
            "add",
            &[("group", json!("sales")), ("numbers", json!("+4915112345678 --yes"))],
        );
        assert_eq!(text, "add \"sales\" +4915112345678 \"--yes\"");
        match Command::parse(&text).unwrap() {
            Command::Add(a) => assert!(!a.yes, "{text}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_account_option_becomes_account() {
        let text = to_text("invite", &[("group", json!("Sales Team")), ("account", json!("us"))]);
        assert_eq!(text, "invite \"Sales Team\" --account \"us\"");
        let parsed = crate::commands::Parsed::parse(&text).unwrap();
        assert_eq!(parsed.account.as_deref(), Some("us"));
    }

    #[test]
    fn audit_filters_are_options_not_arguments() {
        let text = to_text(
            "audit",
            &[
                ("user", json!("discord:user:81234567890")),
                ("command", json!("add")),
                ("group", json!("Sales Team")),
                ("since", json!("7d")),
                ("limit", json!(5)),
            ],
        );
        assert_eq!(
            text,
            "audit --limit 5 --user \"discord:user:81234567890\" --command \"add\" --group \"Sales Team\" --since \"7d\""
        );
        match Command::parse(&text).unwrap() {
            Command::Audit(a) => {
                assert_eq!(a.group.as_deref(), Some("Sales Team"));
                assert_eq!(a.command, Some(CommandId::Add));
                assert_eq!(a.limit, 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_command_is_registered_with_its_options() {
        let payload = serde_json::to_value(commands()).unwrap();
        let subs = payload[0]["options"].as_array().unwrap();
        assert_eq!(subs.len(), CommandId::ALL.len() - 1, "all but approve, a button");
        let names = |sub: &str| -> Vec<String> {
            let s = subs.iter().find(|s| s["name"] == sub).unwrap();
            s["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| o["name"].as_str().unwrap().to_string())
                .collect()
        };
        for sub in ["add", "remove", "promote", "demote"] {
            assert_eq!(names(sub), ["group", "numbers", "dry_run", "account"], "{sub}");
        }
        assert_eq!(names("members"), ["group", "filter", "account"]);
        // Every group command (SPEC section 11), and only those.
        for id in CommandId::ALL.into_iter().filter(|id| *id != CommandId::Approve) {
            let group_command = matches!(
                id,
                CommandId::Join
                    | CommandId::Add
                    | CommandId::Remove
                    | CommandId::Promote
                    | CommandId::Demote
                    | CommandId::Members
                    | CommandId::Invite
                    | CommandId::History
                    | CommandId::Groups
                    | CommandId::Subscribe
                    | CommandId::Unsubscribe
            );
            assert_eq!(
                names(id.as_str()).contains(&"account".to_string()),
                group_command,
                "{id}"
            );
        }
        for s in subs {
            assert!(s["description"].as_str().unwrap().len() <= 100);
        }
    }
}
