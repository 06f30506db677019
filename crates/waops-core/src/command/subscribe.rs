//! `subscribe`, `unsubscribe` and `subscriptions`: a channel's digests of
//! membership changes. The scheduler that posts them reads the same rows.

use std::time::Duration;

use crate::parser::{CommandSpec, OptionSpec, Parts, UsageError};
use crate::values::{format_duration, parse_duration, parse_tz, TimeOfDay};
use crate::CommandId;

/// `subscribe`'s spec row.
pub const SPEC: CommandSpec = CommandSpec {
    id: CommandId::Subscribe,
    args: "<group|*>",
    summary: "post digests (or live alerts) of membership changes to this channel",
    options: &[
        OptionSpec {
            name: "live",
            value: None,
            help: "post each change within seconds (gathered for 10 s), from provider webhooks",
        },
        OptionSpec {
            name: "every",
            value: Some("DURATION"),
            help: "how often (default 1d)",
        },
        OptionSpec {
            name: "at",
            value: Some("HH:MM"),
            help: "time of day to post (needs --every in whole days)",
        },
        OptionSpec {
            name: "tz",
            value: Some("ZONE"),
            help: "time zone for --at, e.g. Europe/Berlin (default UTC)",
        },
        crate::parser::ACCOUNT,
    ],
};

/// `unsubscribe`'s spec row.
pub const UNSUBSCRIBE_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Unsubscribe,
    args: "<group|*>",
    summary: "stop this channel's digests (* stops all of them)",
    options: &[crate::parser::ACCOUNT],
};

/// `subscriptions`' spec row.
pub const SUBSCRIPTIONS_SPEC: CommandSpec = CommandSpec {
    id: CommandId::Subscriptions,
    args: "",
    summary: "list this channel's digest subscriptions",
    options: &[],
};

/// Default digest period.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(86_400);

/// One group, or all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubTarget {
    /// `*`
    All,
    /// A group reference as typed.
    Group(String),
}

/// `subscribe` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// What to follow.
    pub target: SubTarget,
    /// Window length.
    pub every: Duration,
    /// Time-of-day alignment.
    pub at: Option<TimeOfDay>,
    /// Time zone.
    pub tz: jiff::tz::TimeZone,
    /// Live alerts instead of a digest.
    pub live: bool,
}

/// `unsubscribe` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsubscribeArgs {
    /// What to stop.
    pub target: SubTarget,
}

fn target(parts: &mut Parts) -> Result<SubTarget, UsageError> {
    let token = parts.required("<group|*>")?;
    Ok(if token.text == "*" && !token.quoted {
        SubTarget::All
    } else {
        SubTarget::Group(token.text)
    })
}

/// Parses `subscribe`.
pub fn parse(parts: &mut Parts) -> Result<Args, UsageError> {
    let target = target(parts)?;
    let live = parts.flag("live");
    if live && ["every", "at", "tz"].iter().any(|o| parts.value(o).is_some()) {
        return Err(parts.error("--live posts as changes arrive; it takes no --every, --at or --tz"));
    }
    let every = parts.parsed("every", parse_duration)?.unwrap_or(DEFAULT_EVERY);
    let at = parts.parsed("at", |v| v.parse::<TimeOfDay>())?;
    let tz = parts.parsed("tz", parse_tz)?.unwrap_or(jiff::tz::TimeZone::UTC);
    if at.is_some() && every.as_secs() % 86_400 != 0 {
        return Err(parts.error(format!(
            "--at needs --every in whole days (1d, 7d, 2w); got {}",
            format_duration(every)
        )));
    }
    Ok(Args {
        target,
        every,
        at,
        tz,
        live,
    })
}

/// Parses `unsubscribe`.
pub fn parse_unsubscribe(parts: &mut Parts) -> Result<UnsubscribeArgs, UsageError> {
    Ok(UnsubscribeArgs { target: target(parts)? })
}
