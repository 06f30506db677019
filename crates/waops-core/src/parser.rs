//! The command language's machinery: tokenizing, finding the subcommand and its
//! options in the one spec table, "did you mean" suggestions. Each command's own
//! file turns the `Parts` into typed arguments.

use super::CommandId;
use crate::command as commands;

/// A word of the command text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The text, without quotes.
    pub text: String,
    /// True when it was in double quotes.
    pub quoted: bool,
}

/// The text of the newline marker token: numbers may be one per line.
pub const NEWLINE: &str = "\n";

/// An option of a command.
#[derive(Debug)]
pub struct OptionSpec {
    /// Name without dashes.
    pub name: &'static str,
    /// The value's placeholder, or `None` for a flag.
    pub value: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

/// `--account NAME`, taken by every group command: which connected number's
/// groups to use when several are configured (`[accounts.<name>]`).
pub const ACCOUNT: OptionSpec = OptionSpec {
    name: "account",
    value: Some("NAME"),
    help: "the account (connected number) to use, when several are configured",
};

/// One row of the command table: parser, usage and help all read it.
#[derive(Debug)]
pub struct CommandSpec {
    /// The id.
    pub id: CommandId,
    /// Positional arguments as shown in usage.
    pub args: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Options.
    pub options: &'static [OptionSpec],
}

impl CommandSpec {
    /// `/wa add <group> <numbers…> [--dry-run] [--yes]`
    pub fn usage(&self) -> String {
        let mut usage = format!("/wa {}", self.id);
        if !self.args.is_empty() {
            usage.push(' ');
            usage.push_str(self.args);
        }
        for o in self.options {
            match o.value {
                Some(v) => usage.push_str(&format!(" [--{} {v}]", o.name)),
                None => usage.push_str(&format!(" [--{}]", o.name)),
            }
        }
        usage
    }
}

/// Bad command text: a message and, when a command was recognised, its usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    /// What is wrong.
    pub message: String,
    /// The usage line of the command, if known.
    pub usage: Option<String>,
    /// The command, if recognised.
    pub command: Option<CommandId>,
}

impl UsageError {
    fn new(message: impl Into<String>, spec: Option<&CommandSpec>) -> Self {
        UsageError {
            message: message.into(),
            usage: spec.map(CommandSpec::usage),
            command: spec.map(|s| s.id),
        }
    }
}

/// A command's arguments, split by the spec but not yet typed.
#[derive(Debug)]
pub struct Parts {
    spec: &'static CommandSpec,
    positionals: std::collections::VecDeque<Token>,
    options: Vec<(&'static str, Option<String>)>,
}

impl Parts {
    /// The command these parts belong to.
    pub fn command(&self) -> CommandId {
        self.spec.id
    }

    /// True when the flag was given.
    pub fn flag(&self, name: &str) -> bool {
        self.options.iter().any(|(n, _)| *n == name)
    }

    /// The value of an option, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Parses an option's value with `parse`, naming the option in the error.
    pub fn parsed<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, UsageError> {
        self.value(name)
            .map(|v| parse(v).map_err(|reason| self.error(format!("--{name}: {reason}"))))
            .transpose()
    }

    /// The next positional argument, skipping line breaks.
    pub fn next_arg(&mut self) -> Option<Token> {
        while let Some(t) = self.positionals.pop_front() {
            if t.text != NEWLINE || t.quoted {
                return Some(t);
            }
        }
        None
    }

    /// The next positional argument, or an error naming it.
    pub fn required(&mut self, what: &str) -> Result<Token, UsageError> {
        self.next_arg().ok_or_else(|| self.error(format!("missing {what}")))
    }

    /// All remaining positionals, line breaks included.
    pub fn rest(&mut self) -> Vec<Token> {
        self.positionals.drain(..).collect()
    }

    /// Fails when positionals are left over.
    pub fn finish(mut self) -> Result<(), UsageError> {
        match self.next_arg() {
            Some(extra) if self.spec.args.contains("<group") => Err(self.error(format!(
                "unexpected `{}`; put group names with spaces in double quotes",
                extra.text
            ))),
            Some(extra) => Err(self.error(format!("unexpected `{}`", extra.text))),
            None => Ok(()),
        }
    }

    /// A usage error for this command.
    pub fn error(&self, message: impl Into<String>) -> UsageError {
        UsageError::new(message, Some(self.spec))
    }
}

/// Splits text into tokens: whitespace separates, double quotes group, and a
/// line break becomes a `NEWLINE` token.
pub fn tokenize(text: &str) -> Result<Vec<Token>, UsageError> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '“' | '”' => {
                // Chat clients turn straight quotes into curly ones; accept both.
                let mut quoted = String::new();
                let mut closed = false;
                for q in chars.by_ref() {
                    if matches!(q, '"' | '“' | '”') {
                        closed = true;
                        break;
                    }
                    quoted.push(q);
                }
                if !closed {
                    return Err(UsageError::new("a double quote is not closed", None));
                }
                if in_word {
                    current.push_str(&quoted);
                } else {
                    flush(&mut tokens, &mut current, &mut in_word);
                    tokens.push(Token {
                        text: quoted,
                        quoted: true,
                    });
                }
            }
            '\n' | '\r' => {
                flush(&mut tokens, &mut current, &mut in_word);
                if tokens.last().is_some_and(|t: &Token| t.text != NEWLINE) {
                    tokens.push(Token {
                        text: NEWLINE.into(),
                        quoted: false,
                    });
                }
            }
            c if c.is_whitespace() => flush(&mut tokens, &mut current, &mut in_word),
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    flush(&mut tokens, &mut current, &mut in_word);
    while tokens.last().is_some_and(|t| t.text == NEWLINE && !t.quoted) {
        tokens.pop();
    }
    Ok(tokens)
}

fn flush(tokens: &mut Vec<Token>, current: &mut String, in_word: &mut bool) {
    if *in_word {
        tokens.push(Token {
            text: std::mem::take(current),
            quoted: false,
        });
        *in_word = false;
    }
}

/// The command a text names (its first word), without parsing the rest.
/// Empty text is `help`, as in `split`.
pub fn command_id(text: &str) -> Option<CommandId> {
    match text.split_whitespace().next() {
        None => Some(CommandId::Help),
        Some(first) => lowercase(first).parse().ok(),
    }
}

/// `text.to_lowercase()`, borrowed when that would change nothing (commands are
/// mostly typed in lower case, and this runs on every ack).
pub(crate) fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        text.into()
    } else {
        text.to_lowercase().into()
    }
}

/// Finds the command and splits its options from its positionals.
/// Empty text is `help`.
pub fn split(text: &str) -> Result<Parts, UsageError> {
    let mut tokens = tokenize(text)?.into_iter().skip_while(|t| t.text == NEWLINE);
    let Some(first) = tokens.next() else {
        return Ok(Parts {
            spec: commands::spec(CommandId::Help),
            positionals: Default::default(),
            options: Vec::new(),
        });
    };
    let name = lowercase(&first.text);
    let spec = match name.parse::<CommandId>() {
        Ok(id) => commands::spec(id),
        Err(()) => {
            let names: Vec<&str> = CommandId::ALL.iter().map(|c| c.as_str()).collect();
            let message = match suggest(&name, &names) {
                Some(s) => format!("unknown command `{}`; did you mean `{s}`?", first.text),
                None => format!("unknown command `{}`", first.text),
            };
            let mut e = UsageError::new(message, None);
            e.usage = Some(format!("/wa <{}> ... (try /wa help)", names.join("|")));
            return Err(e);
        }
    };
    let mut parts = Parts {
        spec,
        positionals: Default::default(),
        options: Vec::new(),
    };
    let mut tokens = tokens.peekable();
    while let Some(token) = tokens.next() {
        let Some(option) = option_text(&token) else {
            parts.positionals.push_back(token);
            continue;
        };
        let (name, inline) = match option.split_once('=') {
            Some((n, v)) => (n.to_lowercase(), Some(v.to_string())),
            None => (option.to_lowercase(), None),
        };
        let Some(o) = spec.options.iter().find(|o| o.name == name) else {
            let names: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
            let message = match suggest(&name, &names) {
                Some(s) => format!("unknown option `--{name}`; did you mean `--{s}`?"),
                None if names.is_empty() => format!("`{}` takes no options; unknown option `--{name}`", spec.id),
                None => format!("unknown option `--{name}`"),
            };
            return Err(parts.error(message));
        };
        if parts.flag(o.name) {
            return Err(parts.error(format!("--{} is given twice", o.name)));
        }
        let value = match (o.value, inline) {
            (None, None) => None,
            (None, Some(_)) => return Err(parts.error(format!("--{} takes no value", o.name))),
            (Some(_), Some(v)) => Some(v),
            (Some(placeholder), None) => match tokens.next_if(|t| t.text != NEWLINE && option_text(t).is_none()) {
                Some(t) => Some(t.text),
                None => return Err(parts.error(format!("--{} needs a value ({placeholder})", o.name))),
            },
        };
        parts.options.push((o.name, value));
    }
    Ok(parts)
}

/// The option name if the token is an option. Chat clients often turn `--` into
/// an em or en dash, so those count too.
fn option_text(token: &Token) -> Option<&str> {
    if token.quoted {
        return None;
    }
    let t = token.text.as_str();
    t.strip_prefix("--")
        .or_else(|| t.strip_prefix('—'))
        .or_else(|| t.strip_prefix('–'))
        .filter(|rest| rest.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
}

/// The closest candidate, if close enough to be a likely typo or a prefix.
pub fn suggest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    if input.is_empty() {
        return None;
    }
    if let Some(prefixed) = candidates.iter().find(|c| c.starts_with(input)) {
        return Some(prefixed);
    }
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(input, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        tokenize(text).unwrap().into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn tokenizes_quotes_and_lines() {
        assert_eq!(words(r#"add "Sales Team" +49 1"#), ["add", "Sales Team", "+49", "1"]);
        assert_eq!(words("add “Sales Team” x"), ["add", "Sales Team", "x"]);
        assert_eq!(words("a\n\nb\n"), ["a", "\n", "b"]);
        assert_eq!(words("  "), Vec::<String>::new());
        assert!(tokenize(r#"add "Sales"#).unwrap_err().message.contains("not closed"));
        let t = tokenize(r#"x "a b""#).unwrap();
        assert!(t[1].quoted && !t[0].quoted);
    }

    #[test]
    fn suggestions() {
        let ids: Vec<&str> = CommandId::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(suggest("ad", &ids), Some("add"));
        assert_eq!(suggest("hist", &ids), Some("history"));
        assert_eq!(suggest("subscribtions", &ids), Some("subscriptions"));
        assert_eq!(suggest("jion", &ids), Some("join"));
        assert_eq!(suggest("whoami", &ids), Some("whoami"));
        assert_eq!(suggest("xyzzy", &ids), None);
    }

    #[test]
    fn names_the_command_as_split_does() {
        for text in [
            "add sales +4915112345678",
            "  ADD\nsales",
            "",
            "history x --limit 5",
            "nope x",
            "hist",
        ] {
            assert_eq!(command_id(text), split(text).ok().map(|p| p.spec.id), "{text:?}");
        }
    }

    #[test]
    fn splits_options_in_every_form() {
        let p = split("history sales --limit 5 --since=7d --type joined,left").unwrap();
        assert_eq!(p.value("limit"), Some("5"));
        assert_eq!(p.value("since"), Some("7d"));
        assert_eq!(p.value("type"), Some("joined,left"));
        let p = split("add sales 1 —dry-run").unwrap();
        assert!(p.flag("dry-run"));
        let p = split("ADD sales 1 --DRY-RUN").unwrap();
        assert!(p.flag("dry-run"));
    }

    #[test]
    fn option_errors() {
        let cases = [
            (
                "add sales 1 --dryrun",
                "unknown option `--dryrun`; did you mean `--dry-run`?",
            ),
            ("add sales 1 --force", "unknown option `--force`"),
            (
                "whoami --verbose",
                "`whoami` takes no options; unknown option `--verbose`",
            ),
            ("history sales --limit", "--limit needs a value (N)"),
            ("history sales --limit --since 1d", "--limit needs a value (N)"),
            ("add sales 1 --yes --yes", "--yes is given twice"),
            ("add sales 1 --yes=1", "--yes takes no value"),
        ];
        for (text, want) in cases {
            let e = split(text).unwrap_err();
            assert_eq!(e.message, want, "{text}");
            assert!(e.usage.is_some(), "{text}");
        }
    }

    #[test]
    fn unknown_command_suggests() {
        let e = split("hisotry sales").unwrap_err();
        assert_eq!(e.message, "unknown command `hisotry`; did you mean `history`?");
        assert!(e.usage.unwrap().contains("/wa help"));
        assert_eq!(split("frobnicate").unwrap_err().message, "unknown command `frobnicate`");
    }

    #[test]
    fn usage_comes_from_the_table() {
        assert_eq!(
            commands::spec(CommandId::Add).usage(),
            "/wa add <group> <numbers…> [--dry-run] [--yes] [--account NAME]"
        );
        assert_eq!(
            commands::spec(CommandId::History).usage(),
            "/wa history <group> [--limit N] [--since DURATION] [--type KINDS] [--account NAME]"
        );
    }
}
